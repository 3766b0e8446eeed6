package check

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
)

// CheckAPIServerMemory is the name of the check that confirms a
// kube-apiserver memory finding: rules.RecAPIServerMemoryRatio for the
// alert's node is still above a share of the node's memory.
const CheckAPIServerMemory = "apiserver-memory"

// DefaultAPIServerMemoryRatio is the apiserver-memory threshold when the
// policy sets none: the field's 60 % waterline.
const DefaultAPIServerMemoryRatio = 0.6

// APIServerMemoryArgs are the policy arguments of apiserver-memory.
type APIServerMemoryArgs struct {
	// Threshold is the share of the node's memory, in (0, 1], above which
	// the finding holds.
	Threshold float64 `json:"threshold"`
}

// NewAPIServerMemory builds the apiserver-memory check from its policy
// arguments.
func NewAPIServerMemory(args json.RawMessage) (remediate.Check, error) {
	a := APIServerMemoryArgs{Threshold: DefaultAPIServerMemoryRatio}
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	if !(a.Threshold > 0 && a.Threshold <= 1) {
		return nil, fmt.Errorf("threshold must be a share of node memory in (0, 1], got %g", a.Threshold)
	}
	return &thresholdCheck{
		name:      CheckAPIServerMemory,
		metric:    rules.RecAPIServerMemoryRatio,
		labels:    []string{"node"},
		threshold: a.Threshold,
		scale:     1,
		format:    func(v float64) string { return strconv.FormatFloat(v*100, 'f', 1, 64) + " %" },
	}, nil
}
