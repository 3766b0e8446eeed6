package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/server"
)

// TestServeClusterFlags: --cluster, --cluster-label and
// --accept-missing-cluster, in serve and in replay, with their defaults:
// no cluster, the label cluster (the rules' default clusterLabel), and
// alerts without the label held.
func TestServeClusterFlags(t *testing.T) {
	var f serveFlags
	if err := serveFlagSet(&f, &bytes.Buffer{}).Parse(nil); err != nil {
		t.Fatal(err)
	}
	if f.cluster != "" || f.clusterLabel != "cluster" || f.acceptMissingCluster {
		t.Errorf("defaults: cluster %q, label %q, accept missing %v; want \"\", \"cluster\", false", f.cluster, f.clusterLabel, f.acceptMissingCluster)
	}
	if got, want := f.clusterLabel, rules.DefaultParams().ClusterLabel; got != want {
		t.Errorf("--cluster-label default %q, want the rules' clusterLabel %q", got, want)
	}
	if err := serveFlagSet(&f, &bytes.Buffer{}).Parse([]string{"--cluster", "eu-1", "--cluster-label", "k8s_cluster", "--accept-missing-cluster"}); err != nil {
		t.Fatal(err)
	}
	o := f.engineOptions(remediate.Options{})
	if o.Cluster != "eu-1" || o.ClusterLabel != "k8s_cluster" || !o.AcceptMissingCluster {
		t.Errorf("engine options %+v, want cluster eu-1, label k8s_cluster, accepting alerts without it", o)
	}
	var help bytes.Buffer
	_ = runReplay(context.Background(), []string{"--help"}, &bytes.Buffer{}, &help)
	for _, name := range []string{"-cluster NAME", "-cluster-label", "-accept-missing-cluster"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("replay --help does not document %s", name)
		}
	}
	err := runServe(context.Background(), []string{"--cluster", "eu-1", "--cluster-label", "k8s-cluster", "--insecure-no-auth", "--kubeconfig", writeKubeconfig(t)}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `cluster label "k8s-cluster"`) {
		t.Errorf("serve --cluster-label k8s-cluster = %v, want an error: not a label name", err)
	}
}

// writeKubeconfig writes a kubeconfig for a server that is never asked.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// countingQuerier records every query and answers the one it knows.
type countingQuerier struct {
	mu      sync.Mutex
	answer  string
	queries []string
}

func (q *countingQuerier) Query(_ context.Context, query string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queries = append(q.queries, query)
	if query != q.answer {
		return model.Vector{}, nil, nil, nil
	}
	return model.Vector{{Metric: model.Metric{}, Value: 1e4, Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}

// TestServeOtherCluster: serve --cluster eu-1 answers a delivery with an
// alert of cluster us-2 with 200, held other-cluster, having asked
// neither Kubernetes nor Prometheus anything; its own cluster's alert
// is checked with the cluster matcher in the query and acted on.
func TestServeOtherCluster(t *testing.T) {
	cs := leakingCluster()
	q := &countingQuerier{answer: `max(` + rules.RecWorkingSetDeriv + `{namespace="shop",pod="web-7d9-abcde",container="app",cluster="eu-1"})`}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry()
	policy, err := loadPolicy("", reg)
	if err != nil {
		t.Fatal(err)
	}
	_, h, err := buildServe(serveDeps{
		flags:  serveFlags{cluster: "eu-1", clusterLabel: "cluster", server: server.Config{BearerTokenFile: tokenFile}},
		policy: policy, client: cs, querier: q, logger: slog.New(slog.DiscardHandler), registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func(labels map[string]string) []remediate.Decision {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, server.AlertsPath, bytes.NewReader(payload(t, labels)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer s3cret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("POST = %d %s, want 200", rec.Code, rec.Body)
		}
		var resp struct {
			Decisions []remediate.Decision `json:"decisions"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		return resp.Decisions
	}
	in := func(cluster string) map[string]string {
		l := map[string]string{"cluster": cluster}
		for k, v := range leakLabels {
			l[k] = v
		}
		return l
	}

	ds := post(in("us-2"))
	if len(ds) != 1 || ds[0].Decision != remediate.DecisionHeld || ds[0].Reason != remediate.ReasonOtherCluster {
		t.Fatalf("us-2's alert: decisions %+v, want held %s", ds, remediate.ReasonOtherCluster)
	}
	if n := len(cs.Actions()); n != 0 || len(q.queries) != 0 {
		t.Errorf("us-2's alert made %d Kubernetes requests and queries %v, want none", n, q.queries)
	}

	ds = post(in("eu-1"))
	if len(ds) != 1 || ds[0].Decision != remediate.DecisionActed {
		t.Fatalf("eu-1's alert: decisions %+v, want acted", ds)
	}
	if diff := cmp.Diff([]string{q.answer}, q.queries); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
}

// TestReplayOtherCluster: replay --cluster holds the saved payload's
// alert, which names no cluster (a single-cluster Alertmanager sent it),
// unless --accept-missing-cluster; then its check carries the matcher.
func TestReplayOtherCluster(t *testing.T) {
	msg, err := readPayload(repoPath(t, "remediate", "testdata", "alertmanager", "alertmanager-0.25-e2e-leak.json"))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := loadPolicy("", builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	scoped := `max(` + rules.RecWorkingSetDeriv + `{namespace="shop",pod="web-7d9-abcde",container="app",cluster="eu-1"})`
	for _, tc := range []struct {
		accept bool
		want   string
		asked  []string
	}{
		{accept: false, want: remediate.ReasonOtherCluster},
		{accept: true, want: remediate.ReasonWouldAct, asked: []string{scoped}},
	} {
		cs := leakingCluster()
		q := &countingQuerier{answer: scoped}
		var out bytes.Buffer
		f := serveFlags{cluster: "eu-1", clusterLabel: "cluster", acceptMissingCluster: tc.accept}
		if err := replay(context.Background(), msg, policy, cs, nil, q, f, slog.New(slog.DiscardHandler), &out); err != nil {
			t.Fatalf("replay(accept missing %v) error: %v", tc.accept, err)
		}
		lines := strings.Split(out.String(), "\n")
		if len(lines) < 2 || !strings.Contains(lines[1], tc.want) {
			t.Errorf("replay(accept missing %v) table:\n%s\nwant its row to say %s", tc.accept, out.String(), tc.want)
		}
		if diff := cmp.Diff(tc.asked, q.queries); diff != "" {
			t.Errorf("replay(accept missing %v) queries (-want +got):\n%s", tc.accept, diff)
		}
	}
}
