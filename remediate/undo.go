package remediate

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Undoer is a remediator that can undo its action when the alert
// resolves (cordon with uncordonOnResolve). Undo is pure, as Plan is: it
// judges the target as read and returns an empty Plan when it has nothing
// to undo, a held Plan when the target is not its action as it left it.
type Undoer interface {
	Undo(t *Target, f Finding, now time.Time) Plan
}

// undo runs the Undo plans of the entry's remediators on a resolved
// alert. It changes the decision only when one of them has something to
// undo or to hold; otherwise the decision stays "resolved". Scope guards
// hold an undo as they hold an action (an opt-out written meanwhile).
func (e *Engine) undo(ctx context.Context, r *run) error {
	if r.entry == nil || r.entry.Target == TargetNone {
		return nil
	}
	var undoers []EntryRemediator
	for _, er := range r.entry.Remediators {
		if _, ok := er.Remediator.(Undoer); ok {
			undoers = append(undoers, er)
		}
	}
	if len(undoers) == 0 {
		return nil
	}
	t, err := resolver{c: e.client, md: e.metadata}.resolve(ctx, r.entry.Target, r.alert)
	if errors.Is(err, errInvalidLabels) || errors.Is(err, errTargetNotFound) {
		return nil // nothing there to undo
	}
	if err != nil {
		r.d.set(DecisionError, ReasonTargetError, "")
		return fmt.Errorf("resolve target to undo: %w", err)
	}
	f := Finding{Alert: r.alert, Cooldown: r.entry.Cooldown}
	var steps []*step
	for _, er := range undoers {
		p := er.Remediator.(Undoer).Undo(t, f, r.d.at)
		if p.Hold == "" && p.Apply == nil {
			continue
		}
		s := &step{rem: er, plan: p, out: RemediatorOutcome{Name: er.Name}}
		if p.Hold != "" {
			s.hold(p.Hold, p.Detail)
		}
		steps = append(steps, s)
	}
	if len(steps) == 0 {
		return nil
	}
	r.t, r.d.Target, r.steps = t, t.Object.String(), steps
	if held, err := e.scope(ctx, r); held || err != nil {
		return err
	}
	env := e.env(r.d.at)
	acted := false
	for _, s := range steps {
		switch {
		case s.held != "":
		case r.dryRun:
			s.out.Result, s.out.Detail = ResultDryRun, "would "+s.plan.Action
		default:
			detail, err := s.plan.Apply(ctx, env)
			var held *HeldError
			switch {
			case errors.As(err, &held):
				s.hold(held.Reason, held.Detail)
			case err != nil:
				e.metrics.remediations.WithLabelValues(s.rem.Name+"-undo", "failure").Inc()
				s.out.Result, s.out.Detail = ResultFailed, err.Error()
				r.collect()
				r.d.set(DecisionError, ReasonRemediatorError, "")
				return fmt.Errorf("undo %s: %w", s.rem.Name, err)
			default:
				e.metrics.remediations.WithLabelValues(s.rem.Name+"-undo", "success").Inc()
				s.out.Result, s.out.Detail = ResultActed, detail
				acted = true
			}
		}
	}
	switch {
	case r.dryRun && !r.allHeld():
		r.collect()
		r.d.set(DecisionDryRun, ReasonWouldAct, "")
	case acted:
		r.collect()
		r.d.set(DecisionActed, "", "")
	default:
		r.finish()
	}
	return nil
}
