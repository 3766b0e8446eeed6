package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// TestFiringMinutesVMAlertVsPromtool is a measurement, not a check, and
// runs only with LEAKGUARD_FLEET_SPANS=1 (it needs promtool, and about half
// a minute): for every case of the shared trace suite, the minutes at which
// each alert fires under promtool (the rule file the fleet tests load,
// asked at every minute up to the case's last check) and under vmalert's
// replay over VictoriaMetrics, logged side by side wherever they differ.
// docs/fleets.md quotes its output; run it again after a
// change to the rules:
//
//	LEAKGUARD_FLEET_SPANS=1 go test -run FiringMinutes -v ./test/fleet/
func TestFiringMinutesVMAlertVsPromtool(t *testing.T) {
	if os.Getenv("LEAKGUARD_FLEET_SPANS") != "1" {
		t.Skip("a measurement: LEAKGUARD_FLEET_SPANS=1 runs it")
	}
	promtool := binary(t, "promtool", "Debian: apt-get install prometheus")
	base := startVictoriaMetrics(t)
	binary(t, "vmalert", vmInstall)
	start := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
	dir := t.TempDir()

	prom := map[string]map[int]bool{} // alert key -> firing minutes
	lastOf := map[string]int{}        // case -> its last check minute
	var all []series
	last := 0
	for _, id := range traceCaseIDs(t) {
		file, ss, at := longestCheckFile(t, id)
		lastOf[id] = at
		if at > last {
			last = at
		}
		all = append(all, withLabels(ss, map[string]string{"cluster": id})...)
		for k, ms := range promtoolFiring(t, promtool, dir, id, file, at) {
			prom[k] = ms
		}
	}
	importSeries(t, base, all, start)
	replay(t, base, start, start.Add(time.Duration(last)*time.Minute))

	vm := map[string]map[int]bool{}
	for _, e := range export(t, base, `ALERTS{alertstate="firing"}`, start, start.Add(time.Duration(last+60)*time.Minute)) {
		k := firingKey(e.Metric)
		for _, ts := range e.Timestamps {
			m := int((ts - start.UnixMilli()) / 60000)
			if m >= 0 && m <= lastOf[e.Metric["cluster"]] {
				if vm[k] == nil {
					vm[k] = map[int]bool{}
				}
				vm[k][m] = true
			}
		}
	}
	keys := map[string]bool{}
	for k := range prom {
		keys[k] = true
	}
	for k := range vm {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	same := 0
	for _, k := range sorted {
		p, v := minuteSpans(prom[k]), minuteSpans(vm[k])
		if p == v {
			same++
			continue
		}
		t.Logf("%s\n    promtool: %s\n    vmalert:  %s", k, p, v)
	}
	t.Logf("%d of %d alerts fire over the same minutes under promtool and vmalert", same, len(sorted))
}

// longestCheckFile is the check file of a case with the latest check (it
// holds the trace up to there), its series and that check's minute.
func longestCheckFile(t *testing.T, id string) (string, []series, int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(tracesDir, id, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("case %s: no check files in %s", id, tracesDir)
	}
	best, bestAt := "", time.Duration(-1)
	var bestSeries []series
	for _, f := range files {
		if strings.HasSuffix(f, ".probe.yaml") {
			continue
		}
		ss, cs := loadCase(t, f)
		for _, c := range cs {
			if c.at > bestAt {
				best, bestAt, bestSeries = f, c.at, ss
			}
		}
	}
	return best, bestSeries, int(bestAt / time.Minute)
}

var (
	promtoolBlockRE = regexp.MustCompile(`expr: "[^\n]*", time: (\S+),`)
	promtoolGotRE   = regexp.MustCompile(`\{(__name__="ALERTS"[^\n]*?)\} 1E\+00`)
	promtoolLabelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
)

// promtoolFiring asks promtool, at every minute from 0 to last, which
// alerts fire on the case file's series, and returns their minutes by
// firingKey. Each question expects nothing, so promtool prints what it got.
func promtoolFiring(t *testing.T, promtool, dir, id, file string, last int) map[string]map[int]bool {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	f["rule_files"] = []any{ruleFile}
	f["group_eval_order"] = ruleGroupNames(t)
	var exprs []any
	for m := 0; m <= last; m++ {
		exprs = append(exprs, map[string]any{"expr": `ALERTS{alertstate="firing"}`, "eval_time": fmt.Sprintf("%dm", m), "exp_samples": []any{}})
	}
	tests, _ := f["tests"].([]any)
	for _, tc := range tests {
		if m, ok := tc.(map[string]any); ok {
			m["promql_expr_test"] = exprs
			delete(m, "alert_rule_test")
		}
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, id+".test.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, _ := exec.CommandContext(ctx, promtool, "test", "rules", path).CombinedOutput() // fails by design
	if ctx.Err() != nil {
		t.Fatalf("promtool test rules %s: %v", path, ctx.Err())
	}
	got := map[string]map[int]bool{}
	text := string(res)
	locs := promtoolBlockRE.FindAllStringSubmatchIndex(text, -1)
	for i, loc := range locs {
		end := len(text)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		at, err := model.ParseDuration(text[loc[2]:loc[3]])
		if err != nil {
			t.Fatalf("promtool output: time %q: %v", text[loc[2]:loc[3]], err)
		}
		for _, g := range promtoolGotRE.FindAllStringSubmatch(text[loc[1]:end], -1) {
			ls := map[string]string{"cluster": id}
			for _, l := range promtoolLabelRE.FindAllStringSubmatch(g[1], -1) {
				ls[l[1]] = l[2]
			}
			k := firingKey(ls)
			if got[k] == nil {
				got[k] = map[int]bool{}
			}
			got[k][int(time.Duration(at)/time.Minute)] = true
		}
	}
	return got
}

// firingKey names an alert by its case and the contract's labels.
func firingKey(ls map[string]string) string {
	k := map[string]string{}
	for _, l := range []string{"alertname", "cluster", "namespace", "pod", "container", "node", "resource"} {
		if v, ok := ls[l]; ok {
			k[l] = v
		}
	}
	return labelString(k)
}

// minuteSpans renders a set of minutes as runs, 1h29m-9h19m.
func minuteSpans(ms map[int]bool) string {
	var xs []int
	for m := range ms {
		xs = append(xs, m)
	}
	sort.Ints(xs)
	var out []string
	for i := 0; i < len(xs); {
		j := i
		for j+1 < len(xs) && xs[j+1] == xs[j]+1 {
			j++
		}
		out = append(out, fmt.Sprintf("%v-%v", time.Duration(xs[i])*time.Minute, time.Duration(xs[j])*time.Minute))
		i = j + 1
	}
	if len(out) == 0 {
		return "never"
	}
	return strings.Join(out, ", ")
}

// ruleGroupNames is ruleFile's groups' names, in its order: promtool
// evaluates one instant's groups in map order unless told, which would move
// a span by a minute between runs.
func ruleGroupNames(t *testing.T) []any {
	t.Helper()
	var names []any
	for _, g := range ruleFileGroups(t) {
		names = append(names, g.Name)
	}
	return names
}
