package restart

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Name is the name of the restart remediator.
const Name = "restart"

// Annotations restart reads and writes.
const (
	// AnnotationRestartedAt is the pod-template annotation that
	// `kubectl rollout restart` sets; changing it rolls the workload.
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
	// AnnotationRestartHistory on the workload holds, per alert, the
	// times restart acted within the recurrence window (JSON).
	AnnotationRestartHistory = "leakguard.io/restart-history"
	// AnnotationRecurring on the workload says that restarting stopped
	// because the leak recurs.
	AnnotationRecurring = "leakguard.io/recurring"
)

// Reasons of restart's own guards.
const (
	// ReasonPDB: the Eviction API refused (429) because a
	// PodDisruptionBudget allows no disruption now.
	ReasonPDB = "pdb"
	// ReasonJob: the pod belongs to a Job (or CronJob); it runs to
	// completion and is left alone.
	ReasonJob = "job"
	// ReasonNotReady: fewer ready replicas than minReadyReplicas.
	ReasonNotReady = "not-ready"
	// ReasonRolloutInProgress: the workload's last rollout has not
	// finished.
	ReasonRolloutInProgress = "rollout-in-progress"
	// ReasonRolloutPaused: the Deployment's rollout is paused
	// (spec.paused); a pod-template change would wait for a person, as
	// kubectl rollout restart refuses it.
	ReasonRolloutPaused = "rollout-paused"
	// ReasonOnDelete: the StatefulSet's or DaemonSet's update strategy is
	// OnDelete; a pod-template change replaces no pod.
	ReasonOnDelete = "on-delete"
	// ReasonNoReadyReplica: the workload's own rollout would leave it no
	// ready replica: a Recreate strategy, a maxUnavailable that resolves
	// to every replica, or a single replica that the rollout stops before
	// its replacement is ready and the entry does not allow
	// (allowSingleReplica).
	ReasonNoReadyReplica = "no-ready-replica"
	// ReasonPartition: the StatefulSet's rollingUpdate.partition is above
	// the leaking pod's ordinal, so its rollout would not replace that
	// pod.
	ReasonPartition = "partition"
	// ReasonNoController: the pod has no controller that would replace
	// it (none, or one that no longer exists), and the entry does not
	// allow evicting it (evictUnreplicated).
	ReasonNoController = "no-controller"
)

// Defaults of restart's arguments.
const (
	DefaultMinReadyReplicas = 2
	DefaultRecurrenceCount  = 3
	DefaultRecurrenceWindow = 24 * time.Hour
	// maxHistoryAlerts bounds the alerts the history keeps, the least
	// recent dropped first.
	maxHistoryAlerts = 8
)

// Info declares restart: workload targets only, disruptive.
var Info = remediate.RemediatorInfo{
	Name:       Name,
	Targets:    []string{remediate.TargetWorkload},
	Disruptive: true,
	New:        New,
	// A rolling restart changes the pod template (the admission policy
	// asks for restart on the workload); a pod without a controller is
	// evicted.
	Rights: func(string) []remediate.Right {
		return []remediate.Right{
			remediate.ResourceRight("restart", "apps", "deployments", remediate.GrantRestart),
			remediate.ResourceRight("restart", "apps", "statefulsets", remediate.GrantRestart),
			remediate.ResourceRight("restart", "apps", "daemonsets", remediate.GrantRestart),
			remediate.ResourceRight("create", "", "pods/eviction", remediate.GrantRestart),
		}
	},
}

// RestartArgs are restart's policy arguments.
type RestartArgs struct {
	// MinReadyReplicas: a workload with fewer ready replicas is not
	// restarted (default 2). 0 or 1 lets a workload of one replica be
	// restarted when its rollout starts the new replica first; one whose
	// rollout stops it first needs AllowSingleReplica as well.
	MinReadyReplicas *int `json:"minReadyReplicas"`
	// AllowSingleReplica restarts a workload of one replica even though
	// its rollout stops that replica before a new one is ready (an
	// outage). It needs minReadyReplicas 1 or 0.
	AllowSingleReplica bool `json:"allowSingleReplica"`
	// EvictUnreplicated evicts, through the Eviction API, a pod that
	// nothing restart rolls would replace: one without a controller, or
	// whose controller is of a kind restart does not restart. Without it
	// such a pod is held (no-controller, unsupported-kind).
	EvictUnreplicated bool `json:"evictUnreplicated"`
	// Recurrence stops restarting a workload restarted Count times for
	// the same alert within Window.
	Recurrence struct {
		Count  int                `json:"count"`
		Window remediate.Duration `json:"window"`
	} `json:"recurrence"`
}

// Restart restarts the owning workload the way `kubectl rollout restart`
// does, by setting the kubectl.kubernetes.io/restartedAt pod-template
// annotation, so that the workload's own rollout (its maxUnavailable and
// maxSurge) replaces the pods; a rollout deletes pods without asking
// PodDisruptionBudgets. A Job's pod is left alone. It does not restart a
// workload whose rollout would leave it no ready replica (unless it has
// one replica and AllowSingleReplica is set), a StatefulSet whose
// partition would not replace the leaking pod, a workload with fewer
// than MinReadyReplicas ready replicas or whose last rollout has not
// finished, and stops (marking the workload) once the same alert has
// restarted it RecurrenceCount times within RecurrenceWindow: restarting
// is then not fixing the leak. A pod that nothing it rolls would replace
// is evicted through the Eviction API, which PodDisruptionBudgets may
// refuse, only when EvictUnreplicated is set.
type Restart struct {
	MinReadyReplicas   int
	RecurrenceCount    int
	RecurrenceWindow   time.Duration
	AllowSingleReplica bool
	EvictUnreplicated  bool
}

var _ remediate.Remediator = Restart{}

// New builds restart from its arguments.
func New(args json.RawMessage) (remediate.Remediator, error) {
	var a RestartArgs
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	r := Restart{MinReadyReplicas: DefaultMinReadyReplicas, RecurrenceCount: a.Recurrence.Count, RecurrenceWindow: time.Duration(a.Recurrence.Window),
		AllowSingleReplica: a.AllowSingleReplica, EvictUnreplicated: a.EvictUnreplicated}
	var errs []error
	if a.MinReadyReplicas != nil {
		if *a.MinReadyReplicas < 0 {
			errs = append(errs, fmt.Errorf("minReadyReplicas: must not be negative, got %d", *a.MinReadyReplicas))
		}
		r.MinReadyReplicas = *a.MinReadyReplicas
	}
	if r.AllowSingleReplica && r.MinReadyReplicas > 1 {
		// A workload of one replica never has more than one ready: the
		// option would allow nothing. Said at load time, not as a hold.
		errs = append(errs, fmt.Errorf("allowSingleReplica: a workload of one replica never has minReadyReplicas %d ready replicas; set minReadyReplicas to 1 (or 0) as well", r.MinReadyReplicas))
	}
	switch {
	case r.RecurrenceCount < 0:
		errs = append(errs, fmt.Errorf("recurrence.count: must not be negative, got %d", r.RecurrenceCount))
	case r.RecurrenceCount == 0:
		r.RecurrenceCount = DefaultRecurrenceCount
	}
	switch {
	case r.RecurrenceWindow < 0:
		errs = append(errs, fmt.Errorf("recurrence.window: must not be negative, got %s", r.RecurrenceWindow))
	case r.RecurrenceWindow == 0:
		r.RecurrenceWindow = DefaultRecurrenceWindow
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

// restartHistory maps an alert name to the times restart acted for it.
type restartHistory map[string][]time.Time

func readHistory(ann map[string]string) restartHistory {
	h := restartHistory{}
	if v := ann[AnnotationRestartHistory]; v != "" {
		// A history that does not parse counts as none: the next restart
		// overwrites it. The recurrence budget then starts afresh, which
		// costs at most Count restarts.
		_ = json.Unmarshal([]byte(v), &h)
	}
	return h
}

// within returns the times of alert within window before now.
func (h restartHistory) within(alert string, window time.Duration, now time.Time) []time.Time {
	var out []time.Time
	for _, t := range h[alert] {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// record returns the history with now added for alert, bounded: per alert
// the times within window only (at most count), and at most
// maxHistoryAlerts alerts, the least recent dropped.
func (h restartHistory) record(alert string, now time.Time, count int, window time.Duration) restartHistory {
	out := restartHistory{}
	for a := range h {
		if kept := h.within(a, window, now); len(kept) > 0 {
			out[a] = kept
		}
	}
	times := append(out[alert], now)
	if len(times) > count {
		times = times[len(times)-count:]
	}
	out[alert] = times
	for len(out) > maxHistoryAlerts {
		oldest, at := "", now
		for a, ts := range out {
			if last := ts[len(ts)-1]; a != alert && !last.After(at) {
				oldest, at = a, last
			}
		}
		delete(out, oldest)
	}
	return out
}

// Plan judges the workload and says what restart would do.
func (r Restart) Plan(t *remediate.Target, f remediate.Finding, now time.Time) remediate.Plan {
	switch t.Object.Kind {
	case remediate.KindJob, remediate.KindCronJob:
		return remediate.Plan{Hold: ReasonJob, Detail: fmt.Sprintf("%s runs to completion; its pod is left alone (restart it by hand if it must)", t.Object)}
	case remediate.KindPod:
		if !r.EvictUnreplicated {
			// Nothing would replace the pod: an eviction would remove it
			// for good. Held unless the entry accepts that.
			reason, why := unreplicated(t)
			return remediate.Plan{Hold: reason, Detail: why + "; evictUnreplicated: true in restart's args evicts it through the Eviction API"}
		}
		return r.planEviction(t)
	case remediate.KindDeployment, remediate.KindStatefulSet, remediate.KindDaemonSet:
	default:
		return remediate.Plan{Hold: remediate.ReasonUnsupportedKind, Detail: fmt.Sprintf("restart rolls Deployments, StatefulSets and DaemonSets, not %s; restart it through its own controller", t.Object)}
	}
	if reason, why := rollsOnTemplateChange(t.Resolved()); reason != "" {
		return remediate.Plan{Hold: reason, Detail: fmt.Sprintf("%s: %s", t.Object, why)}
	}
	if why := partitionSpares(t); why != "" {
		return remediate.Plan{Hold: ReasonPartition, Detail: fmt.Sprintf("%s: %s", t.Object, why)}
	}
	if replicas, why := rolloutOutage(t.Resolved()); why != "" && (replicas != 1 || !r.AllowSingleReplica) {
		if replicas == 1 {
			why += "; allowSingleReplica: true in restart's args restarts it anyway, at the cost of an outage"
		}
		return remediate.Plan{Hold: ReasonNoReadyReplica, Detail: fmt.Sprintf("%s: %s", t.Object, why)}
	}
	ready, rolledOut, progress := workloadStatus(t.Resolved())
	if ready < r.MinReadyReplicas {
		return remediate.Plan{Hold: ReasonNotReady, Detail: fmt.Sprintf("%s has %d ready replicas, fewer than minReadyReplicas %d", t.Object, ready, r.MinReadyReplicas)}
	}
	if !rolledOut {
		return remediate.Plan{Hold: ReasonRolloutInProgress, Detail: fmt.Sprintf("%s: last rollout has not finished (%s)", t.Object, progress)}
	}
	alert := f.AlertName()
	hist := readHistory(t.Annotations)
	if past := hist.within(alert, r.RecurrenceWindow, now); len(past) >= r.RecurrenceCount {
		// The mean interval between the restarts; with a single one (a
		// count of 1), the window is all that is known.
		every := r.RecurrenceWindow
		if len(past) > 1 {
			every = past[len(past)-1].Sub(past[0]) / time.Duration(len(past)-1)
		}
		msg := fmt.Sprintf("%s restarted %d times for %s within %s: leak recurs about every %.1f h; restarting is not fixing it", t.Object, len(past), alert, r.RecurrenceWindow, every.Hours())
		mark := fmt.Sprintf("%s: restarted %d times within %s, about every %.1f h; restarting is not fixing it", alert, len(past), r.RecurrenceWindow, every.Hours())
		return remediate.Plan{Hold: remediate.ReasonRecurrence, Detail: msg, Warn: true, OnHold: func(ctx context.Context, env remediate.Env) error {
			if t.Annotations[AnnotationRecurring] == mark {
				return nil
			}
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationRecurring: mark}}})
			if err != nil {
				return err
			}
			_, err = remediate.PatchObject(ctx, env.Client, t.Object, types.MergePatchType, patch)
			return err
		}}
	}
	stamp := now.UTC().Format(time.RFC3339)
	return remediate.Plan{
		Action: fmt.Sprintf("patch %s spec.template annotation %s=%s", t.Object, AnnotationRestartedAt, stamp),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			// The restart and its history in one patch: the history
			// cannot miss a restart that happened.
			history, err := json.Marshal(readHistory(t.Annotations).record(alert, now, r.RecurrenceCount, r.RecurrenceWindow))
			if err != nil {
				return "", err
			}
			patch, err := json.Marshal(map[string]any{
				"metadata": map[string]any{"annotations": map[string]string{AnnotationRestartHistory: string(history)}},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"annotations": map[string]string{AnnotationRestartedAt: stamp},
				}}},
			})
			if err != nil {
				return "", err
			}
			rv, err := remediate.PatchObject(ctx, env.Client, t.Object, types.StrategicMergePatchType, patch)
			if err != nil {
				return "", fmt.Errorf("restart: %w", err)
			}
			t.ResourceVersion = rv
			return fmt.Sprintf("rolling restart of %s (restartedAt %s)", t.Object, stamp), nil
		},
	}
}

// planEviction evicts a pod without a controller through the Eviction
// API, which a PodDisruptionBudget may refuse.
func (r Restart) planEviction(t *remediate.Target) remediate.Plan {
	return remediate.Plan{
		Action: fmt.Sprintf("evict %s through the Eviction API (policy/v1)", t.Object),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			ev := &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: t.Object.Name, Namespace: t.Object.Namespace},
				DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &t.Object.UID}},
			}
			err := env.Client.PolicyV1().Evictions(t.Object.Namespace).Evict(ctx, ev)
			switch {
			case err == nil:
				return fmt.Sprintf("evicted %s", t.Object), nil
			case apierrors.IsTooManyRequests(err):
				// A PodDisruptionBudget allows no disruption now. Held,
				// not retried through Alertmanager: its next repeat
				// comes back to it.
				return "", &remediate.HeldError{Reason: ReasonPDB, Detail: fmt.Sprintf("the Eviction API refused to evict %s: %v", t.Object, err)}
			default:
				return "", fmt.Errorf("evict %s: %w", t.Object, remediate.ClassifyKube(err))
			}
		},
	}
}

// workloadStatus returns the ready replicas of a Deployment, StatefulSet
// or DaemonSet, whether its last rollout has finished (as `kubectl
// rollout status` judges it), and a description of its progress.
func workloadStatus(obj metav1.Object) (ready int, rolledOut bool, progress string) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		want := int32(1)
		if w.Spec.Replicas != nil {
			want = *w.Spec.Replicas
		}
		s := w.Status
		done := s.ObservedGeneration >= w.Generation && s.UpdatedReplicas == want && s.Replicas == s.UpdatedReplicas && s.AvailableReplicas == s.UpdatedReplicas
		return int(s.ReadyReplicas), done, fmt.Sprintf("%d of %d updated, %d available, %d in all, generation %d observed %d", s.UpdatedReplicas, want, s.AvailableReplicas, s.Replicas, w.Generation, s.ObservedGeneration)
	case *appsv1.StatefulSet:
		want := int32(1)
		if w.Spec.Replicas != nil {
			want = *w.Spec.Replicas
		}
		s := w.Status
		done := s.ObservedGeneration >= w.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want &&
			(s.UpdateRevision == "" || s.UpdateRevision == s.CurrentRevision)
		if ru := w.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			// Partitioned: the pods below the partition keep the old
			// revision by design. Finished once the pods from the
			// partition up are updated, as kubectl rollout status judges.
			done = s.ObservedGeneration >= w.Generation && s.ReadyReplicas == want && s.UpdatedReplicas >= want-*ru.Partition
			return int(s.ReadyReplicas), done, fmt.Sprintf("%d of %d from partition %d updated, %d ready", s.UpdatedReplicas, max(want-*ru.Partition, 0), *ru.Partition, s.ReadyReplicas)
		}
		return int(s.ReadyReplicas), done, fmt.Sprintf("%d of %d updated, %d ready, revision %s of %s", s.UpdatedReplicas, want, s.ReadyReplicas, s.CurrentRevision, s.UpdateRevision)
	case *appsv1.DaemonSet:
		s := w.Status
		done := s.ObservedGeneration >= w.Generation && s.UpdatedNumberScheduled == s.DesiredNumberScheduled && s.NumberAvailable == s.DesiredNumberScheduled
		return int(s.NumberReady), done, fmt.Sprintf("%d of %d updated, %d available", s.UpdatedNumberScheduled, s.DesiredNumberScheduled, s.NumberAvailable)
	}
	return 0, false, fmt.Sprintf("no status of %T", obj)
}

// rollsOnTemplateChange returns a reason when changing obj's pod template
// would not roll its pods.
func rollsOnTemplateChange(obj metav1.Object) (reason, why string) {
	switch w := obj.(type) {
	case *appsv1.Deployment:
		if w.Spec.Paused {
			return ReasonRolloutPaused, "its rollout is paused (spec.paused); resume it, or restart by hand"
		}
	case *appsv1.StatefulSet:
		if w.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return ReasonOnDelete, "its update strategy is OnDelete: a pod-template change replaces no pod"
		}
	case *appsv1.DaemonSet:
		if w.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return ReasonOnDelete, "its update strategy is OnDelete: a pod-template change replaces no pod"
		}
	}
	return "", ""
}

// unreplicated says why the pod t names, its own workload, has nothing
// that restart rolls to replace it: no controller (no-controller), a
// controller of a kind the resolver follows that it did not find (it was
// deleted, or another object took its name: no-controller too), or a
// controller of a kind restart does not restart, a custom resource's or
// one the API no longer serves (unsupported-kind).
func unreplicated(t *remediate.Target) (reason, why string) {
	if t.Resolved() == nil {
		// Not read: nothing is known of its controller. Fails closed.
		return ReasonNoController, fmt.Sprintf("%s was not read, so its controller is unknown", t.Object)
	}
	owner := metav1.GetControllerOfNoCopy(t.Resolved()) // read only
	switch {
	case owner == nil:
		return ReasonNoController, fmt.Sprintf("%s has no controller: nothing would replace it after an eviction", t.Object)
	case remediate.TypedOwner(owner):
		return ReasonNoController, fmt.Sprintf("%s's controller %s %s no longer exists (or another object took its name): nothing would replace the pod after an eviction", t.Object, owner.Kind, owner.Name)
	default:
		return remediate.ReasonUnsupportedKind, fmt.Sprintf("%s is controlled by %s %s (%s), a kind restart does not restart; restart it through that controller", t.Object, owner.Kind, owner.Name, owner.APIVersion)
	}
}

// partitionSpares says why a StatefulSet's rollingUpdate.partition keeps
// its rollout from replacing the alert's pod, if it does. The partition
// counts from spec.ordinals.start, as the StatefulSet controller counts
// it. A pod whose ordinal cannot be read fails closed.
func partitionSpares(t *remediate.Target) string {
	s, ok := t.Resolved().(*appsv1.StatefulSet)
	if !ok || s.Spec.UpdateStrategy.RollingUpdate == nil || s.Spec.UpdateStrategy.RollingUpdate.Partition == nil {
		return ""
	}
	partition := int(*s.Spec.UpdateStrategy.RollingUpdate.Partition)
	if partition <= 0 {
		return ""
	}
	start := 0
	if s.Spec.Ordinals != nil {
		start = int(s.Spec.Ordinals.Start)
	}
	if t.Pod == nil {
		return fmt.Sprintf("its rollingUpdate.partition is %d and the alert names no pod, so whether the rollout replaces the leaking pod is unknown", partition)
	}
	suffix, found := strings.CutPrefix(t.Pod.Name, s.Name+"-")
	ordinal, err := strconv.Atoi(suffix)
	if !found || err != nil || ordinal < start {
		return fmt.Sprintf("its rollingUpdate.partition is %d and pod %s's name carries no ordinal of it, so whether the rollout replaces the pod is unknown", partition, t.Pod.Name)
	}
	if index := ordinal - start; index < partition {
		from := ""
		if start != 0 {
			from = fmt.Sprintf(" (counted from spec.ordinals.start %d)", start)
		}
		return fmt.Sprintf("its rollingUpdate.partition %d is above pod %s's ordinal %d%s: the rollout would not replace that pod, and would read as in progress until the partition is lowered; lower the partition to %d or below, or delete the pod by hand", partition, t.Pod.Name, index, from, index)
	}
	return ""
}

// rolloutOutage says why obj's own rollout would leave it no ready
// replica, if it would, and the replicas it has (a DaemonSet: the nodes
// it should run on). maxUnavailable and maxSurge resolve as the
// workload's controller resolves them (intstr, rounding as it does), with
// the API server's defaults for fields it would have set; a value that
// does not resolve fails closed.
func rolloutOutage(obj metav1.Object) (replicas int, why string) {
	scaled := func(v *intstr.IntOrString, def intstr.IntOrString, n int, roundUp bool) (int, error) {
		if v == nil {
			v = &def
		}
		return intstr.GetScaledValueFromIntOrPercent(v, n, roundUp)
	}
	unresolved := func(field string, v *intstr.IntOrString, err error) string {
		return fmt.Sprintf("its %s %s does not resolve (%v), so whether its rollout keeps a replica ready is unknown", field, v.String(), err)
	}
	quarter := intstr.FromString("25%")
	switch w := obj.(type) {
	case *appsv1.Deployment:
		n := 1
		if w.Spec.Replicas != nil {
			n = int(*w.Spec.Replicas)
		}
		switch w.Spec.Strategy.Type {
		case appsv1.RecreateDeploymentStrategyType:
			return n, "its strategy is Recreate: the rollout stops every replica before it starts a new one; use RollingUpdate, or restart it by hand"
		case appsv1.RollingUpdateDeploymentStrategyType, "":
		default:
			return n, fmt.Sprintf("its strategy %q is not one restart knows, so whether its rollout keeps a replica ready is unknown", w.Spec.Strategy.Type)
		}
		var maxSurge, maxUnavailable *intstr.IntOrString
		if ru := w.Spec.Strategy.RollingUpdate; ru != nil {
			maxSurge, maxUnavailable = ru.MaxSurge, ru.MaxUnavailable
		}
		surge, err := scaled(maxSurge, quarter, n, true)
		if err != nil {
			return n, unresolved("maxSurge", maxSurge, err)
		}
		unavailable, err := scaled(maxUnavailable, quarter, n, false)
		if err != nil {
			return n, unresolved("maxUnavailable", maxUnavailable, err)
		}
		if surge == 0 && unavailable == 0 {
			// The Deployment controller's own fencepost.
			unavailable = 1
		}
		if n > 0 && unavailable >= n {
			fix := fmt.Sprintf("lower maxUnavailable below %d", n)
			if n == 1 {
				fix = "set maxUnavailable 0 and maxSurge 1, so that the new replica is ready before the old one stops"
			}
			return n, fmt.Sprintf("its maxUnavailable %s resolves to %d of its %d replicas (maxSurge %d): the rollout may stop every replica at once; %s", intOrPercent(maxUnavailable, quarter), unavailable, n, surge, fix)
		}
	case *appsv1.StatefulSet:
		n := 1
		if w.Spec.Replicas != nil {
			n = int(*w.Spec.Replicas)
		}
		switch w.Spec.UpdateStrategy.Type {
		case appsv1.RecreateStatefulSetStrategyType:
			return n, "its update strategy is Recreate: every pod stops before a new one starts; use RollingUpdate, or restart it by hand"
		case appsv1.RollingUpdateStatefulSetStrategyType, "":
		default:
			return n, fmt.Sprintf("its update strategy %q is not one restart knows, so whether its rollout keeps a replica ready is unknown", w.Spec.UpdateStrategy.Type)
		}
		if n == 1 {
			return n, "it has one replica, and a StatefulSet stops a pod before it starts its replacement"
		}
		partition := 0
		var maxUnavailable *intstr.IntOrString
		if ru := w.Spec.UpdateStrategy.RollingUpdate; ru != nil {
			maxUnavailable = ru.MaxUnavailable
			if ru.Partition != nil {
				partition = int(*ru.Partition)
			}
		}
		// Rounded down and at least 1, as the StatefulSet controller
		// does (whatever podManagementPolicy: counted for both).
		unavailable, err := scaled(maxUnavailable, intstr.FromInt32(1), n, false)
		if err != nil {
			return n, unresolved("maxUnavailable", maxUnavailable, err)
		}
		// The pods below the partition are not stopped.
		if n > 0 && partition == 0 && unavailable >= n {
			return n, fmt.Sprintf("its maxUnavailable %s resolves to %d of its %d replicas: the rollout may stop every pod at once; lower maxUnavailable below %d", intOrPercent(maxUnavailable, intstr.FromInt32(1)), unavailable, n, n)
		}
	case *appsv1.DaemonSet:
		n := int(w.Status.DesiredNumberScheduled)
		switch w.Spec.UpdateStrategy.Type {
		case appsv1.RollingUpdateDaemonSetStrategyType, "":
		default:
			return n, fmt.Sprintf("its update strategy %q is not one restart knows, so whether its rollout keeps a pod ready is unknown", w.Spec.UpdateStrategy.Type)
		}
		var maxSurge, maxUnavailable *intstr.IntOrString
		if ru := w.Spec.UpdateStrategy.RollingUpdate; ru != nil {
			maxSurge, maxUnavailable = ru.MaxSurge, ru.MaxUnavailable
		}
		// Both rounded up, as the DaemonSet controller does.
		surge, err := scaled(maxSurge, intstr.FromInt32(0), n, true)
		if err != nil {
			return n, unresolved("maxSurge", maxSurge, err)
		}
		unavailable, err := scaled(maxUnavailable, intstr.FromInt32(1), n, true)
		if err != nil {
			return n, unresolved("maxUnavailable", maxUnavailable, err)
		}
		if surge == 0 && unavailable == 0 {
			// The DaemonSet controller's own fencepost.
			unavailable = 1
		}
		// With a surge, each node's new pod starts before its old one
		// stops.
		if n > 0 && surge == 0 && unavailable >= n {
			fix := fmt.Sprintf("lower maxUnavailable below %d, or set maxSurge (with maxUnavailable 0)", n)
			if n == 1 {
				fix = "set maxSurge 1 and maxUnavailable 0, so that the new pod is ready before the old one stops"
			}
			return n, fmt.Sprintf("its maxUnavailable %s resolves to %d of the %d nodes it runs on, without maxSurge: the rollout may stop every pod at once; %s", intOrPercent(maxUnavailable, intstr.FromInt32(1)), unavailable, n, fix)
		}
	}
	return 0, ""
}

// intOrPercent prints v, or def when v is not set.
func intOrPercent(v *intstr.IntOrString, def intstr.IntOrString) string {
	if v == nil {
		return def.String() + " (the default)"
	}
	return v.String()
}
