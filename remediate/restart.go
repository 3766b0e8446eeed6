package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// RemediatorRestart is the name of the restart remediator.
const RemediatorRestart = "restart"

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
	// ReasonRecurrence: restarted for this alert too often within the
	// window; a person must look at the code.
	ReasonRecurrence = "recurrence"
	// ReasonUnsupportedKind: restart cannot act on this kind of workload
	// (a ReplicaSet without a Deployment).
	ReasonUnsupportedKind = "unsupported-kind"
	// ReasonRolloutPaused: the Deployment's rollout is paused
	// (spec.paused); a pod-template change would wait for a person, as
	// kubectl rollout restart refuses it.
	ReasonRolloutPaused = "rollout-paused"
	// ReasonOnDelete: the StatefulSet's or DaemonSet's update strategy is
	// OnDelete; a pod-template change replaces no pod.
	ReasonOnDelete = "on-delete"
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

// RestartInfo declares restart: workload targets only, disruptive.
var RestartInfo = RemediatorInfo{
	Name:       RemediatorRestart,
	Targets:    []string{TargetWorkload},
	Disruptive: true,
	New:        NewRestart,
}

// RestartArgs are restart's policy arguments.
type RestartArgs struct {
	// MinReadyReplicas: a workload with fewer ready replicas is not
	// restarted (default 2). 0 or 1 allows a single-replica workload, at
	// the cost of its outage.
	MinReadyReplicas *int `json:"minReadyReplicas"`
	// Recurrence stops restarting a workload restarted Count times for
	// the same alert within Window.
	Recurrence struct {
		Count  int      `json:"count"`
		Window Duration `json:"window"`
	} `json:"recurrence"`
}

// Restart restarts the owning workload the way `kubectl rollout restart`
// does, by setting the kubectl.kubernetes.io/restartedAt pod-template
// annotation, so that maxUnavailable, maxSurge and PodDisruptionBudgets
// hold; a pod without a controller is evicted through the Eviction API.
// A Job's pod is left alone. It does not restart a workload with fewer
// than MinReadyReplicas ready replicas or whose last rollout has not
// finished, and stops (marking the workload) once the same alert has
// restarted it RecurrenceCount times within RecurrenceWindow: restarting
// is then not fixing the leak.
type Restart struct {
	MinReadyReplicas int
	RecurrenceCount  int
	RecurrenceWindow time.Duration
}

var _ Remediator = Restart{}

// NewRestart builds restart from its arguments.
func NewRestart(args json.RawMessage) (Remediator, error) {
	var a RestartArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	r := Restart{MinReadyReplicas: DefaultMinReadyReplicas, RecurrenceCount: a.Recurrence.Count, RecurrenceWindow: time.Duration(a.Recurrence.Window)}
	var errs []error
	if a.MinReadyReplicas != nil {
		if *a.MinReadyReplicas < 0 {
			errs = append(errs, fmt.Errorf("minReadyReplicas: must not be negative, got %d", *a.MinReadyReplicas))
		}
		r.MinReadyReplicas = *a.MinReadyReplicas
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
func (r Restart) Plan(t *Target, f Finding, now time.Time) Plan {
	switch t.Object.Kind {
	case KindJob, KindCronJob:
		return Plan{Hold: ReasonJob, Detail: fmt.Sprintf("%s runs to completion; its pod is left alone (restart it by hand if it must)", t.Object)}
	case KindPod:
		return r.planEviction(t)
	case KindDeployment, KindStatefulSet, KindDaemonSet:
	default:
		return Plan{Hold: ReasonUnsupportedKind, Detail: fmt.Sprintf("restart acts on Deployments, StatefulSets, DaemonSets and pods without a controller, not on %s", t.Object)}
	}
	if reason, why := rollsOnTemplateChange(t.obj); reason != "" {
		return Plan{Hold: reason, Detail: fmt.Sprintf("%s: %s", t.Object, why)}
	}
	ready, rolledOut, progress := workloadStatus(t.obj)
	if ready < r.MinReadyReplicas {
		return Plan{Hold: ReasonNotReady, Detail: fmt.Sprintf("%s has %d ready replicas, fewer than minReadyReplicas %d", t.Object, ready, r.MinReadyReplicas)}
	}
	if !rolledOut {
		return Plan{Hold: ReasonRolloutInProgress, Detail: fmt.Sprintf("%s: last rollout has not finished (%s)", t.Object, progress)}
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
		return Plan{Hold: ReasonRecurrence, Detail: msg, Warn: true, OnHold: func(ctx context.Context, env Env) error {
			if t.Annotations[AnnotationRecurring] == mark {
				return nil
			}
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{AnnotationRecurring: mark}}})
			if err != nil {
				return err
			}
			_, err = patchObject(ctx, env.Client, t.Object, types.MergePatchType, patch)
			return err
		}}
	}
	stamp := now.UTC().Format(time.RFC3339)
	return Plan{
		Action: fmt.Sprintf("patch %s spec.template annotation %s=%s", t.Object, AnnotationRestartedAt, stamp),
		Apply: func(ctx context.Context, env Env) (string, error) {
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
			rv, err := patchObject(ctx, env.Client, t.Object, types.StrategicMergePatchType, patch)
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
func (r Restart) planEviction(t *Target) Plan {
	return Plan{
		Action: fmt.Sprintf("evict %s through the Eviction API (policy/v1)", t.Object),
		Apply: func(ctx context.Context, env Env) (string, error) {
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
				return "", &HeldError{Reason: ReasonPDB, Detail: fmt.Sprintf("the Eviction API refused to evict %s: %v", t.Object, err)}
			default:
				return "", fmt.Errorf("evict %s: %w", t.Object, classifyKube(err))
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

// HeldError is returned by a plan's Apply when the API refused the action
// for a reason that holds it (a PodDisruptionBudget): the decision is
// held with Reason, not an error, and the cooldown claim is given back.
type HeldError struct {
	Reason, Detail string
}

// Error returns the reason and the detail.
func (e *HeldError) Error() string { return e.Reason + ": " + e.Detail }
