package remediate

import (
	"errors"
	"net"
	"strings"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/leakguard/leakguard/internal/transient"
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

// MarkTransient wraps err as a TransientError; nil stays nil.
func MarkTransient(err error) error {
	if err == nil {
		return nil
	}
	return &TransientError{Err: err}
}

// IsTransient reports whether err, or an error it wraps, says it is
// transient.
func IsTransient(err error) bool { return transient.Is(err) }

// TransientOr makes a write failure transient whatever its kind but
// Forbidden: nothing has acted yet, so a retry is safe, and only RBAC
// needs a person.
func TransientOr(err error) error {
	if IsTransient(err) || apierrors.IsForbidden(err) {
		return err
	}
	return MarkTransient(err)
}

// ClassifyKube wraps a Kubernetes API error as transient when a retry may
// succeed: the server was unreachable, overloaded, timed out or failed
// internally. Not-found, forbidden, invalid and similar answers are
// permanent and returned as they are.
func ClassifyKube(err error) error {
	if err == nil {
		return nil
	}
	var netErr net.Error
	switch {
	case apierrors.IsServerTimeout(err), apierrors.IsTimeout(err), apierrors.IsTooManyRequests(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err), apierrors.IsUnexpectedServerError(err),
		errors.As(err, &netErr):
		return MarkTransient(err)
	}
	if _, ok := err.(apierrors.APIStatus); !ok && !errors.As(err, new(apierrors.APIStatus)) {
		// Not an answer from the API server at all (connection refused,
		// TLS failure, context deadline): the server could not be asked.
		return MarkTransient(err)
	}
	return err
}

// classifyProm wraps a Prometheus query error as transient unless
// Prometheus answered that the query itself is wrong (bad_data, a 4xx
// other than 429) or gave an answer the client cannot use: no retry fixes
// those. Unreachable, timed out, 429, 5xx and execution errors are
// transient.
func classifyProm(err error) error {
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Type {
		case v1.ErrBadData, v1.ErrBadResponse:
			return err
		case v1.ErrClient:
			// The client reports a plain 4xx as "client error: <code>".
			if !strings.Contains(apiErr.Msg, "429") {
				return err
			}
		}
	}
	return MarkTransient(err)
}
