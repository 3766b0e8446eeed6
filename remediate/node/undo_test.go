package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/remediatetest"

	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const undoPolicy = `
alerts:
  NodeOrphanCgroups:
    target: node
    check: {name: orphan-cgroups, args: {threshold: 20}}
    remediators:
      - name: cordon
        enabled: true
        args: {uncordonOnResolve: true}
`

// switchQuerier answers every query with its current answer or error,
// and counts the queries.
type switchQuerier struct {
	mu     sync.Mutex
	answer model.Value
	err    error
	asked  int
}

func (q *switchQuerier) Query(context.Context, string, time.Time, ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.asked++
	return q.answer, nil, nil, q.err
}

func (q *switchQuerier) set(answer model.Value, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.answer, q.err, q.asked = answer, err, 0
}

// personPatch patches node as a person's client would, under its own
// field manager.
func personPatch(t *testing.T, cs *fake.Clientset, node, manager, patch string) {
	t.Helper()
	if _, err := cs.CoreV1().Nodes().Patch(context.Background(), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: manager}); err != nil {
		t.Fatalf("%s patches %s: %v", manager, node, err)
	}
}

func drainRecord(t *testing.T, s drainState) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationDrain: string(b)}}})
	return string(v)
}

// A resolved alert uncordons leakguard's cordon only when Prometheus
// answers that the finding is gone, no drain of leakguard's runs on the
// node, and spec.unschedulable is leakguard's write alone. Every hold
// writes nothing to the node.
func TestUndoAsksPrometheusAndLeavesOthersCordons(t *testing.T) {
	const name = "node-3"
	clean, leaking := remediatetest.Vec(3), remediatetest.Vec(42)
	for _, tc := range []struct {
		name string
		// before runs before leakguard's cordon, after between the cordon
		// and the resolve.
		before, after func(*testing.T, *fake.Clientset)
		answer        model.Value
		queryErr      error
		want          string // "uncordon" or the reason that holds
		asked         bool   // whether the resolve asks Prometheus
	}{
		{name: "the check answers clear", answer: clean, want: "uncordon", asked: true},
		{name: "still leaking", answer: leaking, want: remediate.ReasonStillFiring, asked: true},
		{name: "no answer (no series: the target down)", answer: model.Vector{}, want: remediate.ReasonCheckUnanswered, asked: true},
		{name: "a stale answer", answer: model.Vector{{Value: 3, Timestamp: model.TimeFromUnixNano(remediatetest.Now.Add(-time.Hour).UnixNano())}}, want: remediate.ReasonCheckUnanswered, asked: true},
		{name: "query error", queryErr: errors.New("connection refused"), want: remediate.ReasonCheckUnanswered, asked: true},
		{name: "own drain running", answer: clean, want: ReasonDrainInProgress, after: func(t *testing.T, cs *fake.Clientset) {
			personPatch(t, cs, name, remediate.FieldManager, drainRecord(t, drainState{Alert: "NodeOrphanCgroups", State: DrainRunning, Started: remediatetest.Now.Add(-time.Minute), Deadline: remediatetest.Now.Add(9 * time.Minute), Heartbeat: remediatetest.Now.Add(-10 * time.Second), Left: 2}))
		}},
		{name: "own drain, heartbeat stale but before its deadline (a replica may resume it)", answer: clean, want: ReasonDrainInProgress, after: func(t *testing.T, cs *fake.Clientset) {
			personPatch(t, cs, name, remediate.FieldManager, drainRecord(t, drainState{Alert: "NodeOrphanCgroups", State: DrainRunning, Started: remediatetest.Now.Add(-5 * time.Minute), Deadline: remediatetest.Now.Add(5 * time.Minute), Heartbeat: remediatetest.Now.Add(-4 * time.Minute), Left: 2}))
		}},
		{name: "drain record that does not parse", answer: clean, want: ReasonDrainInProgress, after: func(t *testing.T, cs *fake.Clientset) {
			personPatch(t, cs, name, remediate.FieldManager, `{"metadata":{"annotations":{"leakguard.io/drain":"{"}}}`)
		}},
		{name: "own drain done", answer: clean, want: "uncordon", asked: true, after: func(t *testing.T, cs *fake.Clientset) {
			personPatch(t, cs, name, remediate.FieldManager, drainRecord(t, drainState{Alert: "NodeOrphanCgroups", State: DrainDone, Started: remediatetest.Now.Add(-5 * time.Minute), Deadline: remediatetest.Now.Add(5 * time.Minute), Heartbeat: remediatetest.Now.Add(-time.Minute)}))
		}},
		{name: "own drain past its deadline, heartbeat stale", answer: clean, want: "uncordon", asked: true, after: func(t *testing.T, cs *fake.Clientset) {
			personPatch(t, cs, name, remediate.FieldManager, drainRecord(t, drainState{Alert: "NodeOrphanCgroups", State: DrainRunning, Started: remediatetest.Now.Add(-20 * time.Minute), Deadline: remediatetest.Now.Add(-10 * time.Minute), Heartbeat: remediatetest.Now.Add(-10 * time.Minute)}))
		}},
		{name: "a person uncordoned and cordoned again", answer: clean, want: ReasonNotOurs, after: func(t *testing.T, cs *fake.Clientset) {
			personPatch(t, cs, name, "kubectl-cordon", `{"spec":{"unschedulable":false}}`)
			personPatch(t, cs, name, "kubectl-cordon", `{"spec":{"unschedulable":true}}`)
		}},
		{name: "a person's server-side apply of the same value", answer: clean, want: ReasonNotOurs, after: func(t *testing.T, cs *fake.Clientset) {
			force := true
			if _, err := cs.CoreV1().Nodes().Patch(context.Background(), name, types.ApplyPatchType, []byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-3"},"spec":{"unschedulable":true}}`), metav1.PatchOptions{FieldManager: "ops-team", Force: &force}); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "managedFields cleared", answer: clean, want: ReasonNotOurs, after: func(t *testing.T, cs *fake.Clientset) {
			// The node as read shows no managedFields (a client stripped
			// them).
			cs.PrependReactor("get", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
				obj, err := cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("nodes"), "", action.(k8stesting.GetAction).GetName())
				if err != nil {
					return true, nil, err
				}
				n := obj.(*corev1.Node).DeepCopy()
				n.ManagedFields = nil
				return true, n, nil
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &switchQuerier{answer: leaking}
			objs := append(remediatetest.Nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})
			e, cs := newTestEngine(t, engineSetup{policy: undoPolicy, objs: objs, opts: func(o *remediate.Options) { o.Querier = q }})
			if tc.before != nil {
				tc.before(t, cs)
			}
			a := remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": name})
			if d, err := e.DecideOne(context.Background(), a); err != nil || d.Decision != remediate.DecisionActed {
				t.Fatalf("firing: %s %s (%v)", d.Decision, d.Reason, err)
			}
			if tc.after != nil {
				tc.after(t, cs)
			}
			before, _ := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			q.set(tc.answer, tc.queryErr)
			cs.ClearActions()
			a.Status = "resolved"
			d, err := e.DecideOne(context.Background(), a)
			if err != nil {
				t.Fatalf("resolved: %v", err)
			}
			if got := q.asked > 0; got != tc.asked {
				t.Errorf("Prometheus asked %d times, want asked %v", q.asked, tc.asked)
			}
			n, _ := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
			if tc.want == "uncordon" {
				if d.Decision != remediate.DecisionActed || n.Spec.Unschedulable || n.Annotations[AnnotationCordonedBy] != "" {
					t.Errorf("resolved: %s %s %s; unschedulable %v, mark %q; want uncordoned", d.Decision, d.Reason, d.Message, n.Spec.Unschedulable, n.Annotations[AnnotationCordonedBy])
				}
				return
			}
			if d.Decision != remediate.DecisionHeld || d.Reason != tc.want {
				t.Errorf("resolved: %s %s (%s), want %s %s", d.Decision, d.Reason, d.Message, remediate.DecisionHeld, tc.want)
			}
			if p := remediatetest.Patches(cs, "nodes"); len(p) != 0 {
				t.Errorf("a held undo patched the node: %s", p[0].GetPatch())
			}
			if !n.Spec.Unschedulable || n.ResourceVersion != before.ResourceVersion {
				t.Errorf("held: unschedulable %v, resourceVersion %s → %s; want the node untouched", n.Spec.Unschedulable, before.ResourceVersion, n.ResourceVersion)
			}
			if tc.want == remediate.ReasonCheckUnanswered && !hasWarning(t, cs, remediate.ReasonCheckUnanswered) {
				t.Errorf("no Warning Event says the undo waits for an answer")
			}
		})
	}
}

func hasWarning(t *testing.T, cs *fake.Clientset, reason string) bool {
	t.Helper()
	for _, ev := range remediatetest.Events(t, cs) {
		if ev.Type == corev1.EventTypeWarning && strings.Contains(ev.Message, reason) {
			return true
		}
	}
	return false
}

// A node that a person cordoned before leakguard's write carries no mark
// and stays cordoned; one where leakguard's mark landed on a cordon that
// was a person's (its write a no-op, as an older leakguard could write
// after a Conflict) is not leakguard's either.
func TestUndoLeavesACordonThatLeakguardsWriteDidNotMake(t *testing.T) {
	const name = "node-3"
	objs := append(remediatetest.Nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})
	q := &switchQuerier{answer: remediatetest.Vec(3)}
	e, cs := newTestEngine(t, engineSetup{policy: undoPolicy, objs: objs, opts: func(o *remediate.Options) { o.Querier = q }})
	personPatch(t, cs, name, "kubectl-cordon", `{"spec":{"unschedulable":true}}`)
	mark, _ := json.Marshal(cordonMark{Alert: "NodeOrphanCgroups", At: remediatetest.Now.Add(-time.Hour)})
	noop, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationCordonedBy: string(mark)}}, "spec": map[string]any{"unschedulable": true}})
	personPatch(t, cs, name, remediate.FieldManager, string(noop))
	cs.ClearActions()
	a := remediatetest.Alert("resolved", map[string]string{"alertname": "NodeOrphanCgroups", "node": name})
	d, err := e.DecideOne(context.Background(), a)
	if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != ReasonNotOurs || !strings.Contains(d.Message, "kubectl-cordon") {
		t.Errorf("resolved: %s %s %s (%v), want held %s naming kubectl-cordon", d.Decision, d.Reason, d.Message, err, ReasonNotOurs)
	}
	if p := remediatetest.Patches(cs, "nodes"); len(p) != 0 || q.asked != 0 {
		t.Errorf("patches %d, queries %d; want none", len(p), q.asked)
	}
}

// A person who cordons the node between leakguard's judgement and its
// patch makes the patch a Conflict; leakguard then finds the node
// unschedulable and does not put its mark on a person's cordon.
func TestCordonDoesNotMarkAPersonsCordon(t *testing.T) {
	const name = "node-3"
	objs := append(remediatetest.Nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})
	e, cs := newTestEngine(t, engineSetup{policy: undoPolicy, objs: objs, opts: func(o *remediate.Options) { o.Querier = &switchQuerier{answer: remediatetest.Vec(42)} }, react: func(cs *fake.Clientset) {
		once := sync.Once{}
		cs.PrependReactor("patch", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if !strings.Contains(string(action.(k8stesting.PatchActionImpl).GetPatch()), `"unschedulable":true`) {
				return false, nil, nil // the claim's patch
			}
			handled := false
			once.Do(func() {
				// The person's cordon lands first.
				gvr := corev1.SchemeGroupVersion.WithResource("nodes")
				obj, err := cs.Tracker().Get(gvr, "", name)
				if err != nil {
					t.Error(err)
					return
				}
				n := obj.(*corev1.Node).DeepCopy()
				n.Spec.Unschedulable = true
				n.ResourceVersion = "99"
				if err := cs.Tracker().Update(gvr, n, ""); err != nil {
					t.Error(err)
				}
				handled = true
			})
			if handled {
				return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), name, errors.New("the object has been modified"))
			}
			return false, nil, nil
		})
	}})
	d, err := e.DecideOne(context.Background(), remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": name}))
	if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != ReasonAlreadyUnschedulable {
		t.Errorf("firing: %s %s %s (%v), want held %s", d.Decision, d.Reason, d.Message, err, ReasonAlreadyUnschedulable)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if m, ok := n.Annotations[AnnotationCordonedBy]; ok {
		t.Errorf("leakguard marked a person's cordon: %s", m)
	}
	marks := 0
	for _, p := range remediatetest.Patches(cs, "nodes") {
		if strings.Contains(string(p.GetPatch()), AnnotationCordonedBy) {
			marks++
		}
	}
	if marks != 1 {
		t.Errorf("node patches with leakguard's mark = %d, want the one that conflicted", marks)
	}
}

// quietCheck asks Prometheus nothing and never confirms: a check that
// could let an undo through without an answer.
type quietCheck struct{ noneCheck }

func (quietCheck) Name() string { return "quiet" }

func (quietCheck) Evaluate(template.Alert, model.Value, time.Time) (remediate.Result, error) {
	return remediate.Result{Summary: "nothing asked"}, nil
}

// check none cannot go with cordon (policy load refuses a disruptive
// remediator without a check that asks Prometheus), and a check that
// asks Prometheus nothing holds an undo: it has no answer to give.
func TestUndoNeedsACheckThatAsks(t *testing.T) {
	const none = `
alerts:
  NodeOrphanCgroups:
    target: node
    check: {name: none}
    remediators:
      - name: cordon
        enabled: true
        args: {uncordonOnResolve: true}
`
	if _, err := remediate.ParsePolicy([]byte(none), shippedRegistry()); err == nil || !strings.Contains(err.Error(), "needs a check that re-asks Prometheus, not check: none") {
		t.Errorf("ParsePolicy(cordon with check none) = %v, want refused", err)
	}
	reg := shippedRegistry()
	if err := reg.AddCheck("quiet", func(json.RawMessage) (remediate.Check, error) { return quietCheck{}, nil }); err != nil {
		t.Fatal(err)
	}
	p, err := remediate.ParsePolicy([]byte(strings.Replace(none, "{name: none}", "{name: quiet}", 1)), reg)
	if err != nil {
		t.Fatal(err)
	}
	const name = "node-3"
	cs := remediatetest.NewCluster(t, append(remediatetest.Nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})...)
	mark, _ := json.Marshal(cordonMark{Alert: "NodeOrphanCgroups", At: remediatetest.Now.Add(-time.Hour)})
	own, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationCordonedBy: string(mark)}}, "spec": map[string]any{"unschedulable": true}})
	personPatch(t, cs, name, remediate.FieldManager, string(own)) // leakguard's own cordon
	q := &switchQuerier{answer: remediatetest.Vec(3)}
	e, err := remediate.NewEngine(remediate.Options{Client: cs, Querier: q, Policy: p, Now: func() time.Time { return remediatetest.Now }})
	if err != nil {
		t.Fatal(err)
	}
	cs.ClearActions()
	d, err := e.DecideOne(context.Background(), remediatetest.Alert("resolved", map[string]string{"alertname": "NodeOrphanCgroups", "node": name}))
	if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != remediate.ReasonCheckUnanswered {
		t.Errorf("resolved with a check that asks nothing: %s %s %s (%v), want held %s", d.Decision, d.Reason, d.Message, err, remediate.ReasonCheckUnanswered)
	}
	if p := remediatetest.Patches(cs, "nodes"); len(p) != 0 || q.asked != 0 {
		t.Errorf("patches %d, queries %d; want none", len(p), q.asked)
	}
}

// A cordon patch that landed but whose answer was lost (here: a Conflict
// after the write) is found on the retry as leakguard's own mark, and
// counts as leakguard's cordon, which a resolve can undo.
func TestCordonFindsItsOwnLandedWrite(t *testing.T) {
	const name = "node-3"
	objs := append(remediatetest.Nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})
	q := &switchQuerier{answer: remediatetest.Vec(42)}
	e, cs := newTestEngine(t, engineSetup{policy: undoPolicy, objs: objs, opts: func(o *remediate.Options) { o.Querier = q }, react: func(cs *fake.Clientset) {
		once := sync.Once{}
		cs.PrependReactor("patch", "nodes", func(action k8stesting.Action) (bool, runtime.Object, error) {
			if !strings.Contains(string(action.(k8stesting.PatchActionImpl).GetPatch()), `"unschedulable":true`) {
				return false, nil, nil
			}
			lost := false
			once.Do(func() {
				if _, _, err := k8stesting.ObjectReaction(cs.Tracker())(action); err != nil {
					t.Error(err)
				}
				lost = true
			})
			if lost {
				return true, nil, apierrors.NewConflict(corev1.Resource("nodes"), name, errors.New("the answer was lost"))
			}
			return false, nil, nil
		})
	}})
	a := remediatetest.Alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": name})
	if d, err := e.DecideOne(context.Background(), a); err != nil || d.Decision != remediate.DecisionActed {
		t.Fatalf("firing: %s %s %s (%v), want acted", d.Decision, d.Reason, d.Message, err)
	}
	q.set(remediatetest.Vec(3), nil)
	a.Status = "resolved"
	d, err := e.DecideOne(context.Background(), a)
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || d.Decision != remediate.DecisionActed || n.Spec.Unschedulable {
		t.Errorf("resolved: %s %s %s (%v), unschedulable %v; want uncordoned", d.Decision, d.Reason, d.Message, err, n.Spec.Unschedulable)
	}
}
