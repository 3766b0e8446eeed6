// Package clip bounds strings that a client or an alert sender controls
// before they reach a log line, an answer or a Kubernetes Event. The
// server and the remediation engine share it, each with its own limit.
package clip

import "unicode/utf8"

// To cuts s to at most n bytes on a rune boundary, marking the cut with
// "…" (counted in the n bytes). A string of n bytes or fewer is returned
// as it is.
func To(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
