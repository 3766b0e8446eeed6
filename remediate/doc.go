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
// The evaluation order of a firing alert is: policy entry, target, scope
// guards (namespace lists and the opt-out annotation, which need no query),
// the check against Prometheus, dry-run, the per target and remediator
// cooldown as read with the target, the global rate limit, the cooldown
// claim (a write with a resourceVersion precondition) and finally the
// remediators. Every step that cannot decide fails closed: nothing is
// changed.
package remediate
