package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/leakguard/leakguard/internal/cli"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// versionInfo is what version prints; -o json prints it as is.
type versionInfo struct {
	Version   string `json:"version"`
	GoVersion string `json:"goVersion"`
	// Commit is the VCS revision the binary was built from, when the
	// build recorded it (go build in a git checkout does).
	Commit string `json:"commit,omitempty"`
}

// buildVersion reads the version, the Go version and the build's VCS
// revision.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Commit = s.Value
			}
		}
	}
	return v
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("version", stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: leakguard version [-o text|json]\n\nPrint the version, the VCS revision and the Go version.\n\nflags:")
		fs.PrintDefaults()
	}
	var output string
	fs.StringVarP(&output, "output", "o", "text", "output format: text, or json (version, goVersion and, when the build recorded it, commit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "version: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	v := buildVersion()
	switch output {
	case "text":
		rev := v.Commit
		if rev == "" {
			rev = "unknown"
		}
		fmt.Fprintf(stdout, "leakguard %s (revision %s, %s)\n", v.Version, rev, v.GoVersion)
		return nil
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	default:
		fmt.Fprintf(stderr, "version: -o %q: want text or json\n", output)
		return errUsage
	}
}
