package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/node"
	"github.com/leakguard/leakguard/server"
)

// serve --dry-run finds a drain whose replica stopped: it writes
// nothing, and /readyz stays ready while its "drains" note names the
// waiting drain.
func TestServeReadyzShowsAWaitingDrain(t *testing.T) {
	now := time.Now()
	rec, err := json.Marshal(map[string]any{"alert": "NodeCgroupLeak", "state": node.DrainRunning, "started": now.Add(-5 * time.Minute),
		"deadline": now.Add(5 * time.Minute), "heartbeat": now.Add(-3 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{node.AnnotationDrain: string(rec)}},
		Spec: corev1.NodeSpec{Unschedulable: true}})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reg := builtin.Registry()
	policy, err := loadPolicy("", reg)
	if err != nil {
		t.Fatal(err)
	}
	e, h, err := buildServe(serveDeps{
		flags:  serveFlags{dryRun: true, server: server.Config{BearerTokenFile: tokenFile}},
		policy: policy, client: cs, querier: &testQuerier{}, logger: slog.New(slog.DiscardHandler), registry: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	readyz := func() (int, map[string]string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		var body struct {
			Checks map[string]string `json:"checks"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/readyz body %q: %v", rec.Body, err)
		}
		return rec.Code, body.Checks
	}
	if code, checks := readyz(); code != http.StatusOK || checks["drains"] != "ok" {
		t.Fatalf("before: /readyz = %d %v, want 200 with drains ok", code, checks)
	}
	if resumed, reported, err := e.Resume(context.Background()); err != nil || resumed+reported != 0 {
		t.Fatalf("ResumeDrains = %d, %d, %v; want nothing resumed or reported", resumed, reported, err)
	}
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); v != "get" && v != "list" {
			t.Errorf("serve --dry-run wrote: %s %s", v, a.GetResource().Resource)
		}
	}
	code, checks := readyz()
	if code != http.StatusOK || !strings.HasPrefix(checks["drains"], "1 waiting: Node n1 (NodeCgroupLeak") || !strings.Contains(checks["drains"], "--dry-run") {
		t.Errorf("/readyz = %d %v, want 200 with the drain of n1 waiting for --dry-run", code, checks)
	}
}
