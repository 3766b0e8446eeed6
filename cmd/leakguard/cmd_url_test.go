package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestURLFlagsCheckedAtStart runs every command that takes a URL with a
// bad one and a payload, policy or output that would fail later if the
// URL were let through: the error names the flag and nothing else
// happened (no payload read, no file written).
func TestURLFlagsCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	absent := filepath.Join(dir, "absent")
	want := "want an http or https URL with a host"
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"serve, not a URL", []string{"serve", "--prometheus-url", "not a url", "--policy", absent, "--kubeconfig", absent}, `leakguard serve: --prometheus-url "not a url": ` + want},
		{"serve, no scheme", []string{"serve", "--prometheus-url", "prometheus:9090", "--policy", absent}, `--prometheus-url "prometheus:9090": ` + want},
		{"serve, no host", []string{"serve", "--prometheus-url", "http://", "--policy", absent}, `--prometheus-url "http://": ` + want},
		{"serve, path only", []string{"serve", "--prometheus-url", "/api/v1", "--policy", absent}, `--prometheus-url "/api/v1": ` + want},
		{"serve, not http", []string{"serve", "--prometheus-url", "ftp://prometheus:9090", "--policy", absent}, want},
		{"serve, empty", []string{"serve", "--prometheus-url", "", "--policy", absent}, `--prometheus-url "": ` + want},
		{"serve, does not parse", []string{"serve", "--prometheus-url", "http://[::1", "--policy", absent}, `--prometheus-url "http://[::1": parse`},
		// The payload file is absent: replay would say "read payload" if
		// it got that far.
		{"replay, not a URL", []string{"replay", "--prometheus-url", "not a url", absent}, `leakguard replay: --prometheus-url "not a url": ` + want},
		{"replay, no host", []string{"replay", "--prometheus-url", "https:///api", absent}, want},
		{"recommend, not a URL", []string{"recommend", "--prometheus-url", "not a url", "-A"}, `leakguard recommend: --prometheus-url "not a url": ` + want},
		{"generate, relative runbook URL", []string{"generate", "--out-dir", out, "--runbook-base-url", "docs/runbooks/"}, `leakguard generate: --runbook-base-url "docs/runbooks/": ` + want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != 1 {
				t.Fatalf("run(%q) = %d, want 1; stderr:\n%s", tt.args, code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			for _, later := range []string{"read payload", "read policy", "kubeconfig"} {
				if strings.Contains(stderr.String(), later) {
					t.Errorf("stderr = %q: got as far as %q before refusing the URL", stderr.String(), later)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("%s written (stat: %v)", out, err)
			}
		})
	}
}

func TestCheckURLFlag(t *testing.T) {
	for _, good := range []string{
		defaultPrometheusURL, "https://thanos-query.example.com/", "http://127.0.0.1:9090",
		"http://[::1]:9090", "https://mimir.example.com/prometheus", "HTTPS://prometheus.example.com",
	} {
		if err := checkURLFlag("prometheus-url", good); err != nil {
			t.Errorf("checkURLFlag(%q) = %v, want nil", good, err)
		}
	}
}

// TestCheckParamsRefusesBadRunbookURL checks that check params refuses
// the runbook base URL that generate refuses.
func TestCheckParamsRefusesBadRunbookURL(t *testing.T) {
	pf := filepath.Join(t.TempDir(), "params.yaml")
	if err := os.WriteFile(pf, []byte("runbookBaseURL: runbooks/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"check", "params", pf}, &stdout, &stderr); code != 1 {
		t.Fatalf("check params = %d, want 1; stderr:\n%s", code, stderr.String())
	}
	if want := pf + `: --runbook-base-url "runbooks/": want an http or https URL`; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr = %q, want it to contain %q", stderr.String(), want)
	}
}
