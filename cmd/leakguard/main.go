// Command leakguard finds memory leaks in Kubernetes before the OOM killer
// does, and acts on them safely.
//
// One binary, several subcommands: serve (the Alertmanager webhook
// receiver), agent (the node agent), generate (rules, dashboards and
// manifests), replay (a saved payload through the policy, in dry-run),
// recommend (memory requests and limits from Prometheus), check (policy and
// rule parameter files), profile (summaries of pprof profiles on disk),
// token (the webhook token's Secret for a trial install) and version (also
// --version). This file only
// dispatches; each subcommand's wiring lives in its own cmd_*.go file and
// its logic in the packages it calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/leakguard/leakguard/internal/cli"
)

// command is one subcommand: a one-line summary and the function that parses
// its arguments and runs it.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"serve":     {"run the Alertmanager webhook receiver and remediation engine", runServe},
		"agent":     {"run the node agent that counts orphan and dying cgroups", runAgent},
		"generate":  {"write the Prometheus rules, dashboards and manifests to files", runGenerate},
		"replay":    {"run a saved Alertmanager payload through the policy in dry-run", runReplay},
		"recommend": {"print memory requests and limits from Prometheus, leaks told apart", runRecommend},
		"check":     {"validate policy and rule parameter files before shipping them", runCheck},
		"profile":   {"summarize a pprof heap or goroutine profile on disk, and what grew since a base", runProfile},
		"version":   {"print the version", runVersion},
		"token":     {"create the webhook token's Secret with a random token if it is absent (trial installs)", runToken},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and maps its error to an exit code: 0 on
// success and for --help, 2 for a usage error, 1 otherwise.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		// As kubectl and promtool have it: the same line as version.
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "leakguard: unknown command %q\n\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil, errors.Is(err, cli.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "leakguard %s: %v\n", args[0], err)
		return 1
	}
}

// errUsage marks a usage error that has already been reported (exit 2).
var errUsage = cli.ErrUsage

// parseFlags parses a subcommand's flags (cli.Parse: POSIX-style, flags
// after positional arguments too), printing errors and --help to the flag
// set's output, and returns errUsage or cli.ErrHelp accordingly.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	return cli.Parse(fs, args)
}

// checkURLFlag refuses a URL flag's value that is not an absolute http or
// https URL with a host ("not a url", "prometheus:9090", "http://"), so
// that a command fails at start naming the flag, instead of at its first
// request with an error about a relative path.
func checkURLFlag(flagName, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("--%s %q: %w", flagName, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--%s %q: want an http or https URL with a host, such as https://host:port/path", flagName, raw)
	}
	return nil
}

func usage(w io.Writer, cmds map[string]command) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: leakguard <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'leakguard <command> --help' for a command's flags, 'leakguard --version' for the version.")
}
