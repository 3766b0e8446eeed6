package remediate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

// webPods returns fixtures() with n pods of Deployment web (the fixture's
// web-7d9-abcde among them), the Deployment's annotations set to ann, and
// an alert per pod.
func webPods(n int, ann map[string]string) ([]runtime.Object, []template.Alert) {
	objs := fixtures()
	for _, o := range objs {
		if kindOf(o) == KindDeployment {
			o.(metav1.Object).SetAnnotations(ann)
		}
	}
	names := []string{"web-7d9-abcde"}
	for i := 1; i < n; i++ {
		name := "web-7d9-" + strings.Repeat(string(rune('a'+i)), 5)
		names = append(names, name)
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name),
			ResourceVersion: "1", OwnerReferences: ownedBy(KindReplicaSet, "web-7d9")}})
	}
	var alerts []template.Alert
	for _, name := range names {
		a := alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": name, "container": "app", "node": "n1"})
		a.Fingerprint = "fp-" + name
		alerts = append(alerts, a)
	}
	return objs, alerts
}

// gets counts the get requests of cs by resource.
func gets(cs k8sClient) map[string]int {
	n := map[string]int{}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "get" {
			n[a.GetResource().Resource]++
		}
	}
	return n
}

// TestExcludedNamespaceReadsNothing: an alert whose namespace label names
// an excluded namespace is held on the label, before anything is read,
// and records no Event in the namespace leakguard is to stay out of; the
// metric counts it. A pod that does not exist there is held alike.
func TestExcludedNamespaceReadsNothing(t *testing.T) {
	for _, pod := range []string{"kube-apiserver-cp1", "gone"} {
		e, cs := newTestEngine(t, engineSetup{})
		a := alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "kube-system", "pod": pod, "container": "x"})
		d, err := e.DecideOne(context.Background(), a)
		if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonNamespaceExcluded {
			t.Errorf("pod %s: DecideOne() = %s/%s, %v; want held/namespace-excluded", pod, d.Decision, d.Reason, err)
		}
		if diff := cmp.Diff([]string{"namespace: held"}, d.Guards); diff != "" {
			t.Errorf("pod %s: guards mismatch (-want +got):\n%s", pod, diff)
		}
		if d.Target != "" || !strings.Contains(d.Message, "kube-system") {
			t.Errorf("pod %s: target %q, message %q; want no target and the namespace named", pod, d.Target, d.Message)
		}
		if acts := cs.Actions(); len(acts) != 0 {
			t.Errorf("pod %s: %d requests, want none: %v", pod, len(acts), acts)
		}
	}
	// The apiserver's entry allows kube-system, and its target is not
	// judged on the label: it is read and acted on (TestEngineDecisions).
}

// TestDeliveryReadsOnce: the pods of one Deployment in one delivery
// resolve to the same ReplicaSet, Deployment and Namespace, which are read
// once; each pod is read. The Deployment is in its cooldown, so every
// alert is held and one Event counts them all.
func TestDeliveryReadsOnce(t *testing.T) {
	objs, alerts := webPods(4, map[string]string{CooldownAnnotation("annotate"): testNow.Add(-time.Minute).Format(time.RFC3339)})
	e, cs := newTestEngine(t, engineSetup{objs: objs})
	ds, err := e.Decide(context.Background(), alerts)
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	for i, d := range ds {
		if d.Decision != DecisionHeld || d.Reason != ReasonCooldown {
			t.Errorf("alert %d: %s/%s, want held/cooldown", i, d.Decision, d.Reason)
		}
	}
	if diff := cmp.Diff(map[string]int{"pods": 4, "replicasets": 1, "deployments": 1, "namespaces": 1}, gets(cs)); diff != "" {
		t.Errorf("reads mismatch (-want +got):\n%s", diff)
	}
	evs := events(t, cs)
	if len(evs) != 1 || evs[0].Count != 4 || evs[0].Reason != EventReasonHeld || evs[0].InvolvedObject.Name != "web" {
		t.Fatalf("events %+v, want one LeakguardHeld on web counting 4", evs)
	}
	if !strings.HasPrefix(evs[0].Message, "4 alerts of one delivery, the last: ContainerMemoryLeak held (cooldown)") ||
		!strings.Contains(evs[0].Message, "fp-"+alerts[3].Labels["pod"]) {
		t.Errorf("event message %q, want the count and the last alert", evs[0].Message)
	}
	// The next delivery counts up the same Event.
	if _, err := e.Decide(context.Background(), alerts[:2]); err != nil {
		t.Fatalf("second Decide() error: %v", err)
	}
	if evs := events(t, cs); len(evs) != 1 || evs[0].Count != 6 {
		t.Errorf("events after a second delivery %+v, want one counting 6", evs)
	}
}

// TestDeliveryRereadsAfterWrite: in a real run, the first pod's alert acts
// (claims the cooldown on the Deployment, annotates it); the delivery
// then forgets what it read, so the second reads the Deployment again and
// is held by the claim it sees, without a conflicting claim of its own.
func TestDeliveryRereadsAfterWrite(t *testing.T) {
	objs, alerts := webPods(3, nil)
	e, cs := newTestEngine(t, engineSetup{objs: objs})
	ds, err := e.Decide(context.Background(), alerts)
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	got := outcomes(ds)
	if diff := cmp.Diff([]string{"acted/", "held/cooldown", "held/cooldown"}, got); diff != "" {
		t.Fatalf("decisions mismatch (-want +got):\n%s", diff)
	}
	if n := gets(cs)["deployments"]; n != 2 {
		t.Errorf("%d Deployment reads, want 2 (once before the first alert wrote, once after)", n)
	}
	if n := len(patches(cs, "deployments")); n != 2 {
		t.Errorf("%d Deployment patches, want 2 (the claim and annotate; no conflicting claim)", n)
	}
	reasons := map[string]int32{}
	for _, ev := range events(t, cs) {
		reasons[ev.Reason] += ev.Count
	}
	if diff := cmp.Diff(map[string]int32{EventReasonActed: 1, EventReasonHeld: 2}, reasons); diff != "" {
		t.Errorf("events counted by reason mismatch (-want +got):\n%s", diff)
	}
}

// TestDryRunHoldsAggregate: in dry-run, alerts held by the cooldown are
// holds too: one LeakguardDryRun Event counts them, where a would-act
// decision has an Event of its own.
func TestDryRunHoldsAggregate(t *testing.T) {
	objs, alerts := webPods(3, nil)
	e, cs := newTestEngine(t, engineSetup{objs: objs, opts: func(o *Options) { o.DryRun = true },
		policy: "alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: none}\n    remediators: [{name: annotate}]\n"})
	ds, err := e.Decide(context.Background(), alerts)
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	got := outcomes(ds)
	if diff := cmp.Diff([]string{"dry-run/would-act", "dry-run/cooldown", "dry-run/cooldown"}, got); diff != "" {
		t.Fatalf("decisions mismatch (-want +got):\n%s", diff)
	}
	var counts []int32
	for _, ev := range events(t, cs) {
		if ev.Reason != EventReasonDryRun {
			t.Errorf("dry-run Event with reason %s", ev.Reason)
		}
		counts = append(counts, ev.Count)
	}
	if len(counts) != 2 || counts[0]+counts[1] != 3 || (counts[0] != 2 && counts[1] != 2) {
		t.Errorf("dry-run Events counting %v, want one of 1 (would act) and one of 2 (the holds)", counts)
	}
}

// TestReadsCheckNamespace: the memo of the last valid namespace label
// never lets an invalid one through.
func TestReadsCheckNamespace(t *testing.T) {
	m := newReads()
	for _, tc := range []struct {
		ns    string
		valid bool
	}{{"shop", true}, {"shop", true}, {"Not_A_Namespace", false}, {"", false}, {"shop", true}, {"kube-system", true}} {
		if err := m.checkNamespace(tc.ns); (err == nil) != tc.valid {
			t.Errorf("checkNamespace(%q) = %v, want valid %v", tc.ns, err, tc.valid)
		}
	}
}

// eventRequests counts the requests on events of cs by verb since from
// (an index into its actions).
func eventRequests(cs k8sClient, from int) map[string]int {
	n := map[string]int{}
	for _, a := range cs.Actions()[from:] {
		if a.GetResource().Resource == "events" {
			n[a.GetVerb()]++
		}
	}
	return n
}

// TestHeldEventKnown: the engine remembers the aggregated Event it wrote,
// so that the same hold again is one patch; another replica, which does
// not know it, counts up the same Event the long way (create, read,
// patch), and the first then finds its resourceVersion stale (Conflict)
// and takes the long way too. No hold is lost or counted twice.
func TestHeldEventKnown(t *testing.T) {
	objs, alerts := webPods(1, map[string]string{CooldownAnnotation("annotate"): testNow.Add(-time.Minute).Format(time.RFC3339)})
	// The API server gives a created Event a resourceVersion; the fake
	// tracker does not.
	withRV := func(cs k8sClient) {
		tracker := cs.Tracker()
		cs.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
			ev := a.(k8stesting.CreateAction).GetObject().DeepCopyObject().(*corev1.Event)
			ev.ResourceVersion = "1"
			if err := tracker.Create(a.GetResource(), ev, a.GetNamespace()); err != nil {
				return true, nil, err
			}
			return true, ev, nil
		})
	}
	e1, cs := newTestEngine(t, engineSetup{objs: objs, react: withRV})
	e2, err := NewEngine(Options{Client: cs, Querier: leakingQuerier(), Policy: e1.Policy(), Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		e        *Engine
		requests map[string]int
	}{
		{e1, map[string]int{"create": 1}},
		{e1, map[string]int{"patch": 1}},
		{e2, map[string]int{"create": 1, "get": 1, "patch": 1}},
		{e1, map[string]int{"patch": 2, "get": 1}},
		{e1, map[string]int{"patch": 1}},
	}
	for i, st := range steps {
		from := len(cs.Actions())
		if _, err := st.e.Decide(context.Background(), alerts); err != nil {
			t.Fatalf("step %d: Decide() error: %v", i, err)
		}
		if diff := cmp.Diff(st.requests, eventRequests(cs, from)); diff != "" {
			t.Errorf("step %d: event requests mismatch (-want +got):\n%s", i, diff)
		}
		evs := events(t, cs)
		if len(evs) != 1 || evs[0].Count != int32(i+1) {
			t.Fatalf("step %d: events %+v, want one counting %d", i, evs, i+1)
		}
	}
}
