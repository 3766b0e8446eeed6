package check

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
)

// CheckOrphanCgroups is the name of the check that confirms a node's
// orphan cgroups: rules.RecNodeOrphanCgroups for the alert's node is still
// above a threshold.
const CheckOrphanCgroups = "orphan-cgroups"

// DefaultOrphanCgroups is the orphan-cgroups threshold when the policy sets
// none; it matches the NodeOrphanCgroups alert's default.
const DefaultOrphanCgroups = 20

// OrphanCgroupsArgs are the policy arguments of orphan-cgroups.
type OrphanCgroupsArgs struct {
	// Threshold is the orphan cgroup count above which the finding holds.
	Threshold float64 `json:"threshold"`
}

// NewOrphanCgroups builds the orphan-cgroups check from its policy
// arguments.
func NewOrphanCgroups(args json.RawMessage) (remediate.Check, error) {
	a := OrphanCgroupsArgs{Threshold: DefaultOrphanCgroups}
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	if a.Threshold < 0 || math.IsNaN(a.Threshold) || math.IsInf(a.Threshold, 0) {
		return nil, fmt.Errorf("threshold must be a finite count >= 0, got %g", a.Threshold)
	}
	return &thresholdCheck{
		name:      CheckOrphanCgroups,
		metric:    rules.RecNodeOrphanCgroups,
		labels:    []string{"node"},
		threshold: a.Threshold,
		scale:     1,
		format:    func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + " orphan cgroups" },
	}, nil
}
