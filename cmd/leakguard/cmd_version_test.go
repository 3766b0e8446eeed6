package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVersion(t *testing.T) {
	v := buildVersion()
	rev := v.Commit
	if rev == "" {
		rev = "unknown"
	}
	text := fmt.Sprintf("leakguard %s (revision %s, %s)\n", version, rev, runtime.Version())
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   string
		stderr   string
	}{
		{name: "version", args: []string{"version"}, stdout: text},
		{name: "version -o text", args: []string{"version", "-o", "text"}, stdout: text},
		{name: "--version", args: []string{"--version"}, stdout: text},
		{name: "-version", args: []string{"-version"}, stdout: text},
		{name: "--version -o json", args: []string{"--version", "--output", "json"}, stdout: "json"},
		{name: "version -o json", args: []string{"version", "-o", "json"}, stdout: "json"},
		{name: "unknown output", args: []string{"version", "-o", "yaml"}, wantCode: 2, stderr: `-o "yaml": want text or json`},
		{name: "stray argument", args: []string{"version", "extra"}, wantCode: 2, stderr: "unexpected arguments"},
		{name: "help", args: []string{"version", "--help"}, stderr: "-output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			if tt.stdout != "json" {
				if diff := cmp.Diff(tt.stdout, stdout.String()); diff != "" {
					t.Errorf("stdout mismatch (-want +got):\n%s", diff)
				}
				return
			}
			var got map[string]string
			if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
				t.Fatalf("-o json printed %q: %v", stdout.String(), err)
			}
			want := map[string]string{"version": version, "goVersion": runtime.Version()}
			if v.Commit != "" {
				want["commit"] = v.Commit
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("-o json mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVersionJSONOmitsUnknownCommit checks that a build without VCS
// information prints no commit at all rather than an empty or made-up one.
func TestVersionJSONOmitsUnknownCommit(t *testing.T) {
	b, err := json.Marshal(versionInfo{Version: "v1.2.3", GoVersion: "go1.25.0"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"version":"v1.2.3","goVersion":"go1.25.0"}`, string(b)); diff != "" {
		t.Errorf("JSON mismatch (-want +got):\n%s", diff)
	}
	b, err = json.Marshal(versionInfo{Version: "v1.2.3", GoVersion: "go1.25.0", Commit: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"commit":"abc"`) {
		t.Errorf("JSON %s lacks the commit", b)
	}
}
