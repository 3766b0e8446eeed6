package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"

	"github.com/leakguard/leakguard/remediate/profile/summary"
)

// profileTestRetained keeps profileTestLeak's allocations reachable.
var profileTestRetained [][]byte

// profileTestLeak is the known allocation site TestProfileSummarize looks
// for in the growth.
//
//go:noinline
func profileTestLeak(n int) []byte {
	return make([]byte, n)
}

// writeHeapProfile writes this process's heap profile, after a GC, to a
// file in dir.
func writeHeapProfile(t *testing.T, dir, name string) string {
	t.Helper()
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeSynthetic writes a hand-made heap profile: main.a retains a bytes
// and main.b b bytes, both called from main.c.
func writeSynthetic(t *testing.T, dir, name string, at time.Time, a, b int64) string {
	t.Helper()
	fa := &profile.Function{ID: 1, Name: "main.a"}
	fb := &profile.Function{ID: 2, Name: "main.b"}
	fc := &profile.Function{ID: 3, Name: "main.c"}
	la := &profile.Location{ID: 1, Line: []profile.Line{{Function: fa}}}
	lb := &profile.Location{ID: 2, Line: []profile.Line{{Function: fb}}}
	lc := &profile.Location{ID: 3, Line: []profile.Line{{Function: fc}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     1,
		TimeNanos:  at.UnixNano(),
		Function:   []*profile.Function{fa, fb, fc},
		Location:   []*profile.Location{la, lb, lc},
		Sample: []*profile.Sample{
			{Value: []int64{1, a}, Location: []*profile.Location{la, lc}},
			{Value: []int64{1, b}, Location: []*profile.Location{lb, lc}},
		},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProfileSummarize(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	synA := writeSynthetic(t, dir, "syn-a.pb.gz", t0, 3<<20, 1<<20)
	synB := writeSynthetic(t, dir, "syn-b.pb.gz", t0.Add(5*time.Minute), 7<<20, 1<<20)
	junk := filepath.Join(dir, "junk.html")
	if err := os.WriteFile(junk, []byte("<html>502 Bad Gateway</html>\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	synBBytes, err := os.ReadFile(synB)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pb.gz")
	if err := os.WriteFile(truncated, synBBytes[:len(synBBytes)/2], 0o600); err != nil {
		t.Fatal(err)
	}

	wantSynText := `heap profile: inuse_space total 8.00MiB, taken 2026-12-07T03:05:00Z
growth since base taken 2026-12-07T03:00:00Z (5m0s earlier): net +4.00MiB, grown 4.00MiB
grew:
      flat  flat%   sum%        cum   cum%
   4.00MiB 100.0% 100.0%    4.00MiB 100.0%  main.a
stacks that grew:
   4.00MiB 100.0%  main.a < main.c
top:
      flat  flat%   sum%        cum   cum%
   7.00MiB  87.5%  87.5%    7.00MiB  87.5%  main.a
heaviest stacks:
   7.00MiB  87.5%  main.a < main.c
`
	tests := []struct {
		name     string
		args     []string
		wantCode int
		stdout   string // exact, when set
		stderr   string // a substring, when set
	}{
		{name: "text with a base", args: []string{"profile", "summarize", synB, "--base", synA, "--top", "1"}, stdout: wantSynText},
		{name: "no growth", args: []string{"profile", "summarize", synA, "--base", synA, "--top", "1"}, stdout: `heap profile: inuse_space total 4.00MiB, taken 2026-12-07T03:00:00Z
growth since base taken 2026-12-07T03:00:00Z (0s earlier): net 0B, no growth
top:
      flat  flat%   sum%        cum   cum%
   3.00MiB  75.0%  75.0%    3.00MiB  75.0%  main.a
heaviest stacks:
   3.00MiB  75.0%  main.a < main.c
`},
		{name: "not a profile", args: []string{"profile", "summarize", junk}, wantCode: 1, stderr: "junk.html: not a pprof profile"},
		{name: "truncated", args: []string{"profile", "summarize", truncated}, wantCode: 1, stderr: "profile truncated"},
		{name: "too large", args: []string{"profile", "summarize", synB, "--max-bytes", "100"}, wantCode: 1, stderr: "profile too large: over the limit of 100 bytes (--max-bytes)"},
		{name: "base not a profile", args: []string{"profile", "summarize", synB, "--base", junk}, wantCode: 1, stderr: "base: not a pprof profile"},
		{name: "missing file", args: []string{"profile", "summarize", filepath.Join(dir, "absent")}, wantCode: 1, stderr: "no such file"},
		{name: "no file", args: []string{"profile", "summarize"}, wantCode: 2, stderr: "want one FILE, got 0"},
		{name: "two files", args: []string{"profile", "summarize", synA, synB}, wantCode: 2, stderr: "want one FILE, got 2"},
		{name: "bad --top", args: []string{"profile", "summarize", synA, "--top", "0"}, wantCode: 2, stderr: "--top 0: want a positive number"},
		{name: "no subcommand", args: []string{"profile"}, wantCode: 2, stderr: "want a subcommand"},
		{name: "unknown subcommand", args: []string{"profile", "diff"}, wantCode: 2, stderr: `unknown subcommand "diff"`},
		{name: "help", args: []string{"profile", "summarize", "--help"}, stderr: "--base FILE"},
		{name: "profile help", args: []string{"profile", "--help"}, stderr: "usage: leakguard profile summarize FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if tt.stdout != "" {
				if d := cmp.Diff(tt.stdout, stdout.String()); d != "" {
					t.Errorf("stdout (-want +got):\n%s", d)
				}
			}
			if tt.wantCode != 0 && stdout.Len() > 0 {
				t.Errorf("stdout on failure: %q", stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.stderr)
			}
		})
	}

	t.Run("json of a real leak names the leaking function", func(t *testing.T) {
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 1
		t.Cleanup(func() { runtime.MemProfileRate = old; profileTestRetained = nil })
		profileTestRetained = append(profileTestRetained, profileTestLeak(1<<20))
		a := writeHeapProfile(t, dir, "heap-a.pb.gz")
		for range 16 {
			profileTestRetained = append(profileTestRetained, profileTestLeak(512<<10))
		}
		b := writeHeapProfile(t, dir, "heap-b.pb.gz")

		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"profile", "summarize", b, "--base", a, "--json"}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
		var s summary.Summary
		if err := json.Unmarshal(stdout.Bytes(), &s); err != nil {
			t.Fatalf("stdout is not a summary: %v\n%s", err, stdout.String())
		}
		const want = "github.com/leakguard/leakguard/cmd/leakguard.profileTestLeak"
		if s.Kind != summary.KindHeap || s.Growth == nil || len(s.Growth.Grew) == 0 || s.Growth.Grew[0].Function != want {
			t.Fatalf("summary does not name %s first among what grew:\n%s", want, stdout.String())
		}
		if s.Growth.Grew[0].Flat < 16*512<<10 {
			t.Errorf("%s grew by %d, want at least %d", want, s.Growth.Grew[0].Flat, 16*512<<10)
		}
	})
}
