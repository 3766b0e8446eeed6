package check

import (
	"encoding/json"
	"fmt"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
)

// CheckWorkingSetSlope is the name of the check that confirms a container
// leak: the slope of the container's working-set floor
// (rules.RecWorkingSetDeriv) is still above a threshold.
const CheckWorkingSetSlope = "working-set-slope"

// DefaultSlopeBytesPerHour is the working-set-slope threshold when the
// policy sets none: 1 MiB per hour.
const DefaultSlopeBytesPerHour = 1 << 20

// WorkingSetSlopeArgs are the policy arguments of working-set-slope.
type WorkingSetSlopeArgs struct {
	// Threshold is the growth rate, in bytes per hour, above which the
	// leak counts as confirmed.
	Threshold float64 `json:"threshold"`
}

// NewWorkingSetSlope builds the working-set-slope check from its policy
// arguments. The query is the max of rules.RecWorkingSetDeriv (bytes per
// second) for the alert's namespace, pod and container; the value is
// compared in bytes per hour.
func NewWorkingSetSlope(args json.RawMessage) (remediate.Check, error) {
	a := WorkingSetSlopeArgs{Threshold: DefaultSlopeBytesPerHour}
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	if !(a.Threshold > 0) {
		return nil, fmt.Errorf("threshold must be a positive number of bytes per hour, got %g", a.Threshold)
	}
	return &thresholdCheck{
		name:      CheckWorkingSetSlope,
		metric:    rules.RecWorkingSetDeriv,
		labels:    []string{"namespace", "pod", "container"},
		threshold: a.Threshold,
		scale:     3600,
		format:    func(v float64) string { return formatBytes(v) + "/h" },
	}, nil
}
