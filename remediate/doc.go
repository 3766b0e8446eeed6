// Package remediate is leakguard's remediation engine: for each alert that
// Alertmanager delivers it finds the policy entry, resolves the Kubernetes
// object the alert is about, re-asks Prometheus through the entry's
// check, passes the safety guards and runs the entry's remediators,
// recording every decision as metrics, logs and Kubernetes Events. The
// pipeline, its guards and budgets are described once, in
// docs/remediation.md.
//
// The package holds the contract that checks and remediators implement
// (Check, Remediator, Plan, Env, Target, HeldError, the optional Undoer
// and Resumer, the shared reasons), the registry that names them, the
// policy, and a small kit for plugins (DecodeArgs, PatchObject,
// ClassifyKube, MarkTransient, TransientOr, OptedOut, RecordEvent, Clip).
// It imports no check or remediator package: they live in packages of
// their own (remediate/check, remediate/annotate, remediate/restart,
// remediate/profile, remediate/node), and remediate/builtin assembles the
// ones leakguard ships. docs/extending.md says how to add a check or a
// remediator.
//
// The package knows nothing of HTTP: errors that mean "the Kubernetes API
// or Prometheus could not answer, a retry is safe" implement
// Transient() bool, so that a receiver can answer 503 and let
// Alertmanager retry.
package remediate
