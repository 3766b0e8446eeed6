// Package transient tells failures whose retry is safe and may succeed
// from the rest. An error says it is transient through a method
// Transient() bool; the remediation engine's errors do, and the webhook
// server answers 503 to them, so that Alertmanager retries.
package transient

import "errors"

// Is reports whether err, or an error it wraps, has a Transient method that
// reports true.
func Is(err error) bool {
	if err == nil {
		return false // without errors.As, whose target escapes
	}
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}
