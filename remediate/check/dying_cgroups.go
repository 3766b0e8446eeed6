package check

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
)

// CheckDyingCgroups is the name of the check that confirms a node's
// dying-cgroup leak (NodeCgroupLeak) before a disruptive action:
// rules.RecNodeDyingCgroups for the alert's node is still above a
// threshold.
const CheckDyingCgroups = "dying-cgroups"

// DefaultDyingCgroups is the dying-cgroups threshold when the policy sets
// none.
const DefaultDyingCgroups = 10000

// DyingCgroupsArgs are the policy arguments of dying-cgroups.
type DyingCgroupsArgs struct {
	// Threshold is the dying cgroup count above which the finding holds.
	Threshold float64 `json:"threshold"`
}

// NewDyingCgroups builds the dying-cgroups check from its arguments.
func NewDyingCgroups(args json.RawMessage) (remediate.Check, error) {
	a := DyingCgroupsArgs{Threshold: DefaultDyingCgroups}
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	if a.Threshold < 0 || math.IsNaN(a.Threshold) || math.IsInf(a.Threshold, 0) {
		return nil, fmt.Errorf("threshold must be a finite count >= 0, got %g", a.Threshold)
	}
	return &thresholdCheck{
		name:      CheckDyingCgroups,
		metric:    rules.RecNodeDyingCgroups,
		labels:    []string{"node"},
		threshold: a.Threshold,
		scale:     1,
		format:    func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + " dying cgroups" },
	}, nil
}
