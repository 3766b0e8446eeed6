package remediate

import (
	"errors"
	"net"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// TransientError marks a failure after which a retry is safe and likely to
// help: Prometheus or the Kubernetes API could not answer. It implements
// Transient() bool, which the webhook receiver maps to 503.
type TransientError struct {
	Err error
}

// Error returns the wrapped error's text.
func (e *TransientError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *TransientError) Unwrap() error { return e.Err }

// Transient reports true: retrying is safe.
func (e *TransientError) Transient() bool { return true }

// transient wraps err as a TransientError; nil stays nil.
func transient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// IsTransient reports whether err, or an error it wraps, says it is
// transient.
func IsTransient(err error) bool {
	var t interface{ Transient() bool }
	return errors.As(err, &t) && t.Transient()
}

// classifyKube wraps a Kubernetes API error as transient when a retry may
// succeed: the server was unreachable, overloaded, timed out or failed
// internally. Not-found, forbidden, invalid and similar answers are
// permanent and returned as they are.
func classifyKube(err error) error {
	if err == nil {
		return nil
	}
	var netErr net.Error
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err),
		errors.As(err, &netErr):
		return transient(err)
	}
	if _, ok := err.(apierrors.APIStatus); !ok && !errors.As(err, new(apierrors.APIStatus)) {
		// Not an answer from the API server at all (connection refused,
		// TLS failure, context deadline): the server could not be asked.
		return transient(err)
	}
	return err
}
