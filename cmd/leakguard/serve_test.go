package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/server"

	"github.com/leakguard/leakguard/internal/cli"
)

// slopeQueryWeb is the working-set-slope query for the test cluster's pod.
const slopeQueryWeb = `max(` + rules.RecWorkingSetDeriv + `{namespace="shop",pod="web-7d9-abcde",container="app"})`

// orphansQueryN1 is the orphan-cgroups query for node n1.
const orphansQueryN1 = `max(` + rules.RecNodeOrphanCgroups + `{node="n1"})`

// testQuerier answers from a map at the current time; unknown queries get
// an empty vector, and err, when set, fails every query.
type testQuerier struct {
	mu      sync.Mutex
	answers map[string]float64
	err     error
}

func (q *testQuerier) Query(_ context.Context, query string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return nil, nil, nil, q.err
	}
	v, ok := q.answers[query]
	if !ok {
		return model.Vector{}, nil, nil, nil
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}

func leakingCluster() *fake.Clientset {
	ctrl := true
	owner := func(kind, apiVersion, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &ctrl}}
	}
	meta := func(ns, name string, owners []metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", OwnerReferences: owners}
	}
	return fake.NewClientset([]runtime.Object{
		&corev1.Namespace{ObjectMeta: meta("", "shop", nil)},
		&corev1.Namespace{ObjectMeta: meta("", "kube-system", nil)},
		&corev1.Node{ObjectMeta: meta("", "n1", nil)},
		&appsv1.Deployment{ObjectMeta: meta("shop", "web", nil)},
		&appsv1.ReplicaSet{ObjectMeta: meta("shop", "web-7d9", owner("Deployment", "apps/v1", "web"))},
		&corev1.Pod{ObjectMeta: meta("shop", "web-7d9-abcde", owner("ReplicaSet", "apps/v1", "web-7d9"))},
		&corev1.Pod{ObjectMeta: meta("kube-system", "coredns-1", nil)},
	}...)
}

// newServeHandler builds serve's handler exactly as runServe does, with
// bearer auth on token and the default policy.
func newServeHandler(t testing.TB, client *fake.Clientset, q remediate.Querier, token string, logger *slog.Logger) (*remediate.Engine, http.Handler) {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry()
	policy, err := loadPolicy("", reg)
	if err != nil {
		t.Fatal(err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	e, h, err := buildServe(serveDeps{
		flags:  serveFlags{server: server.Config{BearerTokenFile: tokenFile}},
		policy: policy, client: client, querier: q, logger: logger, registry: reg,
	})
	if err != nil {
		t.Fatalf("buildServe: %v", err)
	}
	return e, h
}

func payload(t testing.TB, alerts ...map[string]string) []byte {
	t.Helper()
	var as []map[string]any
	for _, l := range alerts {
		as = append(as, map[string]any{
			"status": "firing", "labels": l, "annotations": map[string]string{"runbook_url": "https://example.com/" + l["alertname"] + ".md"},
			"startsAt": "2026-11-23T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fmt.Sprintf("%016x", len(as)),
		})
	}
	b, err := json.Marshal(map[string]any{
		"version": "4", "status": "firing", "receiver": "leakguard", "groupKey": "{}:{}", "alerts": as,
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{}, "commonAnnotations": map[string]string{}, "externalURL": "http://am",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	leakLabels   = map[string]string{"alertname": rules.AlertContainerMemoryLeak, "namespace": "shop", "pod": "web-7d9-abcde", "container": "app", "node": "n1"}
	noContainer  = map[string]string{"alertname": rules.AlertContainerMemoryLeak, "namespace": "shop", "pod": "web-7d9-abcde", "node": "n1"}
	orphanLabels = map[string]string{"alertname": rules.AlertNodeOrphanCgroups, "node": "n1"}
)

// TestServeStatusCodes sends payloads through serve's handler and checks
// the status code Alertmanager would see and what changed in the cluster.
func TestServeStatusCodes(t *testing.T) {
	tests := []struct {
		name      string
		querier   *testQuerier
		body      []byte
		token     string
		status    int
		decisions []string
		annotated bool
		// forbidPods and throttlePods make reading the pod fail with 403
		// or 429; leaseDown makes the budget Lease unreadable.
		forbidPods, throttlePods, leaseDown bool
	}{
		{name: "acted 200", querier: &testQuerier{answers: map[string]float64{slopeQueryWeb: 1e4}}, body: payload(t, leakLabels),
			token: "s3cret", status: http.StatusOK, decisions: []string{"acted"}, annotated: true},
		{name: "held 200", querier: &testQuerier{answers: map[string]float64{slopeQueryWeb: 0}}, body: payload(t, leakLabels),
			token: "s3cret", status: http.StatusOK, decisions: []string{"held"}},
		{name: "prometheus down 503", querier: &testQuerier{err: errors.New("dial tcp: connection refused")}, body: payload(t, leakLabels),
			token: "s3cret", status: http.StatusServiceUnavailable},
		{name: "one alert fails permanently 200", querier: &testQuerier{answers: map[string]float64{orphansQueryN1: 40}},
			body: payload(t, noContainer, orphanLabels), token: "s3cret", status: http.StatusOK, decisions: []string{"error", "acted"}},
		// No retry can fix a permanent failure: answered 200 with the
		// error decisions, so that Alertmanager does not redeliver it.
		{name: "every alert fails permanently 200", querier: &testQuerier{}, body: payload(t, noContainer),
			token: "s3cret", status: http.StatusOK, decisions: []string{"error"}},
		{name: "forbidden read 200", querier: &testQuerier{}, body: payload(t, leakLabels), forbidPods: true,
			token: "s3cret", status: http.StatusOK, decisions: []string{"error"}},
		{name: "apiserver 429 503", querier: &testQuerier{}, body: payload(t, leakLabels), throttlePods: true,
			token: "s3cret", status: http.StatusServiceUnavailable},
		{name: "budget unreadable 503", querier: &testQuerier{answers: map[string]float64{slopeQueryWeb: 1e4}}, body: payload(t, leakLabels), leaseDown: true,
			token: "s3cret", status: http.StatusServiceUnavailable},
		{name: "wrong token 401", querier: &testQuerier{}, body: payload(t, leakLabels), token: "guess", status: http.StatusUnauthorized},
		{name: "bad payload 400", querier: &testQuerier{}, body: []byte(`{"version":"4","alerts":[]}`), token: "s3cret", status: http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := leakingCluster()
			if tc.forbidPods || tc.throttlePods {
				cs.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
					if tc.forbidPods {
						return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web-7d9-abcde", errors.New("RBAC"))
					}
					return true, nil, apierrors.NewTooManyRequests("slow down", 1)
				})
			}
			if tc.leaseDown {
				cs.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
				})
			}
			_, h := newServeHandler(t, cs, tc.querier, "s3cret", nil)
			req := httptest.NewRequest(http.MethodPost, server.AlertsPath, bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+tc.token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("POST %s = %d %s, want %d", server.AlertsPath, rec.Code, rec.Body, tc.status)
			}
			if tc.decisions != nil {
				var resp struct {
					Decisions []remediate.Decision `json:"decisions"`
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
					t.Fatalf("decode answer %s: %v", rec.Body, err)
				}
				var got []string
				for _, d := range resp.Decisions {
					got = append(got, d.Decision)
				}
				if strings.Join(got, ",") != strings.Join(tc.decisions, ",") {
					t.Errorf("decisions = %v, want %v", got, tc.decisions)
				}
			}
			d, _ := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
			if got := d.Annotations[annotate.AnnotationFinding] != ""; got != tc.annotated {
				t.Errorf("Deployment annotated = %v, want %v (annotations %v)", got, tc.annotated, d.Annotations)
			}
		})
	}
}

// TestServeMetrics checks that /metrics serves the engine's and the
// receiver's metrics from one registry.
func TestServeMetrics(t *testing.T) {
	_, h := newServeHandler(t, leakingCluster(), &testQuerier{answers: map[string]float64{slopeQueryWeb: 1e4}}, "s3cret", nil)
	req := httptest.NewRequest(http.MethodPost, server.AlertsPath, bytes.NewReader(payload(t, leakLabels)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer s3cret")
	h.ServeHTTP(httptest.NewRecorder(), req)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for _, want := range []string{
		`leakguard_alerts_received_total{alertname="ContainerMemoryLeak",status="firing"} 1`,
		`leakguard_decisions_total{alertname="ContainerMemoryLeak",decision="acted",reason=""} 1`,
		`leakguard_remediations_total{remediator="annotate",result="success"} 1`,
		`leakguard_check_duration_seconds_count{check="working-set-slope"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestServeFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr error
		stdout  string
		stderr  string
	}{
		{name: "print default policy", args: []string{"--print-default-policy"}, stdout: "KubeAPIServerMemoryHigh:"},
		{name: "help documents every flag", args: []string{"--help"}, wantErr: cli.ErrHelp, stderr: "--listen-address"},
		{name: "stray argument", args: []string{"extra"}, wantErr: errUsage},
		{name: "bad log level", args: []string{"--log-level", "loud", "--insecure-no-auth"}, stderr: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runServe(context.Background(), tc.args, &out, &errOut)
			if tc.name == "bad log level" {
				if err == nil || !strings.Contains(err.Error(), `--log-level "loud"`) {
					t.Errorf("runServe(%v) = %v, want a log level error", tc.args, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("runServe(%v) = %v, want %v", tc.args, err, tc.wantErr)
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
			if tc.stderr != "" {
				for _, flagName := range []string{"listen-address", "kubeconfig", "prometheus-url", "policy", "dry-run", "print-default-policy",
					"bearer-token-file", "basic-auth-username", "basic-auth-password-file", "insecure-no-auth", "tls-cert-file",
					"tls-key-file", "max-body-bytes", "ready-timeout", "shutdown-timeout", "log-level"} {
					if !strings.Contains(errOut.String(), "-"+flagName+" ") && !strings.Contains(errOut.String(), "-"+flagName+"\n") {
						t.Errorf("--help does not document --%s", flagName)
					}
				}
			}
		})
	}
	out := bytes.Buffer{}
	if err := runServe(context.Background(), []string{"--print-default-policy"}, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := remediate.ParsePolicy(out.Bytes(), builtin.Registry()); err != nil {
		t.Errorf("printed default policy does not parse: %v", err)
	}
}

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"version":"3"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
		err  error
	}{
		{name: "no file", args: nil, err: errUsage},
		{name: "missing file", args: []string{filepath.Join(dir, "absent.json")}, want: "read payload"},
		{name: "invalid payload", args: []string{bad}, want: `unsupported payload version "3"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := runReplay(context.Background(), tc.args, &bytes.Buffer{}, &bytes.Buffer{})
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("runReplay(%v) = %v, want %v", tc.args, err, tc.err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("runReplay(%v) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestReplayPayload replays a payload that a real Alertmanager sent (the
// end-to-end test's leak) against the test cluster: the table says the
// Deployment would be annotated, and nothing is written.
func TestReplayPayload(t *testing.T) {
	msg, err := readPayload(repoPath(t, "remediate", "testdata", "alertmanager", "alertmanager-0.25-e2e-leak.json"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := loadPolicy("", builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	cs := leakingCluster()
	var out bytes.Buffer
	q := &testQuerier{answers: map[string]float64{slopeQueryWeb: 1e4}}
	if err := replay(context.Background(), msg, policy, cs, nil, q, serveFlags{}, slog.New(slog.DiscardHandler), &out); err != nil {
		t.Fatalf("replay() error: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "ALERT") || lines[3] != "plans:" ||
		!strings.Contains(lines[4], "would patch Deployment shop/web annotations") {
		t.Fatalf("replay() table:\n%s\nwant a header, one row and its plan", out.String())
	}
	for _, want := range []string{"ContainerMemoryLeak", "Deployment shop/web", "34.3 MiB/h > 1.0 MiB/h", "annotate dry-run", "would-act"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("replay() row %q lacks %q", lines[1], want)
		}
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("replay() made a %s on %s, want reads only", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

// TestKlogThroughSlog checks that client-go's own log lines (klog) come
// out as JSON through the logger that newLogger builds, as every other
// line of serve and agent does.
func TestKlogThroughSlog(t *testing.T) {
	var buf strings.Builder
	logger, err := newLogger(&syncWriter{w: &buf}, "info")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { routeKlog(slog.New(slog.DiscardHandler)) })
	logger.Info("from slog")
	klog.InfoS("from klog", "reflector", "pods")
	klog.Warning("a klog warning")
	klog.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3:\n%s", len(lines), buf.String())
	}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] == nil || m["level"] == nil {
			t.Errorf("log line %q is not a JSON slog record: %v", l, err)
		}
	}
	if !strings.Contains(lines[1], `"reflector":"pods"`) || !strings.Contains(lines[2], "a klog warning") {
		t.Errorf("klog lines = %q, want the key and the warning", lines[1:])
	}
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
