package remediate

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func int32p(n int32) *int32 { return &n }

// healthyDeployment is Deployment shop/web with 3 replicas, all updated,
// available and ready, its last rollout observed.
func healthyDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-web", ResourceVersion: "1", Generation: 4},
		Spec:       appsv1.DeploymentSpec{Replicas: int32p(3)},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3},
	}
}

// restartFixtures replaces the fixtures' workloads by healthy ones.
func restartFixtures(edit func(objs []runtime.Object)) []runtime.Object {
	var objs []runtime.Object
	for _, o := range fixtures() {
		switch w := o.(type) {
		case *appsv1.Deployment:
			o = healthyDeployment()
		case *appsv1.StatefulSet:
			w.Generation = 2
			w.Spec.Replicas = int32p(2)
			w.Status = appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, CurrentRevision: "db-1", UpdateRevision: "db-1"}
		}
		objs = append(objs, o)
	}
	objs = append(objs, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent", UID: "uid-agent", ResourceVersion: "1", Generation: 1},
		Status:     appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4, NumberReady: 4},
	}, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent-x1", UID: "uid-agent-x1", ResourceVersion: "1", OwnerReferences: ownedBy(KindDaemonSet, "agent")}})
	if edit != nil {
		edit(objs)
	}
	return objs
}

func deploymentIn(objs []runtime.Object) *appsv1.Deployment {
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d
		}
	}
	return nil
}

const restartPolicy = "alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: restart, enabled: true%s}]\n"

func newRestartEngine(t *testing.T, objs []runtime.Object, args string, opts func(*Options)) (*Engine, *fake.Clientset) {
	t.Helper()
	return newTestEngine(t, engineSetup{objs: objs, policy: strings.Replace(restartPolicy, "%s", args, 1), opts: func(o *Options) {
		o.Querier = confirmingQuerier{}
		if opts != nil {
			opts(o)
		}
	}})
}

// evictions returns the eviction requests, answering each with err.
func evictions(cs *fake.Clientset, err error) *[]string {
	var got []string
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		got = append(got, a.GetNamespace()+"/"+a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName())
		return true, nil, err
	})
	return &got
}

// TestRestartDeployment restarts the leaking pod's Deployment as
// `kubectl rollout restart` does, recording the cooldown and the history
// on the Deployment, not on the pod the restart replaces.
func TestRestartDeployment(t *testing.T) {
	e, cs := newRestartEngine(t, restartFixtures(nil), "", nil)
	d, err := e.DecideOne(context.Background(), leakAlert())
	if err != nil || d.Decision != DecisionActed {
		t.Fatalf("DecideOne() = %s/%s (%s), %v; want acted", d.Decision, d.Reason, d.Message, err)
	}
	dep, _ := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if got := dep.Spec.Template.Annotations[AnnotationRestartedAt]; got != "2026-11-23T12:00:00Z" {
		t.Errorf("pod template %s = %q, want 2026-11-23T12:00:00Z", AnnotationRestartedAt, got)
	}
	wantAnn := map[string]string{
		CooldownAnnotation(RemediatorRestart): "2026-11-23T12:00:00Z",
		AnnotationRestartHistory:              `{"ContainerMemoryLeak":["2026-11-23T12:00:00Z"]}`,
	}
	if diff := cmp.Diff(wantAnn, dep.Annotations); diff != "" {
		t.Errorf("Deployment annotations mismatch (-want +got):\n%s", diff)
	}
	ps := patches(cs, "deployments")
	if len(ps) != 2 || string(ps[1].PatchType) != "application/strategic-merge-patch+json" {
		t.Errorf("deployment patches = %v, want the claim, then one strategic merge patch", ps)
	}
	if n := len(patches(cs, "pods")); n != 0 {
		t.Errorf("%d pod patches, want none (records live on the workload)", n)
	}
	evs := events(t, cs)
	if len(evs) != 1 || evs[0].Reason != EventReasonActed || !strings.Contains(evs[0].Message, "rolling restart of Deployment shop/web") {
		t.Errorf("events = %+v, want one LeakguardActed naming the rolling restart", evs)
	}
	// Redelivered: the cooldown holds, nothing more is written.
	d, _ = e.DecideOne(context.Background(), leakAlert())
	if d.Decision != DecisionHeld || d.Reason != ReasonCooldown || len(patches(cs, "deployments")) != 2 {
		t.Errorf("redelivery = %s/%s after %d patches, want held/cooldown and no more patches", d.Decision, d.Reason, len(patches(cs, "deployments")))
	}
}

// TestRestartGuards runs restart's own guards and its other targets.
func TestRestartGuards(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(objs []runtime.Object)
		args      string
		pod       string
		evictErr  error
		decision  string
		reason    string
		patched   string // the workload resource restarted, if any
		evictions int
	}{
		{name: "fewer ready replicas than the default 2", edit: func(objs []runtime.Object) { deploymentIn(objs).Status.ReadyReplicas = 1 },
			pod: "web-7d9-abcde", decision: DecisionHeld, reason: ReasonNotReady},
		{name: "entry allows a single ready replica", edit: func(objs []runtime.Object) { deploymentIn(objs).Status.ReadyReplicas = 1 },
			args: ", args: {minReadyReplicas: 1}", pod: "web-7d9-abcde", decision: DecisionActed, patched: "deployments"},
		{name: "rollout in progress", edit: func(objs []runtime.Object) { deploymentIn(objs).Status.UpdatedReplicas = 2 },
			pod: "web-7d9-abcde", decision: DecisionHeld, reason: ReasonRolloutInProgress},
		{name: "new generation not observed", edit: func(objs []runtime.Object) { deploymentIn(objs).Generation = 5 },
			pod: "web-7d9-abcde", decision: DecisionHeld, reason: ReasonRolloutInProgress},
		{name: "paused deployment", edit: func(objs []runtime.Object) { deploymentIn(objs).Spec.Paused = true },
			pod: "web-7d9-abcde", decision: DecisionHeld, reason: ReasonRolloutPaused},
		{name: "statefulset", pod: "db-0", decision: DecisionActed, patched: "statefulsets"},
		{name: "statefulset updated on delete", edit: func(objs []runtime.Object) {
			for _, o := range objs {
				if s, ok := o.(*appsv1.StatefulSet); ok {
					s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
				}
			}
		}, pod: "db-0", decision: DecisionHeld, reason: ReasonOnDelete},
		{name: "daemonset", pod: "agent-x1", decision: DecisionActed, patched: "daemonsets"},
		{name: "job's pod left alone", pod: "report-2911-xyz", decision: DecisionHeld, reason: ReasonJob},
		{name: "bare pod evicted", pod: "lonely", decision: DecisionActed, evictions: 1},
		{name: "bare pod, PDB refuses", pod: "lonely", evictErr: apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10),
			decision: DecisionHeld, reason: ReasonPDB, evictions: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, cs := newRestartEngine(t, restartFixtures(tc.edit), tc.args, nil)
			ev := evictions(cs, tc.evictErr)
			a := leakAlert()
			a.Labels["pod"] = tc.pod
			d, err := e.DecideOne(context.Background(), a)
			if err != nil || d.Decision != tc.decision || d.Reason != tc.reason {
				t.Errorf("DecideOne() = %s/%s (%s), %v; want %s/%s, no error", d.Decision, d.Reason, d.Message, err, tc.decision, tc.reason)
			}
			for _, res := range []string{"deployments", "statefulsets", "daemonsets"} {
				restarts := 0
				for _, p := range patches(cs, res) {
					if strings.Contains(string(p.Patch), AnnotationRestartedAt) {
						restarts++
					}
				}
				if want := map[bool]int{true: 1}[res == tc.patched]; restarts != want {
					t.Errorf("%d restarts of %s, want %d", restarts, res, want)
				}
			}
			if len(*ev) != tc.evictions {
				t.Errorf("evictions = %v, want %d", *ev, tc.evictions)
			}
			if tc.reason == ReasonPDB {
				// Nothing happened: the claim went back, the retry may act.
				p, _ := cs.CoreV1().Pods("shop").Get(context.Background(), "lonely", metav1.GetOptions{})
				if _, ok := p.Annotations[CooldownAnnotation(RemediatorRestart)]; ok {
					t.Errorf("pod annotations after a PDB refusal = %v, want the claim given back", p.Annotations)
				}
			}
		})
	}
}

// TestRestartRecurrence: the Deployment was restarted for this alert three
// times within 24 h; restart stops, marks the Deployment and says why in a
// Warning Event, and the metric counts it.
func TestRestartRecurrence(t *testing.T) {
	hist := `{"ContainerMemoryLeak":["2026-11-22T18:00:00Z","2026-11-23T00:00:00Z","2026-11-23T06:00:00Z"],"ContainerOOMKilled":["2026-11-23T07:00:00Z"]}`
	objs := restartFixtures(func(objs []runtime.Object) {
		deploymentIn(objs).Annotations = map[string]string{AnnotationRestartHistory: hist}
	})
	e, cs := newRestartEngine(t, objs, "", nil)
	d, err := e.DecideOne(context.Background(), leakAlert())
	if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonRecurrence {
		t.Fatalf("DecideOne() = %s/%s, %v; want held/recurrence", d.Decision, d.Reason, err)
	}
	dep := getDeployment(t, cs)
	want := "ContainerMemoryLeak: restarted 3 times within 24h0m0s, about every 6.0 h; restarting is not fixing it"
	if got := dep.GetAnnotations()[AnnotationRecurring]; got != want {
		t.Errorf("%s = %q, want %q", AnnotationRecurring, got, want)
	}
	evs := events(t, cs)
	if len(evs) != 1 || evs[0].Type != corev1.EventTypeWarning || !strings.Contains(evs[0].Message, "leak recurs about every 6.0 h; restarting is not fixing it") {
		t.Errorf("events = %+v, want one Warning saying the leak recurs", evs)
	}
	if got := testutil.ToFloat64(e.metrics.recurrences.WithLabelValues("ContainerMemoryLeak", RemediatorRestart)); got != 1 {
		t.Errorf("recurrences = %g, want 1", got)
	}
	for _, p := range patches(cs, "deployments") {
		if strings.Contains(string(p.Patch), AnnotationRestartedAt) {
			t.Errorf("restarted despite the recurrence: %s", p.Patch)
		}
	}
	// A day after the first, the window holds two: restart acts again.
	e.now = func() time.Time { return testNow.Add(7 * time.Hour) }
	d, _ = e.DecideOne(context.Background(), leakAlert())
	if d.Decision != DecisionActed {
		t.Errorf("a window later: DecideOne() = %s/%s (%s), want acted", d.Decision, d.Reason, d.Message)
	}
}

// TestRestartHistoryBounded: the history keeps, per alert, the times
// within the window and at most count of them, and at most
// maxHistoryAlerts alerts.
func TestRestartHistoryBounded(t *testing.T) {
	h := restartHistory{}
	for i := range 20 {
		now := testNow.Add(time.Duration(i) * time.Hour)
		h = h.record("A", now, 3, 24*time.Hour)
		h = h.record(string(rune('b'+i)), now, 3, 24*time.Hour)
	}
	if n := len(h["A"]); n != 3 {
		t.Errorf("history of A holds %d times, want 3", n)
	}
	if n := len(h); n != maxHistoryAlerts {
		t.Errorf("history holds %d alerts, want %d", n, maxHistoryAlerts)
	}
	b, _ := json.Marshal(h)
	if len(b) > 1024 {
		t.Errorf("history of %d bytes, want it bounded under 1 KiB", len(b))
	}
	if _, ok := h.record("A", testNow.Add(100*time.Hour), 3, 24*time.Hour)["b"]; ok {
		t.Errorf("an alert outside the window is kept")
	}
}

// TestRestartDryRun prints the plan and writes nothing but the Event.
func TestRestartDryRun(t *testing.T) {
	e, cs := newRestartEngine(t, restartFixtures(nil), "", func(o *Options) { o.DryRun = true })
	d, err := e.DecideOne(context.Background(), leakAlert())
	if err != nil || d.Decision != DecisionDryRun || d.Reason != ReasonWouldAct {
		t.Fatalf("DecideOne() = %s/%s, %v; want dry-run/would-act", d.Decision, d.Reason, err)
	}
	want := "would patch Deployment shop/web spec.template annotation kubectl.kubernetes.io/restartedAt=2026-11-23T12:00:00Z"
	if len(d.Remediators) != 1 || d.Remediators[0].Detail != want {
		t.Errorf("plan = %+v, want %q", d.Remediators, want)
	}
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); (v == "patch" || v == "update" || v == "create") && a.GetResource().Resource != "events" {
			t.Errorf("dry-run wrote: %s %s", v, a.GetResource().Resource)
		}
	}
}

// TestRestartPolicyFile parses the restart example and its arguments.
func TestRestartPolicyFile(t *testing.T) {
	data, err := os.ReadFile("testdata/policy/good-restart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(data, DefaultRegistry())
	if err != nil {
		t.Fatal(err)
	}
	rs := p.Entry("ContainerMemoryOOMPredicted").Remediators
	if len(rs) != 2 || !rs[1].Disruptive {
		t.Fatalf("remediators = %+v, want annotate and a disruptive restart", rs)
	}
	want := Restart{MinReadyReplicas: 1, RecurrenceCount: 2, RecurrenceWindow: 12 * time.Hour}
	if got := rs[1].Remediator.(Restart); got != want {
		t.Errorf("restart = %+v, want %+v", got, want)
	}
}
