package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// RemediatorDrain is the name of the drain remediator.
const RemediatorDrain = "drain"

// AnnotationDrain on a node holds the progress of leakguard's drain of it
// (JSON, drainState), so that a replica that restarts mid-drain resumes
// it or reports it.
const AnnotationDrain = "leakguard.io/drain"

// Drain states.
const (
	DrainRunning    = "running"
	DrainDone       = "done"
	DrainIncomplete = "incomplete"
)

// Reasons of drain's own guards.
const (
	// ReasonNotCordoned: drain evicts only from a node that is
	// unschedulable (cordon comes first in the entry).
	ReasonNotCordoned = "not-cordoned"
	// ReasonDrainInProgress: a drain of the node is running.
	ReasonDrainInProgress = "drain-in-progress"
)

// Event reasons of a drain's progress.
const (
	EventReasonDrainProgress   = "LeakguardDrainProgress"
	EventReasonDrainDone       = "LeakguardDrainDone"
	EventReasonDrainIncomplete = "LeakguardDrainIncomplete"
)

// Defaults of drain's arguments.
const (
	DefaultDrainTimeout    = 10 * time.Minute
	DefaultDrainBackoff    = 5 * time.Second
	DefaultDrainMaxBackoff = time.Minute
	// drainStaleAfter is how long a running drain's heartbeat may be
	// old before another replica takes it over: its own replica died.
	drainStaleAfter = 2 * time.Minute
	// maxDrainRefused bounds the pods a drain's record names.
	maxDrainRefused = 10
)

// DrainInfo declares drain: node targets only, disruptive.
var DrainInfo = RemediatorInfo{Name: RemediatorDrain, Targets: []string{TargetNode}, Disruptive: true, New: NewDrain}

// DrainArgs are drain's policy arguments.
type DrainArgs struct {
	// Timeout bounds the whole drain (default 10m); what is left then is
	// reported, never forced.
	Timeout Duration `json:"timeout"`
	// Backoff is the first wait before evicting again the pods a
	// PodDisruptionBudget refused (429), doubled each pass up to
	// MaxBackoff (defaults 5s and 1m).
	Backoff    Duration `json:"backoff"`
	MaxBackoff Duration `json:"maxBackoff"`
}

// Drain evicts a cordoned node's pods through the Eviction API, in the
// background, under its own deadline.
type Drain struct {
	Timeout, Backoff, MaxBackoff time.Duration
}

var _ Remediator = Drain{}

// NewDrain builds drain from its arguments.
func NewDrain(args json.RawMessage) (Remediator, error) {
	var a DrainArgs
	if err := decodeArgs(args, &a); err != nil {
		return nil, err
	}
	d := Drain{Timeout: orDefault(time.Duration(a.Timeout), DefaultDrainTimeout), Backoff: orDefault(time.Duration(a.Backoff), DefaultDrainBackoff), MaxBackoff: orDefault(time.Duration(a.MaxBackoff), DefaultDrainMaxBackoff)}
	if a.Timeout < 0 || a.Backoff < 0 || a.MaxBackoff < 0 {
		return nil, errors.New("timeout, backoff and maxBackoff must not be negative")
	}
	if d.MaxBackoff > drainStaleAfter/2 {
		// A wait longer than this would make a running drain look
		// abandoned to the other replicas.
		return nil, fmt.Errorf("maxBackoff %s: at most %s", d.MaxBackoff, drainStaleAfter/2)
	}
	if d.MaxBackoff < d.Backoff {
		return nil, fmt.Errorf("maxBackoff %s is less than backoff %s", d.MaxBackoff, d.Backoff)
	}
	return d, nil
}

// drainState is the value of AnnotationDrain.
type drainState struct {
	Alert    string    `json:"alert"`
	State    string    `json:"state"`
	Started  time.Time `json:"started"`
	Deadline time.Time `json:"deadline"`
	// Heartbeat is the last time the replica running it wrote it.
	Heartbeat time.Time `json:"heartbeat"`
	Evicted   int       `json:"evicted"`
	// Left is the pods still to evict; Refused names those a
	// PodDisruptionBudget (or an error) refused at the last pass.
	Left    int      `json:"left"`
	Refused []string `json:"refused,omitempty"`
	// Skipped names the pods left alone (DaemonSet, mirror, out of
	// scope, opted out) with why, bounded.
	Skipped []string `json:"skipped,omitempty"`
}

func readDrain(ann map[string]string) (drainState, bool) {
	var s drainState
	v, ok := ann[AnnotationDrain]
	if !ok || json.Unmarshal([]byte(v), &s) != nil || s.State == "" {
		return drainState{}, false
	}
	return s, true
}

// Plan holds while a drain of the node runs (its heartbeat fresh).
func (d Drain) Plan(t *Target, f Finding, now time.Time) Plan {
	if t.Object.Kind != KindNode {
		return Plan{Hold: ReasonUnsupportedKind, Detail: fmt.Sprintf("drain acts on nodes, not on %s", t.Object)}
	}
	if s, ok := readDrain(t.Annotations); ok && s.State == DrainRunning && now.Sub(s.Heartbeat) < drainStaleAfter && now.Before(s.Deadline) {
		return Plan{Hold: ReasonDrainInProgress, Detail: fmt.Sprintf("%s: a drain for %s started at %s runs until %s (%d pods left)", t.Object, s.Alert, s.Started.UTC().Format(time.RFC3339), s.Deadline.UTC().Format(time.RFC3339), s.Left)}
	}
	scope := f.NamespaceAllowed
	alert := f.AlertName()
	return Plan{
		Action: fmt.Sprintf("evict the pods of %s through the Eviction API, in the background, for at most %s (DaemonSet and mirror pods, out-of-scope and opted-out pods skipped; PodDisruptionBudgets respected)", t.Object, d.Timeout),
		Apply: func(ctx context.Context, env Env) (string, error) {
			n, err := env.Client.CoreV1().Nodes().Get(ctx, t.Object.Name, metav1.GetOptions{})
			if err != nil {
				return "", fmt.Errorf("drain: %w", notFound(classifyKube(err)))
			}
			if !n.Spec.Unschedulable {
				// Evicting from a schedulable node would land the pods on
				// it again; cordon must come first.
				return "", &HeldError{Reason: ReasonNotCordoned, Detail: fmt.Sprintf("%s is schedulable; drain evicts only from a cordoned node (put cordon before drain)", t.Object)}
			}
			st := drainState{Alert: alert, State: DrainRunning, Started: env.Now, Deadline: env.Now.Add(d.Timeout), Heartbeat: env.Now}
			if prev, ok := readDrain(n.Annotations); ok && prev.State == DrainRunning && prev.Alert == alert && env.Now.Before(prev.Deadline) {
				// Its replica died (the heartbeat is stale): resume it,
				// under its own deadline.
				st = prev
				st.Heartbeat = env.Now
			}
			dr := &drainer{client: env.Client, node: t.Object, state: st, scope: scope, backoff: d.Backoff, maxBackoff: d.MaxBackoff, now: time.Now, logger: env.Logger, metrics: env.metrics}
			if err := dr.write(ctx, ""); err != nil {
				return "", err
			}
			start(env, dr.run)
			return fmt.Sprintf("drain of %s started, until %s", t.Object, st.Deadline.UTC().Format(time.RFC3339)), nil
		},
	}
}

// start runs f on env's Background, or on a goroutine of its own.
func start(env Env, f func()) {
	if env.Background != nil {
		env.Background(f)
		return
	}
	go f()
}

// drainer is one drain in progress.
type drainer struct {
	client     kubernetes.Interface
	node       ObjectRef
	state      drainState
	scope      func(ns string) bool
	backoff    time.Duration
	maxBackoff time.Duration
	now        func() time.Time
	// sleep waits d or until ctx ends; nil uses a timer.
	sleep   func(ctx context.Context, d time.Duration) error
	logger  *slog.Logger
	metrics *metrics
	// takeOver, when set, is the node's resourceVersion as read: the next
	// write carries it, so of two replicas taking over a stale drain one
	// wins and the other gets a Conflict and leaves it.
	takeOver string
}

// run drains under its own context, whose deadline is the drain's: the
// webhook request that started it is long answered.
func (dr *drainer) run() {
	ctx, cancel := context.WithTimeout(context.Background(), dr.state.Deadline.Sub(dr.now()))
	defer cancel()
	wait := dr.backoff
	for {
		left, refused, skipped, err := dr.pass(ctx)
		dr.state.Left, dr.state.Refused, dr.state.Skipped = left, firstN(refused, maxDrainRefused), firstN(skipped, maxDrainRefused)
		dr.state.Heartbeat = dr.now()
		if err == nil && left == 0 {
			dr.state.State = DrainDone
			dr.finish(ctx, EventReasonDrainDone)
			return
		}
		if ctx.Err() == nil && dr.now().Add(wait).Before(dr.state.Deadline) {
			_ = dr.write(ctx, EventReasonDrainProgress)
			if dr.wait(ctx, wait) == nil {
				wait = min(2*wait, dr.maxBackoff)
				continue
			}
		}
		// The deadline: what is left is reported, never forced.
		dr.state.State = DrainIncomplete
		dr.finish(context.Background(), EventReasonDrainIncomplete)
		return
	}
}

// finish records the drain's end: the node's annotation and an Event
// (reason), a log line and the metric.
func (dr *drainer) finish(ctx context.Context, reason string) {
	s := dr.state
	logger := dr.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("alert", s.Alert, "target", dr.node.String())
	if err := dr.write(ctx, reason); err != nil {
		// Not counted: a Conflict on a take-over means another replica
		// reports it.
		logger.Warn("could not record the end of a drain", "error", err)
		return
	}
	if dr.metrics != nil {
		dr.metrics.drains.WithLabelValues(s.State).Inc()
	}
	level := slog.LevelInfo
	if s.State != DrainDone {
		level = slog.LevelWarn
	}
	logger.Log(ctx, level, "drain ended", "state", s.State, "evicted", s.Evicted, "left", s.Left, "refused", s.Refused, "skipped", s.Skipped, "deadline", s.Deadline)
}

func (dr *drainer) wait(ctx context.Context, d time.Duration) error {
	if dr.sleep != nil {
		return dr.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pass lists the node's pods and evicts those to evict once. It returns
// the pods still to evict, those refused and those skipped.
func (dr *drainer) pass(ctx context.Context) (left int, refused, skipped []string, err error) {
	pods, err := listPodsOnNode(ctx, dr.client, dr.node.Name)
	if err != nil {
		return -1, []string{err.Error()}, nil, err
	}
	optedOut := map[string]bool{}
	for _, ns := range namespacesOf(pods) {
		n, err := dr.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		switch {
		case err == nil:
			optedOut[ns] = ignored(n.Annotations)
		case apierrors.IsNotFound(err):
		default:
			// Fail closed: a namespace whose opt-out cannot be read is
			// left alone this pass.
			optedOut[ns] = true
		}
	}
	for i := range pods {
		p := &pods[i]
		name := p.Namespace + "/" + p.Name
		if why := skipReason(p, dr.scope, optedOut[p.Namespace]); why != "" {
			if why != "finished" && why != "terminating" {
				skipped = append(skipped, name+" ("+why+")")
			}
			continue
		}
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
			DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}}}
		err := dr.client.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
		switch {
		case err == nil:
			dr.state.Evicted++
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Gone, or replaced by another pod of that name: not ours to evict.
		case apierrors.IsTooManyRequests(err):
			left++
			refused = append(refused, name+" (disruption budget)")
		default:
			left++
			refused = append(refused, fmt.Sprintf("%s (%v)", name, classifyKube(err)))
		}
	}
	sort.Strings(refused)
	return left, refused, skipped, nil
}

// skipReason says why drain leaves p alone, or "".
func skipReason(p *corev1.Pod, scope func(string) bool, nsOptedOut bool) string {
	switch {
	case p.DeletionTimestamp != nil:
		return "terminating"
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return "finished"
	}
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return "mirror pod"
	}
	if c := metav1.GetControllerOf(p); c != nil && c.Kind == KindDaemonSet {
		return "DaemonSet"
	}
	if scope == nil {
		if p.Namespace == systemNamespace {
			return "namespace out of scope"
		}
	} else if !scope(p.Namespace) {
		return "namespace out of scope"
	}
	if ignored(p.Annotations) || nsOptedOut {
		return "opt-out"
	}
	return ""
}

func namespacesOf(pods []corev1.Pod) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pods {
		if !seen[p.Namespace] {
			seen[p.Namespace] = true
			out = append(out, p.Namespace)
		}
	}
	return out
}

// listPodsOnNode lists the pods bound to node, in every namespace.
func listPodsOnNode(ctx context.Context, c kubernetes.Interface, node string) ([]corev1.Pod, error) {
	var out []corev1.Pod
	opts := metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(), Limit: 500}
	for {
		l, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods on Node %s: %w", node, classifyKube(err))
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// write records the drain's state on the node and, with reason, an Event.
func (dr *drainer) write(ctx context.Context, reason string) error {
	v, err := json.Marshal(dr.state)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	md := map[string]any{"annotations": map[string]string{AnnotationDrain: string(v)}}
	if dr.takeOver != "" {
		md["resourceVersion"], dr.takeOver = dr.takeOver, ""
	}
	patch, _ := json.Marshal(map[string]any{"metadata": md})
	if _, err := patchObject(wctx, dr.client, dr.node, types.MergePatchType, patch); err != nil {
		return fmt.Errorf("drain: record progress: %w", err)
	}
	if reason == "" {
		return nil
	}
	s := dr.state
	msg := fmt.Sprintf("drain %s: %d evicted, %d left", s.State, s.Evicted, s.Left)
	if len(s.Refused) > 0 {
		msg += "; refused: " + strings.Join(s.Refused, ", ")
	}
	if len(s.Skipped) > 0 {
		msg += "; skipped: " + strings.Join(s.Skipped, ", ")
	}
	msg += fmt.Sprintf("; deadline %s", s.Deadline.UTC().Format(time.RFC3339))
	d := &Decision{AlertName: s.Alert, Decision: "drain", Message: msg, at: dr.now()}
	eventType := corev1.EventTypeNormal
	if reason == EventReasonDrainIncomplete {
		eventType = corev1.EventTypeWarning
	}
	return recordEvent(wctx, dr.client, d, &Target{Object: dr.node}, eventType, reason)
}

// ResumeDrains finds the nodes whose drain by leakguard is recorded as
// running with a stale heartbeat (the replica that ran it stopped): one
// still within its deadline is resumed in the background, one past it is
// reported incomplete (annotation and Event). `serve` calls it at start.
// The namespace scope is the current policy's entry for the drain's
// alert; a drain whose alert the policy no longer covers is reported
// incomplete, not resumed.
func (e *Engine) ResumeDrains(ctx context.Context) (resumed, reported int, err error) {
	nodes, err := listNodes(ctx, e.client)
	if err != nil {
		return 0, 0, err
	}
	now := e.now()
	env := e.env(now)
	pol := e.Policy()
	for i := range nodes {
		n := &nodes[i]
		s, ok := readDrain(n.Annotations)
		if !ok || s.State != DrainRunning || now.Sub(s.Heartbeat) < drainStaleAfter {
			continue
		}
		dr := &drainer{client: e.client, node: refOf(KindNode, n), state: s, backoff: DefaultDrainBackoff, maxBackoff: DefaultDrainMaxBackoff, now: e.now, logger: e.logger, metrics: e.metrics}
		var d *Drain
		if entry := pol.Entry(s.Alert); entry != nil {
			for _, er := range entry.Remediators {
				if dd, ok := er.Remediator.(Drain); ok {
					d = &dd
					dr.scope = func(ns string) bool { return pol.namespaceAllowed(entry, ns) }
				}
			}
		}
		if d == nil || !now.Before(s.Deadline) || e.dryRun {
			dr.state.State = DrainIncomplete
			dr.takeOver = n.ResourceVersion
			dr.finish(ctx, EventReasonDrainIncomplete)
			reported++
			continue
		}
		dr.backoff, dr.maxBackoff = d.Backoff, d.MaxBackoff
		dr.state.Heartbeat = now
		dr.takeOver = n.ResourceVersion
		if err := dr.write(ctx, ""); err != nil {
			// A Conflict: another replica took it over first.
			e.logger.Warn("could not resume a drain", "node", n.Name, "error", err)
			continue
		}
		e.logger.Info("resuming an interrupted drain", "node", n.Name, "alert", s.Alert, "deadline", s.Deadline)
		start(env, dr.run)
		resumed++
	}
	return resumed, reported, nil
}
