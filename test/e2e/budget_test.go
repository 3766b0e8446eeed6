package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// twoEngines builds two engines, as two replicas of serve, that act
// through clients of their own and share the budget Lease in ns; both
// run on clk, so that the rate bucket refills nothing during the test.
func twoEngines(t *testing.T, policy, ns string, clk *clock) [2]*policyEngine {
	t.Helper()
	var out [2]*policyEngine
	for i := range out {
		out[i] = newPolicyEngine(t, leakguardClient(t), policy, policyOptions{namespace: ns, now: clk.now})
	}
	return out
}

// decideAll decides the leak alert of every workload at once, the i-th
// through engine i%2, each in its own goroutine, and returns the
// decisions by workload.
func decideAll(t *testing.T, engines [2]*policyEngine, ws []workload) []fullDecision {
	t.Helper()
	ctx := testContext(t)
	out := make([]fullDecision, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = engines[i%2].decideRetrying(ctx, t, w.leak())
		}()
	}
	wg.Wait()
	return out
}

// TestRateBudgetAcrossEngines: two engines share one global rate of 3
// actions (burst 3, refilled once in 1000 minutes); 8 alerts on 8
// Deployments decided at once, half by each engine, act exactly 3 times
// in all, and the other 5 are held rate-limited.
func TestRateBudgetAcrossEngines(t *testing.T) {
	const policy = `
rateLimit: {perMinute: 0.001, burst: 3}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: annotate}]
`
	ctx := testContext(t)
	s := newSpace(t)
	var ws []workload
	for i := range 8 {
		ws = append(ws, s.workload(t, "Deployment", fmt.Sprintf("web%d", i), 1))
	}
	engines := twoEngines(t, policy, budgetNamespace(t), newClock(time.Now()))

	counts := map[string]int{}
	for _, d := range decideAll(t, engines, ws) {
		counts[d.Decision+"/"+d.Reason]++
	}
	if want := map[string]int{decisionActed + "/": 3, decisionHeld + "/" + reasonRateLimited: 5}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("decisions by outcome = %v, want %v", counts, want)
	}
	annotated := 0
	for _, w := range ws {
		if w.object(ctx, t).GetAnnotations()[annotationFinding] != "" {
			annotated++
		}
	}
	if annotated != 3 {
		t.Errorf("Deployments annotated: %d, want 3", annotated)
	}
}

// TestNamespaceDisruptionBudgetAcrossEngines: at most 2 disruptive
// actions per namespace per hour, counted across two engines: of 5
// ready Deployments in one namespace decided at once, exactly 2 are
// restarted and 3 held namespace-budget; a Deployment in another
// namespace is restarted all the same.
func TestNamespaceDisruptionBudgetAcrossEngines(t *testing.T) {
	const policy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 2
  storm: {targets: 100, window: 10m, pause: 30m}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: restart, enabled: true}]
`
	ctx := testContext(t)
	s := newSpace(t)
	var ws []workload
	for i := range 5 {
		ws = append(ws, s.workload(t, "Deployment", fmt.Sprintf("web%d", i), 3))
	}
	other := newSpace(t).workload(t, "Deployment", "web", 3)
	engines := twoEngines(t, policy, budgetNamespace(t), newClock(time.Now()))

	counts := map[string]int{}
	for _, d := range decideAll(t, engines, ws) {
		counts[d.Decision+"/"+d.Reason]++
	}
	if want := map[string]int{decisionActed + "/": 2, decisionHeld + "/" + reasonNamespaceBudget: 3}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("decisions in %s by outcome = %v, want %v", s.Namespace, counts, want)
	}
	restarted := 0
	for _, w := range ws {
		if _, tmpl := templateOf(t, w.object(ctx, t)); tmpl.Annotations[annotationRestartedAt] != "" {
			restarted++
		}
	}
	if restarted != 2 {
		t.Errorf("Deployments restarted in %s: %d, want 2", s.Namespace, restarted)
	}
	if d := engines[1].decide(ctx, t, other.leak()); d.Decision != decisionActed {
		t.Errorf("%s in another namespace: decision %+v, want acted", other.Target(), short(d))
	}
}

// TestStormGuardAcrossEngines: the storm guard (more than 2 targets
// needing a disruptive action within 10 minutes pauses every disruptive
// remediator for 30 minutes), counted across two engines that take turns:
// the first two Deployments are restarted; the third target is the
// storm, and neither it nor the fourth is restarted, while annotate goes
// on annotating every one. The Lease records until when and why.
func TestStormGuardAcrossEngines(t *testing.T) {
	const policy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  storm: {targets: 2, window: 10m, pause: 30m}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators:
      - name: annotate
      - name: restart
        enabled: true
`
	ctx := testContext(t)
	s := newSpace(t)
	ns := budgetNamespace(t)
	clk := newClock(time.Now().UTC().Truncate(time.Second))
	engines := twoEngines(t, policy, ns, clk)
	for i := range 4 {
		w := s.workload(t, "Deployment", fmt.Sprintf("web%d", i), 3)
		d := engines[i%2].decide(ctx, t, w.leak())
		wantRestart := resultActed
		if i >= 2 {
			wantRestart = resultHeld
		}
		if d.Decision != decisionActed || outcome(d, "annotate").Result != resultActed || outcome(d, "restart").Result != wantRestart {
			t.Errorf("target %d (%s), engine %d: %+v, want acted with annotate acted and restart %s", i+1, w.Target(), i%2, d, wantRestart)
		}
		if i >= 2 && !strings.HasPrefix(outcome(d, "restart").Detail, reasonStorm+":") {
			t.Errorf("target %d: restart's detail = %q, want it held by the %s guard", i+1, outcome(d, "restart").Detail, reasonStorm)
		}
		obj := w.object(ctx, t)
		_, tmpl := templateOf(t, obj)
		if restarted := tmpl.Annotations[annotationRestartedAt] != ""; restarted != (i < 2) {
			t.Errorf("target %d restarted: %v, want %v", i+1, restarted, i < 2)
		}
		if obj.GetAnnotations()[annotationFinding] == "" {
			t.Errorf("target %d not annotated: annotating must go on in a storm", i+1)
		}
		clk.advance(time.Minute)
	}

	lease, err := needLab(t).Admin.CoordinationV1().Leases(ns).Get(ctx, budgetLease, metav1.GetOptions{})
	must(t, "get the budget Lease", func() error { return err })
	var storm struct {
		PausedUntil time.Time `json:"pausedUntil"`
		Why         string    `json:"why"`
	}
	if err := json.Unmarshal([]byte(lease.Annotations["leakguard.io/storm"]), &storm); err != nil {
		t.Fatalf("the Lease's storm record %q: %v", lease.Annotations["leakguard.io/storm"], err)
	}
	// The third target started the pause, at the start time + 2 min.
	if want := clk.now().Add(-2 * time.Minute).Add(30 * time.Minute); !storm.PausedUntil.Equal(want) || !strings.Contains(storm.Why, "3 targets needed a disruptive action within 10m0s") {
		t.Errorf("storm record = %+v, want paused until %s because 3 targets needed a disruptive action", storm, want)
	}
}
