package remediate

import clipto "github.com/leakguard/leakguard/internal/clip"

// This file and errors.go, kube.go and events.go hold the kit that
// remediators and checks in packages of their own build on: bounded text,
// error classification (MarkTransient, TransientOr, ClassifyKube), reads
// and patches of the kinds the engine knows (GetObject, PatchObject),
// Events (RecordEvent) and the opt-out (OptedOut).

// MaxLabelLen bounds a label value (an alert name, a fingerprint, a name
// the labels give) in log lines, decisions and Events: a sender controls
// them, and a log pipeline should not choke on one.
const MaxLabelLen = 128

// MaxMessageLen bounds a decision's message in log lines and answers.
const MaxMessageLen = 2048

// Clip cuts a label value to MaxLabelLen.
func Clip(s string) string { return Truncate(s, MaxLabelLen) }

// Truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func Truncate(s string, n int) string { return clipto.To(s, n) }

// APIVersion returns the apiVersion of a kind the engine knows (KindPod
// and the rest), or "" for another kind.
func APIVersion(kind string) string { return apiVersions[kind] }
