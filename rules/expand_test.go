package rules

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		v    vars
		want string
	}{
		{"no placeholder", "up == 1", nil, "up == 1"},
		{"by name, repeated", "${a} > ${b} * ${a}", vars{"a": "x", "b": "0.5"}, "x > 0.5 * x"},
		{"adjacent", "${metric}${sel}", vars{"metric": "up", "sel": `{job="a"}`}, `up{job="a"}`},
		{"unused names are left out", "${a}", vars{"a": "x", "b": "y"}, "x"},
		{"empty value", "up${chain}", vars{"chain": ""}, "up"},
		// label_replace's $1, and the alert templates' $labels and $value,
		// are PromQL's and Go template's, not placeholders.
		{"PromQL and alert templates untouched", `label_replace(${m}, "ip", "$1", "instance", "(.*)") {{ $labels.node }} {{ $value }}`,
			vars{"m": "up"}, `label_replace(up, "ip", "$1", "instance", "(.*)") {{ $labels.node }} {{ $value }}`},
		// A value (a selector from the flags, say) is written as it is,
		// never expanded again.
		{"values are not expanded", "${sel}", vars{"sel": `{job="${x}"}`}, `{job="${x}"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := expand(tt.tmpl, tt.v); got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.tmpl, got, tt.want)
			}
		})
	}
}

// A template that reads a name it was not given, or leaves a placeholder
// open, is a mistake in the catalogue: expand panics rather than write a
// rule with a hole in it.
func TestExpandPanicsOnAMistake(t *testing.T) {
	tests := []struct {
		name, tmpl, want string
	}{
		{"unknown name", "${a} > ${threshold}", "${threshold}"},
		{"unterminated", "${a} > ${threshold", "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.Contains(msg, tt.want) {
					t.Errorf("expand(%q) panicked with %v, want a panic naming %q", tt.tmpl, r, tt.want)
				}
			}()
			got := expand(tt.tmpl, vars{"a": "x"})
			t.Errorf("expand(%q) = %q, want a panic", tt.tmpl, got)
		})
	}
}

// Groups assembles one group per family, under its name, in the rule file's
// order: the order of dependence that the unit tests' group_eval_order and
// hack/'s generators (which read it from the rule file) follow.
func TestGroupsAssembleTheFamiliesInOrder(t *testing.T) {
	for _, cluster := range []string{"", "cluster"} {
		p := DefaultParams()
		p.ClusterLabel = cluster
		var got []string
		for _, g := range Groups(p) {
			got = append(got, g.Name)
		}
		want := []string{GroupContainer, GroupContainerTrend, GroupRecommendation, GroupLimits, GroupNodeCgroups, GroupControlPlane}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Groups() with cluster label %q (-want +got):\n%s", cluster, diff)
		}
	}
}
