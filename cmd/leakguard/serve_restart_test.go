package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/server"
)

// TestServePDBRefusalAnswered200: the Eviction API's 429 (a
// PodDisruptionBudget allows no disruption; test/e2e's
// TestRestartPDBRefusalHeld gets it from a real API server) reaches
// Alertmanager as a 200 with the decision held pdb, not as a 5xx that
// it would retry at once. The entry lets restart evict the pod, which
// has no controller (evictUnreplicated).
func TestServePDBRefusalAnswered200(t *testing.T) {
	cs := leakingCluster()
	if err := cs.Tracker().Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "lonely", UID: "uid-lonely", ResourceVersion: "1"}}); err != nil {
		t.Fatal(err)
	}
	evictions := 0
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		evictions++
		return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
	})
	reg := builtin.Registry()
	policy, err := remediate.ParsePolicy([]byte("alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: restart, enabled: true, args: {evictUnreplicated: true}}]\n"), reg)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := &testQuerier{answers: map[string]float64{`max(` + rules.RecWorkingSetDeriv + `{namespace="shop",pod="lonely",container="app"})`: 1e4}}
	_, h, err := buildServe(serveDeps{
		flags:  serveFlags{server: server.Config{BearerTokenFile: tokenFile}},
		policy: policy, client: cs, querier: q, logger: slog.New(slog.DiscardHandler), registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"alertname": rules.AlertContainerMemoryLeak, "namespace": "shop", "pod": "lonely", "container": "app", "node": "n1"}
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
	if len(resp.Decisions) != 1 || resp.Decisions[0].Decision != remediate.DecisionHeld || resp.Decisions[0].Reason != restart.ReasonPDB {
		t.Errorf("decisions = %+v, want held %s", resp.Decisions, restart.ReasonPDB)
	}
	if evictions != 1 {
		t.Errorf("evictions = %d, want 1", evictions)
	}
}
