package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/leakguard/leakguard/internal/cli"
	"github.com/leakguard/leakguard/remediate/profile/summary"
)

// runProfile dispatches profile's subcommands; summarize is the only one.
func runProfile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "summarize" {
		return runProfileSummarize(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		// As the other commands' help: on stderr, exit 0.
		fmt.Fprint(stderr, profileUsage)
		return cli.ErrHelp
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, "profile: want a subcommand\n\n"+profileUsage)
	} else {
		fmt.Fprintf(stderr, "profile: unknown subcommand %q\n\n%s", args[0], profileUsage)
	}
	return errUsage
}

const profileUsage = `usage: leakguard profile summarize FILE [--base FILE] [--top N] [--json]

  summarize  the top allocation sites, or goroutines, of a pprof heap or
             goroutine profile, and what grew since a base profile
`

// runProfileSummarize prints the summary of a heap or goroutine profile on
// disk (as leakguard serve stores them, or as /debug/pprof serves them),
// with its growth since --base.
func runProfileSummarize(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("profile summarize", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leakguard profile summarize FILE [--base FILE] [--top N] [--json]

Summarize a pprof heap or goroutine profile without go tool pprof: the top
functions by in-use bytes (flat and cumulative, with their share), or the
goroutine count, and the heaviest stacks. With --base, an earlier profile
of the same process, also what grew between the two, by function (as
go tool pprof -base). Exits 1 if a file is unreadable, too large,
truncated or not a heap or goroutine profile, and 2 on a usage error.

flags:
`)
		fs.PrintDefaults()
	}
	var (
		basePath string
		asJSON   bool
		opts     summary.Options
	)
	fs.StringVar(&basePath, "base", "", "subtract the profile in `FILE`, an earlier one of the same process, and show what grew since it (default none)")
	fs.IntVar(&opts.Top, "top", summary.DefaultTop, "how many functions and stacks to list")
	fs.IntVar(&opts.Frames, "frames", summary.DefaultFrames, "how many frames of each stack to show, innermost first")
	fs.Int64Var(&opts.MaxBytes, "max-bytes", summary.DefaultMaxBytes, "refuse a profile larger than this many bytes, compressed or once gunzipped")
	fs.BoolVar(&asJSON, "json", false, "print the summary as JSON instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "profile summarize: want one FILE, got %d arguments\n\n", fs.NArg())
		fs.Usage()
		return errUsage
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"top", int64(opts.Top)}, {"frames", int64(opts.Frames)}, {"max-bytes", opts.MaxBytes}} {
		if f.v <= 0 {
			fmt.Fprintf(stderr, "profile summarize: --%s %d: want a positive number\n", f.name, f.v)
			return errUsage
		}
	}
	data, err := readBounded(fs.Arg(0), opts.MaxBytes)
	if err != nil {
		return err
	}
	var base []byte
	if basePath != "" {
		if base, err = readBounded(basePath, opts.MaxBytes); err != nil {
			return err
		}
	}
	s, err := summary.Summarize(data, base, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	// A person at a terminal: the whole text, bounded by --top and
	// --frames rather than by length.
	_, err = io.WriteString(stdout, s.Text(0))
	return err
}

// readBounded reads at most maxBytes+1 bytes of path, so that an
// oversized file is refused by Summarize's limit without being read whole.
func readBounded(path string, maxBytes int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%s: %w: over the limit of %d bytes (--max-bytes)", path, summary.ErrTooLarge, maxBytes)
	}
	return data, nil
}
