package remediate

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// gate says, for work of remediator name that outlives the request it
// started in (a drain), whether it may act now for alert, and with what
// the current policy says (Env.Gate). Every reason to wait is read
// fresh: the --dry-run flag, the pause switch (a switch that cannot be
// read holds, failing closed), the policy's and the entry's dryRun, and
// whether the entry still has the remediator.
func (e *Engine) gate(ctx context.Context, alert, name string) Gate {
	if e.dryRun {
		return Gate{Wait: "leakguard runs in dry-run (--dry-run)"}
	}
	paused, err := e.budget.paused(ctx)
	if err != nil {
		// Fail closed: a switch that cannot be read may be on.
		return Gate{Wait: fmt.Sprintf("the pause switch cannot be read: %v", err), Paused: true}
	}
	if paused {
		return Gate{Wait: fmt.Sprintf("paused: Namespace %s has %s: \"true\"", e.budget.namespace, AnnotationPause), Paused: true}
	}
	pol := e.Policy()
	if pol.DryRun {
		return Gate{Wait: "the policy is in dry-run (dryRun: true)"}
	}
	entry := pol.Entry(alert)
	if entry == nil {
		return Gate{Wait: fmt.Sprintf("the policy has no entry for %s", alert), MayWrite: true}
	}
	if entry.DryRun {
		return Gate{Wait: fmt.Sprintf("the policy's entry for %s is in dry-run (dryRun: true)", alert)}
	}
	for _, er := range entry.Remediators {
		if er.Name == name {
			return Gate{Remediator: er.Remediator, Scope: func(ns string) bool { return pol.namespaceAllowed(entry, ns) }}
		}
	}
	return Gate{Wait: fmt.Sprintf("the policy's entry for %s has no %s", alert, name), MayWrite: true}
}

// WaitingDrains describes the drains that wait, one line each, sorted:
// those this replica runs and those it found recorded running whose
// replica stopped. A drain waits while leakguard is paused or in
// dry-run (it writes nothing then) or while the policy has no drain
// for its alert.
func (e *Engine) WaitingDrains() []string {
	w := &e.waits
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, 0, len(w.m))
	for node, dw := range w.m {
		out = append(out, fmt.Sprintf("Node %s (%s, deadline %s): %s", node, dw.Alert, dw.Deadline.UTC().Format(time.RFC3339), dw.Why))
	}
	sort.Strings(out)
	return out
}
