package remediate

import (
	"context"
	"errors"
	"fmt"
)

// Reasons that hold an undo after the entry's check was asked again.
const (
	// ReasonStillFiring: the alert resolved, but the entry's check says
	// the finding still holds (the alert resolved for another cause, such
	// as a relabelled or briefly absent series); nothing is undone.
	ReasonStillFiring = "still-firing"
	// ReasonCheckUnanswered: the alert resolved, but Prometheus did not
	// answer the entry's check (the query failed, or found no usable
	// sample: the target down, the series gone); a resolve without an
	// answer undoes nothing.
	ReasonCheckUnanswered = "check-unanswered"
)

// undo runs the Undo plans of the entry's remediators on a resolved
// alert. It changes the decision only when one of them has something to
// undo or to hold; otherwise the decision stays "resolved". Scope guards
// hold an undo as they hold an action (an opt-out written meanwhile), and
// the entry's check is asked again before anything is undone (undoCheck).
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
	if !r.allHeld() {
		e.undoCheck(ctx, r)
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

// undoCheck asks Prometheus, through the entry's check (the query the
// firing path asks, confined to the cluster in a fleet), whether the
// finding still holds, and holds every undo step that may act unless the
// answer says it no longer does: the check's own Evaluate not confirming,
// which for the threshold checks (orphan-cgroups, dying-cgroups,
// apiserver-memory, working-set-slope) is a fresh sample at or under the
// threshold. Alertmanager resolves an alert also when its series are gone
// (the target down, a scrape failing), and a node that still leaks must
// stay cordoned. This fails closed the other way round from the firing
// path: there no data is no confirmation, here no data is no resolution.
// A check that asks Prometheus nothing (none; policy load already refuses
// it with a disruptive remediator) cannot answer either.
func (e *Engine) undoCheck(ctx context.Context, r *run) {
	c := r.entry.Check
	if c == nil {
		r.holdUndo(ReasonCheckUnanswered, "the entry has no check to ask")
		return
	}
	r.d.Check = c.Name()
	if q, err := e.query(c, r.alert); err == nil && q == "" {
		r.holdUndo(ReasonCheckUnanswered, fmt.Sprintf("check %s asks Prometheus nothing, and an undo needs Prometheus to say the finding is gone", c.Name()))
		return
	}
	res, err := e.runCheck(ctx, c, r.alert, r.d.at)
	switch {
	case errors.Is(err, ErrNoData):
		r.d.CheckResult = "no data"
		r.holdUndo(ReasonCheckUnanswered, fmt.Sprintf("no data is not a resolution (%v)", err))
	case err != nil:
		r.d.CheckResult = "failed"
		r.log().Warn("undo held: the check could not be asked", "check", c.Name(), "error", err)
		r.holdUndo(ReasonCheckUnanswered, err.Error())
	case res.Confirmed:
		r.d.CheckResult = res.Summary
		r.holdUndo(ReasonStillFiring, fmt.Sprintf("check %s still confirms the finding (%s)", c.Name(), res.Summary))
	default:
		r.d.CheckResult = res.Summary
	}
}

// holdUndo holds every undo step of r that may still act. A check left
// unanswered makes a Warning Event: nothing will undo the action unless
// the alert fires and resolves again, or a person does.
func (r *run) holdUndo(reason, detail string) {
	for _, s := range r.steps {
		if s.held == "" {
			s.hold(reason, detail)
		}
	}
	if reason == ReasonCheckUnanswered {
		r.warn = true
	}
}
