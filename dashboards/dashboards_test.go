package dashboards

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/rules"
)

// requireTool returns the path of a tool, or skips the test when it is
// absent outside CI (CI set: absent is a failure).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found on PATH (CI is set, so this test may not skip)", name)
		}
		t.Skipf("%s not found on PATH; install it (Debian: apt-get install prometheus) to run this test", name)
	}
	return path
}

func allQueries(t *testing.T, p rules.Params) []Query {
	t.Helper()
	var qs []Query
	for _, d := range All(p) {
		q, err := Queries(d)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q...)
	}
	return qs
}

func TestUIDsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range All(rules.DefaultParams()) {
		if d.UID == "" || len(d.UID) > 40 {
			t.Errorf("dashboard %q: uid %q must be 1 to 40 characters", d.Title, d.UID)
		}
		if seen[d.UID] {
			t.Errorf("uid %q used by two dashboards", d.UID)
		}
		seen[d.UID] = true
	}
	if len(seen) < 4 {
		t.Errorf("All() has %d dashboards, want at least 4", len(seen))
	}
}

// TestConventions checks what every dashboard and panel must have: the
// datasource and cluster variables, the current schemaVersion, a unit,
// a description and the datasource variable on every panel and query.
func TestConventions(t *testing.T) {
	for _, d := range All(rules.DefaultParams()) {
		t.Run(d.UID, func(t *testing.T) {
			if d.SchemaVersion != SchemaVersion {
				t.Errorf("schemaVersion = %d, want %d", d.SchemaVersion, SchemaVersion)
			}
			vars := map[string]Variable{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.Query != "prometheus" {
				t.Errorf("datasource variable = %+v, want type datasource, query prometheus", v)
			}
			if v, ok := vars["cluster"]; !ok || v.Hide != varHideNone || v.AllValue != ".*" || !v.IncludeAll {
				t.Errorf("cluster variable = %+v, want shown, include All with allValue .*", v)
			}
			ids := map[int]bool{}
			for _, p := range d.Panels {
				if ids[p.ID] {
					t.Errorf("panel id %d used twice", p.ID)
				}
				ids[p.ID] = true
				if p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("panel %q has no unit", p.Title)
				}
				if len(p.Description) < 40 {
					t.Errorf("panel %q: description %q says too little", p.Title, p.Description)
				}
				if p.Datasource != promDS {
					t.Errorf("panel %q: datasource = %+v, want %+v", p.Title, p.Datasource, promDS)
				}
				if len(p.Targets) == 0 {
					t.Errorf("panel %q has no query", p.Title)
				}
				for _, tg := range p.Targets {
					if tg.Datasource == nil || *tg.Datasource != promDS {
						t.Errorf("panel %q query %s: datasource = %v, want %+v", p.Title, tg.RefID, tg.Datasource, promDS)
					}
				}
				if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
					t.Errorf("panel %q: gridPos %+v does not fit the 24-column grid", p.Title, p.GridPos)
				}
			}
			for _, q := range mustQueries(t, d) {
				if q.Where != d.UID+" / variable cluster" && !strings.Contains(q.Expr, "$cluster") {
					t.Errorf("%s: %q does not select $cluster", q.Where, q.Expr)
				}
			}
		})
	}
}

func mustQueries(t *testing.T, d Dashboard) []Query {
	t.Helper()
	qs, err := Queries(d)
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// rangeCalls finds rate, irate and increase calls and returns each one's
// range (the text in brackets), or "" when the call has none.
func rangeCalls(expr string) []string {
	var out []string
	re := regexp.MustCompile(`\b(rate|irate|increase)\(`)
	for _, loc := range re.FindAllStringIndex(expr, -1) {
		depth, end := 1, loc[1]
		for ; end < len(expr) && depth > 0; end++ {
			switch expr[end] {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
		inner := expr[loc[1] : end-1]
		rng := ""
		if i := strings.LastIndex(inner, "["); i >= 0 && strings.HasSuffix(strings.TrimSpace(inner), "]") {
			rng = strings.TrimSpace(inner)[i+1 : len(strings.TrimSpace(inner))-1]
		}
		out = append(out, rng)
	}
	return out
}

func TestRangeCalls(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"rate interval", `sum(rate(a{b="c"}[$__rate_interval]))`, []string{"$__rate_interval"}},
		{"fixed window", `increase(a[5m]) > 0`, []string{"5m"}},
		{"two calls", `rate(a[$__rate_interval]) / rate(b[1h])`, []string{"$__rate_interval", "1h"}},
		{"none", `deriv(a[1h])`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, rangeCalls(tt.expr)); diff != "" {
				t.Errorf("rangeCalls(%q) mismatch (-want +got):\n%s", tt.expr, diff)
			}
		})
	}
}

// TestRateInterval: every rate and increase over time uses $__rate_interval
// (or $__range, for a total over the dashboard's time range).
func TestRateInterval(t *testing.T) {
	for _, q := range allQueries(t, rules.DefaultParams()) {
		for _, rng := range rangeCalls(q.Expr) {
			if rng != "$__rate_interval" && rng != "$__range" {
				t.Errorf("%s: rate/increase over [%s], want [$__rate_interval]: %s", q.Where, rng, q.Expr)
			}
		}
	}
}

func TestMetricNamesTokenizer(t *testing.T) {
	tests := []struct {
		name string
		expr string
		want []string
	}{
		{"selector", `foo{job="a", x=~"b|c"}`, []string{"foo"}},
		{"aggregation and label list", `max by (namespace, pod) (rate(bar_total{a="b"}[$__rate_interval]))`, []string{"bar_total"}},
		{"recording rule and offset", `node:x:max - node:x:max offset 1h`, []string{"node:x:max"}},
		{"binary keywords", "a\nand on (node) group_left (pod)\nb unless ignoring (x) c or d", []string{"a", "b", "c", "d"}},
		{"numbers, durations and variables", `topk(10, q * 3600 > 0) + 1e3 + ${v} + $w`, []string{"q"}},
		{"strings with braces", `label_replace(m, "dst", "$1", "src", "^(x{2})$")`, []string{"m"}},
		{"histogram", `histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))`, []string{"h_bucket"}},
		{"bare metric", `ALERTS`, []string{"ALERTS"}},
		{"vector literal", `count(x) or vector(0)`, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, MetricNames(tt.expr)); diff != "" {
				t.Errorf("MetricNames(%q) mismatch (-want +got):\n%s", tt.expr, diff)
			}
		})
	}
}

// TestMetricNamesKnown: every metric a query names is a recording rule the
// rules produce, an input of shared/ALERTS.md, a metric of leakguard serve
// or the built-in ALERTS.
func TestMetricNamesKnown(t *testing.T) {
	p := rules.DefaultParams()
	known := map[string]bool{"ALERTS": true}
	for _, n := range rules.RecordNames(p) {
		known[n] = true
	}
	for _, n := range ContractMetrics {
		known[n] = true
	}
	for _, n := range ServeMetrics() {
		known[n] = true
	}
	used := map[string]bool{}
	for _, q := range allQueries(t, p) {
		names := MetricNames(q.Expr)
		if len(names) == 0 {
			t.Errorf("%s: names no metric: %s", q.Where, q.Expr)
		}
		for _, n := range names {
			used[n] = true
			if !known[n] {
				t.Errorf("%s: metric %q is neither a recording rule of rules/, an input of shared/ALERTS.md nor a leakguard serve metric", q.Where, n)
			}
		}
	}
	// The recording rules are what the dashboards are built on: each one
	// the overview and workload dashboards need must be used.
	for _, n := range []string{rules.RecWorkingSet, rules.RecWorkingSetDeriv, rules.RecSecondsToLimit, rules.RecMemoryLimit,
		rules.RecNodeOrphanCgroups, rules.RecNodeDyingCgroups, rules.RecNodeMemoryRatio, rules.RecAPIServerMemoryRatio, rules.RecAPIServerObjects} {
		if !used[n] {
			t.Errorf("recording rule %s is used by no dashboard", n)
		}
	}
}

// TestRunbookLinks: every panel link points at the runbook of an alert of
// the catalogue, under the configured base URL.
func TestRunbookLinks(t *testing.T) {
	p := rules.DefaultParams()
	p.RunbookBaseURL = "https://runbooks.example.org/leakguard/"
	alerts := map[string]bool{}
	for _, a := range rules.AlertNames() {
		alerts[a] = true
	}
	linked := map[string]bool{}
	for _, d := range All(p) {
		for _, pn := range d.Panels {
			for _, l := range pn.Links {
				name, ok := strings.CutPrefix(l.URL, p.RunbookBaseURL)
				name, md := strings.CutSuffix(name, ".md")
				if !ok || !md || !alerts[name] {
					t.Errorf("%s / %s: link %q is not the runbook of an alert under %s", d.UID, pn.Title, l.URL, p.RunbookBaseURL)
				}
				linked[name] = true
			}
		}
	}
	for a := range alerts {
		if !linked[a] {
			t.Errorf("no panel links to the runbook of %s", a)
		}
	}
}

// TestThresholdsFollowParams: a changed rule parameter moves the threshold
// drawn on the dashboards.
func TestThresholdsFollowParams(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*rules.Params)
		panel string
		want  float64
	}{
		{"orphan threshold", func(p *rules.Params) { p.OrphanCgroupsThreshold = 37 }, "Orphan cgroups per node", 37},
		{"waterline", func(p *rules.Params) { p.ControlPlaneWaterline = 0.55 }, "Control-plane node memory", 0.55},
		{"apiserver ratio", func(p *rules.Params) { p.APIServerMemoryRatio = 0.7 }, "kube-apiserver memory, share of its node", 0.7},
		{"memory cgroups", func(p *rules.Params) { p.MemoryCgroupsLimit = 40000 }, "Memory cgroups, live and dying", 40000},
		{"near limit", func(p *rules.Params) { p.NearLimitRatio = 0.8 }, "Share of limit", 0.8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := rules.DefaultParams()
			tt.set(&p)
			var found bool
			for _, d := range All(p) {
				for _, pn := range d.Panels {
					if pn.Title != tt.panel {
						continue
					}
					found = true
					th := pn.FieldConfig.Defaults.Thresholds
					if th == nil || len(th.Steps) < 2 || th.Steps[1].Value == nil || *th.Steps[1].Value != tt.want {
						t.Errorf("%s / %s: thresholds = %+v, want a step at %g", d.UID, pn.Title, th, tt.want)
					}
				}
			}
			if !found {
				t.Fatalf("no panel %q", tt.panel)
			}
		})
	}
}

func TestFilesDeterministic(t *testing.T) {
	p := rules.DefaultParams()
	first, err := Files(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, err := Files(p)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(first, again); diff != "" {
			t.Fatalf("Files differs between runs (-first +again):\n%s", diff)
		}
	}
	var want []string
	for _, d := range All(p) {
		want = append(want, JSONPath(d.UID))
	}
	want = append(want, ConfigMapsPath, GrafanaDashboardsPath)
	for _, k := range want {
		if len(first[k]) == 0 {
			t.Errorf("Files() has no %s", k)
		}
	}
	if len(first) != len(want) {
		t.Errorf("Files() has %d files, want %d", len(first), len(want))
	}
}

func TestFilesBadParams(t *testing.T) {
	p := rules.DefaultParams()
	p.CadvisorSelector = `{job="kubelet"}`
	files, err := Files(p)
	if err == nil || !strings.Contains(err.Error(), "cadvisorSelector") {
		t.Errorf("Files(bad selector) = %d files, %v; want an error naming cadvisorSelector", len(files), err)
	}
}

// TestKubernetesObjects: the ConfigMaps carry the sidecar's label and the
// dashboard JSON byte for byte; the GrafanaDashboards the same JSON.
func TestKubernetesObjects(t *testing.T) {
	p := rules.DefaultParams()
	p.Namespace = "observability"
	files, err := Files(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, kind string
		json       func(obj map[string]any) string
	}{
		{ConfigMapsPath, "ConfigMap", func(obj map[string]any) string {
			data := obj["data"].(map[string]any)
			if len(data) != 1 {
				t.Errorf("ConfigMap data has %d keys, want 1", len(data))
			}
			for _, v := range data {
				return v.(string)
			}
			return ""
		}},
		{GrafanaDashboardsPath, "GrafanaDashboard", func(obj map[string]any) string {
			return obj["spec"].(map[string]any)["json"].(string)
		}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			docs := strings.Split(string(files[tc.path]), "\n---\n")[1:]
			if len(docs) != len(All(p)) {
				t.Fatalf("%s has %d documents, want %d", tc.path, len(docs), len(All(p)))
			}
			for _, doc := range docs {
				var obj map[string]any
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					t.Fatalf("%s: %v", tc.path, err)
				}
				meta := obj["metadata"].(map[string]any)
				if obj["kind"] != tc.kind || meta["namespace"] != "observability" {
					t.Errorf("%s: kind %v namespace %v, want %s in observability", tc.path, obj["kind"], meta["namespace"], tc.kind)
				}
				if tc.kind == "ConfigMap" {
					if l := meta["labels"].(map[string]any)["grafana_dashboard"]; l != "1" {
						t.Errorf("ConfigMap %v: grafana_dashboard label = %v, want \"1\"", meta["name"], l)
					}
				}
				js := tc.json(obj)
				var uid string
				for _, d := range All(p) {
					if strings.Contains(js, `"uid": "`+d.UID+`"`) {
						uid = d.UID
					}
				}
				if uid == "" || js != string(files[JSONPath(uid)]) {
					t.Errorf("%s %v: embedded JSON is not that of %s", tc.kind, meta["name"], JSONPath(uid))
				}
			}
		})
	}
}

// TestPromQLParses loads every query, with Grafana's variables replaced by
// sample values, into a rule file that the real promtool checks.
func TestPromQLParses(t *testing.T) {
	promtool := requireTool(t, "promtool")
	qs := allQueries(t, rules.DefaultParams())
	vars := map[string]string{
		"__rate_interval": "5m", "__range": "1h", "__interval": "1m",
		"cluster": ".*", "namespace": "x", "workload": ".*", "pod": ".*", "node": ".*",
	}
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rs []rule
	for i, q := range qs {
		rs = append(rs, rule{Record: fmt.Sprintf("leakguard_dashboard_query_%d", i), Expr: Substitute(q.Expr, vars)})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboards", "rules": rs}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "queries.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput()
	if err != nil {
		var b bytes.Buffer
		for i, q := range qs {
			fmt.Fprintf(&b, "query_%d = %s\n", i, q.Where)
		}
		t.Fatalf("promtool check rules: %v\n%s\n%s", err, out, b.String())
	}
	if !strings.Contains(string(out), fmt.Sprintf("%d rules found", len(qs))) {
		t.Errorf("promtool check rules: %s, want %d rules found", out, len(qs))
	}
}

// TestPromQLCheckRejects proves the check above can fail: a query with a
// syntax error does not pass promtool.
func TestPromQLCheckRejects(t *testing.T) {
	promtool := requireTool(t, "promtool")
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "groups:\n- name: x\n  rules:\n  - record: leakguard_dashboard_query_0\n    expr: 'sum by (a (rate(x[5m]))'\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err == nil {
		t.Errorf("promtool check rules accepted a broken expression:\n%s", out)
	}
}

// Every aggregation and join of every query keeps the cluster label (so that
// under All two clusters' worker-1 stay apart), every selector matches the
// cluster variable on it, and every legend shows it; an empty clusterLabel
// drops the variable and its matchers.
func TestClusterLabel(t *testing.T) {
	for _, label := range []string{"cluster", "k8s_cluster", ""} {
		p := rules.DefaultParams()
		p.ClusterLabel = label
		for _, d := range All(p) {
			hasVar := false
			for _, v := range d.Templating.List {
				if v.Name == "cluster" {
					hasVar = true
					if want := ", " + label + ")"; !strings.HasSuffix(v.Query, want) {
						t.Errorf("label %q: %s: cluster variable query %q, want label_values(..., %s)", label, d.UID, v.Query, label)
					}
				}
			}
			if hasVar != (label != "") {
				t.Errorf("label %q: %s: cluster variable present = %v", label, d.UID, hasVar)
			}
			for _, q := range mustQueries(t, d) {
				if label == "" {
					if strings.Contains(q.Expr, "$cluster") {
						t.Errorf("%s: %q selects $cluster without a cluster label", q.Where, q.Expr)
					}
					continue
				}
				if q.Where != d.UID+" / variable cluster" && !strings.Contains(q.Expr, label+`=~"$cluster"`) {
					t.Errorf("label %q: %s: %q does not match the cluster variable on %s", label, q.Where, q.Expr, label)
				}
				for _, kw := range []string{"by (", "on ("} {
					if n, m := strings.Count(q.Expr, kw), strings.Count(q.Expr, kw+label+", "); n != m {
						t.Errorf("label %q: %s: %d of %d %q lists lack %s: %q", label, q.Where, n-m, n, kw, label, q.Expr)
					}
				}
			}
			for _, pn := range d.Panels {
				for _, tg := range pn.Targets {
					if label != "" && strings.Contains(tg.LegendFormat, "{{") && !strings.Contains(tg.LegendFormat, "{{"+label+"}}") {
						t.Errorf("label %q: %s / %s: legend %q does not show the cluster", label, d.UID, pn.Title, tg.LegendFormat)
					}
				}
			}
		}
	}
}
