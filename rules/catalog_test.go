package rules

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
)

// contractAlert is one row of the alert table of shared/ALERTS.md.
type contractAlert struct {
	severity string
	labels   []string
}

// sharedDir is the shared/ directory beside the project, or LEAKGUARD_SHARED.
func sharedDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("LEAKGUARD_SHARED"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared")
}

var (
	alertRow  = regexp.MustCompile("^\\| `([A-Za-z]+)` \\| (critical|warning|info) \\| ([^|]+) \\|")
	backticks = regexp.MustCompile("`([a-z_, ]+)`")
)

// readContract parses the alert table of shared/ALERTS.md: name, severity and
// the labels the alert must carry.
func readContract(t *testing.T) map[string]contractAlert {
	t.Helper()
	path := filepath.Join(sharedDir(t), "ALERTS.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the alert contract is needed beside the project (set LEAKGUARD_SHARED to its directory): %v", err)
	}
	defer f.Close()
	contract := map[string]contractAlert{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := alertRow.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range backticks.FindAllStringSubmatch(m[3], -1) {
			for _, name := range strings.Split(l[1], ",") {
				labels = append(labels, strings.TrimSpace(name))
			}
		}
		contract[m[1]] = contractAlert{severity: m[2], labels: labels}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(contract) == 0 {
		t.Fatalf("no alert rows found in %s", path)
	}
	return contract
}

func TestAlertsMatchContract(t *testing.T) {
	contract := readContract(t)
	alerts := AlertsByName(DefaultParams())

	var want, got []string
	for name := range contract {
		want = append(want, name)
	}
	for name := range alerts {
		got = append(got, name)
	}
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("catalogue alert names differ from shared/ALERTS.md (-contract +catalogue):\n%s", diff)
	}
	names := append([]string(nil), AlertNames()...)
	sort.Strings(names)
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("AlertNames() differs from the contract (-contract +AlertNames):\n%s", diff)
	}
	for name, c := range contract {
		a := alerts[name]
		if string(a.Severity) != c.severity {
			t.Errorf("%s: severity = %q, want %q", name, a.Severity, c.severity)
		}
		// The contract's labels, in the order it lists them ("node (and pod
		// where ...)" lists pod as optional: only the first is required there).
		required := c.labels
		if name == AlertKubeAPIServerMemoryHigh {
			required = c.labels[:1]
		}
		if diff := cmp.Diff(required, a.Labels); diff != "" {
			t.Errorf("%s: labels differ from the contract (-contract +catalogue):\n%s", name, diff)
		}
	}
}

func TestRenderedAlertsCarryTheContractAnnotations(t *testing.T) {
	p := DefaultParams()
	p.AlertLabels = map[string]string{"team": "platform"}
	spec, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				if !strings.Contains(r.Record, ":") || strings.Count(r.Record, ":") != 2 {
					t.Errorf("recording rule %q does not follow level:metric:operations", r.Record)
				}
				if r.Labels != nil || r.Annotations != nil || r.For != nil {
					t.Errorf("recording rule %q has alert fields", r.Record)
				}
				continue
			}
			seen[r.Alert] = true
			if !regexp.MustCompile(`^[A-Z][A-Za-z]+$`).MatchString(r.Alert) {
				t.Errorf("alert %q is not CamelCase", r.Alert)
			}
			if r.Labels["severity"] == "" {
				t.Errorf("%s: no severity label", r.Alert)
			}
			if r.Labels["team"] != "platform" {
				t.Errorf("%s: alert label team = %q, want platform", r.Alert, r.Labels["team"])
			}
			for _, key := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("%s: annotation %s is empty", r.Alert, key)
				}
			}
			if strings.Contains(r.Annotations["summary"], "{{") {
				t.Errorf("%s: summary must be a static sentence, got %q", r.Alert, r.Annotations["summary"])
			}
			if !strings.Contains(r.Annotations["description"], "{{") {
				t.Errorf("%s: description is not templated with the object: %q", r.Alert, r.Annotations["description"])
			}
			if want := DefaultRunbookBaseURL + r.Alert + ".md"; r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url = %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	if len(seen) != len(AlertNames()) {
		t.Errorf("rendered %d alerts, want %d", len(seen), len(AlertNames()))
	}
}

func TestEveryAlertHasARunbookPage(t *testing.T) {
	for _, name := range AlertNames() {
		path := filepath.Join("..", "docs", "runbooks", name+".md")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("runbook for %s: %v", name, err)
			continue
		}
		page := string(data)
		if !strings.HasPrefix(page, "# "+name+"\n") {
			t.Errorf("%s: the page does not start with the heading %q", path, "# "+name)
		}
		for _, section := range []string{"## Meaning", "## Impact", "## Diagnosis", "## Mitigation"} {
			if !strings.Contains(page, "\n"+section+"\n") {
				t.Errorf("%s: no %q section", path, section)
			}
		}
	}
}

func TestRecordingRulesAreDefinedBeforeUseAndUsed(t *testing.T) {
	p := DefaultParams()
	defined := map[string]bool{}
	used := map[string]bool{}
	exported := []string{
		RecWorkingSet, RecWorkingSetFloor, RecWorkingSetFloorStep, RecWorkingSetFloorGrowth, RecWorkingSetDeriv, RecLeakRate, RecWorkingSetFloorFast, RecWorkingSetFloorFastStep, RecWorkingSetFloorFastGrowth, RecWorkingSetFloorSlowGrowth, RecRecentStart, RecLeakRateFast, RecLeakRateSteady, RecLeakRateSlow, RecMemoryLimit, RecMemoryRequest,
		RecWorkingSetFloorYoung, RecWorkingSetFloorYoungStep, RecWorkingSetFloorYoungSteps, RecLeakRateYoung,
		RecLimitRatio, RecSecondsToLimit, RecNodeOrphanCgroups, RecNodeDyingCgroups, RecNodeDyingCgroupsStep, RecNodeDyingCgroupsGrowth,
		RecNodeMemoryCgroups, RecNodeMemoryRatio, RecAPIServerMemoryRatio, RecAPIServerObjects,
		RecWorkingSetPeakStep, RecWorkingSetPeak, RecMemoryLimitRecommended,
	}
	uses := func(where, expr string) {
		for _, name := range exported {
			// A whole name: ":floor" is not ":floor_fast".
			if regexp.MustCompile(regexp.QuoteMeta(name) + `([^a-z_:]|$)`).MatchString(expr) {
				used[name] = true
				if !defined[name] {
					t.Errorf("%s uses %s before it is recorded", where, name)
				}
			}
		}
	}
	for _, g := range Groups(p) {
		for _, r := range g.Records {
			uses(r.Name, r.Expr)
			if defined[r.Name] {
				t.Errorf("%s is recorded twice", r.Name)
			}
			defined[r.Name] = true
		}
		for _, a := range g.Alerts {
			uses(a.Name, a.Expr)
		}
	}
	for _, name := range exported {
		if !defined[name] {
			t.Errorf("%s is exported but no rule records it", name)
		}
	}
	if diff := cmp.Diff(RecordNames(p), sortedKeys(defined)); diff != "" {
		t.Errorf("RecordNames() (-got +defined):\n%s", diff)
	}
}

func TestSelectorsReachEveryExpression(t *testing.T) {
	p := DefaultParams()
	p.CadvisorSelector = `job="cadv"`
	p.KubeStateMetricsSelector = `job="ksm"`
	p.APIServerSelector = `job="kas"`
	p.AgentSelector = `job="lg"`
	var all strings.Builder
	for _, g := range Groups(p) {
		for _, r := range g.Records {
			all.WriteString(r.Expr + "\n")
		}
		for _, a := range g.Alerts {
			all.WriteString(a.Expr + "\n")
		}
	}
	text := all.String()
	for _, old := range []string{`job="kubelet"`, `job="kube-state-metrics"`, `job="apiserver"`, `job="leakguard-agent"`} {
		if strings.Contains(text, old) {
			t.Errorf("a default selector %s survives a changed parameter", old)
		}
	}
	// Every raw metric is read through its source's selector.
	// (A name after a colon is the middle of a recording rule's name.)
	raw := regexp.MustCompile(`(?:^|[^:a-z_])((?:container|machine|kube|process|apiserver|leakguard_node)_[a-z_]+)(\{[^}]*\})?`)
	for _, m := range raw.FindAllStringSubmatch(text, -1) {
		if m[2] == "" || !strings.Contains(m[2], `job="`) {
			t.Errorf("raw metric read without its selector: %s%s", m[1], m[2])
		}
	}
}

// Every aggregation and join keeps the cluster label, so that on an engine
// holding many clusters no rule mixes two clusters' series; without a cluster
// label the rules group by what they did before.
func TestEveryGroupingKeepsTheClusterLabel(t *testing.T) {
	grouping := regexp.MustCompile(`\b(by|on) \(([^)]*)\)`)
	for _, label := range []string{"cluster", "k8s_cluster", ""} {
		p := DefaultParams()
		p.ClusterLabel = label
		n := 0
		for _, g := range Groups(p) {
			exprs := map[string]string{}
			for _, r := range g.Records {
				exprs[r.Name] = r.Expr
			}
			for _, a := range g.Alerts {
				exprs[a.Name] = a.Expr
			}
			for name, expr := range exprs {
				for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
					n++
					labels := strings.Split(m[2], ", ")
					has := slices.Contains(labels, label)
					if label != "" && (!has || labels[0] != label) {
						t.Errorf("cluster label %q: %s: %q does not start with it", label, name, m[0])
					}
					if label == "" && slices.Contains(labels, "cluster") {
						t.Errorf("no cluster label: %s: %q still groups by cluster", name, m[0])
					}
				}
			}
		}
		if n < 30 {
			t.Errorf("cluster label %q: only %d groupings found; the pattern no longer matches the catalogue", label, n)
		}
	}
}

// The leak trends and their alerts run on the trend interval; the alerts
// that must be quick run at the rule file's interval, and read nothing the
// trend group records (its records are up to an interval old).
func TestGroupIntervals(t *testing.T) {
	p := DefaultParams()
	p.TrendInterval = model.Duration(3 * time.Minute)
	want := map[string]model.Duration{
		AlertContainerMemoryLeak: p.TrendInterval, AlertContainerMemoryOOMPredicted: p.TrendInterval,
		AlertContainerMemoryLimitMissing: p.TrendInterval, AlertContainerMemoryNearLimit: p.Interval, AlertContainerOOMKilled: p.Interval,
		AlertNodeOrphanCgroups: p.Interval, AlertKubeAPIServerMemoryHigh: p.Interval,
	}
	trendRecords := map[string]bool{}
	for _, g := range Groups(p) {
		for _, r := range g.Records {
			if g.Interval == p.TrendInterval {
				trendRecords[r.Name] = true
			}
		}
	}
	for _, g := range Groups(p) {
		for _, a := range g.Alerts {
			if w, ok := want[a.Name]; ok && g.Interval != w {
				t.Errorf("%s is in group %s with interval %s, want %s", a.Name, g.Name, g.Interval, w)
			}
			if g.Interval != p.TrendInterval {
				for rec := range trendRecords {
					if regexp.MustCompile(regexp.QuoteMeta(rec) + `([^a-z_:]|$)`).MatchString(a.Expr) {
						t.Errorf("%s runs at the rule file's interval but reads %s, recorded every %s", a.Name, rec, p.TrendInterval)
					}
				}
			}
		}
	}
	spec, err := Spec(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range spec.Groups {
		if g.Name == "leakguard.container-memory-trend" && (g.Interval == nil || *g.Interval != "3m") {
			t.Errorf("group %s renders interval %v, want 3m", g.Name, g.Interval)
		}
	}
}
