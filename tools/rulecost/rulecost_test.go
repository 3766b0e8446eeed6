package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// maxRatio is the most the rule file may cost, amortized, against
// kube-prometheus's working-set rule. The aim is 3 times (issue 13), which
// the file meets from 1,000 containers on (1.7 to 2); at this test's 300
// it measures 2.7 on an idle 2-core machine and up to 3.6 on a loaded one
// (docs/performance.md), where the fixed cost of each of its rules weighs
// most. The guard sits a quarter above the loaded figure, where noise does
// not reach it, and a change that makes the rules expensive (the trends at
// every evaluation measured 24 times) fails.
const maxRatio = 4.5

// TestRuleCost runs the whole harness at a small size in the real
// Prometheus and fails when the rule file's amortized cost is more than
// maxRatio times the reference rule's. It checks the ratio of two costs
// measured in the same run, never a time. make rules-cost runs it.
func TestRuleCost(t *testing.T) {
	if os.Getenv("LEAKGUARD_RULECOST") == "" {
		t.Skip("set LEAKGUARD_RULECOST=1 (make rules-cost) to measure the rule file in Prometheus")
	}
	rules := os.Getenv("LEAKGUARD_RULECOST_RULES")
	if rules == "" {
		rules = "../../deploy/prometheus/rules.yaml"
	}
	// The backfill of 300 containers takes under a minute on 2 idle
	// cores; a loaded machine needs more lead (LEAKGUARD_RULECOST_LEAD=5m).
	lead := 2 * time.Minute
	if v := os.Getenv("LEAKGUARD_RULECOST_LEAD"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("LEAKGUARD_RULECOST_LEAD: %v", err)
		}
		lead = d
	}
	var log bytes.Buffer
	c := config{
		containers: 300, podsPerNode: 40,
		history: 3 * time.Hour, scrape: 30 * time.Second, defInterval: 30 * time.Second,
		rules: rules, prometheus: envOr("PROMETHEUS", "prometheus"), promtool: envOr("PROMTOOL", "promtool"),
		lead:   lead,
		rounds: 3, evals: 3, evalEvery: 2 * time.Second,
		log: &log,
	}
	ctx, cancel := context.WithTimeout(context.Background(), lead+5*time.Minute)
	defer cancel()
	t0 := time.Now()
	rep, err := measure(ctx, c)
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printReport(&out, c, rep, time.Since(t0))
	t.Log(out.String())
	if rep.Ratio() > maxRatio {
		t.Errorf("%s costs %.2f times kube-prometheus's working-set rule (amortized, %d containers), want at most %.1f", rules, rep.Ratio(), c.containers, maxRatio)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestRecordBatches(t *testing.T) {
	rf := ruleFile{Groups: []ruleGroup{
		{Name: "fast", Rules: []map[string]any{
			{"record": "a", "expr": "max(x)"},
			{"record": "b", "expr": "max(y)"},
			{"record": "c", "expr": "min_over_time(a[15m])"},
			{"alert": "A", "expr": "c > 1"},
			{"record": "d", "expr": "b - c"},
		}},
		{Name: "trend", Interval: "5m", Rules: []map[string]any{
			{"record": "e", "expr": "deriv(a[2h])"},
			{"record": "f", "expr": "e * 2"},
		}},
	}}
	var got [][]string
	for _, batch := range recordBatches(rf, 30*time.Second) {
		var names []string
		for _, g := range batch {
			for _, r := range g.Rules {
				names = append(names, g.Name+"@"+g.Interval+":"+r["record"].(string))
			}
		}
		got = append(got, names)
	}
	want := [][]string{
		{"fast@30s:a", "fast@30s:b"},
		{"fast@30s:c"},
		{"fast@30s:d", "trend@5m:e"},
		{"trend@5m:f"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recordBatches() mismatch (-want +got):\n%s", diff)
	}
}

// TestPopulation checks the synthetic cluster's series: no label twice in
// a series, no series twice, and the counts per container the harness
// reports.
func TestPopulation(t *testing.T) {
	end := time.Unix(1_800_000_000, 0)
	p := population{containers: 100, podsPerNode: 40, start: end.Add(-time.Hour), end: end, scrape: 30 * time.Second}
	series := p.build()
	seen := map[string]bool{}
	name := regexp.MustCompile(`(?:^|,)([a-z_]+)="`)
	count := map[string]int{}
	for _, s := range series {
		key := s.name + "{" + s.labels + "}"
		if seen[key] {
			t.Errorf("series %s twice", key)
		}
		seen[key] = true
		labels := map[string]bool{}
		for _, m := range name.FindAllStringSubmatch(s.labels, -1) {
			if labels[m[1]] {
				t.Errorf("series %s: label %s twice", key, m[1])
			}
			labels[m[1]] = true
		}
		count[s.name]++
	}
	// three cgroups per pod (the app container, the pause container, the
	// pod) and each node's root cgroup.
	if got, want := count["container_memory_working_set_bytes"], 3*100+3; got != want {
		t.Errorf("container_memory_working_set_bytes series = %d, want %d", got, want)
	}
	// The pause containers in both runtimes' forms: containerd's without a
	// container label and with the pause image, dockershim's "POD".
	pauses := map[string]int{}
	for _, s := range series {
		if s.name == "container_memory_working_set_bytes" && strings.Contains(s.labels, `image="registry.k8s.io/pause:3.9"`) {
			if strings.Contains(s.labels, `container="POD"`) {
				pauses["POD"]++
			} else if !strings.Contains(s.labels, `container=`) {
				pauses[""]++
			}
		}
	}
	if diff := cmp.Diff(map[string]int{"": 50, "POD": 50}, pauses); diff != "" {
		t.Errorf("pause containers by container label (-want +got):\n%s", diff)
	}
	if got, want := count["kube_pod_container_resource_limits"], 2*90; got != want {
		t.Errorf("kube_pod_container_resource_limits series = %d, want %d (one container in 10 without)", got, want)
	}
	if got, want := count["kube_pod_info"], 100+3; got != want {
		t.Errorf("kube_pod_info series = %d, want %d (the pods and 3 kube-apiservers)", got, want)
	}
	var om bytes.Buffer
	if err := p.writeOpenMetrics(&om, series[:2]); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(om.String()), "\n")
	if got, want := len(lines), 2*p.steps()+1; got != want || lines[len(lines)-1] != "# EOF" {
		t.Errorf("OpenMetrics: %d lines ending %q, want %d ending # EOF", got, lines[len(lines)-1], want)
	}
	if want := `machine_memory_bytes{endpoint="https-metrics",job="kubelet",metrics_path="/metrics/cadvisor",service="kube-prometheus-stack-kubelet",instance="10.1.0.0:10250",node="node-0"} 6.8719476736e+10 1799996400`; lines[0] != want {
		t.Errorf("first line %s, want %s", lines[0], want)
	}
}

func TestHistoryStart(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(hms string) time.Time {
		c, err := time.Parse("15:04:05", hms)
		if err != nil {
			t.Fatal(err)
		}
		return day.Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute + time.Duration(c.Second())*time.Second)
	}
	for _, tc := range []struct{ end, want string }{
		{"12:29:00", "09:29:00"}, // 31m in the first window: kept
		{"12:40:30", "08:00:00"}, // 19m30s: from the window's beginning
		{"12:57:00", "08:00:00"}, // 3m
		{"13:01:00", "10:01:00"},
	} {
		if got := historyStart(at(tc.end), 3*time.Hour); !got.Equal(at(tc.want)) {
			t.Errorf("historyStart(%s, 3h) = %s, want %s", tc.end, got.Format("15:04:05"), tc.want)
		}
	}
}
