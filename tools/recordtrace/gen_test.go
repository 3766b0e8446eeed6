package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The committed unit test is what write makes of the committed recording
// and expectations: edit those and run write, never the test by hand.
func TestGeneratedFileIsCurrent(t *testing.T) {
	got, err := generate("testdata/recording.json", "testdata/expect.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../rules/testdata/real-trace.test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("rules/testdata/real-trace.test.yaml is not what tools/recordtrace write makes (run it; -file +generated):\n%s", diff)
	}
}

func TestEncodeValues(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name   string
		values []*float64
		shift  float64
		want   string
	}{
		{"distinct values", []*float64{f(1), f(2), f(3)}, 0, "1 2 3"},
		{"a run of equal values", []*float64{f(5), f(5), f(5), f(7)}, 0, "5+0x2 7"},
		{"missing before the series starts", []*float64{nil, nil, f(1), f(1)}, 0, "_x2 1+0x1"},
		{"one missing before", []*float64{nil, f(1)}, 0, "_ 1"},
		{"stale after the series ends, the rest left out", []*float64{f(1), f(2), nil, nil, nil}, 0, "1 2 stale"},
		{"a gap: stale, then missing, then back", []*float64{f(1), nil, nil, nil, f(4)}, 0, "1 stale _x2 4"},
		{"timestamps made relative", []*float64{f(1000), f(1000), f(1090)}, 1000, "0+0x1 90"},
		{"large byte counts in full", []*float64{f(268435456), f(268533760)}, 0, "268435456 268533760"},
		{"nothing at all", []*float64{nil, nil}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, encodeValues(tc.values, tc.shift)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestSeriesString(t *testing.T) {
	got := seriesString(map[string]string{"__name__": "m", "b": `say "hi"`, "a": "1"})
	if want := `m{a="1",b="say \"hi\""}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// A recording that does not hold together is refused, naming the file,
// and nothing is made of it.
func TestGenerateRefusesBadRecordings(t *testing.T) {
	dir := t.TempDir()
	expect := filepath.Join(dir, "expect.yaml")
	if err := os.WriteFile(expect, []byte("alert_rule_test: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, json, want string }{
		{"not JSON", `{`, "bad.json"},
		{"no points", `{"step":"30s","points":0}`, "no points"},
		{"a series of the wrong length", `{"step":"30s","points":3,"series":[{"labels":{"__name__":"m"},"values":[1,2]}]}`, "has 2 values, want 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, "bad.json")
			if err := os.WriteFile(in, []byte(tc.json), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := generate(in, expect)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
			if out != nil {
				t.Errorf("made %d bytes of a bad recording", len(out))
			}
		})
	}
}
