package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/leakguard/leakguard/remediate"
)

// TestStaleResourceVersionConflicts is the premise of the cooldown claim
// (remediate/guard_cooldown.go): a JSON merge patch that carries
// metadata.resourceVersion is applied only to that version. The API
// server answers a stale one with 409 Conflict and writes nothing, rather
// than retrying the patch on the new version as it does for a patch
// without one.
func TestStaleResourceVersionConflicts(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin
	c := leakguardClient(t)

	read, err := c.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stale := read.ResourceVersion
	// Someone else writes in between (another replica's claim, a rollout).
	if _, err := admin.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	claim := func(rv string) []byte {
		b, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": rv,
			"annotations":     map[string]string{cooldownAnnotation: time.Now().UTC().Format(time.RFC3339)},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	_, err = c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.MergePatchType, claim(stale), metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Fatalf("merge patch with stale resourceVersion %s: error %v, want 409 Conflict", stale, err)
	}
	now, err := admin.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := now.Annotations[cooldownAnnotation]; ok {
		t.Errorf("the refused patch wrote %s=%q", cooldownAnnotation, v)
	}

	// The same patch on the version just read goes through.
	if _, err := c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.MergePatchType, claim(now.ResourceVersion), metav1.PatchOptions{}); err != nil {
		t.Fatalf("merge patch with current resourceVersion %s: %v", now.ResourceVersion, err)
	}
}

// TestTwoEnginesActOnce runs two engines, as two replicas of leakguard
// serve would, on the same alert at once. Each reads the target, and
// neither writes until both have read (a barrier before each one's first
// write), so both claim the cooldown on the same resourceVersion: the API
// server lets one claim through and refuses the other with 409. The loser
// re-reads, finds the winner's claim and holds with reason cooldown. One
// action, one LeakguardActed Event.
func TestTwoEnginesActOnce(t *testing.T) {
	w := newWorld(t)
	ctx := testContext(t)
	admin := needLab(t).Admin

	gate := newBarrier(2, 20*time.Second)
	wires := []*wire{{beforeFirstWrite: gate.wait}, {beforeFirstWrite: gate.wait}}
	engines := []*engine{
		newEngine(t, recordedClient(t, wires[0]), engineOptions{}),
		newEngine(t, recordedClient(t, wires[1]), engineOptions{}),
	}
	got := make([]decision, len(engines))
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e.e.DecideOne(ctx, leakAlert(w))
			if err != nil {
				t.Errorf("engine %d: DecideOne error: %v", i, err)
			}
			got[i] = decision{Target: d.Target, Decision: d.Decision, Reason: d.Reason}
		}()
	}
	wg.Wait()

	target := "Deployment " + w.Namespace + "/" + w.Deployment
	acted, held := 0, 0
	for i, d := range got {
		switch d {
		case decision{Target: target, Decision: decisionActed}:
			acted++
		case decision{Target: target, Decision: decisionHeld, Reason: reasonCooldown}:
			held++
		default:
			t.Errorf("engine %d: decision %+v, want acted or held (cooldown) on %s", i, d, target)
		}
	}
	if acted != 1 || held != 1 {
		t.Errorf("decisions %+v: %d acted and %d held, want one of each", got, acted, held)
	}

	// The claims really raced: exactly one cooldown patch of the Deployment
	// came back 409. (The budget Lease's updates may conflict too, and are
	// retried on the fresh Lease; they are not the claim.)
	conflicts := 0
	for _, wr := range wires {
		for _, r := range wr.writes() {
			if r.Status == http.StatusConflict && r.Method == http.MethodPatch && strings.HasSuffix(r.Path, "/deployments/"+w.Deployment) {
				conflicts++
			}
		}
	}
	if conflicts != 1 {
		t.Errorf("409 answers to the two engines' claims on the Deployment: %d, want 1 (requests: %v %v)", conflicts, wires[0].writes(), wires[1].writes())
	}

	evs := reasons(events(ctx, t, admin, w.Namespace, w.Deployment))
	if evs[eventActed] != 1 || evs[eventHeld] != 1 || len(evs) != 2 {
		t.Errorf("Events on the Deployment by reason = %v, want one %s and one %s", evs, eventActed, eventHeld)
	}
	dep, err := admin.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Annotations[cooldownAnnotation] == "" || dep.Annotations[annotationFinding] == "" {
		t.Errorf("Deployment annotations = %v, want the finding and the cooldown claim", dep.Annotations)
	}
}

// TestTwoEnginesActOnceOnWholePlan is TestTwoEnginesActOnce with a plan of
// two remediators, annotate and restart. Both engines take the disruption
// budget, then claim on the same resourceVersion (each one's first patch
// of the Deployment waits until both are there). The cooldowns of the
// whole plan are claimed in one patch, so the winner acts on both and the
// loser holds both: two replicas never split a plan, one annotating and
// the other restarting.
func TestTwoEnginesActOnceOnWholePlan(t *testing.T) {
	// restartPolicy with annotate first.
	policy := strings.Replace(restartPolicy, "    remediators:\n", "    remediators:\n      - name: annotate\n", 1)
	if policy == restartPolicy {
		t.Fatal("restartPolicy has no remediators list to add annotate to")
	}
	ctx := testContext(t)
	admin := needLab(t).Admin
	w := newSpace(t).workload(t, "Deployment", "web", 3)
	budgets := budgetNamespace(t)
	deployment := "/namespaces/" + w.Namespace + "/deployments/" + w.Name
	gate := newBarrier(2, 20*time.Second)
	claimsDeployment := func(req *http.Request) bool {
		return req.Method == http.MethodPatch && strings.HasSuffix(req.URL.Path, deployment)
	}
	wires := []*wire{{beforeFirstWrite: gate.wait, holdsWrite: claimsDeployment}, {beforeFirstWrite: gate.wait, holdsWrite: claimsDeployment}}
	engines := []*policyEngine{
		newPolicyEngine(t, recordedClient(t, wires[0]), policy, policyOptions{namespace: budgets}),
		newPolicyEngine(t, recordedClient(t, wires[1]), policy, policyOptions{namespace: budgets}),
	}
	got := make([]remediate.Decision, len(engines))
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e.e.DecideOne(ctx, leakOf(w.leak()))
			if err != nil {
				t.Errorf("engine %d: DecideOne error: %v", i, err)
			}
			got[i] = d
		}()
	}
	wg.Wait()

	acted, held := 0, 0
	for i, d := range got {
		switch short(d) {
		case decision{Target: w.Target(), Decision: decisionActed}:
			acted++
			for _, o := range d.Remediators {
				if o.Result != remediate.ResultActed {
					t.Errorf("engine %d acted, but %s %s: %s", i, o.Name, o.Result, o.Detail)
				}
			}
		case decision{Target: w.Target(), Decision: decisionHeld, Reason: reasonCooldown}:
			held++
			for _, o := range d.Remediators {
				if o.Result != remediate.ResultHeld || !strings.HasPrefix(o.Detail, reasonCooldown+":") {
					t.Errorf("engine %d held, but %s %s: %s", i, o.Name, o.Result, o.Detail)
				}
			}
		default:
			t.Errorf("engine %d: decision %+v (%s), want acted or held (cooldown) on %s", i, short(d), d.Message, w.Target())
		}
		if len(d.Remediators) != 2 {
			t.Errorf("engine %d: remediators %+v, want annotate and restart", i, d.Remediators)
		}
	}
	if acted != 1 || held != 1 {
		t.Errorf("decisions %+v: %d acted and %d held, want one of each", got, acted, held)
	}

	conflicts := 0
	for _, wr := range wires {
		for _, r := range wr.writes() {
			if r.Status == http.StatusConflict && r.Method == http.MethodPatch && strings.HasSuffix(r.Path, deployment) {
				conflicts++
			}
		}
	}
	if conflicts != 1 {
		t.Errorf("409 answers to the two engines' claims on the Deployment: %d, want 1 (requests: %v %v)", conflicts, wires[0].writes(), wires[1].writes())
	}

	dep, err := admin.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Annotations[remediate.CooldownAnnotation("annotate")] == "" || dep.Annotations[remediate.CooldownAnnotation("restart")] == "" || dep.Annotations[annotationFinding] == "" {
		t.Errorf("Deployment annotations = %v, want both cooldown claims and the finding", dep.Annotations)
	}
	if dep.Spec.Template.Annotations[annotationRestartedAt] == "" {
		t.Errorf("pod template annotations = %v, want one restart", dep.Spec.Template.Annotations)
	}
	var hist map[string][]time.Time
	if err := json.Unmarshal([]byte(dep.Annotations[annotationRestartHistory]), &hist); err != nil || len(hist["ContainerMemoryLeak"]) != 1 {
		t.Errorf("%s = %q (%v), want one restart", annotationRestartHistory, dep.Annotations[annotationRestartHistory], err)
	}
	evs := reasons(events(ctx, t, admin, w.Namespace, w.Name))
	if evs[eventActed] != 1 || evs[eventHeld] != 1 || len(evs) != 2 {
		t.Errorf("Events on the Deployment by reason = %v, want one %s and one %s", evs, eventActed, eventHeld)
	}
}
