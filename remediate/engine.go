package remediate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

// Decision values: what the engine did with an alert.
const (
	DecisionActed    = "acted"
	DecisionDryRun   = "dry-run"
	DecisionHeld     = "held"
	DecisionResolved = "resolved"
	DecisionError    = "error"
)

// Reasons that go with a decision. The set is closed, so that metrics stay
// bounded; Decision.Message carries the details.
const (
	ReasonOptOut            = "opt-out"
	ReasonNamespaceExcluded = "namespace-excluded"
	ReasonCooldown          = "cooldown"
	ReasonRateLimited       = "rate-limited"
	// ReasonPaused: the pause switch on leakguard's namespace holds every
	// disruptive remediator.
	ReasonPaused = "paused"
	// ReasonStorm: more targets than the storm guard allows needed a
	// disruptive action within its window.
	ReasonStorm = "storm"
	// ReasonNamespaceBudget: the namespace had its disruptive actions for
	// the hour.
	ReasonNamespaceBudget = "namespace-budget"
	// ReasonNodeBudget: the nodes, or the node's pool, had their
	// disruptive actions for the hour.
	ReasonNodeBudget        = "node-budget"
	ReasonCheckNotConfirmed = "check-not-confirmed"
	ReasonCheckNoData       = "check-no-data"
	ReasonTargetNotFound    = "target-not-found"
	// ReasonInvalidLabels: the alert's labels cannot name a Kubernetes
	// object (too long, forbidden characters); the API is not asked.
	ReasonInvalidLabels = "invalid-target-labels"
	ReasonNoPolicy      = "no-policy"
	// ReasonOtherCluster: the alert is about another cluster of a fleet
	// (its cluster label names another), or carries no cluster label and
	// Options.AcceptMissingCluster is off. Nothing is asked of Kubernetes
	// or Prometheus, and no retry can change it.
	ReasonOtherCluster = "other-cluster"
	// ReasonRecordOnly: the entry names no object or no remediator.
	ReasonRecordOnly = "record-only"
	// ReasonWouldAct goes with dry-run when every guard passed.
	ReasonWouldAct = "would-act"
	// Error reasons say which step failed.
	ReasonTargetError     = "target-error"
	ReasonGuardError      = "guard-error"
	ReasonCheckError      = "check-error"
	ReasonRemediatorError = "remediator-error"
	// ReasonRecurrence: a remediator acted for this alert too often
	// within its window (restart's recurrence guard); a person must look
	// at the code. The engine counts these holds in
	// leakguard_recurrences_total.
	ReasonRecurrence = "recurrence"
	// ReasonUnsupportedKind: the remediator cannot act on this kind of
	// target (restart on a ReplicaSet without a Deployment or on a pod
	// whose controller is a custom resource, cordon on a workload).
	ReasonUnsupportedKind = "unsupported-kind"
)

// Results of one remediator in a Decision.
const (
	ResultActed  = "acted"
	ResultDryRun = "dry-run"
	ResultHeld   = "held"
	ResultFailed = "failed"
)

// Decision is what the engine decided for one alert, and why.
type Decision struct {
	AlertName   string `json:"alertname"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Status      string `json:"status"`
	// Target is the object acted on, as "Kind namespace/name".
	Target string `json:"target,omitempty"`
	Check  string `json:"check,omitempty"`
	// CheckResult summarises the check's measurement.
	CheckResult string `json:"checkResult,omitempty"`
	// Guards lists each guard passed or the one that held.
	Guards      []string            `json:"guards,omitempty"`
	Remediators []RemediatorOutcome `json:"remediators,omitempty"`
	Decision    string              `json:"decision"`
	Reason      string              `json:"reason,omitempty"`
	Message     string              `json:"message,omitempty"`

	at time.Time
}

// RemediatorOutcome is one remediator's part of a decision.
type RemediatorOutcome struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

func (d *Decision) eventMessage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", d.AlertName, d.Decision)
	if d.Reason != "" {
		fmt.Fprintf(&b, " (%s)", d.Reason)
	}
	if d.Message != "" {
		fmt.Fprintf(&b, ": %s", d.Message)
	}
	if d.CheckResult != "" {
		fmt.Fprintf(&b, "; check %s: %s", d.Check, d.CheckResult)
	}
	for _, r := range d.Remediators {
		fmt.Fprintf(&b, "; %s %s", r.Name, r.Result)
		if r.Detail != "" {
			fmt.Fprintf(&b, ": %s", r.Detail)
		}
	}
	if d.Fingerprint != "" {
		fmt.Fprintf(&b, " [fingerprint %s]", d.Fingerprint)
	}
	return b.String()
}

// Options configure an Engine.
type Options struct {
	// Client reads targets and writes annotations and Events.
	Client kubernetes.Interface
	// Metadata reads the owners of kinds the engine has no typed client
	// for (Argo Rollouts, operators' custom resources), for their
	// opt-out. Nil makes a pod with such a controller fail closed.
	Metadata metadata.Interface
	// Querier answers the checks' queries; nil makes every check with a
	// query fail (transiently, so nothing is acted on).
	Querier Querier
	// Policy is the initial policy; required.
	Policy *Policy
	// Namespace is leakguard's own namespace: the budget Lease lives
	// there, and its leakguard.io/pause annotation is the pause switch.
	// Empty means DefaultNamespace.
	Namespace string
	// Cluster is this cluster's name in a fleet, where one Alertmanager
	// and one query engine (Thanos, Mimir, VictoriaMetrics) serve many
	// clusters. When set, an alert whose ClusterLabel names another
	// cluster is held (other-cluster) before any request, and every
	// check's query carries ClusterLabel="Cluster", so that it reads
	// this cluster's series only. Empty: one cluster, no label.
	Cluster string
	// ClusterLabel is the label that names the cluster, in alerts and in
	// series (the rules' clusterLabel); empty means DefaultClusterLabel.
	ClusterLabel string
	// AcceptMissingCluster decides, with Cluster set, alerts that carry
	// no ClusterLabel; off, they are held (other-cluster). Their checks
	// still read this cluster's series only.
	AcceptMissingCluster bool
	// DryRun forces dry-run whatever the policy says.
	DryRun bool
	// ReadOnly makes the engine write nothing at all, not even Events (for
	// replay). It implies DryRun.
	ReadOnly bool
	// QueryTimeout bounds one Prometheus query; 0 means 10 s.
	QueryTimeout time.Duration
	// Logger receives one line per decision; nil discards.
	Logger *slog.Logger
	// Registerer receives the engine's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ServerTime reads the API server's clock, on which every replica
	// judges the rate budget; nil means the Date of the API server's
	// answer to GET /version through Client, or Now when Client has no
	// HTTP client (a fake clientset).
	ServerTime func(context.Context) (time.Time, error)
	// Background runs work that outlives a delivery (a drain); nil runs
	// it on a goroutine of its own.
	Background func(func())
}

// Engine decides, per alert, whether and how to act. It is safe for
// concurrent use; the policy can be swapped while it runs.
type Engine struct {
	client   kubernetes.Interface
	metadata metadata.Interface
	querier  Querier
	dryRun   bool
	readOnly bool
	// cluster, clusterLabel and acceptMissing: Options.Cluster and the
	// rest.
	cluster       string
	clusterLabel  string
	acceptMissing bool
	timeout       time.Duration
	logger        *slog.Logger
	metrics       *metrics
	now           func() time.Time
	budget        budgetStore
	scopes        []scopeGuard
	known         knownEvents
	background    func(func())
	state         atomic.Pointer[engineState]
	// waits lists the drains that wait (WaitingDrains).
	waits Waits
}

// DefaultClusterLabel is the label that names the cluster when
// Options.ClusterLabel is empty: the rules' default clusterLabel.
const DefaultClusterLabel = "cluster"

// DefaultNamespace is leakguard's namespace when Options.Namespace is
// empty, the one deploy/leakguard installs into.
const DefaultNamespace = "leakguard"

// engineState is what a policy reload swaps as one.
type engineState struct {
	policy *Policy
}

// NewEngine builds an engine.
func NewEngine(o Options) (*Engine, error) {
	if o.Client == nil {
		return nil, errors.New("new engine: no Kubernetes client")
	}
	if o.Policy == nil {
		return nil, errors.New("new engine: no policy")
	}
	clusterLabel := o.ClusterLabel
	if clusterLabel == "" {
		clusterLabel = DefaultClusterLabel
	}
	if !model.LabelName(clusterLabel).IsValidLegacy() {
		return nil, fmt.Errorf("new engine: cluster label %q is not a valid label name", clusterLabel)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		client:        o.Client,
		metadata:      o.Metadata,
		querier:       o.Querier,
		dryRun:        o.DryRun || o.ReadOnly,
		readOnly:      o.ReadOnly,
		cluster:       o.Cluster,
		clusterLabel:  clusterLabel,
		acceptMissing: o.AcceptMissingCluster,
		timeout:       o.QueryTimeout,
		logger:        o.Logger,
		metrics:       m,
		now:           o.Now,
		background:    o.Background,
	}
	if e.timeout == 0 {
		e.timeout = 10 * time.Second
	}
	if e.logger == nil {
		e.logger = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	ns := o.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	probe := o.ServerTime
	if probe == nil {
		probe = apiserverTime(o.Client)
	}
	e.budget = budgetStore{client: o.Client, namespace: ns, clock: &serverClock{probe: probe, local: func() time.Time { return e.now() }}}
	e.scopes = newScopeGuards(o.Client)
	e.SetPolicy(o.Policy)
	return e, nil
}

// SetPolicy makes p the policy for the alerts decided from now on. The
// budgets live in the cluster, so a reload keeps what they have spent.
func (e *Engine) SetPolicy(p *Policy) {
	e.state.Store(&engineState{policy: p})
}

// Policy returns the current policy.
func (e *Engine) Policy() *Policy { return e.state.Load().policy }

// Decide decides every alert in order and returns one decision per alert.
// The error joins the alerts' errors; it is transient (IsTransient) when
// any of them is, so that the whole delivery is retried: alerts already
// acted on are then held by their cooldown. One ledger spans the
// delivery, so that dry-run holds the second alert on a target by the
// cooldown the first would have claimed, as a real run does.
func (e *Engine) Decide(ctx context.Context, alerts []template.Alert) ([]Decision, error) {
	decisions := make([]Decision, 0, len(alerts))
	var errs []error
	anyTransient := false
	l := newLedger()
	for i, a := range alerts {
		d, err := e.decideOne(ctx, a, l)
		decisions = append(decisions, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("alert %d (%s): %w", i, d.AlertName, err))
			anyTransient = anyTransient || IsTransient(err)
		}
	}
	l.events.flush(ctx, e.client, &e.known, e.logger)
	err := errors.Join(errs...)
	if anyTransient {
		err = MarkTransient(err)
	}
	return decisions, err
}

// DecideOne decides one alert. The decision is always filled in; the error
// is set when the decision is "error".
func (e *Engine) DecideOne(ctx context.Context, a template.Alert) (Decision, error) {
	l := newLedger()
	d, err := e.decideOne(ctx, a, l)
	l.events.flush(ctx, e.client, &e.known, e.logger)
	return d, err
}

func (e *Engine) decideOne(ctx context.Context, a template.Alert, l *ledger) (Decision, error) {
	st := e.state.Load()
	name := a.Labels["alertname"]
	d := Decision{AlertName: Clip(name), Fingerprint: Clip(a.Fingerprint), Status: Clip(a.Status), at: e.now()}
	r := &run{
		st:     st,
		entry:  st.policy.Entry(name),
		alert:  a,
		d:      &d,
		ledger: l,
		base:   e.logger,
	}
	if r.entry != nil {
		r.dryRun = e.dryRun || st.policy.DryRun || r.entry.DryRun
	}
	err := e.pipeline(ctx, r)
	if err != nil {
		d.Message = err.Error()
	}
	e.onHold(ctx, r)
	d.Message = Truncate(d.Message, MaxMessageLen)
	e.record(ctx, r, err)
	if r.wrote {
		l.reads.forget()
	}
	return d, err
}

// record is the pipeline's last step, whatever the step that decided:
// the metric, the log line and the Event.
func (e *Engine) record(ctx context.Context, r *run, err error) {
	d := r.d
	metricName := "other"
	if r.entry != nil {
		metricName = r.entry.AlertName
	}
	e.metrics.decisions.WithLabelValues(metricName, d.Decision, d.Reason).Inc()
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
	}
	// The alert's name and fingerprint last, where r.log() puts them.
	e.logger.LogAttrs(ctx, level, "decision", slog.String("status", d.Status), slog.String("target", d.Target), slog.String("check", d.Check),
		slog.String("check_result", d.CheckResult), slog.Any("guards", d.Guards), slog.String("decision", d.Decision), slog.String("reason", d.Reason), slog.String("message", d.Message),
		slog.Any("remediators", d.Remediators), slog.String("alert", d.AlertName), slog.String("fingerprint", d.Fingerprint))
	// A transient failure writes no Event: Alertmanager retries it, and
	// an outage would otherwise add one Event per retry and alert.
	if r.t != nil && !e.readOnly && d.eventWorthy() && !IsTransient(err) {
		eventType := corev1.EventTypeNormal
		if d.Decision == DecisionActed || d.Decision == DecisionError || r.warn {
			eventType = corev1.EventTypeWarning
		}
		if d.isHold() {
			// Counted into the delivery's Event for this target and
			// reason, written when the delivery is decided.
			r.ledger.events.add(d, r.t, eventType, d.eventReason())
			return
		}
		if evErr := recordEvent(ctx, e.client, d, r.t, eventType, d.eventReason()); evErr != nil {
			// Best effort: the action (or its absence) stands, the log
			// line above records it.
			r.log().Warn("could not record event", "target", d.Target, "error", evErr)
		}
	}
}

// eventWorthy reports whether d becomes an Event: every decision that acts
// (or would, in dry-run), fails, or is held back by a guard. A check that
// does not confirm is not a guard and writes nothing.
func (d *Decision) eventWorthy() bool {
	switch d.Decision {
	case DecisionActed, DecisionDryRun, DecisionError:
		return true
	case DecisionHeld:
		switch d.Reason {
		case ReasonNoPolicy, ReasonRecordOnly, ReasonTargetNotFound, ReasonCheckNotConfirmed, ReasonCheckNoData:
			return false
		}
		return true
	}
	return false
}

// isHold reports whether d holds every remediator: held, or in dry-run
// held for a reason other than that it would act. Holds repeat (every
// repeat_interval, every pod of a workload in its cooldown), and their
// Events are aggregated.
func (d *Decision) isHold() bool {
	return d.Decision == DecisionHeld || (d.Decision == DecisionDryRun && d.Reason != ReasonWouldAct)
}

func (d *Decision) eventReason() string {
	switch d.Decision {
	case DecisionActed:
		return EventReasonActed
	case DecisionDryRun:
		return EventReasonDryRun
	case DecisionError:
		return EventReasonFailed
	default:
		return EventReasonHeld
	}
}

func (d *Decision) set(decision, reason, msg string) {
	d.Decision, d.Reason, d.Message = decision, reason, msg
}

// runCheck builds and runs the check's query and evaluates the answer. A
// query error is transient when Prometheus could not answer (classifyProm).
func (e *Engine) runCheck(ctx context.Context, c Check, a template.Alert, now time.Time) (Result, error) {
	start := time.Now()
	defer func() { e.metrics.checkDuration.WithLabelValues(c.Name()).Observe(time.Since(start).Seconds()) }()
	q, err := e.query(c, a)
	if err != nil {
		return Result{}, fmt.Errorf("check %s: %w", c.Name(), err)
	}
	if q == "" {
		res, err := c.Evaluate(a, nil, now)
		res.Asked = false
		return res, err
	}
	if e.querier == nil {
		return Result{}, MarkTransient(fmt.Errorf("check %s: no Prometheus configured to run %s", c.Name(), q))
	}
	qctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	val, warnings, _, err := e.querier.Query(qctx, q, now)
	if err != nil {
		return Result{}, classifyProm(fmt.Errorf("check %s: query Prometheus %s: %w", c.Name(), q, err))
	}
	if len(warnings) > 0 {
		e.logger.Warn("prometheus warnings", "check", c.Name(), "query", Truncate(q, MaxMessageLen), "warnings", warnings)
	}
	res, err := c.Evaluate(a, val, now)
	res.Asked = true
	return res, err
}

// query is c's query for a; in a fleet (Options.Cluster) it carries the
// cluster matcher. A check with a query that cannot carry it fails: its
// answer could be another cluster's.
func (e *Engine) query(c Check, a template.Alert) (string, error) {
	if e.cluster == "" {
		return c.Query(a)
	}
	q, err := c.Query(a)
	if err != nil || q == "" {
		return q, err
	}
	sc, ok := c.(ScopedCheck)
	if !ok {
		return "", fmt.Errorf("its query cannot be confined to cluster %q (%s): the answer could be another cluster's", e.cluster, q)
	}
	return sc.ScopedQuery(a, map[string]string{e.clusterLabel: e.cluster})
}

// otherCluster reports why a belongs to another cluster than the
// engine's, or "" when it is the engine's to decide.
func (e *Engine) otherCluster(a template.Alert) string {
	if e.cluster == "" {
		return ""
	}
	v, ok := a.Labels[e.clusterLabel]
	switch {
	case !ok || v == "":
		if e.acceptMissing {
			return ""
		}
		return fmt.Sprintf("the alert has no %s label, and alerts without one are not accepted for cluster %q", e.clusterLabel, e.cluster)
	case v != e.cluster:
		return fmt.Sprintf("the alert's %s is %q, this is %q", e.clusterLabel, Clip(v), e.cluster)
	}
	return ""
}

// Resume calls every registered Resumer (a drain that a stopped replica
// left running is resumed or reported): serve calls it at start and
// every minute. It returns the totals; the error joins theirs.
func (e *Engine) Resume(ctx context.Context) (resumed, reported int, err error) {
	reg := e.Policy().registry
	if reg == nil {
		return 0, 0, nil
	}
	env := e.env(e.now())
	var errs []error
	for _, info := range reg.resumers() {
		r, p, err := info.Resumer.Resume(ctx, env)
		resumed, reported = resumed+r, reported+p
		if err != nil {
			errs = append(errs, fmt.Errorf("resume %s: %w", info.Name, err))
		}
	}
	return resumed, reported, errors.Join(errs...)
}

// Env returns what remediators act through now, for work that starts
// outside a decision (and for the plugins' tests of such work).
func (e *Engine) Env() Env { return e.env(e.now()) }

// env is what the remediators of a run act through.
func (e *Engine) env(now time.Time) Env {
	return Env{Client: e.client, Now: now, Namespace: e.budget.namespace, Background: e.background,
		Logger: e.logger, Metadata: e.metadata, Gate: e.gate, Clock: e.now, Waits: &e.waits,
		CountDrain: func(result string) { e.metrics.drains.WithLabelValues(result).Inc() }}
}
