package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		name     string
		params   string // a parameter file's content, if any
		args     []string
		wantCode int
		want     []string // substrings of the rule file
		notWant  []string
		stderr   string
	}{
		{
			name:     "defaults",
			wantCode: 0,
			want:     []string{"< 14400", "for: 15m", "severity: critical"},
		},
		{
			name:     "parameter file",
			params:   "oomHorizon: 3h\nnearLimitRatio: 0.8\n",
			wantCode: 0,
			want:     []string{"< 10800", ">= 0.8"},
			notWant:  []string{"< 14400"},
		},
		{
			name:     "a flag wins over the parameter file",
			params:   "oomHorizon: 3h\n",
			args:     []string{"--oom-horizon", "2h"},
			wantCode: 0,
			want:     []string{"< 7200"},
			notWant:  []string{"< 10800"},
		},
		{
			name:     "unknown field in the parameter file",
			params:   "oomHorizn: 3h\n",
			wantCode: 1,
			stderr:   `unknown field "oomHorizn"`,
		},
		{
			name:     "invalid value",
			args:     []string{"--near-limit-ratio", "2"},
			wantCode: 1,
			stderr:   "nearLimitRatio: must be in (0, 1], got 2",
		},
		{
			name:     "unknown flag",
			args:     []string{"--no-such-flag"},
			wantCode: 2,
			stderr:   "unknown flag: --no-such-flag",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			args := []string{"generate", "--out-dir", out}
			if tt.params != "" {
				pf := filepath.Join(dir, "params.yaml")
				if err := os.WriteFile(pf, []byte(tt.params), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--params", pf)
			}
			args = append(args, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("run(%q) = %d, want %d; stderr:\n%s", args, code, tt.wantCode, stderr.String())
			}
			if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
			if tt.wantCode != 0 {
				if _, err := os.Stat(out); !os.IsNotExist(err) {
					t.Errorf("a failed generate wrote %s (stat: %v)", out, err)
				}
				return
			}
			data, err := os.ReadFile(filepath.Join(out, rules.RuleFilePath))
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.want {
				if !strings.Contains(string(data), s) {
					t.Errorf("rule file lacks %q", s)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(string(data), s) {
					t.Errorf("rule file still has %q", s)
				}
			}
			if _, err := os.Stat(filepath.Join(out, rules.PrometheusRulePath)); err != nil {
				t.Errorf("PrometheusRule not written: %v", err)
			}
		})
	}
}

func TestGenerateHelpListsParameters(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"generate", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("generate --help = %d, want 0", code)
	}
	for _, flag := range []string{"--oom-horizon", "--cadvisor-selector", "--runbook-base-url", "--object-label", "--params", "--out-dir"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("generate --help does not list %s", flag)
		}
	}
}

// Every kind of parameter (selector string, duration, int, int64, float,
// label maps) merges the same way: defaults, then the file, then each flag
// as given, repeated label flags adding one label each.
func TestGenerateParamsMergeFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "params.yaml")
	if err := os.WriteFile(file, []byte(`cadvisorSelector: job="cadvisor"
kubeStateMetricsSelector: job="ksm-file"
oomHorizon: 3h
leakFor: 20m
leakSteps: 5
slowSteps: 5
leakMinGrowthBytes: 1000
nearLimitRatio: 0.8
fastMinHeadroomRatio: 0.2
clusterLabel: region
alertLabels:
  team: file
  tier: gold
objectLabels:
  release: file
`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, outDir, err := generateParams([]string{
		"--params", file, "--out-dir", "out",
		"--kube-state-metrics-selector", `job="ksm-flag"`,
		"--leak-for", "25m", "--leak-steps", "6", "--leak-min-growth-bytes", "2000", "--fast-min-headroom-ratio", "0.3",
		"--alert-label", "team=a", "--alert-label", "cluster=prod", "--alert-label", "tier=",
		"--object-label", "release=flag", "--object-label", "app.kubernetes.io/part-of=",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := rules.DefaultParams()
	want.CadvisorSelector = `job="cadvisor"`         // the file
	want.KubeStateMetricsSelector = `job="ksm-flag"` // the flag over the file
	want.OOMHorizon = model.Duration(3 * time.Hour)  // the file
	want.LeakFor = model.Duration(25 * time.Minute)  // the flag
	want.LeakSteps, want.SlowSteps = 6, 5            // flag, file
	want.LeakMinGrowthBytes = 2000                   // the flag
	want.NearLimitRatio, want.FastMinHeadroomRatio = 0.8, 0.3
	want.ClusterLabel = "region"
	want.AlertLabels = map[string]string{"team": "a", "cluster": "prod"}
	want.ObjectLabels = map[string]string{"app.kubernetes.io/name": "leakguard", "release": "flag"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("generateParams (-want +got):\n%s", diff)
	}
	if outDir != "out" {
		t.Errorf("out dir = %q, want out", outDir)
	}

	// Without a file, the flags alone.
	got, _, err = generateParams([]string{"--alert-label", "team=a", "--alert-label", "cluster=prod"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"team": "a", "cluster": "prod"}, got.AlertLabels); diff != "" {
		t.Errorf("alert labels (-want +got):\n%s", diff)
	}
}
