package remediate

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Querier runs an instant PromQL query. client_golang's v1.API satisfies it
// (since v1.24 its Query also returns the answer's informational notes).
type Querier interface {
	Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error)
}

var _ Querier = v1.API(nil)

// Check decides whether the finding of an alert still holds now. It is pure:
// the engine runs the query that Query returns and hands the answer to
// Evaluate, so that a check is tested by tables of answers alone.
type Check interface {
	// Name is the word the policy uses for the check.
	Name() string
	// Query returns the PromQL instant query for alert, or "" when the
	// check needs none. An error means the alert lacks a label the check
	// needs.
	Query(alert template.Alert) (string, error)
	// Evaluate decides over the answer to Query at now. It returns an error
	// wrapping ErrNoData when the answer holds no usable sample.
	Evaluate(alert template.Alert, answer model.Value, now time.Time) (Result, error)
}

// ScopedCheck is a Check whose query can be confined to series that
// carry given labels (in a fleet, the cluster's): ScopedQuery is Query
// with a matcher label="value" for each of extra. With Options.Cluster
// set, a check with a query must be one.
type ScopedCheck interface {
	Check
	ScopedQuery(alert template.Alert, extra map[string]string) (string, error)
}

// Unasking is implemented by a check that asks Prometheus nothing (its
// Query is always ""): the alert firing is its whole evidence. A policy
// may not put a disruptive remediator behind one. A check that asks
// nothing without saying so is caught at run time instead: the engine
// holds an alert whose entry has a disruptive remediator when its check
// ran no query (ReasonCheckNotConfirmed).
type Unasking interface {
	Check
	// AsksNothing marks the check; it is never called.
	AsksNothing()
}

// asksNothing reports whether c says it asks Prometheus nothing.
func asksNothing(c Check) bool {
	_, ok := c.(Unasking)
	return ok
}

// Result is a check's verdict.
type Result struct {
	// Confirmed is true when the finding still holds and the engine may act.
	Confirmed bool `json:"confirmed"`
	// Value is the measured value, in the check's unit; meaningful only
	// when HasValue.
	Value    float64 `json:"value,omitempty"`
	HasValue bool    `json:"-"`
	// Summary says in a few words what was measured against what, such as
	// "2.0 MiB/h > 1.0 MiB/h".
	Summary string `json:"summary"`
	// Asked is set by the engine, whatever the check returns: true when
	// the check's query ran against Prometheus.
	Asked bool `json:"-"`
}

// ErrNoData means the query answered with no usable sample: the series is
// absent, NaN or too old. The engine does not act on it (fail closed).
var ErrNoData = errors.New("no data")

// CheckNone is the name of the check that asks nothing: the alert firing
// is confirmation enough. Policy validation knows it: a disruptive
// remediator needs a check that re-asks Prometheus. The check itself
// lives in remediate/check.
const CheckNone = "none"
