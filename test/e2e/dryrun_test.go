package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"
)

// TestDryRunChangesNothing runs alerts for every kind of target through an
// engine in dry-run, twice, and checks what reached the API server: no
// object changed (every resourceVersion as it was, so no annotation and
// no cooldown claim), and the only writes were the LeakguardDryRun Events
// that dry-run records by design. A dry-run that logged "would act" and
// acted (kube-cleanup-operator#47) fails here.
func TestDryRunChangesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin
	before := w.objectVersions(ctx, t, admin)

	var wr wire
	e := newEngine(t, recordedClient(t, &wr), engineOptions{dryRun: true})
	alerts := []template.Alert{leakAlert(w), oomAlert(w), orphanAlert(w)}
	for round := 0; round < 2; round++ {
		for _, a := range alerts {
			d := e.decide(ctx, t, a)
			if d.Decision != decisionDryRun || d.Reason != reasonWouldAct {
				t.Errorf("round %d, %s: decision %+v, want %s (%s)", round, a.Labels["alertname"], d, decisionDryRun, reasonWouldAct)
			}
		}
	}
	if e.querier.queries() == 0 {
		t.Error("the checks asked Prometheus nothing: dry-run must run them as a real run does")
	}

	assertUnchanged(ctx, t, w, before)
	for _, r := range wr.writes() {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/events") {
			t.Errorf("dry-run sent %s, want no write but Events", r)
		}
	}
	for _, ev := range append(events(ctx, t, admin, w.Namespace, w.Deployment), append(
		events(ctx, t, admin, w.Namespace, w.Pod),
		events(ctx, t, admin, "default", w.Node)...)...) {
		if ev.Reason != eventDryRun {
			t.Errorf("dry-run recorded Event %s with reason %s, want only %s", ev.Name, ev.Reason, eventDryRun)
		}
	}
	if got, want := len(wr.writes()), 2*len(alerts); got != want {
		t.Errorf("dry-run sent %d writes, want %d (one %s Event per decision): %v", got, want, eventDryRun, wr.writes())
	}
}

// TestReadOnlyWritesNothing is replay's mode: the same alerts, and not a
// single write request, not even an Event.
func TestReadOnlyWritesNothing(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin
	before := w.objectVersions(ctx, t, admin)

	var wr wire
	e := newEngine(t, recordedClient(t, &wr), engineOptions{readOnly: true})
	for _, a := range []template.Alert{leakAlert(w), oomAlert(w), orphanAlert(w)} {
		if d := e.decide(ctx, t, a); d.Decision != decisionDryRun || d.Reason != reasonWouldAct {
			t.Errorf("%s: decision %+v, want %s (%s)", a.Labels["alertname"], d, decisionDryRun, reasonWouldAct)
		}
	}
	assertUnchanged(ctx, t, w, before)
	if writes := wr.writes(); len(writes) != 0 {
		t.Errorf("read-only engine sent writes: %v", writes)
	}
	n := len(events(ctx, t, admin, w.Namespace, w.Deployment)) + len(events(ctx, t, admin, w.Namespace, w.Pod)) +
		len(events(ctx, t, admin, "default", w.Node))
	if n != 0 {
		t.Errorf("read-only engine left %d Events, want none", n)
	}
}
