package check

import (
	"encoding/json"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// CheckNone is the name of the check that asks nothing: the alert firing
// is confirmation enough. It suits alerts that describe an event (an OOM
// kill) or a static fact (a missing limit), and remediators as mild as
// annotate.
const CheckNone = remediate.CheckNone

// noneCheck confirms every alert without a query.
type noneCheck struct{}

var _ remediate.Unasking = noneCheck{}

// NewNone builds the none check; it takes no arguments.
func NewNone(args json.RawMessage) (remediate.Check, error) {
	if err := remediate.DecodeArgs(args, &struct{}{}); err != nil {
		return nil, err
	}
	return noneCheck{}, nil
}

func (noneCheck) Name() string { return CheckNone }

// AsksNothing marks none as a check that asks Prometheus nothing: the
// policy puts no disruptive remediator behind it.
func (noneCheck) AsksNothing() {}

func (noneCheck) Query(template.Alert) (string, error) { return "", nil }

func (noneCheck) Evaluate(template.Alert, model.Value, time.Time) (remediate.Result, error) {
	return remediate.Result{Confirmed: true, Summary: "no check: the alert is the finding"}, nil
}
