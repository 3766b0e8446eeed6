package remediate

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"
)

func podOn(ns, name, node string, mutate func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if mutate != nil {
		mutate(p)
	}
	return p
}

// drainOwners are the owners drainCluster's pods name: Deployment web →
// ReplicaSet web-7d9, and Deployment quiet (opted out) → ReplicaSet
// quiet-5f4.
func drainOwners() []runtime.Object {
	meta := func(name string, ann map[string]string, owners []metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", Annotations: ann, OwnerReferences: owners}
	}
	return []runtime.Object{
		&appsv1.Deployment{ObjectMeta: meta("web", nil, nil)},
		&appsv1.ReplicaSet{ObjectMeta: meta("web-7d9", nil, ownedBy(KindDeployment, "web"))},
		&appsv1.Deployment{ObjectMeta: meta("quiet", map[string]string{AnnotationIgnore: "true"}, nil)},
		&appsv1.ReplicaSet{ObjectMeta: meta("quiet-5f4", nil, ownedBy(KindDeployment, "quiet"))},
	}
}

// replicated makes p a pod of ReplicaSet web-7d9.
func replicated(p *corev1.Pod) { p.OwnerReferences = ownedBy(KindReplicaSet, "web-7d9") }

// drainCluster: node-0 cordoned, with two pods of a Deployment, a
// DaemonSet pod, a mirror pod, a finished pod, an opted-out pod, a pod
// in an opted-out namespace, one in kube-system, a pod without a
// controller, one with an emptyDir volume and one whose Deployment opts
// out.
func drainCluster(t *testing.T) k8sClient {
	return newCluster(t, drainObjects()...)
}

func drainObjects() []runtime.Object {
	ns := func(name string, ann map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
	}
	return append(drainOwners(),
		node("node-0", "a", true), ns("shop", nil), ns("quiet", map[string]string{AnnotationIgnore: "true"}), ns("kube-system", nil),
		podOn("shop", "web-1", "node-0", replicated),
		podOn("shop", "web-2", "node-0", replicated),
		podOn("shop", "lonely", "node-0", nil),
		podOn("shop", "cache-1", "node-0", func(p *corev1.Pod) {
			replicated(p)
			p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}),
		podOn("shop", "quiet-5f4-x", "node-0", func(p *corev1.Pod) { p.OwnerReferences = ownedBy(KindReplicaSet, "quiet-5f4") }),
		podOn("shop", "agent-x", "node-0", func(p *corev1.Pod) { p.OwnerReferences = ownedBy(KindDaemonSet, "agent") }),
		podOn("shop", "static-node-0", "node-0", func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
		podOn("shop", "job-done", "node-0", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		podOn("shop", "keep-me", "node-0", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationIgnore: "true"} }),
		podOn("quiet", "q-1", "node-0", replicated),
		podOn("kube-system", "coredns-1", "node-0", replicated),
	)
}

// testDrainer returns a drainer of node-0 whose clock advances by each
// wait, synchronously.
func testDrainer(cs k8sClient, timeout time.Duration) (*drainer, *[]time.Duration) {
	now := testNow
	var mu sync.Mutex
	var waits []time.Duration
	dr := &drainer{client: cs, node: ObjectRef{Kind: KindNode, APIVersion: "v1", Name: "node-0", UID: "uid-node-0"},
		state:   drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Started: testNow, Deadline: testNow.Add(timeout), Heartbeat: testNow},
		backoff: time.Second, maxBackoff: 4 * time.Second,
		now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}
	dr.sleep = func(_ context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		now = now.Add(d)
		return nil
	}
	return dr, &waits
}

func drainStateOf(t *testing.T, cs k8sClient) drainState {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), "node-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, ok := readDrain(n.Annotations)
	if !ok {
		t.Fatalf("no drain state on node-0: %v", n.Annotations)
	}
	return s
}

func TestDrainSkipsAndEvicts(t *testing.T) {
	cs := drainCluster(t)
	ev := evictions(cs, nil)
	dr, _ := testDrainer(cs, time.Minute)
	dr.run()
	want := []string{"shop/web-1", "shop/web-2"}
	if strings.Join(*ev, ",") != strings.Join(want, ",") {
		t.Errorf("evicted %v, want %v (DaemonSet, mirror, finished, opted-out and kube-system pods left)", *ev, want)
	}
	s := drainStateOf(t, cs)
	if s.State != DrainDone || s.Evicted != 2 || s.Left != 0 {
		t.Errorf("state = %+v, want done, 2 evicted, 0 left", s)
	}
	skipped := strings.Join(s.Skipped, ",")
	wantSkipped := []string{"agent-x (DaemonSet)", "static-node-0 (mirror pod)", "keep-me (opt-out)", "quiet/q-1 (opt-out)", "coredns-1 (namespace out of scope)",
		"shop/lonely (no controller)", "shop/cache-1 (emptyDir data)", "shop/quiet-5f4-x (opt-out on Deployment shop/quiet)", "shop/job-done (finished)"}
	for _, w := range wantSkipped {
		if !strings.Contains(skipped, w) {
			t.Errorf("skipped %q lacks %q", skipped, w)
		}
	}
	if last := s.Skipped[len(s.Skipped)-1]; last != "shop/job-done (finished)" {
		t.Errorf("last skipped = %q, want the finished pod last", last)
	}
	// The pods were listed by node, with a field selector.
	for _, a := range cs.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetResource().Resource == "pods" {
			if fs := l.GetListRestrictions().Fields.String(); fs != "spec.nodeName=node-0" {
				t.Errorf("pods listed with field selector %q, want spec.nodeName=node-0", fs)
			}
		}
	}
	evs := events(t, cs)
	if len(evs) != 1 || evs[0].Reason != EventReasonDrainDone || evs[0].Type != corev1.EventTypeNormal {
		t.Fatalf("events = %+v, want one %s", evs, EventReasonDrainDone)
	}
	for _, w := range wantSkipped {
		if !strings.Contains(evs[0].Message, w) {
			t.Errorf("event %q does not name %q", evs[0].Message, w)
		}
	}
}

// A PodDisruptionBudget refuses web-2 every time: drain retries with a
// doubling backoff up to its deadline, then reports it incomplete,
// naming the pod, and never deletes it.
func TestDrainPDBRefusalLeavesItIncomplete(t *testing.T) {
	cs := drainCluster(t)
	var evicted []string
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
		evicted = append(evicted, name)
		if name == "web-2" {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10)
		}
		return true, nil, nil
	})
	dr, waits := testDrainer(cs, 10*time.Second)
	dr.run()
	s := drainStateOf(t, cs)
	if s.State != DrainIncomplete || s.Left != 1 || len(s.Refused) != 1 || !strings.Contains(s.Refused[0], "shop/web-2 (disruption budget)") {
		t.Errorf("state = %+v, want incomplete, 1 left, web-2 refused", s)
	}
	if got := *waits; len(got) != 3 || got[0] != time.Second || got[1] != 2*time.Second || got[2] != 4*time.Second {
		t.Errorf("waits = %v, want 1s 2s 4s (doubling, capped at 4s, within 10s)", got)
	}
	for _, a := range cs.Actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("drain deleted: %v", a)
		}
	}
	evs := events(t, cs)
	last := evs[len(evs)-1]
	if last.Reason != EventReasonDrainIncomplete || last.Type != corev1.EventTypeWarning || !strings.Contains(last.Message, "shop/web-2") {
		t.Errorf("last event = %s %s %q, want a Warning %s naming web-2", last.Type, last.Reason, last.Message, EventReasonDrainIncomplete)
	}
	if n := strings.Count(strings.Join(evicted, ","), "web-2"); n != 4 {
		t.Errorf("web-2 asked %d times, want 4 (one pass and three retries)", n)
	}
}

// A 429 that clears within the deadline: the drain completes.
func TestDrainPDBRefusalRetriedToDone(t *testing.T) {
	cs := drainCluster(t)
	refusals := 2
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		if a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName() == "web-2" && refusals > 0 {
			refusals--
			return true, nil, apierrors.NewTooManyRequests("budget", 1)
		}
		return true, nil, nil
	})
	dr, _ := testDrainer(cs, time.Minute)
	dr.run()
	if s := drainStateOf(t, cs); s.State != DrainDone || s.Left != 0 {
		t.Errorf("state = %+v, want done", s)
	}
}

func TestDrainPlan(t *testing.T) {
	d := Drain{Timeout: time.Minute, Backoff: time.Second, MaxBackoff: time.Second}
	t.Run("not cordoned", func(t *testing.T) {
		cs := newCluster(t, node("node-0", "a", false))
		p := d.Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), testNow)
		_, err := p.Apply(context.Background(), Env{Client: cs, Now: testNow, Background: func(func()) { t.Fatal("started a drain") }})
		if heldReason(p, err) != ReasonNotCordoned {
			t.Errorf("held by %q, want %s", heldReason(p, err), ReasonNotCordoned)
		}
	})
	t.Run("in progress", func(t *testing.T) {
		n := node("node-0", "a", true)
		st, _ := json.Marshal(drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Started: testNow.Add(-time.Minute), Deadline: testNow.Add(time.Minute), Heartbeat: testNow.Add(-10 * time.Second)})
		n.Annotations = map[string]string{AnnotationDrain: string(st)}
		cs := newCluster(t, n)
		if p := d.Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), testNow); p.Hold != ReasonDrainInProgress {
			t.Errorf("held by %q, want %s", p.Hold, ReasonDrainInProgress)
		}
	})
	t.Run("started in the background", func(t *testing.T) {
		cs := drainCluster(t)
		evictions(cs, nil)
		var bg []func()
		p := d.Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), testNow)
		out, err := p.Apply(context.Background(), Env{Client: cs, Now: testNow, Background: func(f func()) { bg = append(bg, f) }})
		if err != nil || len(bg) != 1 || !strings.Contains(out, "drain of Node node-0 started") {
			t.Fatalf("Apply = %q, %v, %d background runs", out, err, len(bg))
		}
		if s := drainStateOf(t, cs); s.State != DrainRunning {
			t.Errorf("state before the run = %+v, want running", s)
		}
	})
}

func TestNewDrainArgs(t *testing.T) {
	for _, bad := range []string{`{"timeout": "-1m"}`, `{"backoff": "10s", "maxBackoff": "5s"}`, `{"maxBackoff": "5m"}`, `{"force": true}`} {
		if _, err := NewDrain(json.RawMessage(bad)); err == nil {
			t.Errorf("NewDrain(%s) = nil error", bad)
		}
	}
}

const drainPolicy = `
alerts:
  NodeCgroupLeak:
    target: node
    check: {name: orphan-cgroups, args: {threshold: 20}}
    remediators:
      - name: cordon
        enabled: true
        args: {maxUnschedulablePercent: 100}
      - name: drain
        enabled: true
        args: {timeout: 10m, backoff: 1s, maxBackoff: 1s}
`

// An engine restarted mid-drain: a running drain whose heartbeat is
// stale is resumed within its deadline, and reported incomplete past it.
func TestDrainResumedAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deadline time.Time
		want     string
	}{
		{"within the deadline", testNow.Add(5 * time.Minute), DrainDone},
		{"past the deadline", testNow.Add(-time.Minute), DrainIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := node("node-0", "a", true)
			st, _ := json.Marshal(drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Started: testNow.Add(-6 * time.Minute), Deadline: tc.deadline, Heartbeat: testNow.Add(-5 * time.Minute), Evicted: 1, Left: 2})
			n.Annotations = map[string]string{AnnotationDrain: string(st)}
			objs := append(drainOwners(), n, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, podOn("shop", "web-2", "node-0", replicated))
			var bg []func()
			e, cs := newTestEngine(t, engineSetup{policy: drainPolicy, objs: objs, opts: func(o *Options) { o.Background = func(f func()) { bg = append(bg, f) } }})
			ev := evictions(cs, nil)
			resumed, reported, err := e.ResumeDrains(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range bg {
				f() // the resumed drain, synchronously
			}
			s := drainStateOf(t, cs)
			if s.State != tc.want {
				t.Errorf("state = %+v, want %s", s, tc.want)
			}
			if got := testutil.ToFloat64(e.metrics.drains.WithLabelValues(tc.want)); got != 1 {
				t.Errorf("leakguard_drains_total{result=%q} = %g, want 1", tc.want, got)
			}
			if tc.want == DrainDone && (resumed != 1 || len(*ev) != 1 || s.Evicted != 2) {
				t.Errorf("resumed %d, evictions %v, evicted %d; want 1, [shop/web-2], 2 (the count carried on)", resumed, *ev, s.Evicted)
			}
			if tc.want == DrainIncomplete && (reported != 1 || len(*ev) != 0) {
				t.Errorf("reported %d, evictions %v; want 1 and none", reported, *ev)
			}
		})
	}
}
