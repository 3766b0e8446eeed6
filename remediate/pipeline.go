package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/alertmanager/template"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// run is one alert's way through the pipeline.
type run struct {
	st      *engineState
	entry   *Entry
	alert   template.Alert
	d       *Decision
	t       *Target
	finding Finding
	// base is the engine's logger; log adds the alert to it, when a run
	// has more to say than its decision line.
	base   *slog.Logger
	logger *slog.Logger
	ledger *ledger
	dryRun bool
	steps  []*step
	// releases give back what the budget guards took, by guard name, in
	// the order taken: all of them when nothing acted, the disruption
	// guard's alone when only non-disruptive remediators acted.
	releases []guardRelease
	// warn makes the decision's Event a Warning (a plan asked for it).
	warn bool
	// fresh makes the scope guards read past the delivery's memo (the
	// recheck after a conflict); wrote says the run may have written an
	// object, which makes the delivery forget what it read.
	fresh, wrote bool
}

// log is the run's logger: the engine's, with the alert's name and
// fingerprint on every line.
func (r *run) log() *slog.Logger {
	if r.logger == nil {
		r.logger = withAttrs(r.base, slog.String("alert", r.d.AlertName), slog.String("fingerprint", r.d.Fingerprint))
	}
	return r.logger
}

// memo is the delivery's memo of objects read, nil when the run must read
// afresh.
func (r *run) memo() *reads {
	if r.fresh || r.ledger == nil {
		return nil
	}
	return r.ledger.reads
}

// step is one remediator's part of a run.
type step struct {
	rem   EntryRemediator
	plan  Plan
	out   RemediatorOutcome
	held  string // the reason that holds it, "" while it may act
	claim claimResult
}

func (s *step) hold(reason, detail string) {
	s.held = reason
	s.out.Result, s.out.Detail = ResultHeld, reason+": "+detail
}

// stage is one named step of the pipeline. It returns true when it has
// decided (the decision is set), or an error for an "error" decision.
type stage struct {
	name string
	run  func(context.Context, *run) (bool, error)
}

// pipeline runs an alert through the engine's stages, in this order:
//
//	resolve target → scope guards → cooldown → check → plan → budget guards → claim → act
//
// and the caller records the decision (metric, log, Event). The first
// stage that decides ends the run; every stage that cannot decide fails
// closed, changing nothing.
func (e *Engine) pipeline(ctx context.Context, r *run) error {
	for _, s := range []stage{
		{"resolve target", e.resolve},
		{"scope guards", e.scope},
		{"cooldown", e.cooldown},
		{"check", e.check},
		{"plan", e.plan},
		{"budget guards", e.budgets},
		{"claim", e.claim},
		{"act", e.act},
	} {
		done, err := s.run(ctx, r)
		if err != nil || done {
			return err
		}
	}
	return nil
}

// resolve finds the policy entry and the object the alert is about.
func (e *Engine) resolve(ctx context.Context, r *run) (bool, error) {
	d := r.d
	if why := e.otherCluster(r.alert); why != "" {
		// Before any request: another cluster's objects of the same
		// names are not this cluster's to touch.
		d.set(DecisionHeld, ReasonOtherCluster, why)
		return true, nil
	}
	if r.alert.Status == "resolved" {
		// Resolved alerts change nothing; undoing an action (uncordon) is a
		// remediator's business in its own issue.
		d.set(DecisionResolved, "", "")
		r.wrote = !r.dryRun
		return true, e.undo(ctx, r)
	}
	if r.entry == nil {
		d.set(DecisionHeld, ReasonNoPolicy, "no policy entry for this alert name")
		return true, nil
	}
	d.Check = r.entry.Check.Name()
	if r.entry.Target == TargetNone {
		d.set(DecisionHeld, ReasonRecordOnly, "the policy entry names no target object")
		return true, nil
	}
	if why, held := e.excludedByLabel(r); held {
		d.Guards = append(d.Guards, namespaceScope{}.Name()+": held")
		d.set(DecisionHeld, ReasonNamespaceExcluded, why)
		return true, nil
	}
	t, err := resolver{c: e.client, md: e.metadata, memo: r.memo()}.resolve(ctx, r.entry.Target, r.alert)
	switch {
	case errors.Is(err, errInvalidLabels):
		// Held, not an error: no retry can make these labels valid.
		d.set(DecisionHeld, ReasonInvalidLabels, err.Error())
		return true, nil
	case errors.Is(err, errTargetNotFound):
		d.set(DecisionHeld, ReasonTargetNotFound, err.Error())
		return true, nil
	case err != nil:
		d.set(DecisionError, ReasonTargetError, "")
		return true, fmt.Errorf("resolve target: %w", err)
	}
	r.t = t
	d.Target = t.Object.String()
	d.Guards = make([]string, 0, 4) // the scope guards, a cooldown, a budget
	return false, nil
}

// excludedByLabel judges the namespace guard before the target is read,
// for the targets whose namespace is the alert's namespace label (a pod
// and its workload: owners live in their pod's namespace). An alert held
// here reads nothing and records no Event: the policy keeps leakguard out
// of that namespace, writes included, and the log line, the metric and
// the answer record the hold. A label that cannot name a namespace is
// left to the resolution, which holds it as invalid.
func (e *Engine) excludedByLabel(r *run) (string, bool) {
	if r.entry.Target != TargetPod && r.entry.Target != TargetWorkload {
		return "", false
	}
	ns := r.alert.Labels["namespace"]
	if ns == "" {
		return "", false
	}
	ok, why := namespaceGuard(r.st.policy, r.entry, &Target{Namespace: ns})
	if ok || checkName("namespace", ns) != nil {
		return "", false
	}
	return why, true
}

// scope runs the scope guards. They need no query, and come before the
// check so that an alert out of scope never turns a Prometheus outage into
// retries.
func (e *Engine) scope(ctx context.Context, r *run) (bool, error) {
	for _, g := range e.scopeGuards() {
		ok, why, err := g.Allow(ctx, r)
		if err != nil {
			r.d.set(DecisionError, ReasonGuardError, "")
			return true, fmt.Errorf("%s guard: %w", g.Reason(), err)
		}
		if !ok {
			r.d.Guards = append(r.d.Guards, g.Name()+": held")
			r.d.set(DecisionHeld, g.Reason(), why)
			return true, nil
		}
		r.d.Guards = append(r.d.Guards, passed(g.Name()))
	}
	return false, nil
}

// passed is name+": ok", without building the string for the guards that
// every alert with a target passes.
func passed(name string) string {
	switch name {
	case "namespace":
		return "namespace: ok"
	case "opt-out":
		return "opt-out: ok"
	}
	return name + ": ok"
}

// cooldown holds, before the check, an alert whose every remediator is
// within its cooldown on the target as read: Alertmanager redelivers a
// firing alert every repeat_interval, and a redelivery that cannot act
// then costs no Prometheus query (nor a retry when Prometheus is down).
// The cooldown guard judges again after the check, for what is left, and
// the claim once more at write time.
func (e *Engine) cooldown(_ context.Context, r *run) (bool, error) {
	if len(r.entry.Remediators) == 0 {
		return false, nil
	}
	var steps []*step
	for _, er := range r.entry.Remediators {
		hot, last := cooling(r.t.Annotations, er.Name, r.entry.Cooldown, r.d.at)
		if !hot {
			return false, nil
		}
		s := &step{rem: er, out: RemediatorOutcome{Name: er.Name}}
		s.hold(ReasonCooldown, "last action at "+last.UTC().Format(time.RFC3339)+", cooldown "+r.entry.Cooldown.String())
		steps = append(steps, s)
	}
	r.steps = steps
	if r.dryRun {
		r.d.Guards = append(r.d.Guards, "cooldown: would hold")
	} else {
		r.d.Guards = append(r.d.Guards, "cooldown: held")
	}
	r.finish()
	return true, nil
}

// check re-asks Prometheus whether the finding still holds.
func (e *Engine) check(ctx context.Context, r *run) (bool, error) {
	d := r.d
	res, err := e.runCheck(ctx, r.entry.Check, r.alert, d.at)
	switch {
	case errors.Is(err, ErrNoData):
		// Fail closed: no data is no confirmation.
		d.CheckResult = "no data"
		d.set(DecisionHeld, ReasonCheckNoData, err.Error())
		return true, nil
	case err != nil:
		d.CheckResult = "failed"
		d.set(DecisionError, ReasonCheckError, "")
		return true, err
	}
	d.CheckResult = res.Summary
	if !res.Confirmed {
		d.set(DecisionHeld, ReasonCheckNotConfirmed, "")
		return true, nil
	}
	if len(r.entry.Remediators) == 0 {
		d.set(DecisionHeld, ReasonRecordOnly, "the policy entry names no remediator")
		return true, nil
	}
	// Fail closed: a disruptive remediator acts only on a finding that
	// Prometheus was asked about now. The policy refuses check: none and
	// every check that says it asks nothing (Unasking) before them; this
	// holds a check that asks nothing without saying so.
	if !res.Asked {
		for _, er := range r.entry.Remediators {
			if er.Disruptive {
				d.set(DecisionHeld, ReasonCheckNotConfirmed, fmt.Sprintf("check %s asked Prometheus nothing, and %s disrupts running workloads", r.entry.Check.Name(), er.Name))
				return true, nil
			}
		}
	}
	entry, pol := r.entry, r.st.policy
	r.finding = Finding{Alert: r.alert, Check: res, Cooldown: entry.Cooldown,
		NamespaceAllowed: func(ns string) bool { return pol.namespaceAllowed(entry, ns) }}
	return false, nil
}

// plan asks every remediator what it would do: pure, no request.
func (e *Engine) plan(_ context.Context, r *run) (bool, error) {
	for _, er := range r.entry.Remediators {
		s := &step{rem: er, out: RemediatorOutcome{Name: er.Name}}
		s.plan = er.Remediator.Plan(r.t, r.finding, r.d.at)
		if s.plan.Hold != "" {
			s.hold(s.plan.Hold, s.plan.Detail)
			r.warn = r.warn || s.plan.Warn
		}
		r.steps = append(r.steps, s)
	}
	if r.allHeld() {
		r.finish()
		return true, nil
	}
	return false, nil
}

// budgets runs the budget guards: per remediator (the cooldown as read
// with the target, and for disruptive ones the pause switch, the storm
// guard and the namespace cap), then the global action rate over the
// alert. In dry-run they read and take from the delivery's ledger only.
func (e *Engine) budgets(ctx context.Context, r *run) (bool, error) {
	for _, g := range e.stepGuards() {
		judged := 0
		for _, s := range r.steps {
			if s.held != "" || (g.DisruptiveOnly() && !s.rem.Disruptive) {
				continue
			}
			judged++
			ok, why, err := g.Allow(ctx, r, s)
			if err != nil {
				r.d.set(DecisionError, ReasonGuardError, "")
				return true, fmt.Errorf("%s guard: %w", g.Reason(), err)
			}
			if !ok {
				s.hold(g.Reason(), why)
			}
		}
		if judged == 0 {
			continue // a guard of disruptive remediators, and none is left
		}
		if r.allHeld() {
			r.d.Guards = append(r.d.Guards, g.Name()+": "+r.heldWord())
			r.finish()
			return true, nil
		}
		r.d.Guards = append(r.d.Guards, g.Name()+": ok")
	}
	for _, g := range e.alertGuards() {
		if !g.Applies(r) {
			continue
		}
		ok, why, release, err := g.Take(ctx, r)
		if err != nil {
			// Nothing acted: what the guards before this one took goes
			// back, or a retry of this delivery would spend it twice.
			r.giveBack()
			r.d.set(DecisionError, ReasonGuardError, "")
			return true, fmt.Errorf("%s guard: %w", g.Reason(), err)
		}
		if !ok {
			for _, s := range r.steps {
				if s.held == "" {
					s.hold(g.Reason(), why)
				}
			}
		}
		if release != nil {
			r.releases = append(r.releases, guardRelease{guard: g.Name(), fn: release})
		}
		if r.allHeld() {
			r.d.Guards = append(r.d.Guards, g.Name()+": "+r.heldWord())
			r.giveBack()
			r.finish()
			return true, nil
		}
		r.d.Guards = append(r.d.Guards, g.Name()+": ok")
	}
	return false, nil
}

// claim writes the cooldowns of every acting remediator on the target, in
// one patch under a resourceVersion precondition. After a conflict the
// object is read again and the guards that read it run again on what was
// read (an opt-out written meanwhile holds). In dry-run the claim goes to
// the ledger.
func (e *Engine) claim(ctx context.Context, r *run) (bool, error) {
	r.wrote = !r.dryRun
	var acting []*step
	for _, s := range r.steps {
		if s.held != "" {
			continue
		}
		if r.dryRun {
			if !r.ledger.claim(r.t.Object, s.rem.Name, r.d.at) {
				s.hold(ReasonCooldown, "an earlier alert of this delivery would act on it")
			}
			continue
		}
		acting = append(acting, s)
	}
	if len(acting) > 0 {
		names := make([]string, len(acting))
		for i, s := range acting {
			names[i] = s.rem.Name
		}
		results, err := claimCooldowns(ctx, e.client, r.t, names, r.entry.Cooldown, r.d.at, func(obj metav1.Object) (string, string, error) {
			return e.recheck(ctx, r, obj)
		})
		if err != nil {
			for _, s := range acting {
				s.out.Result, s.out.Detail = ResultFailed, err.Error()
			}
			r.giveBack()
			r.collect()
			r.d.set(DecisionError, ReasonGuardError, "")
			return true, err
		}
		for i, s := range acting {
			cr := results[i]
			switch {
			case cr.heldBy != "":
				// The object re-read is out of scope now (an opt-out
				// written meanwhile): it holds every remediator.
				s.hold(cr.heldBy, cr.heldWhy)
			case !cr.claimed:
				s.hold(ReasonCooldown, fmt.Sprintf("last action at %s, cooldown %s", cr.last.UTC().Format(time.RFC3339), r.entry.Cooldown))
			default:
				s.claim = cr
			}
		}
	}
	if r.allHeld() {
		if !r.dryRun {
			r.d.Guards = append(r.d.Guards, "claim: held")
		}
		r.giveBack()
		r.finish()
		return true, nil
	}
	if !r.dryRun {
		r.d.Guards = append(r.d.Guards, "claim: ok")
	}
	return false, nil
}

// recheck runs the scope guards that read objects again after the claim
// re-read obj (the target) on a conflict.
func (e *Engine) recheck(ctx context.Context, r *run, obj metav1.Object) (string, string, error) {
	r.t.reread(obj)
	// What the scope guards read again is read afresh, not from the
	// delivery's memo: this is the second look after a conflict.
	r.fresh = true
	defer func() { r.fresh = false }()
	for _, g := range e.scopeGuards() {
		ok, why, err := g.Allow(ctx, r)
		if err != nil {
			return "", "", err
		}
		if !ok {
			return g.Reason(), why, nil
		}
	}
	return "", "", nil
}

// act applies the plans, in the policy's order. A failure stops the run;
// the remediators after it do not run and their claims are given back.
func (e *Engine) act(ctx context.Context, r *run) (bool, error) {
	env := e.env(r.d.at)
	// acted and disrupted say whether a remediator, and a disruptive
	// one, may have acted: what they spent stays spent. A step held as
	// it applied (a HeldError) did nothing and spends nothing.
	acted, disrupted := false, false
	for i, s := range r.steps {
		if s.held != "" {
			continue
		}
		if r.dryRun {
			s.out.Result, s.out.Detail = ResultDryRun, "would "+s.plan.Action
			continue
		}
		detail, err := s.plan.Apply(ctx, env)
		var held *HeldError
		if errors.As(err, &held) {
			// The API refused for a reason that holds (a PDB): nothing
			// happened, so the claim goes back.
			s.hold(held.Reason, held.Detail)
			r.releaseClaims(ctx, e, nil, s)
			continue
		}
		if err != nil {
			e.metrics.remediations.WithLabelValues(s.rem.Name, "failure").Inc()
			s.out.Result, s.out.Detail = ResultFailed, err.Error()
			r.releaseClaims(ctx, e, err, r.steps[i:]...)
			if !definitelyRejected(err) {
				// After a timeout the action may have happened, and
				// what it spent stays spent.
				acted, disrupted = true, disrupted || s.rem.Disruptive
			}
			// What did not happen gives its budgets back: all of them
			// when nothing acted, the disruption budget when nothing
			// disruptive did.
			r.giveBackUnspent(acted, disrupted)
			r.collect()
			r.d.set(DecisionError, ReasonRemediatorError, "")
			return true, fmt.Errorf("remediator %s: %w", s.rem.Name, err)
		}
		e.metrics.remediations.WithLabelValues(s.rem.Name, "success").Inc()
		s.out.Result, s.out.Detail = ResultActed, detail
		acted, disrupted = true, disrupted || s.rem.Disruptive
	}
	if !r.dryRun {
		// A remediator held as it applied (a PDB refusal, cordon's
		// max-unschedulable) gives back what only it needed: the
		// disruption budget when no disruptive remediator acted, the
		// rate token too when nothing acted.
		r.giveBackUnspent(acted, disrupted)
	}
	if !acted && !r.dryRun {
		// Every remediator was held as it applied.
		r.finish()
		return true, nil
	}
	r.collect()
	if r.dryRun {
		r.d.set(DecisionDryRun, ReasonWouldAct, "")
	} else {
		r.d.set(DecisionActed, "", "")
	}
	return true, nil
}

// onHold lets the plans held by their own guard record it (the
// recurrence mark on the workload), in a real run, whatever stage ended
// the run, and counts the recurrences.
func (e *Engine) onHold(ctx context.Context, r *run) {
	if r.dryRun || e.readOnly || r.t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), EventTimeout)
	defer cancel()
	env := e.env(r.d.at)
	for _, s := range r.steps {
		if s.held == "" || s.held != s.plan.Hold {
			continue
		}
		if s.held == ReasonRecurrence {
			e.metrics.recurrences.WithLabelValues(r.entry.AlertName, s.rem.Name).Inc()
		}
		if s.plan.OnHold == nil {
			continue
		}
		r.wrote = true
		if err := s.plan.OnHold(ctx, env); err != nil {
			r.log().Warn("could not record a held plan", "remediator", s.rem.Name, "error", err)
		}
	}
}

// releaseClaims gives back the cooldown claims of steps: the failed one
// (the first) only when the API definitively rejected its action (failure
// is then not nil), the others always, as they never ran.
func (r *run) releaseClaims(ctx context.Context, e *Engine, failure error, steps ...*step) {
	defer func() {
		for _, s := range steps {
			s.claim = claimResult{}
		}
	}()
	for i, s := range steps {
		if !s.claim.claimed {
			continue
		}
		if i == 0 && failure != nil && !definitelyRejected(failure) {
			// The action may have happened (a timeout, a hung-up
			// request): the claim stands, so a retry does not act twice.
			continue
		}
		if err := releaseCooldown(ctx, e.client, r.t, s.rem.Name, s.claim); err != nil {
			r.log().Warn("could not release a cooldown claim", "remediator", s.rem.Name, "error", err)
		}
	}
}

// guardRelease is what one alert guard took, as the function that gives
// it back.
type guardRelease struct {
	guard string
	fn    func()
}

// giveBack returns what the alert guards took, once, the last taken
// first.
func (r *run) giveBack() {
	for i := len(r.releases) - 1; i >= 0; i-- {
		r.releases[i].fn()
	}
	r.releases = nil
}

// giveBackUnspent returns what the run did not spend: every budget when
// nothing acted, the disruption budget alone when no disruptive
// remediator acted, nothing when a disruptive one did. The rate is one
// token per alert that acts, whichever of its remediators acted.
func (r *run) giveBackUnspent(acted, disrupted bool) {
	switch {
	case !acted:
		r.giveBack()
	case !disrupted:
		kept := r.releases[:0]
		for _, rel := range r.releases {
			if rel.guard == (disruptionBudget{}).Name() {
				rel.fn()
				continue
			}
			kept = append(kept, rel)
		}
		r.releases = kept
	}
}

func (r *run) allHeld() bool {
	for _, s := range r.steps {
		if s.held == "" {
			return false
		}
	}
	return true
}

func (r *run) heldWord() string {
	if r.dryRun {
		return "would hold"
	}
	return "held"
}

// collect copies the steps' outcomes into the decision.
func (r *run) collect() {
	r.d.Remediators = r.d.Remediators[:0]
	for _, s := range r.steps {
		r.d.Remediators = append(r.d.Remediators, s.out)
	}
}

// finish sets a decision where every remediator is held: the first
// remediator's reason decides.
func (r *run) finish() {
	r.collect()
	reason, why := "", ""
	for _, s := range r.steps {
		if s.held != "" {
			reason, why = s.held, s.out.Detail
			break
		}
	}
	if r.dryRun {
		r.d.set(DecisionDryRun, reason, why)
		return
	}
	r.d.set(DecisionHeld, reason, why)
}
