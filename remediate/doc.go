// Package remediate is leakguard's remediation engine: for each alert that
// Alertmanager delivers it finds the policy entry, resolves the Kubernetes
// object the alert is about, asks Prometheus whether the finding still
// holds, passes the safety guards and runs the remediators, recording every
// decision as metrics, logs and Kubernetes Events.
//
// The package knows nothing of HTTP: the engine takes alertmanager's
// template.Alert values and returns one Decision per alert. Errors that mean
// "the Kubernetes API or Prometheus could not answer, a retry is safe"
// implement Transient() bool, so that a receiver can answer 503 and let
// Alertmanager retry.
//
// A firing alert runs through a short, named pipeline (pipeline.go):
//
//	resolve target → scope guards → check → plan → budget guards → claim → act → record
//
// The scope guards (namespace lists, the opt-out annotation) need no
// query; the check re-asks Prometheus; each remediator then plans what it
// would do, purely (Remediator.Plan), so that dry-run and replay print
// what a real run would write; the budget guards (cooldown as read, the
// global action rate, and for disruptive remediators the pause switch, the
// storm guard and the per-namespace cap) hold what must wait; the claim
// writes the cooldowns of the whole plan in one patch under a
// resourceVersion precondition; only then is
// the plan applied. Every stage that cannot decide fails closed: nothing
// is changed. Each guard is a small type with a stable reason.
//
// Layout: one file per component, in this one package: check_*.go,
// guard_*.go, budget*.go and the remediators (annotate.go, restart.go),
// each beside its test, declared in the explicit DefaultRegistry.
package remediate
