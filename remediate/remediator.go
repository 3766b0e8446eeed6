package remediate

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/alertmanager/template"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

// Remediator plans an action on a resolved target. Plan is pure: it reads
// the target as resolved (its annotations, its status) and the finding,
// and says what it would do, or why it will not, without any request to
// the cluster. The engine applies the plan only in a real run, after the
// budget guards and the cooldown claim; dry-run and replay print the plan.
//
// What a remediator accepts (target kinds) and whether it disrupts running
// workloads is declared where it is registered (RemediatorInfo), so that
// policy validation can judge an entry without building anything.
type Remediator interface {
	Plan(t *Target, f Finding, now time.Time) Plan
}

// Plan is what a remediator would do on one target.
type Plan struct {
	// Action says what Apply does, in words a person checks a dry-run
	// against: "patch Deployment shop/web spec.template restartedAt".
	Action string
	// Hold, when not empty, is the stable reason why the remediator does
	// not act on this target (a guard of its own: pdb, job, not-ready,
	// rollout-in-progress, recurrence); Detail says more.
	Hold   string
	Detail string
	// Warn makes the held decision's Event a Warning: a person must look.
	Warn bool
	// Apply performs the action, idempotently (Alertmanager redelivers,
	// and two replicas may receive one alert). It returns a short
	// description of what it did. Nil when Hold is set.
	Apply func(ctx context.Context, env Env) (string, error)
	// OnHold, when not nil, records a held plan on the target (the
	// recurrence mark, say). It runs only in a real run.
	OnHold func(ctx context.Context, env Env) error
}

// HeldError is returned by a plan's Apply when the API refused the action
// for a reason that holds it (a PodDisruptionBudget): the decision is
// held with Reason, not an error, and the cooldown claim is given back.
type HeldError struct {
	Reason, Detail string
}

// Error returns the reason and the detail.
func (e *HeldError) Error() string { return e.Reason + ": " + e.Detail }

// Undoer is a remediator that can undo its action when the alert
// resolves (cordon with uncordonOnResolve). Undo is pure, as Plan is: it
// judges the target as read and returns an empty Plan when it has nothing
// to undo, a held Plan when the target is not its action as it left it.
type Undoer interface {
	Undo(t *Target, f Finding, now time.Time) Plan
}

// RemediatorInfo declares a remediator to the registry.
type RemediatorInfo struct {
	// Name is the word the policy uses.
	Name string
	// Targets are the policy target kinds it can act on (TargetWorkload,
	// TargetPod, TargetNode, TargetAPIServer).
	Targets []string
	// Disruptive remediators stop or move running workloads (restart,
	// cordon, evict). A policy must enable them explicitly, behind a
	// check, and the budget guards (pause switch, storm guard, namespace
	// cap) hold them.
	Disruptive bool
	// New builds the remediator from its policy arguments.
	New RemediatorFactory
	// Rights returns the rights of the Kubernetes API it needs beyond the
	// engine's on an entry's target kind, in a real run (RequiredRights
	// lists them, serve checks them at start). Nil: none beyond the
	// engine's.
	Rights func(target string) []Right
	// Resumer, when not nil, takes up the remediator's work that a
	// stopped replica left running (drain); Engine.Resume calls it.
	Resumer Resumer
}

// Resumer takes up work that outlives the request that started it (a
// drain runs in the background) after the replica that ran it stopped.
// Engine.Resume calls every registered Resumer, whatever the policy:
// work whose alert the policy no longer names must still be reported.
// Resume says how many it resumed and how many it reported ended.
type Resumer interface {
	Resume(ctx context.Context, env Env) (resumed, reported int, err error)
}

// Env is what a remediator acts through.
type Env struct {
	Client kubernetes.Interface
	Now    time.Time
	// Namespace is leakguard's own namespace, where its Leases live.
	Namespace string
	// Background runs work that outlives the request (a drain); nil runs
	// it on a goroutine of its own.
	Background func(func())
	// Logger receives the lines of work that outlives the request; nil
	// discards.
	Logger *slog.Logger
	// Metadata reads owners of kinds without a typed client (drain's
	// opt-out up a pod's owners); nil makes such a pod fail closed.
	Metadata metadata.Interface
	// Clock is the engine's clock, for work that outlives the request
	// (Now is the decision's time).
	Clock func() time.Time
	// Gate says, for work that outlives the request (a drain), what the
	// current policy and the pause switch allow now: it is read again
	// before each step of that work. Nil: nothing gates it.
	Gate func(ctx context.Context, alert, remediator string) Gate
	// Waits is the engine's list of the work that waits (WaitingDrains).
	Waits *Waits
	// CountDrain counts a drain that ended, by result, in
	// leakguard_drains_total; nil counts nothing.
	CountDrain func(result string)
}

// Gate is what Env.Gate says of a remediator's work for an alert.
type Gate struct {
	// Wait, when not empty, says why the work may not act now: the
	// pause switch, dry-run (the flag, the policy or its entry), or a
	// policy whose entry for the alert no longer has the remediator.
	Wait string
	// MayWrite: the work may still write its record (to end it) while it
	// waits; false when paused or in dry-run, where nothing is written.
	MayWrite bool
	// Paused: the pause switch is why it waits.
	Paused bool
	// Remediator and Scope are the current policy's remediator of that
	// name for the alert and the entry's namespace scope, when Wait is
	// empty.
	Remediator Remediator
	Scope      func(ns string) bool
}

// Finding is what the engine knows about the alert it acts on.
type Finding struct {
	Alert template.Alert
	Check Result
	// Cooldown is the entry's cooldown.
	Cooldown time.Duration
	// NamespaceAllowed reports whether the entry may act in a namespace
	// (the policy's namespace scope); nil allows every namespace but
	// kube-system.
	NamespaceAllowed func(ns string) bool
}

// AlertName returns the finding's alert name.
func (f Finding) AlertName() string { return f.Alert.Labels["alertname"] }
