package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestPOSIXFlags: every subcommand parses its flags POSIX-style
// (spf13/pflag): flags after a positional argument, --flag=false for a
// bool, -h and --help (exit 0, the usage on stderr listing --name flags
// with their defaults), an unknown flag a usage error (exit 2, named),
// and a long flag written with one dash refused, naming its two-dash form.
func TestPOSIXFlags(t *testing.T) {
	policy := repoPath(t, "remediate", "default_policy.yaml")
	payload := repoPath(t, "remediate", "testdata", "alertmanager", "alertmanager-0.25-e2e-leak.json")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   []string
		stderr   []string
	}{
		{name: "check: a flag after the FILE is parsed", args: []string{"check", "policy", policy, "--strict"}, wantCode: 2,
			stderr: []string{"check: unknown flag: --strict", "usage: leakguard check"}},
		{name: "check: --help after the FILE", args: []string{"check", "policy", policy, "--help"}, wantCode: 0,
			stderr: []string{"usage: leakguard check"}},
		{name: "check: the FILE alone", args: []string{"check", "policy", policy}, wantCode: 0, stdout: []string{policy + ": ok"}},
		// Were -o json after FILE not parsed, replay would see three
		// arguments and say it wants one FILE.
		{name: "replay: -o after the FILE", args: []string{"replay", payload, "-o", "xml"}, wantCode: 2,
			stderr: []string{`-o "xml": want table or json`}},
		{name: "replay: --output= after the FILE", args: []string{"replay", payload, "--output=xml"}, wantCode: 2,
			stderr: []string{`-o "xml": want table or json`}},
		{name: "version: -o json", args: []string{"version", "-o", "json"}, wantCode: 0, stdout: []string{`"version"`}},
		{name: "profile summarize: a flag after the FILE is parsed", args: []string{"profile", "summarize", policy, "--top", "0"}, wantCode: 2,
			stderr: []string{"profile summarize: --top 0: want a positive number"}},
		{name: "profile summarize: a single-dash long flag", args: []string{"profile", "summarize", policy, "-top", "3"}, wantCode: 2,
			stderr: []string{"flags take two dashes: --top"}},
		{name: "generate: a single-dash long flag", args: []string{"generate", "-out-dir", t.TempDir()}, wantCode: 2,
			stderr: []string{"generate: unknown shorthand flag: 'o' in -out-dir", "flags take two dashes: --out-dir, not -out-dir"}},
		{name: "serve: a single-dash long flag with a value", args: []string{"serve", "-listen-address=:1"}, wantCode: 2,
			stderr: []string{"flags take two dashes: --listen-address"}},
		{name: "serve: an argument", args: []string{"serve", "extra", "--insecure-no-auth=false"}, wantCode: 2,
			stderr: []string{`serve: unexpected arguments ["extra"]`}},
		{name: "recommend: -A and -n", args: []string{"recommend", "-A", "-n", "shop"}, wantCode: 2,
			stderr: []string{"-n and -A"}},
	}
	for _, cmd := range []string{"serve", "replay", "generate", "agent", "check", "recommend", "version"} {
		tests = append(tests, struct {
			name     string
			args     []string
			wantCode int
			stdout   []string
			stderr   []string
		}{name: cmd + ": unknown flag", args: []string{cmd, "--no-such-flag"}, wantCode: 2, stderr: []string{cmd + ": unknown flag: --no-such-flag"}})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tc.args, code, tc.wantCode, stderr.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("run(%q) stdout = %q, want it to contain %q", tc.args, stdout.String(), want)
				}
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("run(%q) stderr = %q, want it to contain %q", tc.args, stderr.String(), want)
				}
			}
		})
	}
}

// TestHelpListsLongFlags: -h and --help of every subcommand exit 0 and
// list its flags as --name, with the default where there is one; no flag
// is listed in the single-dash form of Go's flag package.
func TestHelpListsLongFlags(t *testing.T) {
	for cmd, want := range map[string][]string{
		"serve":     {"--listen-address string", `(default ":8443")`, "--dry-run", "--profile-dir DIR", "--bearer-token-file"},
		"replay":    {"--kubeconfig FILE", "--context NAME", "-o, --output string", `(default "table")`},
		"generate":  {"--out-dir string", `(default "deploy")`, "--oom-horizon duration", "(default 4h)", "--object-label name=value"},
		"agent":     {"--node-name string", "--cgroup-root string", `(default "/sys/fs/cgroup")`, "--kubeconfig FILE", "--context NAME"},
		"check":     {"usage: leakguard check policy FILE"},
		"recommend": {"-n, --namespace string", "-A, --all-namespaces", "-l, --selector SELECTOR", "--granularity quantity", "(default 64Mi)"},
		"version":   {"-o, --output string", `(default "text")`},
		"profile":   {"usage: leakguard profile summarize FILE"},
	} {
		for _, help := range []string{"-h", "--help"} {
			t.Run(cmd+" "+help, func(t *testing.T) {
				var stderr bytes.Buffer
				if code := run(context.Background(), []string{cmd, help}, io.Discard, &stderr); code != 0 {
					t.Errorf("%s %s = %d, want 0", cmd, help, code)
				}
				for _, w := range want {
					if !strings.Contains(stderr.String(), w) {
						t.Errorf("%s %s lacks %q:\n%s", cmd, help, w, stderr.String())
					}
				}
				for _, line := range strings.Split(stderr.String(), "\n") {
					if f := strings.TrimSpace(line); strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "--") && !strings.HasPrefix(f, "-h") && (len(f) < 3 || f[2] != ',') {
						t.Errorf("%s %s lists a single-dash flag: %q", cmd, help, line)
					}
				}
			})
		}
	}
}

// TestBoolFlagFalse: a bool flag takes --flag=false, and the last of
// several wins, as before.
func TestBoolFlagFalse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--dry-run"}, true},
		{[]string{"--dry-run=true"}, true},
		{[]string{"--dry-run", "--dry-run=false"}, false},
		{[]string{"--dry-run=false"}, false},
	} {
		var f serveFlags
		fs := serveFlagSet(&f, io.Discard)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("Parse(%q): %v", tc.args, err)
		}
		if f.dryRun != tc.want {
			t.Errorf("Parse(%q): --dry-run = %t, want %t", tc.args, f.dryRun, tc.want)
		}
	}
}
