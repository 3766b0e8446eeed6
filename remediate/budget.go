package remediate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// BudgetLeaseName is the coordination.k8s.io Lease, in leakguard's own
// namespace, that holds the budgets every replica shares: the global
// action rate, the disruptive actions per namespace in the last hour and
// the storm guard's record. It is updated under its resourceVersion (an
// Update is refused with a Conflict when another replica wrote first), so
// that two replicas, or a restarted one, never spend a budget twice.
const BudgetLeaseName = "leakguard-budget"

// Annotations of the budget Lease and of leakguard's namespace.
const (
	annotationBudgetRate        = "leakguard.io/rate"
	annotationBudgetDisruptions = "leakguard.io/disruptions"
	annotationBudgetStorm       = "leakguard.io/storm"
	// AnnotationPause set to "true" on leakguard's namespace stops every
	// disruptive action at once (held with reason paused), without a
	// redeploy; annotating goes on.
	AnnotationPause = "leakguard.io/pause"
)

// budgetAttempts bounds the Lease updates of one take when other replicas
// keep writing it.
const budgetAttempts = 5

// budgetTimeout bounds a give-back, which outlives the request.
const budgetTimeout = 10 * time.Second

// budgetState is what the Lease holds.
type budgetState struct {
	Rate rateState `json:"-"`
	// Disruptions maps a namespace to the times of its disruptive actions
	// within the last hour.
	Disruptions map[string][]time.Time `json:"-"`
	Storm       stormState             `json:"-"`
}

type rateState struct {
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
}

type stormState struct {
	// Targets maps each target that needed a disruptive action to when
	// it last did, within the storm window.
	Targets map[string]time.Time `json:"targets,omitempty"`
	// PausedUntil is when the storm pause ends; Why says what caused it.
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
	Why         string    `json:"why,omitempty"`
}

// tokensAt returns the bucket's tokens at now: refilled at perMinute since
// the last take, up to burst. A bucket never written is full; a time in
// the future (another replica's clock runs ahead) refills nothing.
func (r rateState) tokensAt(now time.Time, perMinute float64, burst int) float64 {
	if r.At.IsZero() {
		return float64(burst)
	}
	elapsed := now.Sub(r.At).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	return math.Min(float64(burst), r.Tokens+elapsed*perMinute/60)
}

// budgetStore reads and updates the budget Lease.
type budgetStore struct {
	client    kubernetes.Interface
	namespace string
}

func (b budgetStore) ref() string { return "Lease " + b.namespace + "/" + BudgetLeaseName }

// read returns the Lease's budget state; a Lease not yet created is an
// empty state. An error is transient when the API could not answer: a
// budget that cannot be read stops every action.
func (b budgetStore) read(ctx context.Context) (*coordinationv1.Lease, budgetState, error) {
	lease, err := b.client.CoordinationV1().Leases(b.namespace).Get(ctx, BudgetLeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, budgetState{Disruptions: map[string][]time.Time{}}, nil
	}
	if err != nil {
		return nil, budgetState{}, transient(fmt.Errorf("read budget %s: %w", b.ref(), err))
	}
	st, err := decodeBudget(lease.Annotations)
	if err != nil {
		// Fail closed: a record that does not parse (edited by hand, say)
		// is not a budget that allows. A person fixes or deletes the
		// Lease; the error names it.
		return nil, budgetState{}, fmt.Errorf("budget %s does not parse (fix or delete it): %w", b.ref(), err)
	}
	return lease, st, nil
}

func decodeBudget(ann map[string]string) (budgetState, error) {
	st := budgetState{Disruptions: map[string][]time.Time{}}
	if v := ann[annotationBudgetRate]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Rate); err != nil {
			return st, err
		}
	}
	if v := ann[annotationBudgetDisruptions]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Disruptions); err != nil {
			return st, err
		}
	}
	if v := ann[annotationBudgetStorm]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Storm); err != nil {
			return st, err
		}
	}
	return st, nil
}

func encodeBudget(st budgetState) (map[string]string, error) {
	rate, err := json.Marshal(st.Rate)
	if err != nil {
		return nil, err
	}
	dis, err := json.Marshal(st.Disruptions)
	if err != nil {
		return nil, err
	}
	storm, err := json.Marshal(st.Storm)
	if err != nil {
		return nil, err
	}
	return map[string]string{annotationBudgetRate: string(rate), annotationBudgetDisruptions: string(dis), annotationBudgetStorm: string(storm)}, nil
}

// update reads the state, lets change modify it and writes it back under
// the Lease's resourceVersion, retrying on a Conflict. change returns
// false to write nothing. Errors are transient when a retry may help.
func (b budgetStore) update(ctx context.Context, now time.Time, change func(*budgetState) bool) error {
	for attempt := 1; ; attempt++ {
		lease, st, err := b.read(ctx)
		if err != nil {
			return err
		}
		if !change(&st) {
			return nil
		}
		ann, err := encodeBudget(st)
		if err != nil {
			return fmt.Errorf("encode budget: %w", err)
		}
		holder := "leakguard"
		renew := metav1.NewMicroTime(now)
		leases := b.client.CoordinationV1().Leases(b.namespace)
		if lease == nil {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: BudgetLeaseName, Namespace: b.namespace, Annotations: ann,
					Labels: map[string]string{"app.kubernetes.io/managed-by": eventComponent}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &renew},
			}, metav1.CreateOptions{FieldManager: fieldManager})
		} else {
			lease = lease.DeepCopy()
			if lease.Annotations == nil {
				lease.Annotations = map[string]string{}
			}
			for k, v := range ann {
				lease.Annotations[k] = v
			}
			lease.Spec.HolderIdentity, lease.Spec.RenewTime = &holder, &renew
			// Update carries the resourceVersion read: a Conflict means
			// another replica wrote first, and the take is redone on
			// what it wrote.
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: fieldManager})
		}
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return transientOr(fmt.Errorf("update budget %s: %w", b.ref(), classifyKube(err)))
		}
		if attempt == budgetAttempts {
			return transient(fmt.Errorf("update budget %s: changed %d times while taking: %w", b.ref(), attempt, err))
		}
	}
}

// transientOr makes a budget write failure transient whatever its kind
// but Forbidden: nothing has acted yet, so a retry is safe, and only RBAC
// needs a person.
func transientOr(err error) error {
	if IsTransient(err) || apierrors.IsForbidden(err) {
		return err
	}
	return transient(err)
}

// paused reports whether leakguard's namespace carries the pause switch.
// A namespace that cannot be read is transient: nothing disruptive acts.
func (b budgetStore) paused(ctx context.Context) (bool, error) {
	ns, err := b.client.CoreV1().Namespaces().Get(ctx, b.namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// No namespace, no switch: leakguard runs outside its namespace
		// (a laptop, a test).
		return false, nil
	}
	if err != nil {
		return false, transient(fmt.Errorf("read the pause switch on Namespace %s: %w", b.namespace, err))
	}
	return strings.EqualFold(strings.TrimSpace(ns.Annotations[AnnotationPause]), "true"), nil
}

// prune drops what lies outside the windows at now.
func (st *budgetState) prune(now time.Time, stormWindow time.Duration) {
	for ns, times := range st.Disruptions {
		kept := times[:0]
		for _, t := range times {
			if now.Sub(t) < time.Hour {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			delete(st.Disruptions, ns)
		} else {
			st.Disruptions[ns] = kept
		}
	}
	for k, t := range st.Storm.Targets {
		if now.Sub(t) >= stormWindow {
			delete(st.Storm.Targets, k)
		}
	}
}

// stormTargets lists the storm record's targets, sorted, for the reason
// a storm pause gives.
func (st *budgetState) stormTargets() []string {
	var out []string
	for k := range st.Storm.Targets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rateBudget is the global action rate: a token bucket kept in the
// budget Lease, one token per alert that acts, whatever the number of
// remediators it runs and the number of replicas.
type rateBudget struct{ store budgetStore }

func (rateBudget) Name() string      { return "rate" }
func (rateBudget) Reason() string    { return ReasonRateLimited }
func (rateBudget) Applies(*run) bool { return true }

func (g rateBudget) Take(ctx context.Context, r *run) (bool, string, func(), error) {
	p, now := r.st.policy, r.d.at
	why := fmt.Sprintf("more than %g actions per minute (burst %d), counted across replicas in %s", p.RatePerMinute, p.RateBurst, g.store.ref())
	if r.dryRun {
		_, st, err := g.store.read(ctx)
		if err != nil {
			return false, "", nil, err
		}
		if st.Rate.tokensAt(now, p.RatePerMinute, p.RateBurst) < float64(r.ledger.actions+1) {
			return false, why, nil, nil
		}
		r.ledger.actions++
		return true, "", func() { r.ledger.actions-- }, nil
	}
	took := false
	err := g.store.update(ctx, now, func(st *budgetState) bool {
		tokens := st.Rate.tokensAt(now, p.RatePerMinute, p.RateBurst)
		took = tokens >= 1
		if !took {
			return false
		}
		st.Rate = rateState{Tokens: tokens - 1, At: now}
		return true
	})
	if err != nil || !took {
		return false, why, nil, err
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetTimeout)
		defer cancel()
		err := g.store.update(ctx, now, func(st *budgetState) bool {
			st.Rate = rateState{Tokens: math.Min(float64(p.RateBurst), st.Rate.tokensAt(now, p.RatePerMinute, p.RateBurst)+1), At: now}
			return true
		})
		if err != nil {
			r.log().Warn("could not give a rate token back", "error", err)
		}
	}
	return true, "", release, nil
}

// disruptionBudget holds disruptive remediators by two budgets kept in
// the Lease. The storm guard: when more than Storm.Targets targets need
// a disruptive action within Storm.Window, every disruptive remediator
// pauses for Storm.Pause (many leaks at once are more likely a bad
// rollout, a node problem or a wrong rule than many leaks), and the
// Lease records why; annotating goes on. The namespace cap: at most
// PerNamespacePerHour disruptive actions per namespace in any hour.
// Non-disruptive remediators pass untouched.
type disruptionBudget struct{ store budgetStore }

func (disruptionBudget) Name() string   { return "disruption" }
func (disruptionBudget) Reason() string { return ReasonStorm }

// Applies reports whether a disruptive remediator is still to act.
func (disruptionBudget) Applies(r *run) bool {
	for _, s := range r.steps {
		if s.held == "" && s.rem.Disruptive {
			return true
		}
	}
	return false
}

func (g disruptionBudget) Take(ctx context.Context, r *run) (bool, string, func(), error) {
	var live []*step
	for _, s := range r.steps {
		if s.held == "" && s.rem.Disruptive {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		return true, "", nil, nil
	}
	p, now := r.st.policy, r.d.at
	key, ns := r.t.Object.String(), r.t.Object.Namespace
	var reason, why string
	judge := func(st *budgetState, extraNS int, extraTargets map[string]bool) (write bool) {
		reason, why = "", ""
		st.prune(now, p.StormWindow)
		if st.Storm.Targets == nil {
			st.Storm.Targets = map[string]time.Time{}
		}
		if now.Before(st.Storm.PausedUntil) {
			reason, why = ReasonStorm, fmt.Sprintf("disruptive remediators paused until %s: %s", st.Storm.PausedUntil.UTC().Format(time.RFC3339), st.Storm.Why)
			return false
		}
		st.Storm.Targets[key] = now
		for k := range extraTargets {
			st.Storm.Targets[k] = now
		}
		if n := len(st.Storm.Targets); n > p.StormTargets {
			targets := st.stormTargets()
			if len(targets) > 5 {
				targets = append(targets[:5], "…")
			}
			st.Storm.PausedUntil = now.Add(p.StormPause)
			st.Storm.Why = fmt.Sprintf("%d targets needed a disruptive action within %s (more than %d): %s", n, p.StormWindow, p.StormTargets, strings.Join(targets, ", "))
			reason, why = ReasonStorm, "storm: "+st.Storm.Why+"; disruptive remediators paused for "+p.StormPause.String()
			r.log().Warn("storm guard: pausing every disruptive remediator", "until", st.Storm.PausedUntil, "why", st.Storm.Why)
			return true
		}
		if len(st.Disruptions[ns])+extraNS >= p.DisruptivePerNamespacePerHour {
			reason, why = ReasonNamespaceBudget, fmt.Sprintf("%d disruptive actions in namespace %q within the last hour, the most allowed", len(st.Disruptions[ns])+extraNS, ns)
			return true
		}
		st.Disruptions[ns] = append(st.Disruptions[ns], now)
		return true
	}
	var release func()
	if r.dryRun {
		_, st, err := g.store.read(ctx)
		if err != nil {
			return false, "", nil, err
		}
		judge(&st, r.ledger.disruptions[ns], r.ledger.stormTargets)
		r.ledger.stormTargets[key] = true
		if reason == "" {
			r.ledger.disruptions[ns]++
			release = func() { r.ledger.disruptions[ns]-- }
		}
	} else {
		err := g.store.update(ctx, now, func(st *budgetState) bool { return judge(st, 0, nil) })
		if err != nil {
			return false, "", nil, err
		}
		if reason == "" {
			release = func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetTimeout)
				defer cancel()
				err := g.store.update(ctx, now, func(st *budgetState) bool {
					times := st.Disruptions[ns]
					for i := len(times) - 1; i >= 0; i-- {
						if times[i].Equal(now) {
							st.Disruptions[ns] = append(times[:i:i], times[i+1:]...)
							return true
						}
					}
					return false
				})
				if err != nil {
					r.log().Warn("could not give a disruption budget back", "namespace", ns, "error", err)
				}
			}
		}
	}
	if reason != "" {
		for _, s := range live {
			s.hold(reason, why)
		}
	}
	return true, "", release, nil
}

// pauseGuard holds every disruptive remediator while leakguard's
// namespace carries leakguard.io/pause: "true".
type pauseGuard struct{ store budgetStore }

func (pauseGuard) Name() string         { return "pause" }
func (pauseGuard) Reason() string       { return ReasonPaused }
func (pauseGuard) DisruptiveOnly() bool { return true }

func (g pauseGuard) Allow(ctx context.Context, _ *run, _ *step) (bool, string, error) {
	paused, err := g.store.paused(ctx)
	if err != nil {
		return false, "", err
	}
	if paused {
		return false, fmt.Sprintf("Namespace %s has %s: \"true\"", g.store.namespace, AnnotationPause), nil
	}
	return true, "", nil
}
