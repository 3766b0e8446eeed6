package restart

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	metadatafake "k8s.io/client-go/metadata/fake"
)

const restartPolicy = "alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: restart, enabled: true%s}]\n"

func newRestartEngine(t *testing.T, objs []runtime.Object, args string, opts func(*remediate.Options)) (*remediate.Engine, *fake.Clientset) {
	t.Helper()
	return newTestEngine(t, engineSetup{objs: objs, policy: strings.Replace(restartPolicy, "%s", args, 1), opts: func(o *remediate.Options) {
		o.Querier = confirmingQuerier{}
		if opts != nil {
			opts(o)
		}
	}})
}

// TestRestartDeployment restarts the leaking pod's Deployment as
// `kubectl rollout restart` does, recording the cooldown and the history
// on the Deployment, not on the pod the restart replaces.
func TestRestartDeployment(t *testing.T) {
	e, cs := newRestartEngine(t, remediatetest.RestartFixtures(nil), "", nil)
	d, err := e.DecideOne(context.Background(), remediatetest.LeakAlert())
	if err != nil || d.Decision != remediate.DecisionActed {
		t.Fatalf("DecideOne() = %s/%s (%s), %v; want acted", d.Decision, d.Reason, d.Message, err)
	}
	dep, _ := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if got := dep.Spec.Template.Annotations[AnnotationRestartedAt]; got != "2026-11-23T12:00:00Z" {
		t.Errorf("pod template %s = %q, want 2026-11-23T12:00:00Z", AnnotationRestartedAt, got)
	}
	wantAnn := map[string]string{
		remediate.CooldownAnnotation(Name): "2026-11-23T12:00:00Z",
		AnnotationRestartHistory:           `{"ContainerMemoryLeak":["2026-11-23T12:00:00Z"]}`,
	}
	if diff := cmp.Diff(wantAnn, dep.Annotations); diff != "" {
		t.Errorf("Deployment annotations mismatch (-want +got):\n%s", diff)
	}
	ps := remediatetest.Patches(cs, "deployments")
	if len(ps) != 2 || string(ps[1].PatchType) != "application/strategic-merge-patch+json" {
		t.Errorf("deployment patches = %v, want the claim, then one strategic merge patch", ps)
	}
	if n := len(remediatetest.Patches(cs, "pods")); n != 0 {
		t.Errorf("%d pod patches, want none (records live on the workload)", n)
	}
	evs := remediatetest.Events(t, cs)
	if len(evs) != 1 || evs[0].Reason != remediate.EventReasonActed || !strings.Contains(evs[0].Message, "rolling restart of Deployment shop/web") {
		t.Errorf("events = %+v, want one LeakguardActed naming the rolling restart", evs)
	}
	// Redelivered: the cooldown holds, nothing more is written.
	d, _ = e.DecideOne(context.Background(), remediatetest.LeakAlert())
	if d.Decision != remediate.DecisionHeld || d.Reason != remediate.ReasonCooldown || len(remediatetest.Patches(cs, "deployments")) != 2 {
		t.Errorf("redelivery = %s/%s after %d patches, want held/cooldown and no more patches", d.Decision, d.Reason, len(remediatetest.Patches(cs, "deployments")))
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
		{name: "fewer ready replicas than the default 2", edit: func(objs []runtime.Object) { remediatetest.DeploymentIn(objs).Status.ReadyReplicas = 1 },
			pod: "web-7d9-abcde", decision: remediate.DecisionHeld, reason: ReasonNotReady},
		{name: "entry allows a single ready replica", edit: func(objs []runtime.Object) { remediatetest.DeploymentIn(objs).Status.ReadyReplicas = 1 },
			args: ", args: {minReadyReplicas: 1}", pod: "web-7d9-abcde", decision: remediate.DecisionActed, patched: "deployments"},
		{name: "rollout in progress", edit: func(objs []runtime.Object) { remediatetest.DeploymentIn(objs).Status.UpdatedReplicas = 2 },
			pod: "web-7d9-abcde", decision: remediate.DecisionHeld, reason: ReasonRolloutInProgress},
		{name: "new generation not observed", edit: func(objs []runtime.Object) { remediatetest.DeploymentIn(objs).Generation = 5 },
			pod: "web-7d9-abcde", decision: remediate.DecisionHeld, reason: ReasonRolloutInProgress},
		{name: "paused deployment", edit: func(objs []runtime.Object) { remediatetest.DeploymentIn(objs).Spec.Paused = true },
			pod: "web-7d9-abcde", decision: remediate.DecisionHeld, reason: ReasonRolloutPaused},
		{name: "statefulset", pod: "db-0", decision: remediate.DecisionActed, patched: "statefulsets"},
		{name: "statefulset updated on delete", edit: func(objs []runtime.Object) {
			for _, o := range objs {
				if s, ok := o.(*appsv1.StatefulSet); ok {
					s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
				}
			}
		}, pod: "db-0", decision: remediate.DecisionHeld, reason: ReasonOnDelete},
		{name: "daemonset", pod: "agent-x1", decision: remediate.DecisionActed, patched: "daemonsets"},
		{name: "job's pod left alone", pod: "report-2911-xyz", decision: remediate.DecisionHeld, reason: ReasonJob},
		{name: "bare pod held", pod: "lonely", decision: remediate.DecisionHeld, reason: ReasonNoController},
		{name: "bare pod evicted when the entry allows it", args: ", args: {evictUnreplicated: true}", pod: "lonely", decision: remediate.DecisionActed, evictions: 1},
		{name: "bare pod, PDB refuses", args: ", args: {evictUnreplicated: true}", pod: "lonely", evictErr: apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 10),
			decision: remediate.DecisionHeld, reason: ReasonPDB, evictions: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, cs := newRestartEngine(t, remediatetest.RestartFixtures(tc.edit), tc.args, nil)
			ev := remediatetest.Evictions(cs, tc.evictErr)
			a := remediatetest.LeakAlert()
			a.Labels["pod"] = tc.pod
			d, err := e.DecideOne(context.Background(), a)
			if err != nil || d.Decision != tc.decision || d.Reason != tc.reason {
				t.Errorf("DecideOne() = %s/%s (%s), %v; want %s/%s, no error", d.Decision, d.Reason, d.Message, err, tc.decision, tc.reason)
			}
			for _, res := range []string{"deployments", "statefulsets", "daemonsets"} {
				restarts := 0
				for _, p := range remediatetest.Patches(cs, res) {
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
				if _, ok := p.Annotations[remediate.CooldownAnnotation(Name)]; ok {
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
	objs := remediatetest.RestartFixtures(func(objs []runtime.Object) {
		remediatetest.DeploymentIn(objs).Annotations = map[string]string{AnnotationRestartHistory: hist}
	})
	now := remediatetest.Now
	reg := prometheus.NewRegistry()
	e, cs := newRestartEngine(t, objs, "", func(o *remediate.Options) {
		o.Now = func() time.Time { return now }
		o.Registerer = reg
	})
	d, err := e.DecideOne(context.Background(), remediatetest.LeakAlert())
	if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != remediate.ReasonRecurrence {
		t.Fatalf("DecideOne() = %s/%s, %v; want held/recurrence", d.Decision, d.Reason, err)
	}
	dep := getDeployment(t, cs)
	want := "ContainerMemoryLeak: restarted 3 times within 24h0m0s, about every 6.0 h; restarting is not fixing it"
	if got := dep.GetAnnotations()[AnnotationRecurring]; got != want {
		t.Errorf("%s = %q, want %q", AnnotationRecurring, got, want)
	}
	evs := remediatetest.Events(t, cs)
	if len(evs) != 1 || evs[0].Type != corev1.EventTypeWarning || !strings.Contains(evs[0].Message, "leak recurs about every 6.0 h; restarting is not fixing it") {
		t.Errorf("events = %+v, want one Warning saying the leak recurs", evs)
	}
	if got := remediatetest.Counter(t, reg, "leakguard_restart_recurrences_total", map[string]string{"alertname": "ContainerMemoryLeak", "remediator": Name}); got != 1 {
		t.Errorf("recurrences = %g, want 1", got)
	}
	for _, p := range remediatetest.Patches(cs, "deployments") {
		if strings.Contains(string(p.Patch), AnnotationRestartedAt) {
			t.Errorf("restarted despite the recurrence: %s", p.Patch)
		}
	}
	// A day after the first, the window holds two: restart acts again.
	now = remediatetest.Now.Add(7 * time.Hour)
	d, _ = e.DecideOne(context.Background(), remediatetest.LeakAlert())
	if d.Decision != remediate.DecisionActed {
		t.Errorf("a window later: DecideOne() = %s/%s (%s), want acted", d.Decision, d.Reason, d.Message)
	}
}

// TestRestartHistoryBounded: the history keeps, per alert, the times
// within the window and at most count of them, and at most
// maxHistoryAlerts alerts.
func TestRestartHistoryBounded(t *testing.T) {
	h := restartHistory{}
	for i := range 20 {
		now := remediatetest.Now.Add(time.Duration(i) * time.Hour)
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
	if _, ok := h.record("A", remediatetest.Now.Add(100*time.Hour), 3, 24*time.Hour)["b"]; ok {
		t.Errorf("an alert outside the window is kept")
	}
}

// TestRestartDryRun prints the plan and writes nothing but the Event.
func TestRestartDryRun(t *testing.T) {
	e, cs := newRestartEngine(t, remediatetest.RestartFixtures(nil), "", func(o *remediate.Options) { o.DryRun = true })
	d, err := e.DecideOne(context.Background(), remediatetest.LeakAlert())
	if err != nil || d.Decision != remediate.DecisionDryRun || d.Reason != remediate.ReasonWouldAct {
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

func statefulSetIn(objs []runtime.Object) *appsv1.StatefulSet {
	for _, o := range objs {
		if s, ok := o.(*appsv1.StatefulSet); ok {
			return s
		}
	}
	return nil
}

func daemonSetIn(objs []runtime.Object) *appsv1.DaemonSet {
	for _, o := range objs {
		if d, ok := o.(*appsv1.DaemonSet); ok {
			return d
		}
	}
	return nil
}

// intOrStr is "25%" as a percentage, "3" as an integer.
func intOrStr(s string) *intstr.IntOrString {
	v := intstr.Parse(s)
	return &v
}

// writesBesidesEvents returns the writes cs received, Events aside.
func writesBesidesEvents(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); (v == "patch" || v == "update" || v == "create" || v == "delete") && a.GetResource().Resource != "events" {
			out = append(out, v+" "+a.GetResource().Resource+"/"+a.GetSubresource())
		}
	}
	return out
}

// TestRestartRolloutGuards: restart is held when the workload's own
// rollout would leave it no ready replica (a Recreate strategy, a
// maxUnavailable that resolves to every replica, as the workload's
// controller rounds it, a single replica the rollout stops first unless
// allowSingleReplica) or when a StatefulSet's partition would not
// replace the leaking pod; held, it writes nothing. The rollouts that
// keep a replica ready act.
func TestRestartRolloutGuards(t *testing.T) {
	deploy := func(replicas int32, strategy appsv1.DeploymentStrategy) func([]runtime.Object) {
		return func(objs []runtime.Object) {
			d := remediatetest.DeploymentIn(objs)
			d.Spec.Replicas = &replicas
			d.Spec.Strategy = strategy
			d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.AvailableReplicas, d.Status.ReadyReplicas = replicas, replicas, replicas, replicas
		}
	}
	rolling := func(maxSurge, maxUnavailable string) appsv1.DeploymentStrategy {
		ru := &appsv1.RollingUpdateDeployment{}
		if maxSurge != "" {
			ru.MaxSurge = intOrStr(maxSurge)
		}
		if maxUnavailable != "" {
			ru.MaxUnavailable = intOrStr(maxUnavailable)
		}
		return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: ru}
	}
	// sts edits StatefulSet db (2 replicas, all ready and updated).
	sts := func(edit func(s *appsv1.StatefulSet)) func([]runtime.Object) {
		return func(objs []runtime.Object) { edit(statefulSetIn(objs)) }
	}
	stsRolling := func(partition int32, maxUnavailable string) func(s *appsv1.StatefulSet) {
		return func(s *appsv1.StatefulSet) {
			ru := &appsv1.RollingUpdateStatefulSetStrategy{Partition: &partition}
			if maxUnavailable != "" {
				ru.MaxUnavailable = intOrStr(maxUnavailable)
			}
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType, RollingUpdate: ru}
		}
	}
	oneReplica := func(s *appsv1.StatefulSet) {
		s.Spec.Replicas = remediatetest.Int32p(1)
		s.Status.Replicas, s.Status.UpdatedReplicas, s.Status.ReadyReplicas = 1, 1, 1
	}
	// ds edits DaemonSet agent, on nodes nodes, all ready and updated.
	ds := func(nodes int32, maxSurge, maxUnavailable string) func([]runtime.Object) {
		return func(objs []runtime.Object) {
			d := daemonSetIn(objs)
			d.Status.DesiredNumberScheduled, d.Status.UpdatedNumberScheduled, d.Status.NumberAvailable, d.Status.NumberReady = nodes, nodes, nodes, nodes
			ru := &appsv1.RollingUpdateDaemonSet{}
			if maxSurge != "" {
				ru.MaxSurge = intOrStr(maxSurge)
			}
			if maxUnavailable != "" {
				ru.MaxUnavailable = intOrStr(maxUnavailable)
			}
			d.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: ru}
		}
	}
	// podsOfDB adds pods of StatefulSet db.
	podsOfDB := func(names ...string) func([]runtime.Object) []runtime.Object {
		return func(objs []runtime.Object) []runtime.Object {
			for _, n := range names {
				objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: n, UID: types.UID("uid-" + n), ResourceVersion: "1", OwnerReferences: remediatetest.OwnedBy(remediate.KindStatefulSet, "db")}})
			}
			return objs
		}
	}
	const (
		web, db, agent = "web-7d9-abcde", "db-0", "agent-x1"
		single         = ", args: {minReadyReplicas: 1}"
		allowed        = ", args: {minReadyReplicas: 1, allowSingleReplica: true}"
	)
	tests := []struct {
		name    string
		edit    func([]runtime.Object)
		add     func([]runtime.Object) []runtime.Object
		args    string
		pod     string
		reason  string // "" acts
		patched string // the workload resource restarted when it acts
		detail  string // in the held decision's message
	}{
		// Deployments: maxUnavailable rounds down, maxSurge up.
		{name: "Deployment RollingUpdate 25%", edit: deploy(3, rolling("25%", "25%")), pod: web, patched: "deployments"},
		{name: "Deployment maxUnavailable 1 of 3", edit: deploy(3, rolling("0", "1")), pod: web, patched: "deployments"},
		{name: "Deployment maxUnavailable 67% of 3 rounds down to 2", edit: deploy(3, rolling("0", "67%")), pod: web, patched: "deployments"},
		{name: "Deployment Recreate", edit: deploy(3, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}), pod: web,
			reason: ReasonNoReadyReplica, detail: "strategy is Recreate"},
		{name: "Deployment Recreate, allowSingleReplica does not cover 3", edit: deploy(3, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}), args: allowed, pod: web,
			reason: ReasonNoReadyReplica},
		{name: "Deployment maxUnavailable 100%", edit: deploy(3, rolling("25%", "100%")), pod: web,
			reason: ReasonNoReadyReplica, detail: "maxUnavailable 100% resolves to 3 of its 3 replicas"},
		{name: "Deployment maxUnavailable 3 of 3", edit: deploy(3, rolling("1", "3")), pod: web, reason: ReasonNoReadyReplica},
		{name: "Deployment maxUnavailable 5 of 3", edit: deploy(3, rolling("0", "5")), pod: web, reason: ReasonNoReadyReplica},
		{name: "Deployment strategy unknown", edit: deploy(3, appsv1.DeploymentStrategy{Type: "BlueGreen"}), pod: web, reason: ReasonNoReadyReplica},
		{name: "Deployment of one replica that surges first", edit: deploy(1, rolling("25%", "25%")), args: single, pod: web, patched: "deployments"},
		{name: "Deployment of one replica, maxSurge 0", edit: deploy(1, rolling("0", "25%")), args: single, pod: web,
			reason: ReasonNoReadyReplica, detail: "allowSingleReplica: true"},
		{name: "Deployment of one replica, maxSurge 0, allowed", edit: deploy(1, rolling("0", "25%")), args: allowed, pod: web, patched: "deployments"},
		{name: "Deployment of one replica, Recreate, allowed", edit: deploy(1, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}), args: allowed, pod: web, patched: "deployments"},

		// StatefulSets: maxUnavailable rounds down, at least 1.
		{name: "StatefulSet partition 0", edit: sts(stsRolling(0, "")), pod: db, patched: "statefulsets"},
		{name: "StatefulSet maxUnavailable 50% of 2", edit: sts(stsRolling(0, "50%")), pod: db, patched: "statefulsets"},
		{name: "StatefulSet maxUnavailable 100% of 2", edit: sts(stsRolling(0, "100%")), pod: db,
			reason: ReasonNoReadyReplica, detail: "maxUnavailable 100% resolves to 2 of its 2 replicas"},
		{name: "StatefulSet Recreate", edit: sts(func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = appsv1.RecreateStatefulSetStrategyType }), pod: db,
			reason: ReasonNoReadyReplica},
		{name: "StatefulSet of one replica", edit: sts(oneReplica), args: single, pod: db, reason: ReasonNoReadyReplica, detail: "it has one replica"},
		{name: "StatefulSet of one replica, allowed", edit: sts(oneReplica), args: allowed, pod: db, patched: "statefulsets"},
		{name: "StatefulSet partition 1 above the pod's ordinal 0", edit: sts(stsRolling(1, "")), pod: db,
			reason: ReasonPartition, detail: "partition 1 is above pod db-0's ordinal 0"},
		{name: "StatefulSet partition 1 at the pod's ordinal 1", edit: sts(stsRolling(1, "")), add: podsOfDB("db-1"), pod: "db-1", patched: "statefulsets"},
		{name: "StatefulSet partition 2 of 2 replicas", edit: sts(stsRolling(2, "")), add: podsOfDB("db-1"), pod: "db-1", reason: ReasonPartition},
		{name: "StatefulSet partition 1, maxUnavailable 100%, the pod above it", edit: sts(stsRolling(1, "100%")), add: podsOfDB("db-1"), pod: "db-1", patched: "statefulsets"},
		{name: "StatefulSet partition 1 counted from ordinals.start 3, pod db-3", edit: sts(func(s *appsv1.StatefulSet) {
			stsRolling(1, "")(s)
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3}
		}), add: podsOfDB("db-3"), pod: "db-3", reason: ReasonPartition, detail: "ordinal 0 (counted from spec.ordinals.start 3)"},
		{name: "StatefulSet partition 1 counted from ordinals.start 3, pod db-4", edit: sts(func(s *appsv1.StatefulSet) {
			stsRolling(1, "")(s)
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 3}
		}), add: podsOfDB("db-4"), pod: "db-4", patched: "statefulsets"},
		{name: "StatefulSet partition 1, pod name without an ordinal", edit: sts(stsRolling(1, "")), add: podsOfDB("db-canary"), pod: "db-canary",
			reason: ReasonPartition, detail: "carries no ordinal"},
		{name: "StatefulSet partitioned rollout finished", edit: sts(func(s *appsv1.StatefulSet) {
			stsRolling(1, "")(s)
			s.Status.UpdatedReplicas, s.Status.UpdateRevision = 1, "db-2" // db-0 keeps db-1 by design
		}), add: podsOfDB("db-1"), pod: "db-1", patched: "statefulsets"},
		{name: "StatefulSet partitioned rollout in progress", edit: sts(func(s *appsv1.StatefulSet) {
			stsRolling(1, "")(s)
			s.Status.UpdatedReplicas, s.Status.UpdateRevision = 0, "db-2"
		}), add: podsOfDB("db-1"), pod: "db-1", reason: ReasonRolloutInProgress},

		// DaemonSets: both round up; a surge starts each node's new pod first.
		{name: "DaemonSet maxUnavailable 1 of 4", edit: ds(4, "", "1"), pod: agent, patched: "daemonsets"},
		{name: "DaemonSet maxUnavailable 75% of 4 rounds up to 3", edit: ds(4, "", "75%"), pod: agent, patched: "daemonsets"},
		{name: "DaemonSet maxUnavailable 80% of 4 rounds up to 4", edit: ds(4, "", "80%"), pod: agent,
			reason: ReasonNoReadyReplica, detail: "maxUnavailable 80% resolves to 4 of the 4 nodes"},
		{name: "DaemonSet maxUnavailable 100%", edit: ds(4, "0", "100%"), pod: agent, reason: ReasonNoReadyReplica},
		{name: "DaemonSet on one node", edit: ds(1, "", ""), args: single, pod: agent, reason: ReasonNoReadyReplica, detail: "allowSingleReplica: true"},
		{name: "DaemonSet on one node, allowed", edit: ds(1, "", ""), args: allowed, pod: agent, patched: "daemonsets"},
		{name: "DaemonSet on one node that surges first", edit: ds(1, "1", "0"), args: single, pod: agent, patched: "daemonsets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := remediatetest.RestartFixtures(tc.edit)
			if tc.add != nil {
				objs = tc.add(objs)
			}
			e, cs := newRestartEngine(t, objs, tc.args, nil)
			ev := remediatetest.Evictions(cs, nil)
			a := remediatetest.LeakAlert()
			a.Labels["pod"] = tc.pod
			d, err := e.DecideOne(context.Background(), a)
			if tc.reason == "" {
				if err != nil || d.Decision != remediate.DecisionActed {
					t.Fatalf("DecideOne() = %s/%s (%s), %v; want acted", d.Decision, d.Reason, d.Message, err)
				}
				restarts := 0
				for _, p := range remediatetest.Patches(cs, tc.patched) {
					if strings.Contains(string(p.Patch), AnnotationRestartedAt) {
						restarts++
					}
				}
				if restarts != 1 {
					t.Errorf("%d restarts of %s, want 1", restarts, tc.patched)
				}
				return
			}
			if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != tc.reason {
				t.Fatalf("DecideOne() = %s/%s (%s), %v; want held/%s", d.Decision, d.Reason, d.Message, err, tc.reason)
			}
			if !strings.Contains(d.Message, tc.detail) {
				t.Errorf("message %q does not say %q", d.Message, tc.detail)
			}
			if w := writesBesidesEvents(cs); len(w) != 0 || len(*ev) != 0 {
				t.Errorf("held, yet wrote %v and evicted %v", w, *ev)
			}
		})
	}
}

// TestRestartPodWithoutWorkload: a pod that nothing restart rolls would
// replace (no controller, a controller that no longer exists, one of a
// kind the API no longer serves, a custom resource's) is held with a
// reason that says which, and never evicted unless the entry sets
// evictUnreplicated: true; then it is evicted through the Eviction API.
func TestRestartPodWithoutWorkload(t *testing.T) {
	ctrl := true
	owned := func(apiVersion, kind, name string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: types.UID("uid-" + name), Controller: &ctrl}}
	}
	tests := []struct {
		name, pod string
		owners    []metav1.OwnerReference
		reason    string
		detail    string
	}{
		{name: "no controller", pod: "lonely", reason: ReasonNoController, detail: "has no controller"},
		{name: "controller deleted", pod: "orphan", owners: remediatetest.OwnedBy(remediate.KindReplicaSet, "web-6c4"), reason: ReasonNoController, detail: "controller ReplicaSet web-6c4 no longer exists"},
		{name: "controller of an unserved kind", pod: "gizmo-0", owners: owned("gizmos.example.com/v1", "Gizmo", "gizmo"), reason: remediate.ReasonUnsupportedKind, detail: "Gizmo gizmo (gizmos.example.com/v1)"},
		{name: "controller a custom resource", pod: "cart-0", owners: owned(remediatetest.RolloutAPIVersion, "Rollout", "cart"), reason: remediate.ReasonUnsupportedKind, detail: "Rollout cart"},
	}
	for _, tc := range tests {
		for _, evict := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, evictUnreplicated %v", tc.name, evict), func(t *testing.T) {
				objs := remediatetest.RestartFixtures(nil)
				if tc.pod != "lonely" {
					objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: tc.pod, UID: types.UID("uid-" + tc.pod), ResourceVersion: "1", OwnerReferences: tc.owners}})
				}
				scheme := metadatafake.NewTestScheme()
				if err := metav1.AddMetaToScheme(scheme); err != nil {
					t.Fatal(err)
				}
				md := metadatafake.NewSimpleMetadataClient(scheme, &metav1.PartialObjectMetadata{
					TypeMeta:   metav1.TypeMeta{APIVersion: remediatetest.RolloutAPIVersion, Kind: "Rollout"},
					ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "cart", UID: "uid-cart"},
				})
				args := ""
				if evict {
					args = ", args: {evictUnreplicated: true}"
				}
				e, cs := newTestEngine(t, engineSetup{objs: objs, policy: strings.Replace(restartPolicy, "%s", args, 1),
					react: func(cs *fake.Clientset) {
						cs.Resources = []*metav1.APIResourceList{{GroupVersion: remediatetest.RolloutAPIVersion, APIResources: []metav1.APIResource{{Name: "rollouts", Namespaced: true, Kind: "Rollout"}}}}
					},
					opts: func(o *remediate.Options) { o.Querier, o.Metadata = confirmingQuerier{}, md }})
				ev := remediatetest.Evictions(cs, nil)
				a := remediatetest.LeakAlert()
				a.Labels["pod"] = tc.pod
				d, err := e.DecideOne(context.Background(), a)
				if evict {
					if err != nil || d.Decision != remediate.DecisionActed || len(*ev) != 1 || (*ev)[0] != "shop/"+tc.pod {
						t.Errorf("DecideOne() = %s/%s (%s), %v, evictions %v; want acted, one eviction of shop/%s", d.Decision, d.Reason, d.Message, err, *ev, tc.pod)
					}
					return
				}
				if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != tc.reason {
					t.Fatalf("DecideOne() = %s/%s (%s), %v; want held/%s", d.Decision, d.Reason, d.Message, err, tc.reason)
				}
				if !strings.Contains(d.Message, tc.detail) || !strings.Contains(d.Message, "evictUnreplicated: true") {
					t.Errorf("message %q does not say %q and what allows the eviction", d.Message, tc.detail)
				}
				if w := writesBesidesEvents(cs); len(w) != 0 || len(*ev) != 0 {
					t.Errorf("held, yet wrote %v and evicted %v", w, *ev)
				}
			})
		}
	}
}

// TestRestartArgs: allowSingleReplica needs a minReadyReplicas that a
// single replica can meet; the new flags parse strictly.
func TestRestartArgs(t *testing.T) {
	tests := []struct {
		args string
		want Restart
		err  string
	}{
		{args: `{"allowSingleReplica": true, "minReadyReplicas": 1, "evictUnreplicated": true}`,
			want: Restart{MinReadyReplicas: 1, RecurrenceCount: DefaultRecurrenceCount, RecurrenceWindow: DefaultRecurrenceWindow, AllowSingleReplica: true, EvictUnreplicated: true}},
		{args: `{"allowSingleReplica": true, "minReadyReplicas": 0}`,
			want: Restart{RecurrenceCount: DefaultRecurrenceCount, RecurrenceWindow: DefaultRecurrenceWindow, AllowSingleReplica: true}},
		{args: `{"allowSingleReplica": true}`, err: "allowSingleReplica: a workload of one replica never has minReadyReplicas 2 ready replicas; set minReadyReplicas to 1 (or 0) as well"},
		{args: `{"allowSingleReplica": "yes"}`, err: "args: cannot unmarshal string into Go struct field RestartArgs.allowSingleReplica of type bool"},
		{args: `{"evictUnreplicated": 1}`, err: "args: cannot unmarshal number into Go struct field RestartArgs.evictUnreplicated of type bool"},
		{args: `{"evictUnreplicate": true}`, err: `args: unknown field "evictUnreplicate"`},
	}
	for _, tc := range tests {
		t.Run(tc.args, func(t *testing.T) {
			got, err := New(json.RawMessage(tc.args))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("NewRestart(%s) error = %v, want %q", tc.args, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewRestart(%s) error: %v", tc.args, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("NewRestart(%s) mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}
