package remediate

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
)

// A scopeGuard judges whether the alert's target is leakguard's to act on
// at all. Name is what Decision.Guards shows; Reason is the stable word a
// held decision carries (metric label, Event, replay).
type scopeGuard interface {
	Name() string
	Reason() string
	Allow(ctx context.Context, r *run) (ok bool, why string, err error)
}

// A stepGuard judges one remediator on the target. DisruptiveOnly guards
// see only disruptive remediators.
type stepGuard interface {
	Name() string
	Reason() string
	DisruptiveOnly() bool
	Allow(ctx context.Context, r *run, s *step) (ok bool, why string, err error)
}

// An alertGuard takes from a budget shared by every alert (the global
// action rate). Take returns, when it took, a function that gives back
// what it took, called when nothing ends up acting (the disruption
// guard's also when no disruptive remediator ends up acting). In
// dry-run it takes from the delivery's ledger only.
type alertGuard interface {
	Name() string
	Reason() string
	// Applies reports whether the guard judges r at all.
	Applies(r *run) bool
	Take(ctx context.Context, r *run) (ok bool, why string, release func(), err error)
}

// scopeGuards are run in this order on every alert with a target.
func (e *Engine) scopeGuards() []scopeGuard {
	return e.scopes
}

func newScopeGuards(c kubernetes.Interface) []scopeGuard {
	return []scopeGuard{namespaceScope{}, optOutScope{client: c}}
}

// stepGuards are run in this order on every remediator still planning to
// act.
func (e *Engine) stepGuards() []stepGuard {
	return []stepGuard{cooldownGuard{}, pauseGuard{store: e.budget}}
}

// alertGuards are run once per alert that still has a remediator to run.
func (e *Engine) alertGuards() []alertGuard {
	return []alertGuard{rateBudget{store: e.budget}, disruptionBudget{store: e.budget}}
}

// cooldownGuard holds a remediator that acted on the target within the
// cooldown, as read with the target (or claimed earlier in this delivery's
// dry-run). The claim checks again at write time.
type cooldownGuard struct{}

func (cooldownGuard) Name() string         { return "cooldown" }
func (cooldownGuard) Reason() string       { return ReasonCooldown }
func (cooldownGuard) DisruptiveOnly() bool { return false }

func (cooldownGuard) Allow(_ context.Context, r *run, s *step) (bool, string, error) {
	if hot, last := cooling(r.t.Annotations, s.rem.Name, r.entry.Cooldown, r.d.at); hot {
		return false, fmt.Sprintf("last action at %s, cooldown %s", last.UTC().Format(time.RFC3339), r.entry.Cooldown), nil
	}
	if r.dryRun && r.ledger.claimed(r.t.Object, s.rem.Name) {
		return false, "an earlier alert of this delivery would act on it", nil
	}
	return true, "", nil
}
