package rules

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

// promtool evaluates the groups of one instant in Go map order unless a test
// file gives group_eval_order, so a test that reads a record of another
// group passes or fails by chance (CI saw seconds_to_limit a minute stale one
// run in a dozen). Every unit test file names every group, in the rule file's
// order.
func TestUnitTestsFixTheGroupOrder(t *testing.T) {
	var want []string
	for _, g := range Groups(DefaultParams()) {
		want = append(want, g.Name)
	}
	paths, err := filepath.Glob("testdata/*.test.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no unit test files (%v)", err)
	}
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			GroupEvalOrder []string `json:"group_eval_order"`
		}
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if diff := cmp.Diff(want, f.GroupEvalOrder); diff != "" {
			t.Errorf("%s: group_eval_order is not the rule file's groups (-want +got):\n%s", path, diff)
		}
	}
}

// The rule file's order is the order of dependence: a group reads only
// records of its own or of an earlier group, so the order the unit tests fix
// is the one in which every record is fresh when it is read.
func TestGroupsReadOnlyEarlierRecords(t *testing.T) {
	groups := Groups(DefaultParams())
	for i, g := range groups {
		var exprs []string
		for _, r := range g.Records {
			exprs = append(exprs, r.Expr)
		}
		for _, a := range g.Alerts {
			exprs = append(exprs, a.Expr)
		}
		for _, later := range groups[i+1:] {
			for _, r := range later.Records {
				name := regexp.MustCompile(`(^|[^a-zA-Z0-9_:])` + regexp.QuoteMeta(r.Name) + `($|[^a-zA-Z0-9_:])`)
				for _, e := range exprs {
					if name.MatchString(e) {
						t.Errorf("group %s reads %s, recorded by the later group %s", g.Name, r.Name, later.Name)
						break
					}
				}
			}
		}
	}
}
