package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// durationValue is a flag.Value of Go's flag package without Type.
type durationValue struct{ d *time.Duration }

func (v durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return v.d.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

// TestParse: flags before and after positional arguments, "--" ending
// them, help as ErrHelp, every other error as ErrUsage with the error,
// the hint for a single-dash long flag and the usage on the output; a Go
// flag.Value adapted with Value parses and names its type in help.
func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantErr  error
		wantArgs []string
		wantOut  []string
		noOut    bool
	}{
		{name: "flags around arguments", args: []string{"a", "--out-dir=x", "b", "--wait", "5s", "-v"}, wantArgs: []string{"a", "b"}, noOut: true},
		{name: "-- ends the flags", args: []string{"--", "--out-dir=x"}, wantArgs: []string{"--out-dir=x"}, noOut: true},
		{name: "--help", args: []string{"a", "--help"}, wantErr: ErrHelp, wantOut: []string{"usage of t", "--out-dir string", `(default "deploy")`, "--wait duration", "(default 1s)", "-v, --verbose"}},
		{name: "-h", args: []string{"-h"}, wantErr: ErrHelp, wantOut: []string{"usage of t"}},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: ErrUsage, wantOut: []string{"t: unknown flag: --nope", "usage of t"}},
		{name: "single-dash long flag", args: []string{"x", "-out-dir", "y"}, wantErr: ErrUsage, wantOut: []string{"flags take two dashes: --out-dir, not -out-dir"}},
		{name: "bad value", args: []string{"--wait=soon"}, wantErr: ErrUsage, wantOut: []string{`invalid argument "soon" for "--wait" flag`}},
		{name: "missing value", args: []string{"--out-dir"}, wantErr: ErrUsage, wantOut: []string{"flag needs an argument: --out-dir"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			fs := NewFlagSet("t", &out)
			fs.Usage = func() {
				out.WriteString("usage of t\n")
				fs.PrintDefaults()
			}
			fs.String("out-dir", "deploy", "directory to write into")
			wait := time.Second
			fs.Var(Value(durationValue{&wait}, "duration"), "wait", "how long to wait")
			fs.BoolP("verbose", "v", false, "say more")
			err := Parse(fs, tc.args)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Parse(%q) = %v, want %v", tc.args, err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.wantArgs, fs.Args()); diff != "" {
					t.Errorf("Parse(%q) arguments (-want +got):\n%s", tc.args, diff)
				}
			}
			if tc.noOut && out.Len() != 0 {
				t.Errorf("Parse(%q) wrote %q, want nothing", tc.args, out.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("Parse(%q) output lacks %q:\n%s", tc.args, w, out.String())
				}
			}
		})
	}
}
