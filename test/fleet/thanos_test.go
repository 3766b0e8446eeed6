package fleet

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
)

const (
	thanosInstall = "make fleet-thanos builds it: BUILD_THANOS=1 hack/fleet-binaries.sh"
	promInstall   = "Debian: apt-get install prometheus"

	// rulerLabel is the Thanos Ruler's own external label. The Ruler's
	// external labels replace a series' label of the same name in what it
	// records and sends, so it must not be the cluster label.
	rulerLabel, rulerReplica = "ruler_replica", "r0"

	// thanosEvalInterval is the Ruler's --eval-interval, and the trend
	// group's interval in the rule file it loads.
	thanosEvalInterval = 15 * time.Second
)

// thanosRules generates the rule file the Thanos test loads: every group at
// the Ruler's --eval-interval (leakguard generate --interval=0
// --trend-interval=15s), so that the live Ruler evaluates every 15 s and the
// alerts arrive within a minute of its start.
func thanosRules(t *testing.T) string {
	t.Helper()
	if f := os.Getenv("LEAKGUARD_FLEET_THANOS_RULES"); f != "" {
		return f // another rule file, to compare
	}
	p := rules.DefaultParams()
	p.Interval, p.TrendInterval = 0, model.Duration(thanosEvalInterval)
	files, err := rules.Files(p)
	if err != nil {
		t.Fatalf("generate the rules: %v", err)
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, files[rules.RuleFilePath], 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestTwoClustersOnThanos runs the two clusters of TestTwoClustersOnVictoriaMetrics
// on Thanos: each cluster's series in its own Prometheus (backfilled with
// promtool, without a cluster label: the Prometheus's external label
// cluster names it, as in a real cluster), each behind a Thanos sidecar; a
// Thanos Query over both sidecars and the store the Ruler writes into; and a
// Thanos Ruler evaluating the generated rules through that Query, sending to
// the real Alertmanager on the shipped fleet routing.
//
// Thanos has no replay mode, so the test replays the rules over the 5 h of
// history itself, through the same Query (range queries, rule by rule in the
// file's order, as vmalert -replay does), and writes the recorded series and
// the alerts' for state (ALERTS_FOR_STATE) where the Ruler keeps its own:
// the Ruler runs stateless, remote-writing into a Prometheus behind a third
// sidecar, and in that mode restores its alerts' for state through the
// Query when it starts. Each cluster's receiver must get exactly its own
// alert, with its cluster and the Ruler's ruler_replica label; prod-b's
// answers 503 to its first two requests. The receivers relay to each
// cluster's own leakguard serve --cluster (checkServes). Then prod-b's
// sidecar stops (see the end).
func TestTwoClustersOnThanos(t *testing.T) {
	thanos := binary(t, "thanos", thanosInstall)
	prometheus := binary(t, "prometheus", promInstall)
	promtool := binary(t, "promtool", promInstall)
	alertmanagerBinary(t)
	ruleFile := thanosRules(t)
	started := time.Now()

	const extra = 15
	now := time.Now().UTC().Truncate(time.Minute)
	from := now.Add(-twoClusterMinutes * time.Minute)
	all := twoClusters(t, extra)
	var endpoints []string
	sidecars := map[string]*process{}
	for _, c := range []string{"prod-a", "prod-b"} {
		var own []samples
		for _, s := range all {
			if s.labels["cluster"] == c {
				own = append(own, minuteSamples(s, from, "cluster"))
			}
		}
		dir := t.TempDir()
		file := filepath.Join(t.TempDir(), c+".om")
		if err := os.WriteFile(file, openMetrics(own), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, 2*time.Minute, "promtool tsdb create-blocks-from openmetrics", promtool,
			"tsdb", "create-blocks-from", "openmetrics", file, dir)
		prom := startPrometheus(t, prometheus, "prometheus-"+c, dir, "cluster", c, "")
		p, grpc := startSidecar(t, thanos, "sidecar-"+c, prom, dir)
		sidecars[c], endpoints = p, append(endpoints, grpc)
	}
	// Where the Ruler writes: its records, ALERTS and ALERTS_FOR_STATE,
	// the replayed history first. The out-of-order window lets the replay
	// write hours into the past.
	rulesDir := t.TempDir()
	rulesProm := startPrometheus(t, prometheus, "prometheus-rules", rulesDir, rulerLabel, rulerReplica,
		"storage:\n  tsdb:\n    out_of_order_time_window: 1d\n", "--web.enable-remote-write-receiver")
	_, grpc := startSidecar(t, thanos, "sidecar-rules", rulesProm, rulesDir)
	endpoints = append(endpoints, grpc)
	query := startQuery(t, thanos, endpoints)
	waitFor(t, time.Minute, "both clusters' series through Thanos Query", func() (bool, error) {
		rs, err := instant(query, `count by (cluster) (container_memory_working_set_bytes)`, now)
		return len(rs) == 2 && rs[0].Metric["cluster"] == "prod-a" && rs[1].Metric["cluster"] == "prod-b", err
	})
	t.Logf("Thanos up with both clusters' history after %v", time.Since(started).Round(time.Second))

	thanosReplay(t, query, rulesProm+"/api/v1/write", ruleFile, from, now)

	// Each cluster's own Kubernetes API and leakguard serve --cluster,
	// checking against the fleet's Query; the receivers relay to them.
	clusters := startClusters(t, query, "prod-a", "prod-b")
	t.Logf("both clusters' kube-apiserver and serve up after %v", time.Since(started).Round(time.Second))
	ra, urlA := newReceiver(t, "prod-a", 0)
	rb, urlB := newReceiver(t, "prod-b", 2)
	ra.relayTo(clusters["prod-a"].serve)
	rb.relayTo(clusters["prod-b"].serve)
	am := fleetAlertmanager(t, map[string]string{"prod-a": urlA, "prod-b": urlB})
	var rulerHTTP string
	ruler := startReady(t, "thanos rule", thanos, func() ([]string, string) {
		var grpc string
		rulerHTTP, grpc = loopbackPair(t)
		return []string{"rule",
			"--data-dir=" + t.TempDir(),
			"--rule-file=" + ruleFile,
			"--query=" + strings.TrimPrefix(query, "http://"),
			"--alertmanagers.url=" + am,
			"--label=" + rulerLabel + `="` + rulerReplica + `"`,
			"--eval-interval=" + model.Duration(thanosEvalInterval).String(),
			// Stateless: the Ruler writes into rulesProm, and restores its
			// alerts' for state through the Query (not from a local TSDB),
			// where the replay left it; the Query's dedup drops the Ruler's
			// label, and so does the restore here.
			"--remote-write.config=remote_write:\n- url: " + rulesProm + "/api/v1/write\n  queue_config:\n    batch_send_deadline: 1s\n",
			"--restore-ignored-label=" + rulerLabel,
			"--http-address=" + rulerHTTP,
			"--grpc-address=" + grpc,
			"--log.level=info"}, "http://" + rulerHTTP + "/-/ready"
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, path := range []string{"/api/v1/alerts", "/api/v1/rules?type=alert"} {
				if resp, err := http.Get("http://" + rulerHTTP + path); err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					t.Logf("thanos rule %s:\n%s", path, tail(string(body), 4000))
				}
			}
		}
	})
	rs := map[string]*receiver{"prod-a": ra, "prod-b": rb}
	waitDelivered(t, 2*time.Minute, rs, wantTwoClusters(nil), ruler)
	// The same alerts, each with its cluster and the Ruler's own label.
	checkTwoClusters(t, rs, wantTwoClusters(map[string]string{rulerLabel: rulerReplica}), rulerLabel)
	checkServes(t, clusters, rs)

	// Partial responses: with prod-b's sidecar gone, Thanos v0.40.1 answers
	// the Ruler's queries (partial_response=false, the abort strategy) with
	// prod-a's series and a warning, not an error: its proxy turns a store
	// that cannot be reached into a warning whatever the strategy. The Ruler
	// evaluates on (counting thanos_rule_evaluation_with_warnings_total), so
	// prod-b's alert resolves while prod-a's fires on, unchanged: the
	// outage of one cluster's store touches only that cluster's alerts, as
	// every rule keeps the cluster label (docs/fleets.md, Thanos).
	for c, r := range rs {
		r.mu.Lock()
		n := r.resolved
		r.mu.Unlock()
		if n != 0 {
			t.Fatalf("%s's receiver got %d resolved alerts before any store went down, want none", c, n)
		}
	}
	sc := sidecars["prod-b"]
	_ = sc.cmd.Process.Kill()
	err := <-sc.done
	sc.done <- err // for its cleanup
	rs0, warns, err := instantWarnings(query, `count by (cluster) (container_memory_working_set_bytes)`, time.Now())
	if err != nil || len(warns) == 0 || len(rs0) != 1 || rs0[0].Metric["cluster"] != "prod-a" {
		t.Errorf("with prod-b's sidecar down, a query refusing partial responses answered %v, warnings %v, error %v; want prod-a's series alone, with a warning (Thanos v0.40.1)", rs0, warns, err)
	}
	waitFor(t, time.Minute, "prod-b's alert resolved at its receiver", func() (bool, error) {
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return rb.resolved > 0, nil
	}, ruler)
	ra.mu.Lock()
	if ra.resolved != 0 {
		t.Errorf("prod-a's receiver got %d resolved alerts while prod-b's store was down, want none", ra.resolved)
	}
	ra.mu.Unlock()
	if n := rulerWarnings(t, rulerHTTP); n == 0 {
		t.Errorf("the Ruler counted no evaluation with warnings while prod-b's store was down")
	}
	t.Logf("the whole Thanos test took %v", time.Since(started).Round(time.Second))
}

// checkServes asserts what each cluster's serve did with what its receiver
// relayed: acted on its own alert, its check reading its own cluster's
// series through the fleet's Query, on its own cluster's object (the
// annotate remediator of the default policy: leakguard.io/finding), and on
// nothing else; that prod-b's delivery, posted to prod-a's serve, is held
// other-cluster and changes nothing there; and that a check reads only its
// own cluster's series.
func checkServes(t *testing.T, clusters map[string]*fleetCluster, rs map[string]*receiver) {
	t.Helper()
	want := map[string][3]string{ // alert, the Deployment's finding, the node's
		"prod-a": {"ContainerMemoryLeak", "ContainerMemoryLeak", ""},
		"prod-b": {"NodeOrphanCgroups", "", "NodeOrphanCgroups"},
	}
	for _, c := range []string{"prod-a", "prod-b"} {
		r := rs[c]
		r.mu.Lock()
		ds := append([]remediate.Decision(nil), r.decisions...)
		r.mu.Unlock()
		acted := 0
		for _, d := range ds {
			if d.AlertName != want[c][0] || d.Decision != remediate.DecisionActed {
				t.Errorf("%s's serve decided %s %s (%s, %s: %s), want only %s acted", c, d.AlertName, d.Decision, d.Reason, d.Check, d.CheckResult, want[c][0])
				continue
			}
			acted++
			t.Logf("%s's serve: %s acted on %s (%s: %s)", c, d.AlertName, d.Target, d.Check, d.CheckResult)
		}
		if acted == 0 {
			t.Errorf("%s's serve acted on no %s", c, want[c][0])
		}
		dep, node := findings(t, clusters[c].lab)
		if dep != want[c][1] || node != want[c][2] {
			t.Errorf("%s: finding on Deployment %s/%s %q and on node %s %q, want %q and %q", c, leakNamespace, leakDeployment, dep, leakNode, node, want[c][1], want[c][2])
		}
	}
	rs["prod-b"].mu.Lock()
	body := rs["prod-b"].lastBody
	rs["prod-b"].mu.Unlock()
	cross := &receiver{token: "token-prod-a", serve: clusters["prod-a"].serve}
	code, ds, err := cross.relay(body)
	if err != nil || code != http.StatusOK || len(ds) != 1 || ds[0].Decision != remediate.DecisionHeld || ds[0].Reason != remediate.ReasonOtherCluster {
		t.Errorf("prod-b's delivery posted to prod-a's serve: %d %+v %v, want 200, one decision held %s", code, ds, err, remediate.ReasonOtherCluster)
	}
	if dep, node := findings(t, clusters["prod-a"].lab); dep != want["prod-a"][1] || node != "" {
		t.Errorf("prod-a after prod-b's delivery: findings %q and %q, want %q and none", dep, node, want["prod-a"][1])
	}

	// Its checks read its own cluster's series, though the Query holds
	// both: prod-a's leak alert, relabelled as prod-b's, posted to prod-b's
	// serve finds prod-b's container flat instead of confirming the leak
	// with prod-a's series.
	rs["prod-a"].mu.Lock()
	body = rs["prod-a"].lastBody
	rs["prod-a"].mu.Unlock()
	relabelled := strings.ReplaceAll(string(body), `"cluster":"prod-a"`, `"cluster":"prod-b"`)
	if relabelled == string(body) {
		t.Fatalf("prod-a's delivery names no cluster:\n%s", body)
	}
	cross = &receiver{token: "token-prod-b", serve: clusters["prod-b"].serve}
	code, ds, err = cross.relay([]byte(relabelled))
	if err != nil || code != http.StatusOK || len(ds) != 1 || ds[0].Decision != remediate.DecisionHeld || ds[0].Reason != remediate.ReasonCheckNotConfirmed {
		t.Errorf("prod-a's leak as prod-b's, posted to prod-b's serve: %d %+v %v, want 200, one decision held %s", code, ds, err, remediate.ReasonCheckNotConfirmed)
	} else {
		t.Logf("prod-a's leak as prod-b's at prod-b's serve: held %s (%s: %s)", ds[0].Reason, ds[0].Check, ds[0].CheckResult)
	}
	if dep, _ := findings(t, clusters["prod-b"].lab); dep != "" {
		t.Errorf("prod-b's Deployment has the finding %q, want none", dep)
	}
}

// rulerWarnings reads the Ruler's thanos_rule_evaluation_with_warnings_total,
// summed.
func rulerWarnings(t *testing.T, rulerHTTP string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + rulerHTTP + "/metrics")
	if err != nil {
		t.Fatalf("the Ruler's metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "thanos_rule_evaluation_with_warnings_total{") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("the Ruler's metrics: %q: %v", line, err)
			}
			sum += v
		}
	}
	return sum
}

// minuteSamples turns a trace series into samples, minute m at from+m,
// without the labels drop; staleness markers are kept as markers.
func minuteSamples(s series, from time.Time, drop ...string) samples {
	ls := map[string]string{}
	for k, v := range s.labels {
		ls[k] = v
	}
	for _, k := range drop {
		delete(ls, k)
	}
	out := samples{labels: ls}
	for _, p := range s.points {
		v := p.value
		if p.stale {
			v = staleNaN
		}
		out.ts = append(out.ts, from.Add(time.Duration(p.minute)*time.Minute).UnixMilli())
		out.vs = append(out.vs, v)
	}
	return out
}

// startPrometheus runs Prometheus 2 on the TSDB in dir, scraping nothing,
// with one external label (the sidecar requires one) and more of its
// configuration file, and returns its base URL. Blocks are kept at 2 h,
// uncompacted, as a Thanos sidecar wants them.
func startPrometheus(t *testing.T, bin, name, dir, label, value, more string, args ...string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "prometheus.yml")
	body := fmt.Sprintf("global:\n  external_labels:\n    %s: %q\n%s", label, value, more)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var base string
	startReady(t, name, bin, func() ([]string, string) {
		addr := loopback(t)
		base = "http://" + addr
		return append([]string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + dir,
			"--storage.tsdb.retention.time=30d",
			"--storage.tsdb.min-block-duration=2h",
			"--storage.tsdb.max-block-duration=2h",
			"--web.listen-address=" + addr,
			"--log.level=warn",
		}, args...), base + "/-/ready"
	})
	return base
}

// startSidecar runs a Thanos sidecar in front of a Prometheus and returns
// it and its gRPC (StoreAPI) address.
func startSidecar(t *testing.T, bin, name, prom, dir string) (*process, string) {
	t.Helper()
	var grpc string
	p := startReady(t, name, bin, func() ([]string, string) {
		var httpAddr string
		grpc, httpAddr = loopbackPair(t)
		return []string{"sidecar",
			"--prometheus.url=" + prom,
			"--tsdb.path=" + dir,
			"--grpc-address=" + grpc,
			"--http-address=" + httpAddr,
			"--log.level=warn"}, "http://" + httpAddr + "/-/ready"
	})
	return p, grpc
}

// loopbackPair is two different free loopback addresses.
func loopbackPair(t *testing.T) (string, string) {
	t.Helper()
	a := loopback(t)
	for {
		if b := loopback(t); b != a {
			return a, b
		}
	}
}

// startQuery runs a Thanos Query over the StoreAPI endpoints and waits until
// it has every one of them. They are strict endpoints: one that is down
// stays in the set and makes a query partial (an error for the Ruler's
// abort strategy) rather than silently leaving its series out. Replicas of
// a series that differ only in rulerLabel are deduplicated.
func startQuery(t *testing.T, bin string, endpoints []string) string {
	t.Helper()
	var base string
	p := startReady(t, "thanos query", bin, func() ([]string, string) {
		addr, grpc := loopbackPair(t)
		base = "http://" + addr
		args := []string{"query", "--http-address=" + addr, "--grpc-address=" + grpc,
			"--query.replica-label=" + rulerLabel, "--log.level=warn"}
		for _, e := range endpoints {
			args = append(args, "--endpoint-strict="+e)
		}
		return args, base + "/-/ready"
	})
	waitFor(t, time.Minute, fmt.Sprintf("Thanos Query's %d stores healthy", len(endpoints)), func() (bool, error) {
		resp, err := http.Get(base + "/api/v1/stores")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var r struct {
			Data map[string][]struct {
				Name      string  `json:"name"`
				LastError *string `json:"lastError"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return false, err
		}
		healthy := map[string]bool{}
		for _, stores := range r.Data {
			for _, s := range stores {
				if s.LastError == nil {
					healthy[s.Name] = true
				}
			}
		}
		for _, e := range endpoints {
			if !healthy[e] {
				return false, nil
			}
		}
		return true, nil
	}, p)
	return base
}

// promSeries is one series of a query answer: instant (Value) or range
// (Values).
type promSeries struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
	Values [][2]any          `json:"values"`
}

// thanosAPI runs a query against Thanos Query's HTTP API the way the Ruler
// does: deduplicated, and refusing a partial answer; a warning is an error.
func thanosAPI(base, path string, q url.Values) ([]promSeries, error) {
	rs, warns, err := thanosAPIWarnings(base, path, q)
	if err == nil && len(warns) > 0 {
		err = fmt.Errorf("%s %s: warnings %v", path, q.Get("query"), warns)
	}
	return rs, err
}

func instantWarnings(base, query string, at time.Time) ([]promSeries, []string, error) {
	return thanosAPIWarnings(base, "/api/v1/query", url.Values{"query": {query}, "time": {unix(at)}})
}

// thanosAPIWarnings is thanosAPI, returning the warnings apart.
func thanosAPIWarnings(base, path string, q url.Values) ([]promSeries, []string, error) {
	q.Set("dedup", "true")
	q.Set("partial_response", "false")
	resp, err := http.PostForm(base+path, q)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status   string   `json:"status"`
		Error    string   `json:"error"`
		Warnings []string `json:"warnings"`
		Data     struct {
			Result []promSeries `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %s: %w", path, q.Get("query"), resp.Status, err)
	}
	if r.Status != "success" {
		return nil, nil, fmt.Errorf("%s %s: %s %s", path, q.Get("query"), resp.Status, r.Error)
	}
	sort.Slice(r.Data.Result, func(i, j int) bool {
		return labelString(r.Data.Result[i].Metric) < labelString(r.Data.Result[j].Metric)
	})
	return r.Data.Result, r.Warnings, nil
}

func instant(base, query string, at time.Time) ([]promSeries, error) {
	return thanosAPI(base, "/api/v1/query", url.Values{"query": {query}, "time": {unix(at)}})
}

// ruleGroups is the part of a rule file the replay reads.
type ruleGroups struct {
	Groups []struct {
		Name     string         `json:"name"`
		Interval model.Duration `json:"interval"`
		Rules    []struct {
			Record string            `json:"record"`
			Alert  string            `json:"alert"`
			Expr   string            `json:"expr"`
			For    model.Duration    `json:"for"`
			Labels map[string]string `json:"labels"`
		} `json:"rules"`
	} `json:"groups"`
}

// thanosReplay evaluates every rule of file over [from, to] through Thanos
// Query, at each group's interval (the Ruler's --eval-interval when it has
// none), one rule at a time in the file's order, and remote-writes what the
// Ruler would have written there into writeURL: each record's series, with
// a staleness marker where one disappears, and each alert's
// ALERTS_FOR_STATE (the time it became active, at every evaluation while it
// is), all with the Ruler's external label. Prometheus commits a remote
// write before answering, so each rule reads the ones before it.
func thanosReplay(t *testing.T, query, writeURL, file string, from, to time.Time) {
	t.Helper()
	started := time.Now()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleGroups
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	n, written := 0, 0
	for _, g := range f.Groups {
		step := time.Duration(g.Interval)
		if step == 0 {
			step = thanosEvalInterval
		}
		for _, r := range g.Rules {
			rs, err := thanosAPI(query, "/api/v1/query_range", url.Values{"query": {r.Expr},
				"start": {unix(from)}, "end": {unix(to)}, "step": {strconv.Itoa(int(step.Seconds()))}})
			if err != nil {
				t.Fatalf("replay of %s%s: %v", r.Record, r.Alert, err)
			}
			var out []samples
			for _, s := range rs {
				ls := map[string]string{rulerLabel: rulerReplica}
				for k, v := range s.Metric {
					ls[k] = v
				}
				for k, v := range r.Labels {
					if strings.Contains(v, "{{") {
						t.Fatalf("%s: label %s is a template; the replay writes labels as they are", r.Alert, k)
					}
					ls[k] = v
				}
				ts, vs, err := points(s.Values)
				if err != nil {
					t.Fatalf("replay of %s%s: %v", r.Record, r.Alert, err)
				}
				if r.Record != "" {
					ls["__name__"] = r.Record
				} else {
					ls["__name__"], ls["alertname"] = "ALERTS_FOR_STATE", r.Alert
					vs = activeSince(ts, step.Milliseconds())
				}
				out = append(out, staleAfterGaps(samples{labels: ls, ts: ts, vs: vs}, step.Milliseconds(), to.UnixMilli()))
			}
			remoteWrite(t, writeURL, out)
			n++
			for _, s := range out {
				written += len(s.ts)
			}
		}
	}
	t.Logf("replay of %d rules over %v through Thanos Query: %d samples written in %v", n, to.Sub(from), written, time.Since(started).Round(100*time.Millisecond))
}

// points reads a range answer's [seconds, "value"] pairs.
func points(vals [][2]any) ([]int64, []float64, error) {
	ts := make([]int64, len(vals))
	vs := make([]float64, len(vals))
	for i, p := range vals {
		sec, ok := p[0].(float64)
		str, ok2 := p[1].(string)
		if !ok || !ok2 {
			return nil, nil, fmt.Errorf("sample %v: want [seconds, \"value\"]", p)
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, nil, err
		}
		ts[i], vs[i] = int64(math.Round(sec*1000)), v
	}
	return ts, vs, nil
}

// activeSince gives, for each evaluation at which an alert's expression
// returned its series, when the alert became active: the first evaluation
// of that unbroken run (an alert that stops being returned is gone, or
// resolved, and starts anew), in seconds, as ALERTS_FOR_STATE holds it.
func activeSince(ts []int64, step int64) []float64 {
	vs := make([]float64, len(ts))
	for i := range ts {
		if i == 0 || ts[i]-ts[i-1] != step {
			vs[i] = float64(ts[i] / 1000)
		} else {
			vs[i] = vs[i-1]
		}
	}
	return vs
}

func TestActiveSince(t *testing.T) {
	got := activeSince([]int64{60000, 120000, 180000, 300000, 360000}, 60000)
	want := []float64{60, 60, 60, 300, 300}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("activeSince = %v, want %v", got, want)
	}
	s := staleAfterGaps(samples{ts: []int64{0, 10, 30}, vs: []float64{1, 2, 3}}, 10, 40)
	if len(s.ts) != 5 || s.ts[2] != 20 || !math.IsNaN(s.vs[2]) || s.ts[4] != 40 || !math.IsNaN(s.vs[4]) {
		t.Errorf("staleAfterGaps = %v %v, want markers at 20 and 40", s.ts, s.vs)
	}
	if s := staleAfterGaps(samples{ts: []int64{0, 10}, vs: []float64{1, 2}}, 10, 10); len(s.ts) != 2 {
		t.Errorf("staleAfterGaps up to the end = %v, want no marker", s.ts)
	}
}
