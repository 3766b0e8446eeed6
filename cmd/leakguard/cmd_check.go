package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/leakguard/leakguard/internal/cli"
	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/rules"
)

// checkKinds are check's subcommands: what each validates, by the same
// code path that refuses it at run time.
var checkKinds = map[string]struct {
	summary string
	check   func(path string) (summary string, err error)
}{
	"policy": {"a remediation policy, as serve loads --policy (and reloads it on SIGHUP)", checkPolicyFile},
	"params": {"a rule generator parameter file, as generate reads --params", checkParamsFile},
}

// runCheck validates files without a cluster or Prometheus: each good
// file gets one summary line on stdout, each problem of a bad one a line
// "FILE: problem" on stderr. Any problem (an unreadable file included)
// makes it fail: exit 1.
func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("check", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leakguard check policy FILE...
       leakguard check params FILE...

Validate files before shipping them, with no cluster or Prometheus:
`)
		for _, k := range sortedCheckKinds() {
			fmt.Fprintf(fs.Output(), "  %-7s %s\n", k, checkKinds[k].summary)
		}
		fmt.Fprint(fs.Output(), `
Prints one summary line per valid file. Exits 1 if any file is invalid or
unreadable, naming each problem on its own line ("FILE: problem"), and 2
on a usage error.
`)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "check: want what to check (policy or params) and at least one FILE")
		fs.Usage()
		return errUsage
	}
	kind, ok := checkKinds[fs.Arg(0)]
	if !ok {
		fmt.Fprintf(stderr, "check: unknown kind %q: want policy or params\n", fs.Arg(0))
		return errUsage
	}
	files := fs.Args()[1:]
	if len(files) == 0 {
		fmt.Fprintf(stderr, "check %s: want at least one FILE\n", fs.Arg(0))
		return errUsage
	}
	problems, bad := 0, 0
	for _, path := range files {
		summary, err := kind.check(path)
		if err != nil {
			bad++
			for _, line := range problemLines(err, "policy "+path+": ", "parameters "+path+": ") {
				problems++
				fmt.Fprintf(stderr, "%s: %s\n", path, line)
			}
			continue
		}
		fmt.Fprintf(stdout, "%s: ok: %s\n", path, summary)
	}
	if bad > 0 {
		return fmt.Errorf("%s: %d problem(s) in %d of %d file(s)", fs.Arg(0), problems, bad, len(files))
	}
	return nil
}

func sortedCheckKinds() []string {
	kinds := make([]string, 0, len(checkKinds))
	for k := range checkKinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// problemLines splits an error into one line per problem: the loaders
// report every problem of a file at once, joined by newlines
// (errors.Join), some nested under a context ("alert \"X\": remediators[0]:
// ..."), which each of their lines gets. A prefix naming the file (one of
// prefixes) is dropped: the caller writes the file name on every line.
func problemLines(err error, prefixes ...string) []string {
	lines := flattenError(err)
	for i, l := range lines {
		for _, p := range prefixes {
			l = strings.TrimPrefix(l, p)
		}
		lines[i] = l
	}
	return lines
}

// flattenError is the lines of err's message, each with the context of
// the wrapping errors above it.
func flattenError(err error) []string {
	msg := err.Error()
	switch e := err.(type) {
	case interface{ Unwrap() []error }:
		var lines, parts []string
		for _, sub := range e.Unwrap() {
			parts = append(parts, sub.Error())
			lines = append(lines, flattenError(sub)...)
		}
		if strings.Join(parts, "\n") == msg {
			return lines
		}
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			if ctx, ok := strings.CutSuffix(msg, inner.Error()); ok {
				lines := flattenError(inner)
				for i := range lines {
					lines[i] = ctx + lines[i]
				}
				return lines
			}
		}
	}
	return strings.Split(msg, "\n")
}

// checkPolicyFile loads a policy exactly as serve does (LoadPolicyFile
// with the default registry) and summarises it.
func checkPolicyFile(path string) (string, error) {
	p, err := remediate.LoadPolicyFile(path, builtin.Registry())
	if err != nil {
		return "", err
	}
	alerts := p.AlertNames()
	remediators := map[string]bool{}
	var dryRunEntries []string
	for _, name := range alerts {
		e := p.Entry(name)
		for _, r := range e.Remediators {
			remediators[r.Name] = true
		}
		if e.DryRun {
			dryRunEntries = append(dryRunEntries, name)
		}
	}
	names := make([]string, 0, len(remediators))
	for n := range remediators {
		names = append(names, n)
	}
	sort.Strings(names)
	enabled := "none"
	if len(names) > 0 {
		enabled = strings.Join(names, ", ")
	}
	dryRun := "no"
	switch {
	case p.DryRun:
		dryRun = "yes (whole policy)"
	case len(dryRunEntries) > 0:
		dryRun = "entries " + strings.Join(dryRunEntries, ", ")
	}
	entries := fmt.Sprintf("%d entries", len(alerts))
	if len(alerts) == 1 {
		entries = "1 entry"
	}
	return fmt.Sprintf("%s; alerts %s; remediators enabled: %s; dry-run: %s",
		entries, strings.Join(alerts, ", "), enabled, dryRun), nil
}

// checkParamsFile reads a parameter file as generate reads --params (over
// the defaults, strictly) and renders every generated file in memory, so
// that whatever generate would refuse is refused here.
func checkParamsFile(path string) (string, error) {
	p := rules.DefaultParams()
	if err := rules.LoadParamsFile(path, &p); err != nil {
		return "", err
	}
	files, err := generatedFiles(p)
	if err != nil {
		return "", fmt.Errorf("parameters %s: %w", path, err)
	}
	spec, err := rules.Spec(p)
	if err != nil {
		return "", fmt.Errorf("parameters %s: %w", path, err)
	}
	alerts, records := 0, 0
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts++
			} else {
				records++
			}
		}
	}
	return fmt.Sprintf("%d alerts and %d recording rules in %d groups; %d files to generate",
		alerts, records, len(spec.Groups), len(files)), nil
}
