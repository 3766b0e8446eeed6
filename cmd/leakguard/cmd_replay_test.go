package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
)

// TestReplayOutput replays the end-to-end test's leak with -o table (the
// default's table, unchanged) and -o json (the decisions as a JSON array
// in Decision's JSON form, the same decisions a read-only engine takes),
// writing nothing either way.
func TestReplayOutput(t *testing.T) {
	msg, err := readPayload(repoPath(t, "remediate", "testdata", "alertmanager", "alertmanager-0.25-e2e-leak.json"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := loadPolicy("", builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	replayTo := func(output string) string {
		t.Helper()
		cs := leakingCluster()
		q := &testQuerier{answers: map[string]float64{slopeQueryWeb: 1e4}}
		var out bytes.Buffer
		if err := replay(context.Background(), msg, policy, cs, nil, q, serveFlags{output: output}, slog.New(slog.DiscardHandler), &out); err != nil {
			t.Fatalf("replay(-o %q) error: %v", output, err)
		}
		for _, a := range cs.Actions() {
			if a.GetVerb() != "get" {
				t.Errorf("replay(-o %q) made a %s on %s, want reads only", output, a.GetVerb(), a.GetResource().Resource)
			}
		}
		return out.String()
	}

	if diff := cmp.Diff(replayTo(""), replayTo("table")); diff != "" {
		t.Errorf("-o table differs from the default (-default +table):\n%s", diff)
	}

	out := replayTo("json")
	if !strings.HasPrefix(out, "[") {
		t.Errorf("-o json = %q, want a JSON array", out)
	}
	var got []remediate.Decision
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("-o json does not decode into []remediate.Decision: %v\n%s", err, out)
	}
	engine, err := remediate.NewEngine(remediate.Options{Client: leakingCluster(), Policy: policy, ReadOnly: true,
		Querier: &testQuerier{answers: map[string]float64{slopeQueryWeb: 1e4}}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	want, err := engine.Decide(context.Background(), msg.Alerts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(remediate.Decision{})); diff != "" {
		t.Errorf("-o json decisions (-read-only engine +json):\n%s", diff)
	}
	if len(got) != 1 || got[0].Target != "Deployment shop/web" || got[0].Reason != "would-act" {
		t.Errorf("-o json = %+v, want the Deployment's would-act", got)
	}
	// The field names are Decision's JSON tags, those of serve's answer.
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"alertname", "status", "target", "check", "checkResult", "guards", "remediators", "decision", "reason"} {
		if len(raw) != 1 || raw[0][key] == nil {
			t.Errorf("-o json = %s, want key %q", out, key)
		}
	}
}

// TestReplayOutputFlag: an unknown -o is a usage error (exit 2) before
// the payload is read, and --help documents -o.
func TestReplayOutputFlag(t *testing.T) {
	absent := filepath.Join(t.TempDir(), "absent.json")
	for _, args := range [][]string{{"replay", "-o", "yaml", absent}, {"replay", "--output=wide", absent}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "want table or json") || strings.Contains(stderr.String(), "read payload") {
			t.Errorf("run(%q) stderr = %q, want -o refused before the payload is read", args, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) stdout = %q, want nothing", args, stdout.String())
		}
	}
	var stderr bytes.Buffer
	run(context.Background(), []string{"replay", "--help"}, &bytes.Buffer{}, &stderr)
	for _, want := range []string{"-o, --output string", `(default "table")`, "json (an array of the decisions)"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("replay --help lacks %q:\n%s", want, stderr.String())
		}
	}
}
