package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/rules"
)

// The synthetic series of the shared trace suite (../shared/traces) that
// the data test loads: one check file per case, with the longest history
// that case has.
var traceFiles = []string{
	"L1/oom_firing_9h19m.yaml",                 // a leak that reaches its limit: trend, time to limit, alerts
	"N4/no_leak_oom_nearlimit_9h.yaml",         // page cache growth beside a flat working set
	"M1/nearlimit_firing_50m.yaml",             // near the limit
	"O1/oomkilled_firing_47m.yaml",             // an OOM kill and a restart
	"A1/apiserver_firing_cp-a_1h.yaml",         // control plane, kube-apiserver, containers without limits
	"C1/orphans_firing_2h20m.yaml",             // orphan cgroups
	"C2/cgroupleak_firing_worker-1_2h30m.yaml", // dying cgroups
}

// traceVars are the values of the dashboards' variables the queries run
// with; a query must return data for at least one set of its dashboard.
var traceVars = map[string][]map[string]string{
	UIDOverview: {{"namespace": ".*"}},
	UIDWorkload: {
		{"namespace": "inventory", "workload": "stock-sync-58f9c7d6b", "pod": "stock-sync-58f9c7d6b-t5h2k"},
		{"namespace": "fulfilment", "workload": ".*", "pod": "pick-planner-6d9c8b7f5-r5t3x"},
		// A static pod without a memory limit: the recommended limit.
		{"namespace": "kube-system", "workload": ".*", "pod": "kube-apiserver-cp-b"},
	},
	UIDNodes: {{"node": ".*"}},
	UIDSelf:  {{}},
}

// series is one input series: its text form and one value per minute
// (NaN for a missing sample).
type series struct {
	text   string
	name   string
	values []float64
}

// expandValues expands promtool's input notation: "a+bxN" and "a-bxN" (N+1
// values), "_" and "_xN" (missing samples), "stale" (the series ends) and
// plain numbers.
func expandValues(s string) ([]float64, error) {
	var out []float64
	for _, tok := range strings.Fields(s) {
		switch {
		case tok == "stale":
			return out, nil
		case tok == "_":
			out = append(out, math.NaN())
		case strings.HasPrefix(tok, "_x"):
			n, err := strconv.Atoi(tok[2:])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", tok, err)
			}
			for i := 0; i < n; i++ {
				out = append(out, math.NaN())
			}
		case strings.Contains(tok, "x"):
			x := strings.LastIndex(tok, "x")
			n, err := strconv.Atoi(tok[x+1:])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", tok, err)
			}
			body := tok[:x]
			op := -1
			for i := 1; i < len(body); i++ {
				if (body[i] == '+' || body[i] == '-') && body[i-1] != 'e' && body[i-1] != 'E' {
					op = i
				}
			}
			if op < 0 {
				return nil, fmt.Errorf("%q: want a+bxN", tok)
			}
			a, err1 := strconv.ParseFloat(body[:op], 64)
			b, err2 := strconv.ParseFloat(body[op+1:], 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%q: want a+bxN", tok)
			}
			if body[op] == '-' {
				b = -b
			}
			for i := 0; i <= n; i++ {
				out = append(out, a+float64(i)*b)
			}
		default:
			v, err := strconv.ParseFloat(tok, 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", tok, err)
			}
			out = append(out, v)
		}
	}
	return out, nil
}

func TestExpandValues(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"1+2x3", "[1 3 5 7]"},
		{"10-1x2 _ 4", "[10 9 8 NaN 4]"},
		{"_x2 0+0x1 stale 5", "[NaN NaN 0 0]"},
		{"1e3+1e2x1", "[1000 1100]"},
	}
	for _, tt := range tests {
		got, err := expandValues(tt.in)
		if err != nil || fmt.Sprint(got) != tt.want {
			t.Errorf("expandValues(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	if _, err := expandValues("1+x"); err == nil {
		t.Errorf("expandValues(%q) = nil error, want one", "1+x")
	}
}

func loadTraces(t *testing.T, dir string) []series {
	t.Helper()
	var out []series
	seen := map[string]bool{}
	for _, f := range traceFiles {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("read trace: %v", err)
		}
		var file struct {
			Tests []struct {
				InputSeries []struct {
					Series string `json:"series"`
					Values string `json:"values"`
				} `json:"input_series"`
			} `json:"tests"`
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range file.Tests {
			for _, in := range tc.InputSeries {
				if seen[in.Series] {
					continue // the same node's series in two cases: keep the first
				}
				seen[in.Series] = true
				vs, err := expandValues(in.Values)
				if err != nil {
					t.Fatalf("%s: %s: %v", f, in.Series, err)
				}
				name, _, _ := strings.Cut(in.Series, "{")
				out = append(out, series{text: in.Series, name: name, values: vs})
			}
		}
	}
	return out
}

// requests gives every container with a memory limit in the traces a memory
// request of half that limit: the traces carry no requests.
func requests(traces []series) []series {
	var out []series
	for _, s := range traces {
		if s.name != "kube_pod_container_resource_limits" || !strings.Contains(s.text, `resource="memory"`) {
			continue
		}
		vals := make([]float64, len(s.values))
		for i, v := range s.values {
			vals[i] = v / 2
		}
		out = append(out, series{
			text:   "kube_pod_container_resource_requests" + strings.TrimPrefix(s.text, "kube_pod_container_resource_limits"),
			name:   "kube_pod_container_resource_requests",
			values: vals,
		})
	}
	return out
}

// supplement is what the traces lack: kube-apiserver's object counts,
// leakguard serve's own metrics and the node agent's scan metrics, the
// latter two from a real client_golang registry with the names and labels
// leakguard exports, gathered once a minute.
func supplement(t *testing.T, minutes int) []series {
	t.Helper()
	var out []series
	for i, r := range []string{"configmaps", "secrets", "pods", "events.events.k8s.io"} {
		vals := make([]float64, minutes)
		for m := range vals {
			vals[m] = float64(500*(i+1) + m*(i+1))
		}
		out = append(out, series{text: fmt.Sprintf(`apiserver_resource_objects{job="apiserver",resource=%q}`, r), name: "apiserver_resource_objects", values: vals})
	}

	reg := prometheus.NewPedanticRegistry()
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricAlertsReceived, Help: "h"}, []string{"alertname", "status"})
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDecisions, Help: "h"}, []string{"alertname", "decision", "reason"})
	remediations := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRemediations, Help: "h"}, []string{"remediator", "result"})
	check := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricCheckDuration, Help: "h"}, []string{"check"})
	httpDur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricHTTPRequestDuration, Help: "h"}, []string{"handler", "method", "code"})
	agent := prometheus.Labels{"job": "leakguard-agent"}
	scanErrors := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "leakguard_node_cgroup_scan_errors_total", Help: "h", ConstLabels: agent}, []string{"node"})
	scanDur := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "leakguard_node_cgroup_scan_duration_seconds", Help: "h", ConstLabels: agent}, []string{"node"})
	reg.MustRegister(received, decisions, remediations, check, httpDur, scanErrors, scanDur)
	values := map[string][]float64{}
	var order []string
	for m := 0; m < minutes; m++ {
		received.WithLabelValues(rules.AlertContainerMemoryLeak, "firing").Add(2)
		decisions.WithLabelValues(rules.AlertContainerMemoryLeak, "held", "cooldown").Inc()
		decisions.WithLabelValues(rules.AlertContainerMemoryLeak, "acted", "").Add(float64(m % 2))
		remediations.WithLabelValues("annotate", "success").Inc()
		check.WithLabelValues("working-set-slope").Observe(0.02 + float64(m%5)/100)
		httpDur.WithLabelValues("/api/v1/alerts", "POST", "200").Observe(0.005)
		scanErrors.WithLabelValues("worker-1").Add(float64(m % 3 / 2))
		scanDur.WithLabelValues("worker-1").Observe(0.05)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range flatten(mfs) {
			if _, ok := values[s.text]; !ok {
				order = append(order, s.text)
				values[s.text] = make([]float64, m, minutes) // absent before it was first seen
				for i := range values[s.text] {
					values[s.text][i] = math.NaN()
				}
			}
			values[s.text] = append(values[s.text], s.values[0])
		}
	}
	for _, text := range order {
		name, _, _ := strings.Cut(text, "{")
		out = append(out, series{text: text, name: name, values: values[text]})
	}
	return out
}

// flatten turns gathered metric families into single-sample series, as
// Prometheus stores them after a scrape.
func flatten(mfs []*dto.MetricFamily) []series {
	var out []series
	labels := func(m *dto.Metric, extra ...string) string {
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		parts = append(parts, extra...)
		sort.Strings(parts)
		return "{" + strings.Join(parts, ",") + "}"
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out = append(out, series{text: mf.GetName() + labels(m), values: []float64{m.GetCounter().GetValue()}})
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out = append(out, series{text: mf.GetName() + "_bucket" + labels(m, fmt.Sprintf("le=%q", strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))), values: []float64{float64(b.GetCumulativeCount())}})
				}
				out = append(out,
					series{text: mf.GetName() + "_bucket" + labels(m, `le="+Inf"`), values: []float64{float64(h.GetSampleCount())}},
					series{text: mf.GetName() + "_sum" + labels(m), values: []float64{h.GetSampleSum()}},
					series{text: mf.GetName() + "_count" + labels(m), values: []float64{float64(h.GetSampleCount())}})
			}
		}
	}
	return out
}

// writeOpenMetrics writes every series with its samples ending at end, one a
// minute, grouped by metric name as OpenMetrics wants.
func writeOpenMetrics(w io.Writer, all []series, end time.Time) error {
	sort.SliceStable(all, func(i, j int) bool { return all[i].name < all[j].name })
	for _, s := range all {
		n := len(s.values)
		for i, v := range s.values {
			if math.IsNaN(v) {
				continue
			}
			ts := end.Add(-time.Duration(n-1-i) * time.Minute).Unix()
			if _, err := fmt.Fprintf(w, "%s %s %d\n", s.text, strconv.FormatFloat(v, 'g', -1, 64), ts); err != nil {
				return err
			}
		}
	}
	_, err := io.WriteString(w, "# EOF\n")
	return err
}

// prometheusServer is a real Prometheus on a loopback port.
type prometheusServer struct {
	url string
	cmd *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startPrometheus(ctx context.Context, t *testing.T, bin, dataDir, config string) *prometheusServer {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+config, "--storage.tsdb.path="+dataDir, "--web.listen-address="+addr,
		"--storage.tsdb.retention.time=30d", "--log.level=warn")
	logPath := filepath.Join(filepath.Dir(dataDir), "prometheus.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	s := &prometheusServer{url: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.stop()
	log, _ := os.ReadFile(logPath)
	t.Fatalf("prometheus not ready in 20s:\n%s", log)
	return nil
}

func (s *prometheusServer) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// query runs an instant query (rng 0) or a range query ending at end and
// returns the number of series in the result.
func (s *prometheusServer) query(expr string, end time.Time, rng time.Duration) (int, error) {
	v := url.Values{"query": {expr}}
	path := "/api/v1/query"
	if rng > 0 {
		path = "/api/v1/query_range"
		v.Set("start", strconv.FormatInt(end.Add(-rng).Unix(), 10))
		v.Set("end", strconv.FormatInt(end.Unix(), 10))
		v.Set("step", "60")
	} else {
		v.Set("time", strconv.FormatInt(end.Unix(), 10))
	}
	resp, err := http.PostForm(s.url+path, v)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("decode answer: %w", err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("%s", body.Error)
	}
	return len(body.Data.Result), nil
}

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Record string            `json:"record,omitempty"`
			Alert  string            `json:"alert,omitempty"`
			Expr   string            `json:"expr"`
			Labels map[string]string `json:"labels,omitempty"`
		} `json:"rules"`
	} `json:"groups"`
}

type backfillRule struct {
	Record string            `json:"record"`
	Expr   string            `json:"expr"`
	Labels map[string]string `json:"labels,omitempty"`
}

// backfillLevels orders the recording rules of the rule file by dependency:
// level 1 reads only raw series, level n a rule of level n-1. Each alert
// becomes a recording rule of ALERTS with alertstate="firing" (its for is
// not honoured), so that the dashboards' alert panels have history too.
func backfillLevels(t *testing.T, data []byte) [][]backfillRule {
	t.Helper()
	var f ruleFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("rule file: %v", err)
	}
	var all []backfillRule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				all = append(all, backfillRule{Record: r.Record, Expr: r.Expr, Labels: r.Labels})
				continue
			}
			labels := map[string]string{"alertname": r.Alert, "alertstate": "firing"}
			for k, v := range r.Labels {
				labels[k] = v
			}
			all = append(all, backfillRule{Record: "ALERTS", Expr: "(" + r.Expr + ") * 0 + 1", Labels: labels})
		}
	}
	var levelOf func(r backfillRule, depth int) int
	levelOf = func(r backfillRule, depth int) int {
		if depth > len(all) {
			t.Fatalf("recording rules depend on each other in a cycle at %s", r.Record)
		}
		l := 1
		for _, n := range MetricNames(r.Expr) {
			for _, dep := range all {
				if dep.Record == n && n != "ALERTS" {
					if d := levelOf(dep, depth+1) + 1; d > l {
						l = d
					}
				}
			}
		}
		return l
	}
	var levels [][]backfillRule
	for _, r := range all {
		l := levelOf(r, 0)
		for len(levels) < l {
			levels = append(levels, nil)
		}
		levels[l-1] = append(levels[l-1], r)
	}
	return levels
}

// TestPanelsReturnData loads the shared trace suite's synthetic series
// into a real Prometheus, backfills leakguard's recording rules over them
// level by level with promtool, and runs every query of every dashboard:
// a query that returns nothing for all of its dashboard's variable values
// fails the test.
func TestPanelsReturnData(t *testing.T) {
	promBin := requireTool(t, "prometheus")
	promtool := requireTool(t, "promtool")
	tracesDir := filepath.Join("..", "..", "shared", "traces", "cases")
	if _, err := os.Stat(tracesDir); err != nil {
		t.Fatalf("the shared trace suite is missing (%v): it lives in ../shared/traces beside the repository", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	end := time.Now().Truncate(time.Minute).Add(-time.Minute)

	all := loadTraces(t, tracesDir)
	all = append(all, requests(all)...)
	all = append(all, supplement(t, 180)...)
	om := filepath.Join(dir, "series.om")
	f, err := os.Create(om)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeOpenMetrics(f, all, end); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "openmetrics", om, dataDir).CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}

	p := rules.DefaultParams()
	// The traces hold an hour of containers without a limit: the
	// recommendation asks for half of it instead of a day.
	p.RecommendMinHistory = model.Duration(30 * time.Minute)
	files, err := rules.Files(p)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte("global:\n  evaluation_interval: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The longest trace decides how far back the rules are evaluated.
	start := end.Add(-10 * time.Hour)
	for i, level := range backfillLevels(t, files[rules.RuleFilePath]) {
		data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": fmt.Sprintf("level-%d", i+1), "rules": level}}})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("level-%d.yaml", i+1))
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, fmt.Sprintf("level-%d", i+1))
		srv := startPrometheus(ctx, t, promBin, dataDir, config)
		cmdOut, err := exec.CommandContext(ctx, promtool, "tsdb", "create-blocks-from", "rules",
			"--start="+strconv.FormatInt(start.Unix(), 10), "--end="+strconv.FormatInt(end.Unix(), 10),
			"--eval-interval=60s", "--url="+srv.url, "--output-dir="+out, path).CombinedOutput()
		srv.stop()
		if err != nil {
			t.Fatalf("promtool tsdb create-blocks-from rules (level %d): %v\n%s", i+1, err, cmdOut)
		}
		blocks, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if err := os.Rename(filepath.Join(out, b.Name()), filepath.Join(dataDir, b.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}

	srv := startPrometheus(ctx, t, promBin, dataDir, config)
	defer srv.stop()
	for _, d := range All(p) {
		qs, err := Queries(d)
		if err != nil {
			t.Fatal(err)
		}
		instant := map[string]bool{}
		for _, pn := range d.Panels {
			for _, tg := range pn.Targets {
				if tg.Instant {
					instant[d.UID+" / "+pn.Title+" / "+tg.RefID] = true
				}
			}
		}
		for _, q := range qs {
			var tried []string
			ok := false
			for _, vars := range traceVars[d.UID] {
				v := map[string]string{"__rate_interval": "4m", "__range": "6h", "cluster": ".*"}
				for k, val := range vars {
					v[k] = val
				}
				expr := Substitute(q.Expr, v)
				rng := 6 * time.Hour
				if instant[q.Where] {
					rng = 0
				}
				n, err := srv.query(expr, end, rng)
				if err != nil {
					t.Errorf("%s: query failed: %v\n%s", q.Where, err, expr)
					break
				}
				if n > 0 {
					ok = true
					break
				}
				tried = append(tried, fmt.Sprint(vars))
			}
			if !ok {
				t.Errorf("%s: no data for any of %v:\n%s", q.Where, tried, q.Expr)
			}
		}
	}
}
