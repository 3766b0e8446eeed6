package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/leakguard/leakguard/remediate"
	nodeplugin "github.com/leakguard/leakguard/remediate/node"
)

const drainE2EPolicy = `
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  nodes: {perHour: 100}
  storm: {targets: 100}
alerts:
  NodeCgroupLeak:
    target: node
    check:
      name: orphan-cgroups
      args: {threshold: 20}
    remediators:
      - name: cordon
        enabled: true
        args:
          maxUnschedulable: %d
          maxUnschedulablePercent: 100
          poolLabel: leakguard.io/e2e-pool
      - name: drain
        enabled: true
        args: {timeout: 30s, backoff: 500ms, maxBackoff: 1s}
`

// cordon then drain a node against the real API server's eviction
// handler: a PodDisruptionBudget that allows one disruption lets one of
// its two pods go and refuses the other with a real 429, which drain
// retries until its deadline and then reports, leaving the pod alone. A
// DaemonSet's pod is skipped. The PDB's status is set as admin, as the
// disruption controller (absent from the lab) would.
func TestDrainHonoursARealPDB(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	admin := l.Admin
	budgetNS := budgetNamespace(t)
	w := newWorld(t) // a namespace with the default service account
	pool := fmt.Sprintf("drain-%d", worldSeq.Add(1))
	nodeName := pool + "-n"
	createReadyNode(ctx, t, nodeName, map[string]string{"leakguard.io/e2e-pool": pool})
	createReadyNode(ctx, t, pool+"-spare", map[string]string{"leakguard.io/e2e-pool": pool})

	labels := map[string]string{"app": "db"}
	mkPod := func(name string, labels map[string]string, owners []metav1.OwnerReference) {
		must(t, "create pod "+name, func() error {
			p, err := admin.CoreV1().Pods(w.Namespace).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, OwnerReferences: owners},
				Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "db", Image: "registry.invalid/db:1"}}},
			}, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			// Running and Ready, as a kubelet would report it: the
			// eviction handler judges only such pods by the budget.
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			_, err = admin.CoreV1().Pods(w.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		})
	}
	// The pods of a ReplicaSet: drain skips a pod nothing recreates.
	rs, err := admin.AppsV1().ReplicaSets(w.Namespace).Get(ctx, w.ReplicaSet, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	owners := []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}
	mkPod("db-0", labels, owners)
	mkPod("db-1", labels, owners)
	mkPod("agent-x", map[string]string{"app": "agent"}, []metav1.OwnerReference{controllerRef("apps/v1", "DaemonSet", "agent", "uid-agent")})

	one := intstr.FromInt32(1)
	must(t, "create the PodDisruptionBudget", func() error {
		pdb, err := admin.PolicyV1().PodDisruptionBudgets(w.Namespace).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 1, CurrentHealthy: 2, DesiredHealthy: 1, ExpectedPods: 2}
		_, err = admin.PolicyV1().PodDisruptionBudgets(w.Namespace).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
		return err
	})

	// The drain is held back until the decision has answered: a decision
	// that waited for its drain would never answer.
	var wg sync.WaitGroup
	released := make(chan struct{})
	// The PDB's refusal is retried until the drain's 30 s deadline, which
	// leaves a loaded API server (CI runs two e2e packages at once) time to
	// answer the second pod's owner read first; with 8 s it once did not,
	// and the pod was reported "owner not read" instead of refused by the
	// budget.
	e := newEngineWithPolicy(t, leakguardClient(t), fmt.Sprintf(drainE2EPolicy, unschedulableNodes(ctx, t)+1), budgetNS, func(o *remediate.Options) {
		o.Background = func(f func()) {
			wg.Add(1)
			go func() { defer wg.Done(); <-released; f() }()
		}
	})
	type answer struct {
		d   remediate.Decision
		err error
	}
	answered := make(chan answer, 1)
	go func() {
		d, err := e.DecideOne(ctx, alert("NodeCgroupLeak", map[string]string{"node": nodeName}))
		answered <- answer{d, err}
	}()
	var a answer
	select {
	case a = <-answered:
	case <-time.After(20 * time.Second):
		close(released)
		t.Fatal("the decision did not answer within 20 s with its drain held back: it waits for the drain")
	}
	close(released)
	if a.err != nil || a.d.Decision != remediate.DecisionActed {
		t.Fatalf("decision %s %s %s (%v) %+v, want acted", a.d.Decision, a.d.Reason, a.d.Message, a.err, a.d.Remediators)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("the drain did not end within 120 s (its deadline is 30 s)")
	}

	n, err := admin.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Spec.Unschedulable {
		t.Errorf("the node is not cordoned")
	}
	state := n.Annotations[nodeplugin.AnnotationDrain]
	for _, want := range []string{`"state":"incomplete"`, `"left":1`, `"evicted":1`, "(disruption budget)", "agent-x (DaemonSet)"} {
		if !strings.Contains(state, want) {
			t.Errorf("drain state %s lacks %s", state, want)
		}
	}
	// One pod evicted (terminating: there is no kubelet to finish it),
	// the other untouched: never forced.
	terminating, untouched := 0, 0
	for _, name := range []string{"db-0", "db-1", "agent-x"} {
		p, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			terminating++ // deleted outright
		case p.DeletionTimestamp != nil:
			terminating++
			if name == "agent-x" {
				t.Errorf("the DaemonSet pod was evicted")
			}
		default:
			untouched++
		}
	}
	if terminating != 1 || untouched != 2 {
		t.Errorf("%d pods evicted and %d untouched, want 1 and 2 (a db pod and the DaemonSet's)", terminating, untouched)
	}
	pdb, err := admin.PolicyV1().PodDisruptionBudgets(w.Namespace).Get(ctx, "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pdb.Status.DisruptionsAllowed != 0 || len(pdb.Status.DisruptedPods) != 1 {
		t.Errorf("PDB status %+v, want 0 disruptions allowed and one disrupted pod (the API server's own accounting)", pdb.Status)
	}
	evs := events(ctx, t, admin, metav1.NamespaceDefault, nodeName)
	r := reasons(evs)
	if r[nodeplugin.EventReasonDrainIncomplete] != 1 || r[nodeplugin.EventReasonDrainProgress] == 0 || r[remediate.EventReasonActed] != 1 {
		t.Errorf("events on the node by reason %v, want one %s, some %s, one %s", r, nodeplugin.EventReasonDrainIncomplete, nodeplugin.EventReasonDrainProgress, remediate.EventReasonActed)
	}
}

// drainSpot is a node with a stale running drain of leakguard's (its
// replica stopped three minutes ago) and the pods on it, in a world's
// namespace: the world's pod (ReplicaSet web-7d9 of Deployment web),
// and those the test adds.
type drainSpot struct {
	w    world
	node string
}

// newDrainSpot creates the world, cordons its node and writes a drain
// record on it, running, with a heartbeat three minutes old and a
// deadline at deadline, as the admin.
func newDrainSpot(ctx context.Context, t *testing.T, deadline time.Time) drainSpot {
	t.Helper()
	w := newWorld(t)
	now := time.Now()
	rec, err := json.Marshal(map[string]any{"alert": "NodeCgroupLeak", "state": nodeplugin.DrainRunning, "owner": "stopped-replica",
		"started": now.Add(-5 * time.Minute), "deadline": deadline, "heartbeat": now.Add(-3 * time.Minute), "evicted": 0, "left": 1})
	if err != nil {
		t.Fatal(err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{nodeplugin.AnnotationDrain: string(rec)}},
		"spec": map[string]any{"unschedulable": true}})
	if err != nil {
		t.Fatal(err)
	}
	must(t, "cordon the node with a stale drain record", func() error {
		_, err := needLab(t).Admin.CoreV1().Nodes().Patch(ctx, w.Node, types.MergePatchType, patch, metav1.PatchOptions{})
		return err
	})
	// Every replica's ResumeDrains looks at every node: a record left
	// running would be another test's stale drain.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, nodeplugin.AnnotationDrain)
		if _, err := needLab(t).Admin.CoreV1().Nodes().Patch(ctx, w.Node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Errorf("remove the drain record from %s: %v", w.Node, err)
		}
	})
	return drainSpot{w: w, node: w.Node}
}

// pod creates a pod of the spot's node, running and ready.
func (s drainSpot) pod(ctx context.Context, t *testing.T, name string, owners []metav1.OwnerReference, volumes []corev1.Volume) {
	t.Helper()
	admin := needLab(t).Admin
	must(t, "create pod "+name, func() error {
		p, err := admin.CoreV1().Pods(s.w.Namespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}, OwnerReferences: owners},
			Spec:       corev1.PodSpec{NodeName: s.node, Volumes: volumes, Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		_, err = admin.CoreV1().Pods(s.w.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
}

// rsOwner is the world's ReplicaSet as a controller reference.
func (s drainSpot) rsOwner(ctx context.Context, t *testing.T) []metav1.OwnerReference {
	t.Helper()
	rs, err := needLab(t).Admin.AppsV1().ReplicaSets(s.w.Namespace).Get(ctx, s.w.ReplicaSet, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)}
}

// versions reads the resourceVersions of the node and of the named
// pods ("" for a pod that is gone).
func (s drainSpot) versions(ctx context.Context, t *testing.T, pods ...string) map[string]string {
	t.Helper()
	admin := needLab(t).Admin
	out := map[string]string{}
	n, err := admin.CoreV1().Nodes().Get(ctx, s.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["Node "+s.node] = n.ResourceVersion
	for _, name := range pods {
		p, err := admin.CoreV1().Pods(s.w.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			out["Pod "+name] = ""
		case err != nil:
			t.Fatal(err)
		default:
			out["Pod "+name] = p.ResourceVersion
		}
	}
	return out
}

// record reads the drain record on the spot's node.
func (s drainSpot) record(ctx context.Context, t *testing.T) map[string]any {
	t.Helper()
	n, err := needLab(t).Admin.CoreV1().Nodes().Get(ctx, s.node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(n.Annotations[nodeplugin.AnnotationDrain]), &rec); err != nil {
		t.Fatalf("drain record %q: %v", n.Annotations[nodeplugin.AnnotationDrain], err)
	}
	return rec
}

// drainEvents counts the drain's Events on the spot's node by reason.
func (s drainSpot) drainEvents(ctx context.Context, t *testing.T) map[string]int {
	t.Helper()
	out := map[string]int{}
	for r, n := range reasons(events(ctx, t, needLab(t).Admin, metav1.NamespaceDefault, s.node)) {
		if strings.HasPrefix(r, "LeakguardDrain") {
			out[r] = n
		}
	}
	return out
}

// runAll runs fs, the drains started, and waits for them, bounded.
func runAll(t *testing.T, fs []func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		for _, f := range fs {
			f()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the drain did not end within 60 s")
	}
}

// The skip list on the real API server: a pod without a controller, a
// pod with an emptyDir volume and a pod whose StatefulSet opts out stay
// (resourceVersion unchanged), each named with its reason in the record
// and the Event; the Deployment's pod is evicted.
func TestDrainSkipsUnreplicatedEmptyDirAndOptedOutOwners(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	s := newDrainSpot(ctx, t, time.Now().Add(time.Minute))
	var sts *appsv1.StatefulSet
	must(t, "create an opted-out StatefulSet", func() (err error) {
		sts, err = admin.AppsV1().StatefulSets(s.w.Namespace).Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: "quiet", Annotations: map[string]string{remediate.AnnotationIgnore: "true"}},
			Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "quiet"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "quiet"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}}}},
		}, metav1.CreateOptions{})
		return err
	})
	s.pod(ctx, t, "lonely", nil, nil)
	s.pod(ctx, t, "cache", s.rsOwner(ctx, t), []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}})
	s.pod(ctx, t, "quiet-0", []metav1.OwnerReference{controllerRef("apps/v1", "StatefulSet", sts.Name, sts.UID)}, nil)
	kept := []string{"lonely", "cache", "quiet-0"}
	before := s.versions(ctx, t, kept...)

	var bg []func()
	e := newEngineWithPolicy(t, leakguardClient(t), fmt.Sprintf(drainE2EPolicy, 1000), budgetNamespace(t), func(o *remediate.Options) {
		o.Background = func(f func()) { bg = append(bg, f) }
	})
	resumed, reported, err := e.Resume(ctx)
	if err != nil || resumed != 1 || reported != 0 {
		t.Fatalf("ResumeDrains = %d, %d, %v; want the drain resumed", resumed, reported, err)
	}
	runAll(t, bg)

	after := s.versions(ctx, t, kept...)
	for _, name := range kept {
		if k := "Pod " + name; after[k] != before[k] {
			t.Errorf("%s changed (resourceVersion %s -> %s): drain touched a pod it must skip", k, before[k], after[k])
		}
	}
	p, err := admin.CoreV1().Pods(s.w.Namespace).Get(ctx, s.w.Pod, metav1.GetOptions{})
	if err == nil && p.DeletionTimestamp == nil {
		t.Errorf("the Deployment's pod %s was not evicted", s.w.Pod)
	}
	rec := s.record(ctx, t)
	if rec["state"] != nodeplugin.DrainDone {
		t.Errorf("record %v, want done", rec)
	}
	ns := s.w.Namespace
	want := []string{ns + "/lonely (no controller)", ns + "/cache (emptyDir data)", ns + "/quiet-0 (opt-out on StatefulSet " + ns + "/quiet)"}
	skipped := fmt.Sprint(rec["skipped"])
	var done []corev1.Event
	for _, ev := range events(ctx, t, admin, metav1.NamespaceDefault, s.node) {
		if ev.Reason == nodeplugin.EventReasonDrainDone {
			done = append(done, ev)
		}
	}
	if len(done) != 1 {
		t.Fatalf("%d %s Events, want 1", len(done), nodeplugin.EventReasonDrainDone)
	}
	for _, w := range want {
		if !strings.Contains(skipped, w) {
			t.Errorf("record's skipped %s lacks %q", skipped, w)
		}
		if !strings.Contains(done[0].Message, w) {
			t.Errorf("Event %q lacks %q", done[0].Message, w)
		}
	}
}

// A stale drain found by a paused leakguard, or by one in dry-run (the
// flag or the policy), within its deadline or past it: nothing written
// (no request but GETs; the node's and the pods' resourceVersions
// unchanged, no Event), nothing resumed, and the drain listed as
// waiting. Unpaused, the same engine resumes it.
func TestDrainWaitsWhilePausedOrDryRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		paused bool
		dryRun bool
		policy string
	}{
		{name: "paused", paused: true},
		{name: "--dry-run", dryRun: true},
		{name: "policy dry-run", policy: "dryRun: true\n"},
	} {
		for _, past := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, past its deadline %v", tc.name, past), func(t *testing.T) {
				ctx := testContext(t)
				admin := needLab(t).Admin
				deadline := time.Now().Add(time.Minute)
				if past {
					deadline = time.Now().Add(-time.Minute)
				}
				s := newDrainSpot(ctx, t, deadline)
				s.pod(ctx, t, "db-0", s.rsOwner(ctx, t), nil)
				budgetNS := budgetNamespace(t)
				setPause := func(v any) {
					t.Helper()
					patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotationPause: v}}})
					if _, err := admin.CoreV1().Namespaces().Patch(ctx, budgetNS, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
						t.Fatal(err)
					}
				}
				if tc.paused {
					setPause("true")
				}
				pods := []string{s.w.Pod, "db-0"}
				before := s.versions(ctx, t, pods...)
				wire := &wire{}
				var bg []func()
				e := newEngineWithPolicy(t, recordedClient(t, wire), tc.policy+fmt.Sprintf(drainE2EPolicy, 1000), budgetNS, func(o *remediate.Options) {
					o.DryRun = tc.dryRun
					o.Background = func(f func()) { bg = append(bg, f) }
				})
				resumed, reported, err := e.Resume(ctx)
				if err != nil || resumed != 0 || reported != 0 || len(bg) != 0 {
					t.Fatalf("ResumeDrains = %d, %d, %v, %d started; want nothing resumed or reported", resumed, reported, err, len(bg))
				}
				if w := wire.writes(); len(w) != 0 {
					t.Errorf("requests that write: %v, want none", w)
				}
				if diff := cmp.Diff(before, s.versions(ctx, t, pods...)); diff != "" {
					t.Errorf("resourceVersions changed (-before +after):\n%s", diff)
				}
				if ev := s.drainEvents(ctx, t); len(ev) != 0 {
					t.Errorf("drain Events %v, want none", ev)
				}
				if w := e.WaitingDrains(); len(w) != 1 || !strings.Contains(w[0], s.node) {
					t.Errorf("waiting drains %q, want %s", w, s.node)
				}
				if !tc.paused {
					return
				}
				setPause(nil)
				resumed, reported, err = e.Resume(ctx)
				switch {
				case err != nil:
					t.Fatal(err)
				case past && reported != 1:
					t.Errorf("unpaused: reported %d, want the drain past its deadline reported", reported)
				case !past && (resumed != 1 || len(bg) != 1):
					t.Errorf("unpaused: resumed %d, %d started, want the drain resumed", resumed, len(bg))
				}
			})
		}
	}
}

// A drain that a PodDisruptionBudget holds back (every eviction a real
// 429) stops when the admin uncordons the node mid-drain: recorded
// stopped, a LeakguardDrainStopped Event, the pod still there. Its
// deadline is far: only the uncordon ends it.
func TestDrainStopsWhenUncordoned(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	s := newDrainSpot(ctx, t, time.Now().Add(10*time.Minute))
	s.pod(ctx, t, "db-0", s.rsOwner(ctx, t), nil)
	must(t, "delete the world's pod", func() error {
		return admin.CoreV1().Pods(s.w.Namespace).Delete(ctx, s.w.Pod, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	})
	zero := intstr.FromInt32(0)
	must(t, "create a PodDisruptionBudget that allows nothing", func() error {
		pdb, err := admin.PolicyV1().PodDisruptionBudgets(s.w.Namespace).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &zero, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
		_, err = admin.PolicyV1().PodDisruptionBudgets(s.w.Namespace).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
		return err
	})
	var bg []func()
	e := newEngineWithPolicy(t, leakguardClient(t), strings.Replace(fmt.Sprintf(drainE2EPolicy, 1000), "timeout: 30s", "timeout: 10m", 1), budgetNamespace(t), func(o *remediate.Options) {
		o.Background = func(f func()) { bg = append(bg, f) }
	})
	if resumed, _, err := e.Resume(ctx); err != nil || resumed != 1 {
		t.Fatalf("ResumeDrains = %d, %v; want the drain resumed", resumed, err)
	}
	done := make(chan struct{})
	go func() { bg[0](); close(done) }()
	// Once a pass has recorded the refusal, the admin uncordons.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(fmt.Sprint(s.record(ctx, t)["refused"]), "db-0 (disruption budget)") {
		if time.Now().After(deadline) {
			t.Fatalf("no pass recorded db-0 refused within 30 s: %v", s.record(ctx, t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	must(t, "uncordon", func() error {
		_, err := admin.CoreV1().Nodes().Patch(ctx, s.node, types.MergePatchType, []byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{})
		return err
	})
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the drain did not stop within 60 s of the uncordon")
	}
	if rec := s.record(ctx, t); rec["state"] != nodeplugin.DrainStopped || !strings.Contains(fmt.Sprint(rec["why"]), "schedulable again") {
		t.Errorf("record %v, want stopped, the node schedulable again", rec)
	}
	if ev := s.drainEvents(ctx, t); ev[nodeplugin.EventReasonDrainStopped] != 1 || ev[nodeplugin.EventReasonDrainIncomplete] != 0 {
		t.Errorf("drain Events %v, want one %s", ev, nodeplugin.EventReasonDrainStopped)
	}
	if p, err := admin.CoreV1().Pods(s.w.Namespace).Get(ctx, "db-0", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("db-0: %v, deleting %v; want it there", err, p.GetDeletionTimestamp())
	}
}

// Two replicas find the same stale drain at once: the take-over is
// written under the node's resourceVersion, so one resumes it and
// evicts, the other's write is refused (Conflict) and it evicts
// nothing.
func TestDrainTwoReplicasOneDrains(t *testing.T) {
	ctx := testContext(t)
	s := newDrainSpot(ctx, t, time.Now().Add(time.Minute))
	s.pod(ctx, t, "db-0", s.rsOwner(ctx, t), nil)
	budgetNS := budgetNamespace(t)
	bar := newBarrier(2, 30*time.Second)
	var wires [2]*wire
	var engines [2]*remediate.Engine
	var mu sync.Mutex
	var bg []func()
	for i := range engines {
		// Both hold their first write until both are about to write.
		wires[i] = &wire{beforeFirstWrite: bar.wait, holdsWrite: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/nodes/"+s.node) }}
		engines[i] = newEngineWithPolicy(t, recordedClient(t, wires[i]), fmt.Sprintf(drainE2EPolicy, 1000), budgetNS, func(o *remediate.Options) {
			o.Background = func(f func()) { mu.Lock(); bg = append(bg, f); mu.Unlock() }
		})
	}
	var wg sync.WaitGroup
	var resumed [2]int
	var errs [2]error
	for i, e := range engines {
		wg.Add(1)
		go func() { defer wg.Done(); resumed[i], _, errs[i] = e.Resume(ctx) }()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || resumed[0]+resumed[1] != 1 || len(bg) != 1 {
		t.Fatalf("ResumeDrains = %v, %v; %d started; want one replica to resume it", resumed, errs, len(bg))
	}
	runAll(t, bg)
	for i, w := range wires {
		evictions := 0
		for _, r := range w.writes() {
			if strings.HasSuffix(r.Path, "/eviction") {
				evictions++
			}
		}
		if want := 2 * resumed[i]; evictions != want {
			t.Errorf("replica %d (resumed %d) sent %d evictions, want %d", i, resumed[i], evictions, want)
		}
	}
	if rec := s.record(ctx, t); rec["state"] != nodeplugin.DrainDone || rec["evicted"] != float64(2) {
		t.Errorf("record %v, want done, 2 evicted", rec)
	}
}

// A replica's drain that another replica takes over mid-drain (its
// clock three minutes ahead, so the heartbeat looks stale to it) stops
// at its next check or write: after the take-over it has no write
// accepted (a write it sent is refused with a Conflict), and the record
// stays the other's. The PodDisruptionBudget refuses every eviction, and
// the deadline is far: only the take-over ends the first drain.
func TestDrainTakenOverMidDrainStops(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	s := newDrainSpot(ctx, t, time.Now().Add(10*time.Minute))
	s.pod(ctx, t, "db-0", s.rsOwner(ctx, t), nil)
	must(t, "delete the world's pod", func() error {
		return admin.CoreV1().Pods(s.w.Namespace).Delete(ctx, s.w.Pod, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
	})
	zero := intstr.FromInt32(0)
	must(t, "create a PodDisruptionBudget that allows nothing", func() error {
		pdb, err := admin.PolicyV1().PodDisruptionBudgets(s.w.Namespace).Create(ctx, &policyv1.PodDisruptionBudget{
			ObjectMeta: metav1.ObjectMeta{Name: "db"},
			Spec:       policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &zero, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		pdb.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptionsAllowed: 0, CurrentHealthy: 1, DesiredHealthy: 1, ExpectedPods: 1}
		_, err = admin.PolicyV1().PodDisruptionBudgets(s.w.Namespace).UpdateStatus(ctx, pdb, metav1.UpdateOptions{})
		return err
	})
	policy := strings.Replace(fmt.Sprintf(drainE2EPolicy, 1000), "timeout: 30s", "timeout: 10m", 1)
	budgetNS := budgetNamespace(t)
	wireA := &wire{}
	var bgA, bgB []func()
	a := newEngineWithPolicy(t, recordedClient(t, wireA), policy, budgetNS, func(o *remediate.Options) { o.Background = func(f func()) { bgA = append(bgA, f) } })
	b := newEngineWithPolicy(t, leakguardClient(t), policy, budgetNS, func(o *remediate.Options) {
		o.Background = func(f func()) { bgB = append(bgB, f) }
		o.Now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	})
	if resumed, _, err := a.Resume(ctx); err != nil || resumed != 1 {
		t.Fatalf("A: ResumeDrains = %d, %v; want the drain resumed", resumed, err)
	}
	done := make(chan struct{})
	go func() { bgA[0](); close(done) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(fmt.Sprint(s.record(ctx, t)["refused"]), "db-0 (disruption budget)") {
		if time.Now().After(deadline) {
			t.Fatalf("no pass of A recorded db-0 refused within 30 s: %v", s.record(ctx, t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := len(wireA.writes())
	// B's take-over is refused (Conflict) when A writes the record
	// between B's read and B's write: B then leaves it, and tries again.
	for attempt := 1; ; attempt++ {
		resumed, _, err := b.Resume(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if resumed == 1 {
			break
		}
		if attempt == 20 {
			t.Fatalf("B did not take the drain over in %d attempts", attempt)
		}
	}
	taken := s.record(ctx, t)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("A's drain did not stop within 60 s of B's take-over")
	}
	for _, r := range wireA.writes()[before:] {
		if r.Status < 300 {
			t.Errorf("A wrote after B's take-over: %s", r)
		}
	}
	if diff := cmp.Diff(taken, s.record(ctx, t)); diff != "" {
		t.Errorf("the record changed after B's take-over (-B's +now):\n%s", diff)
	}
}
