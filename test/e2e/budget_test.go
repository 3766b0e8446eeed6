package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/leakguard/leakguard/remediate"
	nodeplugin "github.com/leakguard/leakguard/remediate/node"
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

// budgetState reads the budget Lease in ns as the admin: the rate
// bucket and the disruptive actions by bucket.
func budgetState(ctx context.Context, t *testing.T, ns string) (rate struct {
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
}, disruptions map[string][]time.Time) {
	t.Helper()
	lease, err := needLab(t).Admin.CoordinationV1().Leases(ns).Get(ctx, budgetLease, metav1.GetOptions{})
	must(t, "get the budget Lease", func() error { return err })
	if err := json.Unmarshal([]byte(lease.Annotations["leakguard.io/rate"]), &rate); err != nil {
		t.Fatalf("the Lease's rate %q: %v", lease.Annotations["leakguard.io/rate"], err)
	}
	if err := json.Unmarshal([]byte(lease.Annotations["leakguard.io/disruptions"]), &disruptions); err != nil {
		t.Fatalf("the Lease's disruptions %q: %v", lease.Annotations["leakguard.io/disruptions"], err)
	}
	return rate, disruptions
}

// nodeBudgetPolicy cordons nodes of the test's pools (annotate first for
// NodeOrphanCgroups, cordon alone for NodeCgroupLeak) and restarts
// workloads, under the budget lines given; maxUnschedulable is the
// first verb.
const nodeBudgetPolicy = `
rateLimit: {perMinute: 0.001, burst: 100}
disruption:
  perNamespacePerHour: %d
  nodes: %s
  storm: {targets: 100}
alerts:
  NodeOrphanCgroups:
    target: node
    check: {name: orphan-cgroups, args: {threshold: 20}}
    remediators:
      - name: annotate
      - name: cordon
        enabled: true
        args: {maxUnschedulable: %d, maxUnschedulablePercent: 100, poolLabel: leakguard.io/e2e-pool}
  NodeCgroupLeak:
    target: node
    check: {name: orphan-cgroups, args: {threshold: 20}}
    remediators:
      - name: cordon
        enabled: true
        args: {maxUnschedulable: %d, maxUnschedulablePercent: 100, poolLabel: leakguard.io/e2e-pool}
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: restart, enabled: true}]
`

// TestHeldCordonGivesBudgetBack: cordon held as it applies (the
// cluster's one free slot taken by the first cordon: max-unschedulable)
// gives back the node budget's entry; next to annotate, which acted, the
// rate token stays spent; alone, it goes back too. The Lease shows it,
// and the held nodes stay schedulable.
func TestHeldCordonGivesBudgetBack(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	ns := budgetNamespace(t)
	pool := fmt.Sprintf("held-%d", worldSeq.Add(1))
	for i := range 4 {
		createReadyNode(ctx, t, fmt.Sprintf("%s-%d", pool, i), map[string]string{"leakguard.io/e2e-pool": pool})
	}
	slots := unschedulableNodes(ctx, t) + 1
	e := newEngineWithPolicy(t, leakguardClient(t), fmt.Sprintf(nodeBudgetPolicy, 100, "{perHour: 10}", slots, slots), ns, nil)
	decide := func(alertname, node string) remediate.Decision {
		d, err := e.DecideOne(ctx, alert(alertname, map[string]string{"node": node}))
		if err != nil {
			t.Fatalf("%s %s: %v", alertname, node, err)
		}
		return d
	}
	if d := decide("NodeOrphanCgroups", pool+"-0"); outcome(d, "cordon").Result != resultActed {
		t.Fatalf("the first cordon: %+v, want acted", d)
	}
	d := decide("NodeOrphanCgroups", pool+"-1")
	if outcome(d, "annotate").Result != resultActed || outcome(d, "cordon").Result != resultHeld || !strings.HasPrefix(outcome(d, "cordon").Detail, nodeplugin.ReasonMaxUnschedulable+":") {
		t.Fatalf("the second node: %+v, want annotate acted and cordon held by %s", d, nodeplugin.ReasonMaxUnschedulable)
	}
	rate, dis := budgetState(ctx, t, ns)
	if int(rate.Tokens) != 98 || len(dis["node:*"]) != 1 {
		t.Errorf("after a cordon held next to annotate: %g tokens, %d node actions (%v); want 98 (both alerts acted) and 1 (the held cordon's given back)", rate.Tokens, len(dis["node:*"]), dis)
	}
	d = decide("NodeCgroupLeak", pool+"-2")
	if d.Decision != decisionHeld || d.Reason != nodeplugin.ReasonMaxUnschedulable {
		t.Fatalf("cordon alone: %+v, want held %s", short(d), nodeplugin.ReasonMaxUnschedulable)
	}
	rate, dis = budgetState(ctx, t, ns)
	if int(rate.Tokens) != 98 || len(dis["node:*"]) != 1 {
		t.Errorf("after a cordon held alone: %g tokens, %d node actions (%v); want 98 and 1: nothing acted, both go back", rate.Tokens, len(dis["node:*"]), dis)
	}
	for _, n := range []string{pool + "-1", pool + "-2"} {
		node, err := l.Admin.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		must(t, "get "+n, func() error { return err })
		if node.Spec.Unschedulable {
			t.Errorf("%s unschedulable, want it left schedulable", n)
		}
	}
}

// TestNodeAndNamespaceBudgetsApart: nodes have their own disruption
// budget, 2 an hour over the cluster and 1 per pool, apart from the
// namespaces' 1 an hour: two pools' first nodes are cordoned, their
// second ones held node-budget; of two Deployments in one namespace the
// first is restarted, the second held namespace-budget. The Lease keeps
// each bucket under its own key.
func TestNodeAndNamespaceBudgetsApart(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	ns := budgetNamespace(t)
	seq := worldSeq.Add(1)
	pools := []string{fmt.Sprintf("apart-a-%d", seq), fmt.Sprintf("apart-b-%d", seq)}
	for _, p := range pools {
		for i := range 3 {
			createReadyNode(ctx, t, fmt.Sprintf("%s-%d", p, i), map[string]string{"leakguard.io/e2e-pool": p})
		}
	}
	s := newSpace(t)
	ws := []workload{s.workload(t, "Deployment", "web0", 3), s.workload(t, "Deployment", "web1", 3)}
	slots := unschedulableNodes(ctx, t) + 10
	e := newPolicyEngine(t, leakguardClient(t), fmt.Sprintf(nodeBudgetPolicy, 1, "{perHour: 2, poolLabel: leakguard.io/e2e-pool, perPoolPerHour: 1}", slots, slots), policyOptions{namespace: ns})
	var got []string
	for _, n := range []string{pools[0] + "-0", pools[0] + "-1", pools[1] + "-0", pools[1] + "-1"} {
		d, err := e.e.DecideOne(ctx, alert("NodeCgroupLeak", map[string]string{"node": n}))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		got = append(got, n+": "+d.Decision+"/"+d.Reason)
	}
	for _, w := range ws {
		d := e.decide(ctx, t, w.leak())
		got = append(got, w.Name+": "+d.Decision+"/"+d.Reason)
	}
	want := []string{
		pools[0] + "-0: " + decisionActed + "/",
		pools[0] + "-1: " + decisionHeld + "/" + remediate.ReasonNodeBudget,
		pools[1] + "-0: " + decisionActed + "/",
		pools[1] + "-1: " + decisionHeld + "/" + remediate.ReasonNodeBudget,
		"web0: " + decisionActed + "/",
		"web1: " + decisionHeld + "/" + reasonNamespaceBudget,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decisions = %q, want %q", got, want)
	}
	for i, n := range []string{pools[0] + "-0", pools[0] + "-1", pools[1] + "-0", pools[1] + "-1"} {
		node, err := l.Admin.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		must(t, "get "+n, func() error { return err })
		if node.Spec.Unschedulable != (i%2 == 0) {
			t.Errorf("%s unschedulable %v, want %v", n, node.Spec.Unschedulable, i%2 == 0)
		}
	}
	_, dis := budgetState(ctx, t, ns)
	counts := map[string]int{}
	for k, v := range dis {
		counts[k] = len(v)
	}
	if want := map[string]int{"node:*": 2, "node-pool:" + pools[0]: 1, "node-pool:" + pools[1]: 1, s.Namespace: 1}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("the Lease's disruptions by bucket = %v, want %v", counts, want)
	}
}

// TestRateBudgetSkewedEngines: two engines whose clocks stand 30 s
// apart take turns at 20 alerts at one instant against a burst of 5 and
// a token every 30 s. The bucket is judged on the API server's clock
// (the Date of its answers), so they act 5 times and once more per 30 s
// the test takes; on their own clocks the one ahead found a token
// refilled at each of its takes. The Lease's time is the server's, not
// the engine's ahead.
func TestRateBudgetSkewedEngines(t *testing.T) {
	const policy = `
rateLimit: {perMinute: 2, burst: 5}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: annotate}]
`
	ctx := testContext(t)
	s := newSpace(t)
	var ws []workload
	for i := range 20 {
		ws = append(ws, s.workload(t, "Deployment", fmt.Sprintf("web%d", i), 1))
	}
	ns := budgetNamespace(t)
	start := time.Now()
	clocks := []*clock{newClock(start), newClock(start.Add(30 * time.Second))}
	var engines [2]*policyEngine
	for i := range engines {
		engines[i] = newPolicyEngine(t, leakguardClient(t), policy, policyOptions{namespace: ns, now: clocks[i].now})
	}
	acted := 0
	for i, w := range ws {
		if d := engines[i%2].decideRetrying(ctx, t, w.leak()); d.Decision == decisionActed {
			acted++
		}
	}
	took := time.Since(start)
	// A token every 30 s of the server's time, which runs with this
	// machine's: the bound is what the test's own duration refilled.
	if most := 5 + int(took/(30*time.Second)); acted < 5 || acted > most {
		t.Errorf("%d of 20 alerts acted, want 5 to %d (the burst and what %s refilled)", acted, most, took.Round(time.Second))
	}
	rate, _ := budgetState(ctx, t, ns)
	if end := time.Now(); rate.At.Before(start.Add(-2*time.Second)) || rate.At.After(end.Add(2*time.Second)) {
		t.Errorf("the bucket's time %s is not the server's (between %s and %s); the engine ahead reads %s", rate.At, start, end, clocks[1].now())
	}
}

// TestStormPauseSurvivesBudgetLeaseDeletion: a storm pause is recorded
// in the storm Lease as well as the budget Lease. Deleting the budget
// Lease by hand during the pause does not lift it: the next restart is
// held storm, its Deployment's template untouched. Deleting both
// Leases lifts it, and the next restart acts.
func TestStormPauseSurvivesBudgetLeaseDeletion(t *testing.T) {
	const policy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  storm: {targets: 1, window: 10m, pause: 30m}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: restart, enabled: true}]
`
	l := needLab(t)
	ctx := testContext(t)
	s := newSpace(t)
	ns := budgetNamespace(t)
	var ws []workload
	for i := range 4 {
		ws = append(ws, s.workload(t, "Deployment", fmt.Sprintf("web%d", i), 3))
	}
	clk := newClock(time.Now().UTC().Truncate(time.Second))
	e := newPolicyEngine(t, leakguardClient(t), policy, policyOptions{namespace: ns, now: clk.now})
	restarted := func(w workload) bool {
		_, tmpl := templateOf(t, w.object(ctx, t))
		return tmpl.Annotations[annotationRestartedAt] != ""
	}
	if d := e.decide(ctx, t, ws[0].leak()); d.Decision != decisionActed {
		t.Fatalf("the first restart: %+v, want acted", short(d))
	}
	if d := e.decide(ctx, t, ws[1].leak()); d.Decision != decisionHeld || d.Reason != reasonStorm {
		t.Fatalf("the second target: %+v, want held %s (the storm)", short(d), reasonStorm)
	}
	leases := l.Admin.CoordinationV1().Leases(ns)
	storm, err := leases.Get(ctx, remediate.StormLeaseName, metav1.GetOptions{})
	must(t, "get the storm Lease", func() error { return err })
	if rec := storm.Annotations["leakguard.io/storm"]; !strings.Contains(rec, "2 targets needed a disruptive action") {
		t.Errorf("the storm Lease's record = %q, want why", rec)
	}
	must(t, "delete the budget Lease", func() error { return leases.Delete(ctx, budgetLease, metav1.DeleteOptions{}) })
	clk.advance(time.Minute)
	before := ws[2].object(ctx, t).GetResourceVersion()
	if d := e.decide(ctx, t, ws[2].leak()); d.Decision != decisionHeld || d.Reason != reasonStorm {
		t.Errorf("after the budget Lease's deletion: %+v, want held %s", short(d), reasonStorm)
	}
	if rv := ws[2].object(ctx, t).GetResourceVersion(); rv != before || restarted(ws[2]) {
		t.Errorf("%s: resourceVersion %s → %s, restarted %v; want it untouched", ws[2].Target(), before, rv, restarted(ws[2]))
	}
	for _, name := range []string{budgetLease, remediate.StormLeaseName} {
		must(t, "delete Lease "+name, func() error { return leases.Delete(ctx, name, metav1.DeleteOptions{}) })
	}
	if d := e.decide(ctx, t, ws[3].leak()); d.Decision != decisionActed || !restarted(ws[3]) {
		t.Errorf("after both Leases' deletion: %+v, restarted %v; want it restarted", short(d), restarted(ws[3]))
	}
}

// TestRateBudgetClockBehindNotStalled: the engine whose clock runs 30 s
// ahead takes the one token (burst 1, a token a second); the engine with
// the machine's clock, 30 s behind, acts as soon as the server's clock
// has refilled one, long before its own clock reaches the time the
// engine ahead took at. On their own clocks it found the bucket's time
// 30 s in its future, and nothing refilled until its clock got there.
func TestRateBudgetClockBehindNotStalled(t *testing.T) {
	const policy = `
rateLimit: {perMinute: 60, burst: 1}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: annotate}]
`
	ctx := testContext(t)
	s := newSpace(t)
	ws := []workload{s.workload(t, "Deployment", "web0", 1), s.workload(t, "Deployment", "web1", 1)}
	ns := budgetNamespace(t)
	ahead := func() time.Time { return time.Now().Add(30 * time.Second) }
	first := newPolicyEngine(t, leakguardClient(t), policy, policyOptions{namespace: ns, now: ahead})
	behind := newPolicyEngine(t, leakguardClient(t), policy, policyOptions{namespace: ns})
	if d := first.decideRetrying(ctx, t, ws[0].leak()); d.Decision != decisionActed {
		t.Fatalf("the engine ahead: %+v, want acted", short(d))
	}
	tookAt := ahead() // at or after the take, on the clock ahead
	// Poll until the engine behind acts, bounded well before its own
	// clock reaches the time the engine ahead took at.
	for {
		d := behind.decideRetrying(ctx, t, ws[1].leak())
		if d.Decision == decisionActed {
			break
		}
		if d.Reason != reasonRateLimited {
			t.Fatalf("the engine behind: %+v, want acted or held %s", short(d), reasonRateLimited)
		}
		if !time.Now().Before(tookAt.Add(-10 * time.Second)) {
			t.Fatalf("the engine behind still held %s 20 s after the take: stalled by the clocks' skew", reasonRateLimited)
		}
		time.Sleep(200 * time.Millisecond) // poll
	}
	if ws[1].object(ctx, t).GetAnnotations()[annotationFinding] == "" {
		t.Errorf("%s acted but not annotated", ws[1].Target())
	}
}
