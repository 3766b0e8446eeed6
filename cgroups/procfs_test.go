package cgroups

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseProcCgroups(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]int
		wantErr string
	}{
		{name: "v1 node", in: procCgroupsV1, want: map[string]int{"cpuset": 31, "cpu": 212, "cpuacct": 212, "memory": 1480, "pids": 219}},
		{name: "spaces and blank lines", in: "#subsys_name hierarchy num_cgroups enabled\n\nmemory 4 7 1\n", want: map[string]int{"memory": 7}},
		{name: "too few fields", in: "memory 4 7\n", wantErr: `line 1 "memory 4 7": want 4 fields`},
		{name: "negative count", in: "memory 4 -1 1\n", wantErr: `num_cgroups "-1" is not a count`},
		{name: "enabled not a number", in: "memory 4 1 yes\n", wantErr: `enabled "yes" is not a number`},
		{name: "all disabled", in: "memory 4 1 0\n", wantErr: "no enabled controller"},
		{name: "empty", in: "", wantErr: "no enabled controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcCgroups([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || got != nil {
					t.Fatalf("parseProcCgroups(%q) = %v, %v; want nil and an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseProcCgroups(%q) error: %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseProcCgroups(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseStatField(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{name: "kernel format", in: "nr_descendants 12\nnr_dying_descendants 3\n", want: 3},
		{name: "no trailing newline", in: "nr_dying_descendants 40000", want: 40000},
		{name: "prefix of another key", in: "nr_dying_descendants_x 1\nnr_dying_descendants 2\n", want: 2},
		{name: "missing", in: "nr_descendants 12\n", wantErr: "no nr_dying_descendants line"},
		{name: "not a number", in: "nr_dying_descendants many\n", wantErr: "is not a count"},
		{name: "negative", in: "nr_dying_descendants -3\n", wantErr: "is not a count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatField([]byte(tc.in), "nr_dying_descendants")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseStatField(%q) = %d, %v; want error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("parseStatField(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzParseProcCgroups checks that no input panics and that every accepted
// input yields counts that are not negative.
func FuzzParseProcCgroups(f *testing.F) {
	f.Add([]byte(procCgroupsV1))
	f.Add([]byte("memory 4 1 1\n"))
	f.Add([]byte("#x\n\n a b c d e\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseProcCgroups(data)
		if err != nil {
			return
		}
		for k, v := range got {
			if v < 0 {
				t.Errorf("parseProcCgroups(%q)[%q] = %d, want >= 0", data, k, v)
			}
		}
	})
}
