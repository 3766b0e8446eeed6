// Package cli holds what leakguard's commands share on their command line:
// POSIX-style flag sets (spf13/pflag: --name in help, flags before and
// after positional arguments, -h and --help) and their parsing, so that
// every subcommand and package that registers flags (serve, replay,
// generate, agent, check, recommend, version, rules.Params,
// server.Config) parses the same way and a usage error is always exit 2.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// ErrUsage marks a usage error that Parse (or the command) has already
// reported on the flag set's output: the caller exits 2.
var ErrUsage = errors.New("usage error")

// ErrHelp is returned by Parse for -h or --help, after the usage was
// printed: the caller exits 0.
var ErrHelp = pflag.ErrHelp

// NewFlagSet returns a flag set named name that reports to out and
// returns its errors (the caller maps them to exit codes) instead of
// exiting. Flags may follow positional arguments ("check policy FILE
// --x"); "--" ends the flags.
func NewFlagSet(name string, out io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// Parse parses args into fs. -h and --help print the usage and return
// ErrHelp; any other error (an unknown flag, a bad value, a missing one)
// is printed with the usage and returns ErrUsage. A long flag written
// with one dash, as Go's flag package took them (-out-dir), is named in
// the error with its two-dash form.
func Parse(fs *pflag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pflag.ErrHelp):
		return ErrHelp
	}
	fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	if hint := singleDashHint(fs, args); hint != "" {
		fmt.Fprintln(fs.Output(), hint)
	}
	fmt.Fprintln(fs.Output())
	if fs.Usage != nil {
		fs.Usage()
	} else {
		fs.PrintDefaults()
	}
	return ErrUsage
}

// singleDashHint names the first argument that is one of fs's long flags
// with a single dash ("-out-dir" for --out-dir), or returns "".
func singleDashHint(fs *pflag.FlagSet, args []string) string {
	for _, a := range args {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && fs.Lookup(name) != nil {
			return fmt.Sprintf("flags take two dashes: --%s, not -%s", name, name)
		}
	}
	return ""
}

// goValue adapts a flag.Value of Go's flag package to pflag.Value.
type goValue struct {
	flag.Value
	typ string
}

// Type names the value in help when the usage has no back-quoted name.
func (v goValue) Type() string { return v.typ }

// Value adapts v, a flag.Value of Go's flag package (a model.Duration, a
// map of labels), to pflag; typ names its kind in help ("duration").
func Value(v flag.Value, typ string) pflag.Value { return goValue{Value: v, typ: typ} }
