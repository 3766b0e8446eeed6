package fleet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// twoClusterMinutes is how much history the two-cluster data holds: enough
// for the fast and steady leak trends (up to 2.5 h), not for the slow one.
const twoClusterMinutes = 300

// twoClusters builds the series of two clusters with the same namespaces,
// pods and nodes: both are the shared trace suite's L1 case (a leaking
// container inventory/stock-sync-…/sync on worker-2) to 5 h, but in prod-b
// the container's memory is flat at its starting value; and the node agent
// of worker-2 reports no orphan cgroups in prod-a, 80 from 20m in prod-b.
// Expected: ContainerMemoryLeak for prod-a's container alone, and
// NodeOrphanCgroups for prod-b's worker-2 alone. Extra minutes past the
// history keep the series fresh while the live engine evaluates.
func twoClusters(t *testing.T, extra int) []series {
	t.Helper()
	ss, _ := loadCase(t, filepath.Join(tracesDir, "L1", "leak_firing_7h.yaml"))
	ss = extend(truncate(ss, twoClusterMinutes), twoClusterMinutes+extra)
	a := withLabels(ss, map[string]string{"cluster": "prod-a"})
	b := withLabels(ss, map[string]string{"cluster": "prod-b"})
	for i, s := range b {
		if strings.HasPrefix(s.labels["__name__"], "container_memory_") {
			flat := make([]point, len(s.points))
			for j, p := range s.points {
				flat[j] = point{minute: p.minute, value: s.points[0].value}
			}
			b[i].points = flat
		}
	}
	agent := map[string]string{"container": "agent", "endpoint": "metrics", "instance": "10.42.59.176:9808", "job": "leakguard-agent",
		"namespace": "leakguard", "node": "worker-2", "pod": "leakguard-agent-f65ph"}
	gauge := func(name, cluster string, value func(minute int) float64) series {
		ls := map[string]string{"__name__": name, "cluster": cluster}
		for k, v := range agent {
			ls[k] = v
		}
		s := series{labels: ls}
		for m := 0; m <= twoClusterMinutes+extra; m++ {
			s.points = append(s.points, point{minute: m, value: value(m)})
		}
		return s
	}
	for _, c := range []string{"prod-a", "prod-b"} {
		orphans := func(int) float64 { return 0 }
		if c == "prod-b" {
			orphans = func(m int) float64 {
				if m >= 20 {
					return 80
				}
				return 0
			}
		}
		a = append(a,
			gauge("leakguard_node_orphan_cgroups", c, orphans),
			gauge("leakguard_node_dying_cgroups", c, func(int) float64 { return 120 }),
		)
		cg := gauge("leakguard_node_cgroups", c, func(int) float64 { return 300 })
		cg.labels["controller"] = "unified"
		a = append(a, cg)
	}
	return append(a, b...)
}

// extend repeats each series' last value (when it has one at the end) up
// to minute last, as a scrape that goes on would.
func extend(ss []series, last int) []series {
	out := make([]series, len(ss))
	for i, s := range ss {
		pts := append([]point(nil), s.points...)
		if n := len(pts); n > 0 && !pts[n-1].stale && pts[n-1].minute == twoClusterMinutes {
			for m := twoClusterMinutes + 1; m <= last; m++ {
				pts = append(pts, point{minute: m, value: pts[n-1].value})
			}
		}
		out[i] = series{labels: s.labels, points: pts}
	}
	return out
}

// wantTwoClusters are the alerts each cluster's receiver must get, exactly.
func wantTwoClusters(extra map[string]string) map[string][]string {
	leak := map[string]string{"alertname": "ContainerMemoryLeak", "cluster": "prod-a", "namespace": "inventory",
		"pod": "stock-sync-58f9c7d6b-t5h2k", "container": "sync", "node": "worker-2", "severity": "warning"}
	orphans := map[string]string{"alertname": "NodeOrphanCgroups", "cluster": "prod-b", "node": "worker-2", "severity": "warning"}
	for k, v := range extra {
		leak[k], orphans[k] = v, v
	}
	return map[string][]string{"prod-a": {labelString(leak)}, "prod-b": {labelString(orphans)}}
}

// alertKeys reduces received alerts to the labels the contract names (and
// the cluster), so that engine-specific labels (alertgroup, the ruler's
// own external label) can be compared apart.
func alertKeys(r *receiver, keep ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ls := range r.alerts {
		k := map[string]string{}
		for _, l := range append([]string{"alertname", "cluster", "namespace", "pod", "container", "node", "severity"}, keep...) {
			if v, ok := ls[l]; ok {
				k[l] = v
			}
		}
		out = append(out, labelString(k))
	}
	return sortStrings(out)
}

// TestTwoClustersOnVictoriaMetrics writes two clusters' series into one
// VictoriaMetrics, replays the rules over their history with vmalert (so
// that the recorded series and the alerts' pending time exist, as after
// hours of evaluation), then runs vmalert live, restoring its alerts' state
// from VictoriaMetrics and sending to the real Alertmanager on the shipped
// fleet routing. vmalert's own state, once every group has evaluated
// twice, must hold exactly the two expected alerts, firing, and each
// cluster's receiver must get exactly its own; prod-b's answers 503 to its
// first two requests (its cluster's outage), which must not hold up
// prod-a's.
//
// Nothing waits for a time to pass: each step waits, bounded, for a state
// (samples searchable, groups evaluated, alerts received). The live
// evaluations must find the replay's records: at its first evaluation a
// rule reads what the rule before it recorded in the replay (the live
// records of the same evaluation are still on their way), and a query
// looks back only -datasource.queryStep (5m) for a sample. How long the
// import, the replay, Alertmanager's start and vmalert's first evaluations
// take must not matter, so the data goes on past now and the replay covers
// the next minutes too (VictoriaMetrics answers range queries over future
// samples): wherever the live run starts in them, the replay's latest
// records are at most a minute old. The live groups run every 5s
// (vmalert starts each group after a pause of up to one interval).
func TestTwoClustersOnVictoriaMetrics(t *testing.T) {
	vmalert := binary(t, "vmalert", vmInstall)
	base := startVictoriaMetrics(t)
	// Minutes of data past now, and of them replayed: more than the
	// bounded waits from here to vmalert's first evaluations add up to.
	const extra, ahead = 20, 15
	now := time.Now().UTC().Truncate(time.Minute)
	from := now.Add(-twoClusterMinutes * time.Minute)
	importSeries(t, base, twoClusters(t, extra), from)
	replay(t, base, from, now.Add(ahead*time.Minute))

	ra, urlA := newReceiver(t, "prod-a", 0)
	rb, urlB := newReceiver(t, "prod-b", 2)
	am := fleetAlertmanager(t, map[string]string{"prod-a": urlA, "prod-b": urlB})
	liveAddr := loopback(t)
	liveStart := time.Now()
	live := start(t, "vmalert", vmalert,
		"-rule="+liveRules(t),
		"-datasource.url="+base,
		"-remoteWrite.url="+base,
		"-remoteRead.url="+base,
		"-notifier.url="+am,
		"-evaluationInterval=5s",
		"-httpListenAddr="+liveAddr,
		"-loggerLevel=INFO")
	t.Cleanup(func() {
		if t.Failed() {
			for _, path := range []string{"/api/v1/alerts", "/metrics"} {
				if resp, err := http.Get("http://" + liveAddr + path); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("vmalert %s:\n%s", path, tail(string(body), 4000))
				}
			}
		}
	})
	waitEvaluated(t, 3*time.Minute, liveAddr, 3, live)
	t.Logf("every live group evaluated 3 times, %v after vmalert started and %v after the history's end",
		time.Since(liveStart).Round(time.Second), time.Since(now).Round(time.Second))
	want := wantTwoClusters(nil)
	var wantAll []string
	for _, c := range []string{"prod-a", "prod-b"} {
		wantAll = append(wantAll, want[c]...)
	}
	if got := vmalertActive(t, liveAddr); strings.Join(got, "\n") != strings.Join(sortStrings(wantAll), "\n") {
		t.Fatalf("vmalert's active alerts (pending or firing) are\n  %s\nwant, firing,\n  %s", strings.Join(got, "\n  "), strings.Join(wantAll, "\n  "))
	}

	rs := map[string]*receiver{"prod-a": ra, "prod-b": rb}
	waitFor(t, time.Minute, "the expected alerts at each cluster's receiver", func() (bool, error) {
		for c, r := range rs {
			if strings.Join(alertKeys(r), "\n") != strings.Join(want[c], "\n") {
				return false, nil
			}
		}
		return true, nil
	}, live)
	// Only what vmalert holds firing can arrive, and that is exactly the
	// expected alerts (above): this is the final answer.
	checkTwoClusters(t, rs, want)
}

// checkTwoClusters asserts what each cluster's receiver got, reduced by
// alertKeys (with keep): exactly want's alerts; and that prod-b's receiver
// refused its two requests (its outage, which held up no other cluster).
func checkTwoClusters(t *testing.T, rs map[string]*receiver, want map[string][]string, keep ...string) {
	t.Helper()
	for _, c := range []string{"prod-a", "prod-b"} {
		r := rs[c]
		got := alertKeys(r, keep...)
		if strings.Join(got, "\n") != strings.Join(want[c], "\n") {
			t.Errorf("%s's receiver got the firing alerts\n  %s\nwant\n  %s", c, strings.Join(got, "\n  "), strings.Join(want[c], "\n  "))
		} else {
			t.Logf("%s's receiver got %s", c, strings.Join(got, ", "))
		}
	}
	rb := rs["prod-b"]
	rb.mu.Lock()
	refused := rb.refused
	rb.mu.Unlock()
	if refused != 2 {
		t.Errorf("prod-b's receiver refused %d requests, want 2 (its outage)", refused)
	}
}

// liveRules is the rule file with every group at vmalert's
// -evaluationInterval (each group's own interval dropped): the replay
// evaluates every minute, as the traces do, and the live run every 5s, so
// that it needs seconds, not minutes, to evaluate every group twice.
func liveRules(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []map[string]any `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", ruleFile, err)
	}
	for _, g := range f.Groups {
		delete(g, "interval")
	}
	out, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "live-rules.yaml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitEvaluated waits until vmalert has started n evaluations of every
// group it loaded (vmalert_iteration_total, counted as an evaluation
// starts), so that n-1 of them are complete.
func waitEvaluated(t *testing.T, timeout time.Duration, addr string, n int, p *process) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d evaluations of every vmalert group", n), func() (bool, error) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, nil // not listening yet
		}
		defer resp.Body.Close()
		groups := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "vmalert_iteration_total{") {
				continue
			}
			groups++
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				return false, fmt.Errorf("vmalert metrics: %q: %v", line, err)
			}
			if v < float64(n) {
				return false, nil
			}
		}
		return groups > 0, sc.Err()
	}, p)
}

// vmalertActive lists vmalert's active alerts, pending or firing, reduced
// as alertKeys does, each with its state when it is not firing.
func vmalertActive(t *testing.T, addr string) []string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("vmalert /api/v1/alerts: %v", err)
	}
	var out []string
	for _, a := range r.Data.Alerts {
		k := map[string]string{}
		for _, l := range []string{"alertname", "cluster", "namespace", "pod", "container", "node", "severity"} {
			if v, ok := a.Labels[l]; ok {
				k[l] = v
			}
		}
		s := labelString(k)
		if a.State != "firing" {
			s += " (" + a.State + ")"
		}
		out = append(out, s)
	}
	return sortStrings(out)
}

func sortStrings(xs []string) []string { sort.Strings(xs); return xs }
