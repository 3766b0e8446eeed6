package node

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/remediatetest"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/google/go-cmp/cmp"
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
		&appsv1.ReplicaSet{ObjectMeta: meta("web-7d9", nil, remediatetest.OwnedBy(remediate.KindDeployment, "web"))},
		&appsv1.Deployment{ObjectMeta: meta("quiet", map[string]string{remediate.AnnotationIgnore: "true"}, nil)},
		&appsv1.ReplicaSet{ObjectMeta: meta("quiet-5f4", nil, remediatetest.OwnedBy(remediate.KindDeployment, "quiet"))},
	}
}

// replicated makes p a pod of ReplicaSet web-7d9.
func replicated(p *corev1.Pod) {
	p.OwnerReferences = remediatetest.OwnedBy(remediate.KindReplicaSet, "web-7d9")
}

// drainCluster: node-0 cordoned, with two pods of a Deployment, a
// DaemonSet pod, a mirror pod, a finished pod, an opted-out pod, a pod
// in an opted-out namespace, one in kube-system, a pod without a
// controller, one with an emptyDir volume and one whose Deployment opts
// out.
func drainCluster(t *testing.T) k8sClient {
	return remediatetest.NewCluster(t, drainObjects()...)
}

func drainObjects() []runtime.Object {
	ns := func(name string, ann map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
	}
	return append(drainOwners(),
		remediatetest.Node("node-0", "a", true), ns("shop", nil), ns("quiet", map[string]string{remediate.AnnotationIgnore: "true"}), ns("kube-system", nil),
		podOn("shop", "web-1", "node-0", replicated),
		podOn("shop", "web-2", "node-0", replicated),
		podOn("shop", "lonely", "node-0", nil),
		podOn("shop", "cache-1", "node-0", func(p *corev1.Pod) {
			replicated(p)
			p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}),
		podOn("shop", "quiet-5f4-x", "node-0", func(p *corev1.Pod) { p.OwnerReferences = remediatetest.OwnedBy(remediate.KindReplicaSet, "quiet-5f4") }),
		podOn("shop", "agent-x", "node-0", func(p *corev1.Pod) { p.OwnerReferences = remediatetest.OwnedBy(remediate.KindDaemonSet, "agent") }),
		podOn("shop", "static-node-0", "node-0", func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
		podOn("shop", "job-done", "node-0", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
		podOn("shop", "keep-me", "node-0", func(p *corev1.Pod) { p.Annotations = map[string]string{remediate.AnnotationIgnore: "true"} }),
		podOn("quiet", "q-1", "node-0", replicated),
		podOn("kube-system", "coredns-1", "node-0", replicated),
	)
}

// testDrainer returns a drainer of node-0 whose clock advances by each
// wait, synchronously.
func testDrainer(cs k8sClient, timeout time.Duration) (*drainer, *[]time.Duration) {
	now := remediatetest.Now
	var mu sync.Mutex
	var waits []time.Duration
	dr := &drainer{client: cs, node: remediate.ObjectRef{Kind: remediate.KindNode, APIVersion: "v1", Name: "node-0", UID: "uid-node-0"},
		state:   drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Started: remediatetest.Now, Deadline: remediatetest.Now.Add(timeout), Heartbeat: remediatetest.Now},
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
	ev := remediatetest.Evictions(cs, nil)
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
	evs := remediatetest.Events(t, cs)
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
	evs := remediatetest.Events(t, cs)
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
		cs := remediatetest.NewCluster(t, remediatetest.Node("node-0", "a", false))
		p := d.Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), remediatetest.Now)
		_, err := p.Apply(context.Background(), remediate.Env{Client: cs, Now: remediatetest.Now, Background: func(func()) { t.Fatal("started a drain") }})
		if heldReason(p, err) != ReasonNotCordoned {
			t.Errorf("held by %q, want %s", heldReason(p, err), ReasonNotCordoned)
		}
	})
	t.Run("in progress", func(t *testing.T) {
		n := remediatetest.Node("node-0", "a", true)
		st, _ := json.Marshal(drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Started: remediatetest.Now.Add(-time.Minute), Deadline: remediatetest.Now.Add(time.Minute), Heartbeat: remediatetest.Now.Add(-10 * time.Second)})
		n.Annotations = map[string]string{AnnotationDrain: string(st)}
		cs := remediatetest.NewCluster(t, n)
		if p := d.Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), remediatetest.Now); p.Hold != ReasonDrainInProgress {
			t.Errorf("held by %q, want %s", p.Hold, ReasonDrainInProgress)
		}
	})
	t.Run("started in the background", func(t *testing.T) {
		cs := drainCluster(t)
		remediatetest.Evictions(cs, nil)
		var bg []func()
		p := d.Plan(nodeTarget(t, cs, "node-0"), cordonFinding(), remediatetest.Now)
		out, err := p.Apply(context.Background(), remediate.Env{Client: cs, Now: remediatetest.Now, Background: func(f func()) { bg = append(bg, f) }})
		if err != nil || len(bg) != 1 || !strings.Contains(out, "drain of Node node-0 started") {
			t.Fatalf("Apply = %q, %v, %d background runs", out, err, len(bg))
		}
		if s := drainStateOf(t, cs); s.State != DrainRunning {
			t.Errorf("state before the run = %+v, want running", s)
		}
	})
}

func TestNewDrainArgs(t *testing.T) {
	for _, bad := range []string{`{"timeout": "-1m"}`, `{"backoff": "10s", "maxBackoff": "5s"}`, `{"maxBackoff": "5m"}`, `{"force": true}`,
		`{"evictUnreplicated": "yes"}`, `{"deleteEmptyDirData": 1}`} {
		if _, err := NewDrain(json.RawMessage(bad)); err == nil {
			t.Errorf("NewDrain(%s) = nil error", bad)
		}
	}
	for args, want := range map[string]Drain{
		`{}`: {Timeout: DefaultDrainTimeout, Backoff: DefaultDrainBackoff, MaxBackoff: DefaultDrainMaxBackoff},
		`{"evictUnreplicated": true, "deleteEmptyDirData": true}`: {Timeout: DefaultDrainTimeout, Backoff: DefaultDrainBackoff, MaxBackoff: DefaultDrainMaxBackoff,
			EvictUnreplicated: true, DeleteEmptyDirData: true},
	} {
		r, err := NewDrain(json.RawMessage(args))
		if err != nil {
			t.Fatalf("NewDrain(%s) = %v", args, err)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("NewDrain(%s) (-want +got):\n%s", args, diff)
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
		{"within the deadline", remediatetest.Now.Add(5 * time.Minute), DrainDone},
		{"past the deadline", remediatetest.Now.Add(-time.Minute), DrainIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := remediatetest.Node("node-0", "a", true)
			st, _ := json.Marshal(drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Started: remediatetest.Now.Add(-6 * time.Minute), Deadline: tc.deadline, Heartbeat: remediatetest.Now.Add(-5 * time.Minute), Evicted: 1, Left: 2})
			n.Annotations = map[string]string{AnnotationDrain: string(st)}
			objs := append(drainOwners(), n, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, podOn("shop", "web-2", "node-0", replicated))
			var bg []func()
			reg := prometheus.NewRegistry()
			e, cs := newTestEngine(t, engineSetup{policy: drainPolicy, objs: objs, registry: reg, opts: func(o *remediate.Options) { o.Background = func(f func()) { bg = append(bg, f) } }})
			ev := remediatetest.Evictions(cs, nil)
			resumed, reported, err := e.Resume(context.Background())
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
			if got := remediatetest.Counter(t, reg, "leakguard_drains_total", map[string]string{"result": tc.want}); got != 1 {
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

// Each of kubectl drain's skips, the arguments that lift two of them,
// and the opt-out up a pod's owners: a skipped pod is named with its
// reason in the record and the Event, and never evicted.
func TestDrainSkipReasons(t *testing.T) {
	emptyDir := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*corev1.Pod)
		args   Drain
		// skip is the record's entry for the pod, "" when it is evicted.
		skip    string
		refused string
	}{
		{name: "replicated", mutate: replicated},
		{name: "DaemonSet", mutate: func(p *corev1.Pod) { p.OwnerReferences = remediatetest.OwnedBy(remediate.KindDaemonSet, "agent") }, skip: "shop/p (DaemonSet)"},
		{name: "mirror", mutate: func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }, skip: "shop/p (mirror pod)"},
		{name: "finished", mutate: func(p *corev1.Pod) { replicated(p); p.Status.Phase = corev1.PodFailed }, skip: "shop/p (finished)"},
		{name: "no controller", skip: "shop/p (no controller)"},
		{name: "no controller, evictUnreplicated", args: Drain{EvictUnreplicated: true}},
		{name: "an owner that is no controller", mutate: func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "uid-x"}}
		}, skip: "shop/p (no controller)"},
		{name: "emptyDir", mutate: func(p *corev1.Pod) { replicated(p); emptyDir(p) }, skip: "shop/p (emptyDir data)"},
		{name: "emptyDir, deleteEmptyDirData", mutate: func(p *corev1.Pod) { replicated(p); emptyDir(p) }, args: Drain{DeleteEmptyDirData: true}},
		{name: "emptyDir without a controller, both", mutate: emptyDir, args: Drain{EvictUnreplicated: true, DeleteEmptyDirData: true}},
		{name: "Deployment opts out", mutate: func(p *corev1.Pod) { p.OwnerReferences = remediatetest.OwnedBy(remediate.KindReplicaSet, "quiet-5f4") }, skip: "shop/p (opt-out on Deployment shop/quiet)"},
		{name: "StatefulSet opts out", mutate: func(p *corev1.Pod) { p.OwnerReferences = remediatetest.OwnedBy(remediate.KindStatefulSet, "db") }, skip: "shop/p (opt-out on StatefulSet shop/db)"},
		{name: "ReplicaSet opts out", mutate: func(p *corev1.Pod) { p.OwnerReferences = remediatetest.OwnedBy(remediate.KindReplicaSet, "solo") }, skip: "shop/p (opt-out on ReplicaSet shop/solo)"},
		// Fail closed: an owner of a kind the engine cannot read (no
		// metadata client) leaves the pod, counted as left.
		{name: "owner not read", mutate: func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "argoproj.io/v1alpha1", Kind: "Rollout", Name: "r", UID: "uid-r", Controller: ptrTrue()}}
		}, refused: "shop/p (owner not read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := append(drainOwners(), remediatetest.Node("node-0", "a", true), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
				&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db", UID: "uid-db", Annotations: map[string]string{remediate.AnnotationIgnore: "True "}}},
				&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "solo", UID: "uid-solo", Annotations: map[string]string{remediate.AnnotationIgnore: "true"}}},
				podOn("shop", "p", "node-0", tc.mutate))
			cs := remediatetest.NewCluster(t, objs...)
			ev := remediatetest.Evictions(cs, nil)
			dr, _ := testDrainer(cs, time.Second)
			dr.configure(Drain{Backoff: time.Second, MaxBackoff: time.Second, EvictUnreplicated: tc.args.EvictUnreplicated, DeleteEmptyDirData: tc.args.DeleteEmptyDirData}, nil)
			dr.run()
			s := drainStateOf(t, cs)
			evs := remediatetest.Events(t, cs)
			last := evs[len(evs)-1].Message
			switch {
			case tc.refused != "":
				if len(*ev) != 0 || s.State != DrainIncomplete || len(s.Refused) != 1 || !strings.HasPrefix(s.Refused[0], tc.refused) {
					t.Errorf("evicted %v, state %+v; want nothing evicted, incomplete, %q refused", *ev, s, tc.refused)
				}
			case tc.skip == "":
				if len(*ev) != 1 || s.State != DrainDone || s.Evicted != 1 || len(s.Skipped) != 0 {
					t.Errorf("evicted %v, state %+v; want shop/p evicted, done, nothing skipped", *ev, s)
				}
			default:
				if len(*ev) != 0 || s.State != DrainDone || len(s.Skipped) != 1 || s.Skipped[0] != tc.skip {
					t.Errorf("evicted %v, state %+v; want nothing evicted, done, skipped [%s]", *ev, s, tc.skip)
				}
				if !strings.Contains(last, "skipped: "+tc.skip) {
					t.Errorf("event %q does not name %q", last, tc.skip)
				}
			}
		})
	}
}

// writes returns the actions from the index from on that write: every
// verb but get, list and watch.
func writes(cs k8sClient, from int) []string {
	var out []string
	for _, a := range cs.Actions()[from:] {
		switch a.GetVerb() {
		case "get", "list", "watch":
		default:
			out = append(out, a.GetVerb()+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

// setPause sets or removes the pause switch on Namespace leakguard
// through the tracker, so that the test's own write is no action.
func setPause(t *testing.T, cs k8sClient, on bool) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}}
	if on {
		ns.Annotations = map[string]string{remediate.AnnotationPause: "true"}
	}
	if err := cs.Tracker().Update(corev1.SchemeGroupVersion.WithResource("namespaces"), ns, ""); err != nil {
		t.Fatal(err)
	}
}

func mustPolicy(t *testing.T, y string) *remediate.Policy {
	t.Helper()
	p, err := remediate.ParsePolicy([]byte(y), shippedRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// drainPolicyWithout is drainPolicy with cordon only.
const drainPolicyWithout = `
alerts:
  NodeCgroupLeak:
    target: node
    check: {name: orphan-cgroups, args: {threshold: 20}}
    remediators:
      - name: cordon
        enabled: true
        args: {maxUnschedulablePercent: 100}
`

// A drain that the pause switch, dry-run or a policy without drain
// stops between two passes waits: it evicts nothing more and writes
// nothing (paused, dry-run) until its deadline, and /readyz's list names
// it while it waits. A policy without drain lets it write its end.
func TestDrainWaitsBetweenPasses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*testing.T, *remediate.Engine, k8sClient)
		why    string
		// ends: the drain writes its end (incomplete), as the gate
		// allows writes.
		ends bool
	}{
		{name: "paused", change: func(t *testing.T, _ *remediate.Engine, cs k8sClient) { setPause(t, cs, true) }, why: `paused: Namespace leakguard has leakguard.io/pause: "true"`},
		{name: "policy dry-run", change: func(t *testing.T, e *remediate.Engine, _ k8sClient) {
			e.SetPolicy(mustPolicy(t, "dryRun: true\n"+drainPolicy))
		}, why: "the policy is in dry-run"},
		{name: "entry dry-run", change: func(t *testing.T, e *remediate.Engine, _ k8sClient) {
			e.SetPolicy(mustPolicy(t, strings.Replace(drainPolicy, "    target: node\n", "    target: node\n    dryRun: true\n", 1)))
		}, why: "the policy's entry for NodeCgroupLeak is in dry-run"},
		{name: "no drain in the policy", change: func(t *testing.T, e *remediate.Engine, _ k8sClient) { e.SetPolicy(mustPolicy(t, drainPolicyWithout)) },
			why: "the policy's entry for NodeCgroupLeak has no drain", ends: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := append(drainObjects(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}})
			e, cs := newTestEngine(t, engineSetup{policy: drainPolicy, objs: objs})
			var ev []string
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "eviction" {
					return false, nil, nil
				}
				name := a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
				ev = append(ev, name)
				if name == "web-2" {
					return true, nil, apierrors.NewTooManyRequests("budget", 1)
				}
				return true, nil, nil
			})
			dr, waits := testDrainer(cs, 10*time.Second)
			env := e.Env()
			dr.gate, dr.waits = drainGateOf(env.Gate), env.Waits
			sleep := dr.sleep
			from, evictedBefore := -1, 0
			var waiting [][]string
			dr.sleep = func(ctx context.Context, d time.Duration) error {
				if from < 0 {
					tc.change(t, e, cs)
					from, evictedBefore = len(cs.Actions()), len(ev)
				} else {
					waiting = append(waiting, e.WaitingDrains())
				}
				return sleep(ctx, d)
			}
			dr.run()
			if from < 0 {
				t.Fatal("the drain never waited between passes")
			}
			if len(ev) != evictedBefore {
				t.Errorf("evictions after the change: %v", ev[evictedBefore:])
			}
			if len(*waits) < 2 || len(waiting) == 0 || len(waiting[0]) != 1 || !strings.Contains(waiting[0][0], "Node node-0 (NodeCgroupLeak") || !strings.Contains(waiting[0][0], tc.why) {
				t.Errorf("waiting drains while it waited = %q, want Node node-0 waiting for %q", waiting, tc.why)
			}
			if w := e.WaitingDrains(); len(w) != 0 {
				t.Errorf("waiting drains after its end = %q, want none", w)
			}
			got := writes(cs, from)
			s := drainStateOf(t, cs)
			if tc.ends {
				if len(got) != 2 || s.State != DrainIncomplete || !strings.Contains(s.Why, tc.why) {
					t.Errorf("writes %v, state %+v; want the end written (patch and Event), incomplete, why %q", got, s, tc.why)
				}
				return
			}
			if len(got) != 0 {
				t.Errorf("writes after the change: %v, want none", got)
			}
			if s.State != DrainRunning || s.Left != 1 {
				t.Errorf("state = %+v, want running as last written (1 left)", s)
			}
		})
	}
}

// staleDrain is node-0, cordoned unless schedulable, with a running
// drain whose replica stopped five minutes ago.
func staleDrain(deadline time.Time, schedulable bool) *corev1.Node {
	n := remediatetest.Node("node-0", "a", !schedulable)
	st, _ := json.Marshal(drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Owner: "gone-1", Started: remediatetest.Now.Add(-6 * time.Minute), Deadline: deadline, Heartbeat: remediatetest.Now.Add(-5 * time.Minute), Evicted: 1, Left: 2})
	n.Annotations = map[string]string{AnnotationDrain: string(st)}
	return n
}

// ResumeDrains on a paused or dry-run leakguard writes nothing, stale
// records past their deadline included, resumes nothing and lists the
// drain as waiting; once unpaused, it resumes it.
func TestResumeDrainsWaits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		opts   func(*remediate.Options)
		paused bool
		why    string
	}{
		{name: "paused", policy: drainPolicy, paused: true, why: "paused"},
		{name: "--dry-run", policy: drainPolicy, opts: func(o *remediate.Options) { o.DryRun = true }, why: "--dry-run"},
		{name: "policy dry-run", policy: "dryRun: true\n" + drainPolicy, why: "the policy is in dry-run"},
		{name: "no drain, within the deadline", policy: drainPolicyWithout, why: "has no drain"},
	} {
		for _, past := range []bool{false, true} {
			if past && tc.name == "no drain, within the deadline" {
				continue
			}
			t.Run(fmt.Sprintf("%s, past the deadline %v", tc.name, past), func(t *testing.T) {
				deadline := remediatetest.Now.Add(5 * time.Minute)
				if past {
					deadline = remediatetest.Now.Add(-time.Minute)
				}
				ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "leakguard"}}
				if tc.paused {
					ns.Annotations = map[string]string{remediate.AnnotationPause: "true"}
				}
				objs := append(drainOwners(), staleDrain(deadline, false), ns, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, podOn("shop", "web-2", "node-0", replicated))
				var bg []func()
				e, cs := newTestEngine(t, engineSetup{policy: tc.policy, objs: objs, opts: func(o *remediate.Options) {
					o.Background = func(f func()) { bg = append(bg, f) }
					if tc.opts != nil {
						tc.opts(o)
					}
				}})
				before := drainStateOf(t, cs)
				resumed, reported, err := e.Resume(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if resumed != 0 || reported != 0 || len(bg) != 0 {
					t.Errorf("resumed %d, reported %d, %d started; want none", resumed, reported, len(bg))
				}
				if w := writes(cs, 0); len(w) != 0 {
					t.Errorf("writes: %v, want none", w)
				}
				if diff := cmp.Diff(before, drainStateOf(t, cs)); diff != "" {
					t.Errorf("record changed (-before +after):\n%s", diff)
				}
				if w := e.WaitingDrains(); len(w) != 1 || !strings.Contains(w[0], tc.why) {
					t.Errorf("waiting drains = %q, want node-0 waiting for %q", w, tc.why)
				}
				if !tc.paused {
					return
				}
				setPause(t, cs, false)
				resumed, reported, err = e.Resume(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if got := resumed + reported; got != 1 || (past && reported != 1) || (!past && (resumed != 1 || len(bg) != 1)) {
					t.Errorf("unpaused: resumed %d, reported %d, %d started; want the drain resumed, or reported past its deadline", resumed, reported, len(bg))
				}
				if w := e.WaitingDrains(); len(w) != 0 {
					t.Errorf("unpaused: waiting drains = %q, want none", w)
				}
			})
		}
	}
}

// A stale drain on a node someone uncordoned is reported stopped, not
// resumed; one whose alert the policy no longer drains is reported
// incomplete past its deadline, naming why.
func TestResumeDrainsReports(t *testing.T) {
	for _, tc := range []struct {
		name        string
		policy      string
		node        *corev1.Node
		state, why  string
		eventReason string
	}{
		{"uncordoned", drainPolicy, staleDrain(remediatetest.Now.Add(5*time.Minute), true), DrainStopped, "schedulable again", EventReasonDrainStopped},
		{"no drain, past the deadline", drainPolicyWithout, staleDrain(remediatetest.Now.Add(-time.Minute), false), DrainIncomplete, "has no drain", EventReasonDrainIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bg []func()
			reg := prometheus.NewRegistry()
			e, cs := newTestEngine(t, engineSetup{policy: tc.policy, registry: reg, objs: append(drainOwners(), tc.node, podOn("shop", "web-2", "node-0", replicated)),
				opts: func(o *remediate.Options) { o.Background = func(f func()) { bg = append(bg, f) } }})
			ev := remediatetest.Evictions(cs, nil)
			resumed, reported, err := e.Resume(context.Background())
			if err != nil || resumed != 0 || reported != 1 || len(bg) != 0 || len(*ev) != 0 {
				t.Fatalf("ResumeDrains = %d, %d, %v, %d started, evictions %v; want 1 reported, nothing started or evicted", resumed, reported, err, len(bg), *ev)
			}
			s := drainStateOf(t, cs)
			if s.State != tc.state || !strings.Contains(s.Why, tc.why) {
				t.Errorf("state = %+v, want %s, why %q", s, tc.state, tc.why)
			}
			evs := remediatetest.Events(t, cs)
			if len(evs) != 1 || evs[0].Reason != tc.eventReason || !strings.Contains(evs[0].Message, tc.why) {
				t.Errorf("events = %+v, want one %s saying %q", evs, tc.eventReason, tc.why)
			}
			if got := remediatetest.Counter(t, reg, "leakguard_drains_total", map[string]string{"result": tc.state}); got != 1 {
				t.Errorf("leakguard_drains_total{result=%q} = %g, want 1", tc.state, got)
			}
		})
	}
}

// skew moves dr's clock by *d on top of its own.
func skew(dr *drainer, d *time.Duration) {
	base := dr.now
	dr.now = func() time.Time { return base().Add(*d) }
}

// nodeWrite changes node-0 in the tracker as another writer would (no
// action recorded), bumping its resourceVersion.
func nodeWrite(t *testing.T, cs k8sClient, change func(*corev1.Node)) {
	t.Helper()
	gvr := corev1.SchemeGroupVersion.WithResource("nodes")
	obj, err := cs.Tracker().Get(gvr, "", "node-0")
	if err != nil {
		t.Fatal(err)
	}
	n := obj.(*corev1.Node).DeepCopy()
	change(n)
	rv, _ := strconv.Atoi(n.ResourceVersion)
	n.ResourceVersion = strconv.Itoa(rv + 1)
	if err := cs.Tracker().Update(gvr, n, ""); err != nil {
		t.Fatal(err)
	}
}

// foreignRecord is a take-over by another replica.
func foreignRecord(n *corev1.Node) {
	st, _ := json.Marshal(drainState{Alert: "NodeCgroupLeak", State: DrainRunning, Owner: "other-replica", Started: remediatetest.Now, Deadline: remediatetest.Now.Add(time.Hour), Heartbeat: remediatetest.Now.Add(3 * time.Minute)})
	n.Annotations[AnnotationDrain] = string(st)
}

// Mid-pass, after web-1's eviction: a person uncordons the node, another
// replica takes the drain over (seen by the check before the next
// eviction, or by the Conflict of the heartbeat's renewal), or the
// kubelet writes the node (a Conflict that is retried). The drain stops
// before web-2, writing its end only when the node is schedulable and
// nothing when the drain is not its own any more.
func TestDrainStopsMidPass(t *testing.T) {
	for _, tc := range []struct {
		name string
		// afterWeb1 runs when web-1 is evicted; renew makes the heartbeat
		// due before web-2; onRenewal writes the node just before the
		// renewal's patch.
		afterWeb1 func(*testing.T, k8sClient)
		renew     bool
		onRenewal func(*corev1.Node)
		evicted   []string
		state     string
		owner     string
	}{
		{name: "uncordoned", afterWeb1: func(t *testing.T, cs k8sClient) {
			nodeWrite(t, cs, func(n *corev1.Node) { n.Spec.Unschedulable = false })
		},
			evicted: []string{"shop/web-1"}, state: DrainStopped},
		{name: "taken over, seen before the eviction", afterWeb1: func(t *testing.T, cs k8sClient) { nodeWrite(t, cs, foreignRecord) },
			evicted: []string{"shop/web-1"}, state: DrainRunning, owner: "other-replica"},
		{name: "taken over, a Conflict on the renewal", renew: true, onRenewal: foreignRecord,
			evicted: []string{"shop/web-1"}, state: DrainRunning, owner: "other-replica"},
		{name: "the kubelet wrote the node, a Conflict retried", renew: true, onRenewal: func(n *corev1.Node) { n.Labels["kubelet"] = "wrote" },
			evicted: []string{"shop/web-1", "shop/web-2"}, state: DrainDone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := remediatetest.NewCluster(t, append(drainOwners(), remediatetest.Node("node-0", "a", true), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
				podOn("shop", "web-1", "node-0", replicated), podOn("shop", "web-2", "node-0", replicated))...)
			dr, _ := testDrainer(cs, time.Minute)
			dr.owner, dr.state.Owner = "this-replica", "this-replica"
			var offset time.Duration
			skew(dr, &offset)
			armed := false
			cs.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
				if armed {
					armed = false
					nodeWrite(t, cs, tc.onRenewal)
				}
				return false, nil, nil
			})
			var ev []string
			var writesAfter []string
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "eviction" {
					return false, nil, nil
				}
				name := a.GetNamespace() + "/" + a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName()
				ev = append(ev, name)
				if name == "shop/web-1" {
					if tc.afterWeb1 != nil {
						tc.afterWeb1(t, cs)
					}
					if tc.renew {
						offset = drainRenewEvery
						armed = tc.onRenewal != nil
					}
				}
				return true, nil, nil
			})
			dr.run()
			if strings.Join(ev, ",") != strings.Join(tc.evicted, ",") {
				t.Errorf("evicted %v, want %v", ev, tc.evicted)
			}
			s := drainStateOf(t, cs)
			if s.State != tc.state || (tc.owner != "" && s.Owner != tc.owner) {
				t.Errorf("record = %+v, want %s (owner %q)", s, tc.state, tc.owner)
			}
			if tc.owner != "" {
				// Nothing written after the other replica's take-over,
				// which came with web-1's eviction.
				from := 0
				for i, a := range cs.Actions() {
					if a.GetSubresource() == "eviction" {
						from = i + 1
						break
					}
				}
				for _, w := range writes(cs, from) {
					if !strings.HasPrefix(w, "patch nodes") || !tc.renew {
						writesAfter = append(writesAfter, w)
					}
				}
				if len(writesAfter) != 0 {
					t.Errorf("writes after the take-over: %v", writesAfter)
				}
			}
			if tc.state == DrainStopped {
				evs := remediatetest.Events(t, cs)
				if last := evs[len(evs)-1]; last.Reason != EventReasonDrainStopped || last.Type != corev1.EventTypeNormal || !strings.Contains(last.Message, "schedulable again") {
					t.Errorf("last event = %s %s %q, want a Normal %s", last.Type, last.Reason, last.Message, EventReasonDrainStopped)
				}
			}
		})
	}
}

// TestDrainPassCutShortKeepsRefusals: a pass that the drain's deadline
// cuts short (an eviction's request, or the check before one) does not
// forget why the pods it did not reach were left at the pass before.
func TestDrainPassCutShortKeepsRefusals(t *testing.T) {
	for _, where := range []string{"eviction", "check"} {
		t.Run(where, func(t *testing.T) {
			cs := drainCluster(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cutting := false
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "eviction" || a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName() != "web-2" {
					return false, nil, nil
				}
				if cutting {
					cancel()
					return true, nil, context.DeadlineExceeded
				}
				return true, nil, apierrors.NewTooManyRequests("budget", 1)
			})
			cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				// The check before web-2 fails once web-1 is evicted.
				if where == "check" && cutting && a.GetSubresource() == "eviction" && a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName() == "web-1" {
					cancel()
				}
				return false, nil, nil
			})
			cs.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
				if ctx.Err() != nil {
					return true, nil, ctx.Err()
				}
				return false, nil, nil
			})
			dr, _ := testDrainer(cs, time.Minute)
			if err := dr.write(context.Background(), ""); err != nil {
				t.Fatal(err)
			}
			if err := dr.pass(context.Background()); err != nil {
				t.Fatalf("first pass: %v", err)
			}
			if got := strings.Join(dr.state.Refused, ","); !strings.Contains(got, "shop/web-2 (disruption budget)") {
				t.Fatalf("first pass refused %q, want web-2's disruption budget", got)
			}
			cutting = true
			err := dr.pass(ctx)
			if where == "check" && err == nil {
				t.Fatalf("the cut pass returned nil, want the check's error")
			}
			if got := strings.Join(dr.state.Refused, ","); !strings.Contains(got, "shop/web-2 (disruption budget)") || dr.state.Left < 1 {
				t.Errorf("cut pass: left %d, refused %q; want web-2 still left for its disruption budget", dr.state.Left, got)
			}
		})
	}
}
