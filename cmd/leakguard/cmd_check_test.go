package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/leakguard/leakguard/remediate/builtin"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	unreadable := filepath.Join(dir, "unreadable.yaml")
	if err := os.WriteFile(unreadable, []byte("alerts: {}\n"), 0o000); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "absent.yaml")
	td := func(name string) string { return filepath.Join("testdata", "check", name) }
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   string // exactly
		stderr   []string
	}{
		{
			name:   "good policy",
			args:   []string{"policy", td("good-annotate.yaml")},
			stdout: td("good-annotate.yaml") + ": ok: 2 entries; alerts ContainerMemoryLeak, ContainerMemoryLimitMissing; remediators enabled: annotate; dry-run: no\n",
		},
		{
			name: "several good policies, one line each",
			args: []string{"policy", td("good-restart-dry-run.yaml"), td("good-entry-dry-run.yaml")},
			stdout: td("good-restart-dry-run.yaml") + ": ok: 1 entry; alerts ContainerMemoryOOMPredicted; remediators enabled: annotate, restart; dry-run: yes (whole policy)\n" +
				td("good-entry-dry-run.yaml") + ": ok: 2 entries; alerts ContainerOOMKilled, NodeOrphanCgroups; remediators enabled: annotate; dry-run: entries NodeOrphanCgroups\n",
		},
		{
			name:     "every problem of a policy, one per line with its context",
			args:     []string{"policy", td("bad-several.yaml")},
			wantCode: 1,
			stderr: []string{
				td("bad-several.yaml") + ": cooldown: must not be negative, got -5m0s\n",
				td("bad-several.yaml") + `: alert "ContainerMemoryOOMPredicted": remediators[0]: remediator restart: minReadyReplicas: must not be negative, got -1` + "\n",
				td("bad-several.yaml") + `: alert "ContainerMemoryOOMPredicted": remediators[0]: remediator restart: recurrence.count: must not be negative, got -2` + "\n",
				td("bad-several.yaml") + `: alert "ContainerOOMKilled": remediators[0]: restart disrupts running workloads and needs a check that re-asks Prometheus, not check: none` + "\n",
				"leakguard check: policy: 4 problem(s) in 1 of 1 file(s)\n",
			},
		},
		{
			name:     "unknown field in a policy",
			args:     []string{"policy", td("bad-unknown-field.yaml")},
			wantCode: 1,
			stderr:   []string{td("bad-unknown-field.yaml") + `: alert "ContainerOOMKilled": unknown field "chek"` + "\n"},
		},
		{
			name:     "policy that is not YAML",
			args:     []string{"policy", td("bad-yaml.yaml")},
			wantCode: 1,
			stderr:   []string{td("bad-yaml.yaml") + ": parse YAML: yaml: line 3: did not find expected key\n"},
		},
		{
			name:     "a bad file among good ones fails, the good ones still summarised",
			args:     []string{"policy", td("good-annotate.yaml"), td("bad-unknown-field.yaml")},
			wantCode: 1,
			stdout:   td("good-annotate.yaml") + ": ok: 2 entries; alerts ContainerMemoryLeak, ContainerMemoryLimitMissing; remediators enabled: annotate; dry-run: no\n",
			stderr:   []string{"policy: 1 problem(s) in 1 of 2 file(s)"},
		},
		{
			name:     "missing policy file",
			args:     []string{"policy", missing},
			wantCode: 1,
			stderr:   []string{missing + ": read policy: open " + missing + ": no such file or directory\n"},
		},
		{
			name:   "good parameter file",
			args:   []string{"params", td("params-good.yaml")},
			stdout: td("params-good.yaml") + ": ok: 10 alerts and 33 recording rules in 6 groups; 9 files to generate\n",
		},
		{
			name:     "every bad parameter value, one per line",
			args:     []string{"params", td("params-bad-values.yaml")},
			wantCode: 1,
			stderr: []string{
				td("params-bad-values.yaml") + ": dyingSteps: must be between 2 and 12, got 1\n",
				td("params-bad-values.yaml") + ": nearLimitRatio: must be in (0, 1], got 2\n",
			},
		},
		{
			name:     "unknown parameter",
			args:     []string{"params", td("params-unknown-field.yaml")},
			wantCode: 1,
			stderr:   []string{td("params-unknown-field.yaml") + `: error unmarshaling JSON: while decoding JSON: json: unknown field "oomHorizn"` + "\n"},
		},
		{
			name:     "parameter file that is not YAML",
			args:     []string{"params", td("params-bad-yaml.yaml")},
			wantCode: 1,
			stderr:   []string{td("params-bad-yaml.yaml") + ": error converting YAML to JSON"},
		},
		{
			name:     "missing parameter file",
			args:     []string{"params", missing},
			wantCode: 1,
			stderr:   []string{missing + ": read parameters: open " + missing},
		},
		{name: "no kind", args: nil, wantCode: 2, stderr: []string{"want what to check"}},
		{name: "unknown kind", args: []string{"rules", "x.yaml"}, wantCode: 2, stderr: []string{`unknown kind "rules"`}},
		{name: "no file", args: []string{"policy"}, wantCode: 2, stderr: []string{"check policy: want at least one FILE"}},
		{name: "unknown flag", args: []string{"--strict", "policy", "x.yaml"}, wantCode: 2, stderr: []string{"unknown flag: --strict"}},
		{name: "help", args: []string{"--help"}, wantCode: 0, stderr: []string{"usage: leakguard check policy FILE..."}},
	}
	if os.Geteuid() != 0 {
		// root reads a file of mode 0 anyway.
		tests = append(tests, struct {
			name     string
			args     []string
			wantCode int
			stdout   string
			stderr   []string
		}{name: "unreadable policy file", args: []string{"policy", unreadable}, wantCode: 1,
			stderr: []string{unreadable + ": read policy: open " + unreadable + ": permission denied\n"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"check"}, tt.args...)
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("run(%q) = %d, want %d; stderr:\n%s", args, code, tt.wantCode, stderr.String())
			}
			if diff := cmp.Diff(tt.stdout, stdout.String()); diff != "" {
				t.Errorf("stdout mismatch (-want +got):\n%s", diff)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr = %q, want it to contain %q", stderr.String(), s)
				}
			}
		})
	}
}

// TestCheckPolicyAgreesWithServe checks that check refuses the files serve
// refuses, with the same problems: a policy check passes is one serve
// loads.
func TestCheckPolicyAgreesWithServe(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "check", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		if strings.HasPrefix(filepath.Base(path), "params-") {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			_, serveErr := loadPolicy(path, builtin.Registry())
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{"check", "policy", path}, &stdout, &stderr)
			if (serveErr == nil) != (code == 0) {
				t.Fatalf("serve's loadPolicy: %v; check exit %d, stderr:\n%s", serveErr, code, stderr.String())
			}
			if serveErr == nil {
				return
			}
			for _, line := range strings.Split(serveErr.Error(), "\n") {
				// Each of serve's lines appears in check's output (nested
				// ones with their context added).
				line = strings.TrimPrefix(line, "policy "+path+": ")
				if !strings.Contains(stderr.String(), line) {
					t.Errorf("check's stderr lacks serve's %q:\n%s", line, stderr.String())
				}
			}
		})
	}
}

func TestProblemLines(t *testing.T) {
	inner := errors.Join(errors.New("a: bad"), errors.New("b: worse"))
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"one error", errors.New("policy f.yaml: parse YAML: oops"), []string{"parse YAML: oops"}},
		{"joined under the file", fmt.Errorf("policy f.yaml: %w", inner), []string{"a: bad", "b: worse"}},
		{
			name: "nested join keeps its context on each line",
			err:  fmt.Errorf("policy f.yaml: %w", errors.Join(errors.New("top"), fmt.Errorf("alert %q: %w", "X", inner))),
			want: []string{"top", `alert "X": a: bad`, `alert "X": b: worse`},
		},
		{
			name: "two %w whose message is not their join: split as written",
			err:  fmt.Errorf("policy f.yaml: %w and %w", errors.New("one"), errors.New("two\nthree")),
			want: []string{"one and two", "three"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problemLines(tt.err, "policy f.yaml: ")); diff != "" {
				t.Errorf("problemLines mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageListsCheck(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("--help = %d, want 0", code)
	}
	for _, want := range []string{"  check     validate policy and rule parameter files", "'leakguard --version'"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, stdout.String())
		}
	}
}
