package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/recommend"
)

// recEnd is the end of the window every recommend test reads.
var recEnd = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// stubContainer is one container of the stub Prometheus's cluster.
type stubContainer struct {
	namespace, pod, container string
	ownerKind, ownerName      string
	podLabels                 map[string]string
	request, limit            float64
	// ws is the working set at t; ok false means no sample.
	ws func(t time.Time) (float64, bool)
	// restarts is the restart counter at t, oomAt whether the last
	// terminated reason is OOMKilled at t, leakAt whether the leak trends
	// hold at t (all optional).
	restarts func(t time.Time) float64
	oomAt    func(t time.Time) bool
	leakAt   func(t time.Time) bool
}

func flat(b float64) func(time.Time) (float64, bool) {
	return func(time.Time) (float64, bool) { return b, true }
}

// stubPrometheus serves /api/v1/query and /api/v1/query_range from cs,
// choosing the answer by the metric the query reads, and records the
// queries.
type stubPrometheus struct {
	cs      []stubContainer
	mu      sync.Mutex
	queries []string
}

func (s *stubPrometheus) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.FormValue("query")
	s.mu.Lock()
	s.queries = append(s.queries, q)
	s.mu.Unlock()
	var data any
	switch r.URL.Path {
	case "/api/v1/query":
		data = map[string]any{"resultType": "vector", "result": s.instant(q)}
	case "/api/v1/query_range":
		start, _ := strconv.ParseFloat(r.FormValue("start"), 64)
		end, _ := strconv.ParseFloat(r.FormValue("end"), 64)
		step, _ := strconv.ParseFloat(r.FormValue("step"), 64)
		data = map[string]any{"resultType": "matrix", "result": s.ranged(q, start, end, step)}
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
}

func containerMetric(c stubContainer) model.Metric {
	return model.Metric{"namespace": model.LabelValue(c.namespace), "pod": model.LabelValue(c.pod), "container": model.LabelValue(c.container)}
}

func (s *stubPrometheus) instant(q string) model.Vector {
	vec := model.Vector{}
	at := model.TimeFromUnixNano(recEnd.UnixNano())
	add := func(m model.Metric, v float64) {
		vec = append(vec, &model.Sample{Metric: m, Value: model.SampleValue(v), Timestamp: at})
	}
	for _, c := range s.cs {
		switch {
		case strings.Contains(q, "kube_pod_owner"):
			add(model.Metric{"namespace": model.LabelValue(c.namespace), "pod": model.LabelValue(c.pod),
				"owner_kind": model.LabelValue(c.ownerKind), "owner_name": model.LabelValue(c.ownerName)}, 1)
		case strings.Contains(q, "kube_pod_labels"):
			m := model.Metric{"namespace": model.LabelValue(c.namespace), "pod": model.LabelValue(c.pod)}
			for k, v := range c.podLabels {
				m[model.LabelName("label_"+k)] = model.LabelValue(v)
			}
			add(m, 1)
		case strings.Contains(q, "kube_pod_container_info"):
			add(containerMetric(c), 1)
		case strings.Contains(q, "resource_requests") && c.request > 0:
			add(containerMetric(c), c.request)
		case strings.Contains(q, "resource_limits") && c.limit > 0:
			add(containerMetric(c), c.limit)
		}
	}
	return vec
}

func (s *stubPrometheus) ranged(q string, start, end, step float64) model.Matrix {
	m := model.Matrix{}
	for _, c := range s.cs {
		var f func(t time.Time) (float64, bool)
		switch {
		case strings.Contains(q, ":leak_rate"):
			if c.leakAt != nil {
				f = func(t time.Time) (float64, bool) { return 1000, c.leakAt(t) }
			}
		case strings.Contains(q, "container_memory_working_set_bytes"):
			f = c.ws
		case strings.Contains(q, "restarts_total"):
			if c.restarts != nil {
				f = func(t time.Time) (float64, bool) { return c.restarts(t), true }
			}
		case strings.Contains(q, "last_terminated_reason"):
			if c.oomAt != nil {
				f = func(t time.Time) (float64, bool) { return 1, c.oomAt(t) }
			}
		}
		if f == nil {
			continue
		}
		ss := &model.SampleStream{Metric: containerMetric(c)}
		for ts := start; ts <= end; ts += step {
			t := time.Unix(int64(ts), 0).UTC()
			if v, ok := f(t); ok {
				ss.Values = append(ss.Values, model.SamplePair{Timestamp: model.TimeFromUnix(int64(ts)), Value: model.SampleValue(v)})
			}
		}
		if len(ss.Values) > 0 {
			m = append(m, ss)
		}
	}
	return m
}

// shop is a namespace with one container of every verdict.
func shop() []stubContainer {
	const mi = recommend.MiB
	leakStart := recEnd.Add(-30 * time.Minute)
	oomKill := recEnd.Add(-20 * time.Minute)
	return []stubContainer{{
		namespace: "shop", pod: "api-7d9f8c5b4-x2x7q", container: "app", ownerKind: "ReplicaSet", ownerName: "api-7d9f8c5b4",
		podLabels: map[string]string{"app_kubernetes_io_name": "api"},
		request:   320 * mi, limit: 384 * mi, ws: flat(300 * mi),
	}, {
		namespace: "shop", pod: "leaky-5c6b7d8f9-abcde", container: "app", ownerKind: "ReplicaSet", ownerName: "leaky-5c6b7d8f9",
		request: 256 * mi, limit: GiBytes(1),
		ws: func(t time.Time) (float64, bool) {
			if t.Before(leakStart) {
				return 200 * mi, true
			}
			return 200*mi + t.Sub(leakStart).Minutes()*10*mi, true
		},
		leakAt: func(t time.Time) bool { return !t.Before(leakStart.Add(10 * time.Minute)) },
	}, {
		namespace: "shop", pod: "db-0", container: "db", ownerKind: "StatefulSet", ownerName: "db",
		request: 128 * mi, ws: flat(100 * mi),
	}, {
		namespace: "shop", pod: "big-5c6b7d8f9-zzzzz", container: "app", ownerKind: "ReplicaSet", ownerName: "big-5c6b7d8f9",
		request: GiBytes(2), limit: GiBytes(4), ws: flat(200 * mi),
	}, {
		namespace: "shop", pod: "worker-5c6b7d8f9-qqqqq", container: "app", ownerKind: "ReplicaSet", ownerName: "worker-5c6b7d8f9",
		request: 256 * mi, limit: 512 * mi,
		ws: func(t time.Time) (float64, bool) {
			if t.Before(oomKill) {
				return 510 * mi, true
			}
			return 300 * mi, true
		},
		restarts: func(t time.Time) float64 {
			if t.Before(oomKill) {
				return 0
			}
			return 1
		},
		oomAt: func(t time.Time) bool { return !t.Before(oomKill) },
	}, {
		namespace: "shop", pod: "lonely", container: "main", ownerKind: "<none>", ownerName: "<none>",
		limit: 256 * mi,
		ws:    func(t time.Time) (float64, bool) { return 100 * mi, t.After(recEnd.Add(-5 * time.Minute)) },
	}}
}

// GiBytes is n GiB in bytes.
func GiBytes(n float64) float64 { return n * recommend.GiB }

// startStub serves cs on an httptest server.
func startStub(t *testing.T, cs []stubContainer) (*stubPrometheus, string) {
	t.Helper()
	stub := &stubPrometheus{cs: cs}
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	return stub, srv.URL
}

// recArgs are the flags every recommend test passes: a 1-hour window at a
// 1-minute step, 30 samples at least.
func recArgs(url string, more ...string) []string {
	return append([]string{"recommend", "--prometheus-url", url, "--end", recEnd.Format(time.RFC3339),
		"--window", "1h", "--step", "1m", "--min-samples", "30", "--leak-onset", "15m"}, more...)
}

// verdictRow is the part of a JSON row the tests compare.
type verdictRow struct {
	Workload, Container string
	Request, Limit      string
	Verdict             recommend.Verdict
	OOMKills, Restarts  int
}

func runRecommendJSON(t *testing.T, args []string) []verdictRow {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d, stderr:\n%s", args, code, stderr.String())
	}
	var rows []recommendRow
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	got := make([]verdictRow, 0, len(rows))
	for _, r := range rows {
		got = append(got, verdictRow{
			Workload: r.Workload.String(), Container: r.Container.Container,
			Request: recommend.FormatBytes(r.Recommendation.Request), Limit: recommend.FormatBytes(r.Recommendation.Limit),
			Verdict: r.Recommendation.Verdict, OOMKills: r.Recommendation.Evidence.OOMKills, Restarts: r.Recommendation.Evidence.Restarts,
		})
	}
	return got
}

func TestRecommendCommandVerdicts(t *testing.T) {
	stub, url := startStub(t, shop())
	got := runRecommendJSON(t, recArgs(url, "-n", "shop", "-o", "json"))
	want := []verdictRow{
		{Workload: "deployment/api", Container: "app", Request: "320Mi", Limit: "384Mi", Verdict: recommend.OK},
		{Workload: "deployment/big", Container: "app", Request: "256Mi", Limit: "256Mi", Verdict: recommend.Lower},
		// sized from the 200 MiB before the leak, not from the leak's peak
		{Workload: "deployment/leaky", Container: "app", Request: "256Mi", Limit: "256Mi", Verdict: recommend.Leaking},
		// 512 MiB + 20 % after the OOM kill
		{Workload: "deployment/worker", Container: "app", Request: "512Mi", Limit: "640Mi", Verdict: recommend.Raise, OOMKills: 1, Restarts: 1},
		{Workload: "pod/lonely", Container: "main", Request: "-", Limit: "-", Verdict: recommend.NotEnoughData},
		{Workload: "statefulset/db", Container: "db", Request: "128Mi", Limit: "128Mi", Verdict: recommend.NoLimit},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recommend -o json mismatch (-want +got):\n%s", diff)
	}
	for _, q := range stub.queries {
		if !strings.Contains(q, `namespace="shop"`) {
			t.Errorf("query %s: want it confined to namespace=\"shop\"", q)
		}
		if strings.Contains(q, "container_memory_working_set_bytes{") &&
			!strings.Contains(q, `container!="", container!="POD", image!=""`) {
			t.Errorf("working-set query %s: want the pod cgroup, the pause container and non-container cgroups left out", q)
		}
	}
}

func TestRecommendCommandScope(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		want      []string
		namespace string // the namespace (or cluster) matcher every query must carry, "" none
	}{
		{"default namespace", nil, nil, `namespace="default"`},
		{"all namespaces", []string{"-A"}, []string{"deployment/api", "deployment/big", "deployment/leaky", "deployment/worker", "pod/lonely", "statefulset/db"}, ""},
		{"workload by kind and name", []string{"-A", "--workload", "deployment/leaky"}, []string{"deployment/leaky"}, ""},
		{"workload by name", []string{"--namespace", "shop", "--workload", "db"}, []string{"statefulset/db"}, `namespace="shop"`},
		{"workload of another kind", []string{"-A", "--workload", "statefulset/leaky"}, []string{}, ""},
		{"selector on pod labels", []string{"-A", "-l", "app.kubernetes.io/name=api"}, []string{"deployment/api"}, ""},
		{"cluster in a fleet", []string{"-n", "shop", "--cluster", "eu-1", "--workload", "db"}, []string{"statefulset/db"}, `cluster="eu-1"`},
		{"selector that needs a label pods lack", []string{"-A", "--selector", "tier"}, []string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub, url := startStub(t, shop())
			if tt.namespace == `namespace="default"` {
				// A stub that ignores matchers answers with shop's pods.
				stub.cs = nil
			}
			rows := runRecommendJSON(t, recArgs(url, append(tt.args, "-o", "json")...))
			got := []string{}
			for _, r := range rows {
				got = append(got, r.Workload)
			}
			if tt.want == nil {
				tt.want = []string{}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("workloads mismatch (-want +got):\n%s", diff)
			}
			for _, q := range stub.queries {
				if has := strings.Contains(q, "namespace="); has != (tt.namespace != "") || !strings.Contains(q, tt.namespace) {
					t.Errorf("query %s: want namespace matcher %q", q, tt.namespace)
				}
			}
		})
	}
}

func TestRecommendCommandTable(t *testing.T) {
	_, url := startStub(t, shop())
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), recArgs(url, "-n", "shop", "--workload", "leaky"), &stdout, &stderr); code != 0 {
		t.Fatalf("run() = %d, stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("table has %d lines, want a header and one row:\n%s", len(lines), stdout.String())
	}
	for _, want := range []string{"NAMESPACE", "REC LIMIT", "VERDICT", "REASON"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{"shop", "deployment/leaky", "256Mi", "1Gi", "leaking", "only delay the next OOM kill"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("row %q lacks %q", lines[1], want)
		}
	}
}

func TestRecommendCommandPatch(t *testing.T) {
	_, url := startStub(t, shop())
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), recArgs(url, "-n", "shop", "-o", "patch"), &stdout, &stderr); code != 0 {
		t.Fatalf("run() = %d, stderr:\n%s", code, stderr.String())
	}
	// api is ok, leaky leaking, lonely without data: no patch for them.
	want := `# kubectl patch deployment/big -n shop --type strategic --patch-file FILE
apiVersion: apps/v1
kind: Deployment
metadata:
  name: big
  namespace: shop
spec:
  template:
    spec:
      containers:
      - name: app
        resources:
          limits:
            memory: 256Mi
          requests:
            memory: 256Mi
---
# kubectl patch deployment/worker -n shop --type strategic --patch-file FILE
apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  namespace: shop
spec:
  template:
    spec:
      containers:
      - name: app
        resources:
          limits:
            memory: 640Mi
          requests:
            memory: 512Mi
---
# kubectl patch statefulset/db -n shop --type strategic --patch-file FILE
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
  namespace: shop
spec:
  template:
    spec:
      containers:
      - name: db
        resources:
          limits:
            memory: 128Mi
          requests:
            memory: 128Mi
`
	if diff := cmp.Diff(want, stdout.String()); diff != "" {
		t.Errorf("recommend -o patch mismatch (-want +got):\n%s", diff)
	}
}

func TestRecommendCommandErrors(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"unavailable","error":"TSDB not ready"}`))
	}))
	t.Cleanup(failing.Close)
	_, good := startStub(t, shop())
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"Prometheus unreachable", recArgs(closedURL, "-A"), 1, "connection refused"},
		{"Prometheus answers an error", recArgs(failing.URL, "-A"), 1, "server error: 503"},
		{"URL without a scheme", recArgs("prometheus:9090", "-A"), 1, "want an http or https URL"},
		{"URL that does not parse", recArgs("http://[::1", "-A"), 1, "--prometheus-url"},
		{"-n and -A", recArgs(good, "-A", "-n", "shop"), 2, "exclude each other"},
		{"unknown output", recArgs(good, "-o", "yaml"), 2, `-o "yaml"`},
		{"bad selector", recArgs(good, "-l", "a in (b"), 2, "-l"},
		{"percentile above 1", recArgs(good, "--percentile", "1.5"), 2, "percentile 1.5"},
		{"bad granularity", recArgs(good, "--granularity", "lots"), 2, "granularity"},
		{"too many points", recArgs(good, "--window", "30d", "--step", "1m"), 2, "raise --step"},
		{"negative onset", recArgs(good, "--leak-onset", "-1h"), 2, "leak-onset"},
		{"bad end", recArgs(good, "--end", "yesterday"), 2, "--end"},
		{"arguments", recArgs(good, "extra"), 2, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			if code != tt.wantCode {
				t.Errorf("run() = %d, want %d; stderr:\n%s", code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), tt.wantStderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing printed", stdout.String())
			}
		})
	}
}

// TestRecommendPatchApplies applies the patch recommend prints to a
// Deployment with two containers, as kubectl patch --type strategic does:
// the recommended container gets the new memory request and limit and
// keeps its CPU; the other container is untouched.
func TestRecommendPatchApplies(t *testing.T) {
	_, url := startStub(t, shop())
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), recArgs(url, "-n", "shop", "--workload", "deployment/worker", "-o", "patch"), &stdout, &stderr); code != 0 {
		t.Fatalf("run() = %d, stderr:\n%s", code, stderr.String())
	}
	patch, err := yaml.YAMLToJSON(stdout.Bytes())
	if err != nil {
		t.Fatalf("patch is not YAML: %v\n%s", err, stdout.String())
	}
	mem := resource.MustParse
	deploy := appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: "shop"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "worker:1",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: mem("100m"), corev1.ResourceMemory: mem("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: mem("512Mi")},
			},
		}, {
			Name: "sidecar", Image: "proxy:1",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: mem("64Mi")}},
		}}}}},
	}
	original, err := json.Marshal(deploy)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := strategicpatch.StrategicMergePatch(original, patch, appsv1.Deployment{})
	if err != nil {
		t.Fatalf("StrategicMergePatch: %v\npatch:\n%s", err, stdout.String())
	}
	var got appsv1.Deployment
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	want := deploy.DeepCopy()
	want.Spec.Template.Spec.Containers[0].Resources.Requests[corev1.ResourceMemory] = mem("512Mi")
	want.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory] = mem("640Mi")
	if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
		t.Errorf("patched Deployment mismatch (-want +got):\n%s", diff)
	}
}

// TestRecommendCommandLeakBeforeWindow: a container flagged only before
// the window, in the earlier part of the span read, is still leaking; the
// span read does not reach a whole window before the flag, so its
// recommendation is withheld rather than sized from a working set that may
// hold the leak.
func TestRecommendCommandLeakBeforeWindow(t *testing.T) {
	const mi = recommend.MiB
	flaggedFrom, flaggedTo := recEnd.Add(-90*time.Minute), recEnd.Add(-70*time.Minute)
	_, url := startStub(t, []stubContainer{{
		namespace: "shop", pod: "cache-0", container: "redis", ownerKind: "StatefulSet", ownerName: "cache",
		request: 256 * mi, limit: 512 * mi, ws: flat(200 * mi),
		leakAt: func(t time.Time) bool { return !t.Before(flaggedFrom) && t.Before(flaggedTo) },
	}})
	got := runRecommendJSON(t, recArgs(url, "-n", "shop", "-o", "json"))
	want := []verdictRow{{Workload: "statefulset/cache", Container: "redis", Request: "-", Limit: "-", Verdict: recommend.Leaking}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recommend -o json mismatch (-want +got):\n%s", diff)
	}
}
