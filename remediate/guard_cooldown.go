package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// cooldownAttempts bounds the claims of one cooldown when the target keeps
// changing under us (a Deployment's status, say).
const cooldownAttempts = 3

// annotationLastActionPrefix followed by a remediator's name holds the
// RFC 3339 time of its last action on the object (the cooldown).
const annotationLastActionPrefix = "leakguard.io/last-action-"

// CooldownAnnotation returns the annotation that holds remediator's last
// action on a target.
func CooldownAnnotation(remediator string) string { return annotationLastActionPrefix + remediator }

// cooling reports whether annotations record an action of remediator less
// than cooldown before now, and when it was. A value that does not parse
// counts as no action (the next claim overwrites it).
func cooling(annotations map[string]string, remediator string, cooldown time.Duration, now time.Time) (bool, time.Time) {
	v, ok := annotations[CooldownAnnotation(remediator)]
	if !ok {
		return false, time.Time{}
	}
	last, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return false, time.Time{}
	}
	// A time in the future (another replica's clock runs ahead) counts as
	// recent: fail closed.
	return now.Sub(last) < cooldown, last
}

// claimResult is the outcome of claimCooldown.
type claimResult struct {
	claimed bool
	// previous is the annotation's value before the claim ("" if none),
	// for releaseCooldown.
	previous string
	had      bool
	// last is the other action's time when not claimed.
	last time.Time
	// heldBy and heldWhy are set when a guard run again on the object
	// re-read after a conflict holds it (an opt-out written meanwhile).
	heldBy, heldWhy string
}

// recheckFunc runs the guards that read the target again on the object
// re-read after a conflict; a non-empty reason holds the claim.
type recheckFunc func(obj metav1.Object) (reason, why string, err error)

// claimCooldowns records an action of each of remediators on t at now, in
// one write, for those with none recorded within cooldown; the result for
// remediators[i] is results[i]. The write is a merge patch that carries
// t's resourceVersion, so the API server applies it only to the version
// read: of two replicas that read the same version, one wins every claim
// and the other gets a Conflict, re-reads, sees the fresh annotations and
// backs off from all of them. (Claiming remediator by remediator would let
// two replicas split one plan between them, each acting on part.) A
// conflict caused by an unrelated change is retried, at most
// cooldownAttempts times in all, after recheck (when not nil) has judged
// the object re-read.
func claimCooldowns(ctx context.Context, c kubernetes.Interface, t *Target, remediators []string, cooldown time.Duration, now time.Time, recheck recheckFunc) ([]claimResult, error) {
	stamp := now.UTC().Format(time.RFC3339)
	for attempt := 1; ; attempt++ {
		results := make([]claimResult, len(remediators))
		claims := map[string]string{}
		for i, name := range remediators {
			if hot, last := cooling(t.Annotations, name, cooldown, now); hot {
				results[i] = claimResult{last: last}
				continue
			}
			prev, had := t.Annotations[CooldownAnnotation(name)]
			results[i] = claimResult{claimed: true, previous: prev, had: had}
			claims[CooldownAnnotation(name)] = stamp
		}
		if len(claims) == 0 {
			return results, nil
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": t.ResourceVersion,
			"annotations":     claims,
		}})
		if err != nil {
			return nil, fmt.Errorf("cooldown %s: %w", t.Object, err)
		}
		rv, err := PatchObject(ctx, c, t.Object, types.MergePatchType, patch)
		if err == nil {
			t.ResourceVersion = rv
			if t.Annotations == nil {
				t.Annotations = map[string]string{}
			} else {
				t.Annotations = cloneMap(t.Annotations)
			}
			for k, v := range claims {
				t.Annotations[k] = v
			}
			return results, nil
		}
		if !apierrors.IsConflict(err) {
			return nil, fmt.Errorf("cooldown: %w", err)
		}
		if attempt == cooldownAttempts {
			return nil, MarkTransient(fmt.Errorf("cooldown: %s changed %d times while claiming: %w", t.Object, attempt, err))
		}
		obj, err := GetObject(ctx, c, t.Object.Kind, t.Object.Namespace, t.Object.Name)
		if err != nil {
			return nil, fmt.Errorf("cooldown: re-read after conflict: %w", err)
		}
		t.reread(obj)
		if recheck != nil {
			reason, why, err := recheck(obj)
			if err != nil {
				return nil, fmt.Errorf("cooldown: guards on the object re-read: %w", err)
			}
			if reason != "" {
				for i := range results {
					results[i] = claimResult{heldBy: reason, heldWhy: why}
				}
				return results, nil
			}
		}
	}
}

// definitelyRejected reports whether err is the API server's definitive
// refusal of a request (a 4xx answer: 400, 403, 404, 409, 422, 429 ...),
// after which the action surely did not happen. A timeout, a 5xx, a
// connection cut or a hung-up request may hide an action that happened.
func definitelyRejected(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout
}

// releaseTimeout bounds releaseCooldown, which outlives the request.
const releaseTimeout = 10 * time.Second

// releaseCooldown undoes a claim after the API definitively refused the
// action (or the action never ran), so that Alertmanager's retry can act.
// It restores the previous value; failing to release only delays the next
// action by one cooldown. It runs even when ctx is done, bounded by
// releaseTimeout.
func releaseCooldown(ctx context.Context, c kubernetes.Interface, t *Target, remediator string, cr claimResult) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	var v any // JSON null removes the key
	if cr.had {
		v = cr.previous
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]any{CooldownAnnotation(remediator): v},
	}})
	if err != nil {
		return err
	}
	_, err = PatchObject(ctx, c, t.Object, types.MergePatchType, patch)
	return err
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
