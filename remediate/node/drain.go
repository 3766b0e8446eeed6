package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
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
	// DrainStopped: the node became schedulable again (someone
	// uncordoned it) and the drain stopped there.
	DrainStopped = "stopped"
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
	EventReasonDrainStopped    = "LeakguardDrainStopped"
)

// Reasons drain skips a pod, as its record and Event name them.
const (
	skipFinished     = "finished"
	skipTerminating  = "terminating"
	skipMirror       = "mirror pod"
	skipDaemonSet    = "DaemonSet"
	skipOutOfScope   = "namespace out of scope"
	skipOptOut       = "opt-out"
	skipUnreplicated = "no controller"
	skipEmptyDir     = "emptyDir data"
)

// Defaults of drain's arguments.
const (
	DefaultDrainTimeout    = 10 * time.Minute
	DefaultDrainBackoff    = 5 * time.Second
	DefaultDrainMaxBackoff = time.Minute
	// drainStaleAfter is how long a running drain's heartbeat may be
	// old before another replica takes it over: its own replica died.
	drainStaleAfter = 2 * time.Minute
	// drainRenewEvery is how old the heartbeat may grow during a pass
	// before the next eviction renews it: well within drainStaleAfter,
	// so that no other replica finds a drain stale while its replica
	// evicts.
	drainRenewEvery = 20 * time.Second
	// drainWriteAttempts bounds the writes of one record when others
	// change the node meanwhile (the kubelet, a label).
	drainWriteAttempts = 5
	// maxDrainRefused bounds the pods a drain's record names.
	maxDrainRefused = 10
)

// DrainInfo declares drain: node targets only, disruptive.
var DrainInfo = remediate.RemediatorInfo{Name: RemediatorDrain, Targets: []string{remediate.TargetNode}, Disruptive: true, New: NewDrain, Resumer: drainResumer{},
	Rights: func(string) []remediate.Right {
		return []remediate.Right{remediate.ResourceRight("list", "", "pods", remediate.GrantNode), remediate.ResourceRight("create", "", "pods/eviction", remediate.GrantNode)}
	},
}

// DrainArgs are drain's policy arguments.
type DrainArgs struct {
	// Timeout bounds the whole drain (default 10m); what is left then is
	// reported, never forced.
	Timeout remediate.Duration `json:"timeout"`
	// Backoff is the first wait before evicting again the pods a
	// PodDisruptionBudget refused (429), doubled each pass up to
	// MaxBackoff (defaults 5s and 1m).
	Backoff    remediate.Duration `json:"backoff"`
	MaxBackoff remediate.Duration `json:"maxBackoff"`
	// EvictUnreplicated evicts pods that no controller owns (nothing
	// recreates them); off, they are skipped, as kubectl drain does
	// without --force.
	EvictUnreplicated bool `json:"evictUnreplicated"`
	// DeleteEmptyDirData evicts pods with an emptyDir volume, whose data
	// goes with the pod; off, they are skipped, as kubectl drain does
	// without --delete-emptydir-data.
	DeleteEmptyDirData bool `json:"deleteEmptyDirData"`
}

// Drain evicts a cordoned node's pods through the Eviction API, in the
// background, under its own deadline.
type Drain struct {
	Timeout, Backoff, MaxBackoff          time.Duration
	EvictUnreplicated, DeleteEmptyDirData bool
}

var _ remediate.Remediator = Drain{}

// NewDrain builds drain from its arguments.
func NewDrain(args json.RawMessage) (remediate.Remediator, error) {
	var a DrainArgs
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	d := Drain{Timeout: orDefault(time.Duration(a.Timeout), DefaultDrainTimeout), Backoff: orDefault(time.Duration(a.Backoff), DefaultDrainBackoff), MaxBackoff: orDefault(time.Duration(a.MaxBackoff), DefaultDrainMaxBackoff),
		EvictUnreplicated: a.EvictUnreplicated, DeleteEmptyDirData: a.DeleteEmptyDirData}
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
	// Owner names the drainer that runs it (the replica's host name and
	// a random part); a record with another owner is not this drainer's
	// any more.
	Owner   string `json:"owner,omitempty"`
	Evicted int    `json:"evicted"`
	// Left is the pods still to evict; Refused names those a
	// PodDisruptionBudget (or an error) refused at the last pass.
	Left    int      `json:"left"`
	Refused []string `json:"refused,omitempty"`
	// Skipped names the pods left alone (DaemonSet, mirror, finished,
	// without a controller, with emptyDir data, out of scope, opted out)
	// with why, bounded.
	Skipped []string `json:"skipped,omitempty"`
	// Why says why a drain ended before its pods were evicted (stopped,
	// or incomplete for another reason than its deadline).
	Why string `json:"why,omitempty"`
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
func (d Drain) Plan(t *remediate.Target, f remediate.Finding, now time.Time) remediate.Plan {
	if t.Object.Kind != remediate.KindNode {
		return remediate.Plan{Hold: remediate.ReasonUnsupportedKind, Detail: fmt.Sprintf("drain acts on nodes, not on %s", t.Object)}
	}
	if s, ok := readDrain(t.Annotations); ok && s.State == DrainRunning && now.Sub(s.Heartbeat) < drainStaleAfter && now.Before(s.Deadline) {
		return remediate.Plan{Hold: ReasonDrainInProgress, Detail: fmt.Sprintf("%s: a drain for %s started at %s runs until %s (%d pods left)", t.Object, s.Alert, s.Started.UTC().Format(time.RFC3339), s.Deadline.UTC().Format(time.RFC3339), s.Left)}
	}
	scope := f.NamespaceAllowed
	alert := f.AlertName()
	skips := "DaemonSet, mirror and finished pods, pods without a controller, pods with emptyDir data, out-of-scope and opted-out pods skipped"
	switch {
	case d.EvictUnreplicated && d.DeleteEmptyDirData:
		skips = "DaemonSet, mirror and finished pods, out-of-scope and opted-out pods skipped"
	case d.EvictUnreplicated:
		skips = "DaemonSet, mirror and finished pods, pods with emptyDir data, out-of-scope and opted-out pods skipped"
	case d.DeleteEmptyDirData:
		skips = "DaemonSet, mirror and finished pods, pods without a controller, out-of-scope and opted-out pods skipped"
	}
	return remediate.Plan{
		Action: fmt.Sprintf("evict the pods of %s through the Eviction API, in the background, for at most %s (%s; PodDisruptionBudgets respected)", t.Object, d.Timeout, skips),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			n, err := env.Client.CoreV1().Nodes().Get(ctx, t.Object.Name, metav1.GetOptions{})
			if err != nil {
				return "", fmt.Errorf("drain: %w", remediate.NotFound(remediate.ClassifyKube(err)))
			}
			if !n.Spec.Unschedulable {
				// Evicting from a schedulable node would land the pods on
				// it again; cordon must come first.
				return "", &remediate.HeldError{Reason: ReasonNotCordoned, Detail: fmt.Sprintf("%s is schedulable; drain evicts only from a cordoned node (put cordon before drain)", t.Object)}
			}
			st := drainState{Alert: alert, State: DrainRunning, Started: env.Now, Deadline: env.Now.Add(d.Timeout), Heartbeat: env.Now}
			if prev, ok := readDrain(n.Annotations); ok && prev.State == DrainRunning && prev.Alert == alert && env.Now.Before(prev.Deadline) {
				// Its replica died (the heartbeat is stale): resume it,
				// under its own deadline.
				st = prev
				st.Heartbeat = env.Now
				st.Why = ""
			}
			dr := newDrainer(env.Client, env.Metadata, remediate.RefOf(remediate.KindNode, n), st, n)
			dr.configure(d, scope)
			dr.gate, dr.waits, dr.logger, dr.countDrain = drainGateOf(env.Gate), env.Waits, env.Logger, env.CountDrain
			if err := dr.write(ctx, ""); err != nil {
				var w *drainWaitError
				switch {
				case errors.Is(err, errDrainLost):
					return "", &remediate.HeldError{Reason: ReasonDrainInProgress, Detail: fmt.Sprintf("%s: another replica started or took over its drain first", t.Object)}
				case errors.As(err, &w) && w.paused:
					return "", &remediate.HeldError{Reason: remediate.ReasonPaused, Detail: w.why}
				}
				return "", err
			}
			start(env, dr.run)
			return fmt.Sprintf("drain of %s started, until %s", t.Object, st.Deadline.UTC().Format(time.RFC3339)), nil
		},
	}
}

// start runs f on env's Background, or on a goroutine of its own.
func start(env remediate.Env, f func()) {
	if env.Background != nil {
		env.Background(f)
		return
	}
	go f()
}

// drainGate is what the engine says, before each pass and each
// eviction, of a drain for an alert: whether it may evict and write
// now, and with what the current policy says.
type drainGate struct {
	// wait, when not empty, says why the drain may not evict now: the
	// pause switch, dry-run (the flag, the policy or its entry), or a
	// policy without drain for the alert.
	wait string
	// mayWrite: the drain may still write its record (to end it) while
	// it waits; false when paused or in dry-run, where nothing is
	// written.
	mayWrite bool
	// paused: the pause switch is why it waits.
	paused bool
	// drain and scope are the current policy's drain for the alert and
	// the entry's namespace scope, when wait is empty.
	drain Drain
	scope func(ns string) bool
}

// errDrainLost means the drain's record on the node is not the one this
// drainer last wrote or read: another replica took the drain over, a
// person edited or removed the record, or the node is gone. The drainer
// stops at once and writes nothing more.
var errDrainLost = errors.New("the drain is not this drainer's any more")

// errDrainUncordoned means the node is schedulable again.
var errDrainUncordoned = errors.New("the node is schedulable again")

// drainWaitError means the gate holds the drain: it waits.
type drainWaitError struct {
	why      string
	mayWrite bool
	paused   bool
}

func (e *drainWaitError) Error() string { return "drain waits: " + e.why }

// drainer is one drain in progress.
type drainer struct {
	client   kubernetes.Interface
	metadata metadata.Interface
	node     remediate.ObjectRef
	state    drainState
	// owner is this drainer's identity, written in state.Owner.
	owner string
	// mine is the record on the node as this drainer last wrote or read
	// it, rv the node's resourceVersion then: every write carries rv, and
	// a Conflict is retried only while the node still carries mine.
	mine, rv string
	// renewed is when the record was last written.
	renewed time.Time
	// scope, evictUnreplicated and deleteEmptyDirData are the policy's,
	// as the gate last said.
	scope              func(ns string) bool
	evictUnreplicated  bool
	deleteEmptyDirData bool
	backoff            time.Duration
	maxBackoff         time.Duration
	now                func() time.Time
	// sleep waits d or until ctx ends; nil uses a timer.
	sleep func(ctx context.Context, d time.Duration) error
	// gate, when set, is asked before each pass, each eviction and each
	// write (nil: nothing gates it, as in tests that drive a drainer
	// alone); waits is where a waiting drain is listed for /readyz.
	gate    func(ctx context.Context, alert string) drainGate
	waits   *remediate.Waits
	waiting string
	logger  *slog.Logger
	// countDrain counts the drain's end (Env.CountDrain); nil counts
	// nothing.
	countDrain func(result string)
}

// newDrainer returns a drainer of node with state, taking it over from
// the record on n as read (n's annotation and resourceVersion).
func newDrainer(c kubernetes.Interface, md metadata.Interface, node remediate.ObjectRef, state drainState, n *corev1.Node) *drainer {
	dr := &drainer{client: c, metadata: md, node: node, state: state, owner: drainOwner(), now: time.Now,
		backoff: DefaultDrainBackoff, maxBackoff: DefaultDrainMaxBackoff}
	dr.state.Owner = dr.owner
	if n != nil {
		dr.mine, dr.rv = n.Annotations[AnnotationDrain], n.ResourceVersion
	}
	return dr
}

// drainOwner is a new drainer's identity: the host name (the pod's name
// in a cluster) and a random part, so that two drainers of one process
// differ too.
func drainOwner() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "leakguard"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// configure takes d's arguments and the scope.
func (dr *drainer) configure(d Drain, scope func(string) bool) {
	dr.backoff, dr.maxBackoff = d.Backoff, d.MaxBackoff
	dr.evictUnreplicated, dr.deleteEmptyDirData = d.EvictUnreplicated, d.DeleteEmptyDirData
	dr.scope = scope
}

func (dr *drainer) log() *slog.Logger {
	logger := dr.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return logger.With("alert", dr.state.Alert, "target", dr.node.String())
}

// run drains under its own context, whose deadline is the drain's: the
// webhook request that started it is long answered.
func (dr *drainer) run() {
	ctx, cancel := context.WithTimeout(context.Background(), dr.state.Deadline.Sub(dr.now()))
	defer cancel()
	defer dr.waits.Clear(dr.node.Name, false)
	wait := dr.backoff
	for {
		err := dr.pass(ctx)
		var w *drainWaitError
		switch {
		case errors.As(err, &w):
			dr.setWaiting(w.why)
		case errors.Is(err, errDrainLost):
			dr.log().Info("drain stopped: its record is not this replica's any more (another replica took it over, or it was edited)", "error", err)
			return
		case errors.Is(err, errDrainUncordoned):
			dr.state.State, dr.state.Why = DrainStopped, fmt.Sprintf("%s is schedulable again (uncordoned)", dr.node)
			dr.finish(ctx, EventReasonDrainStopped)
			return
		case err == nil && dr.state.Left == 0:
			dr.setWaiting("")
			dr.state.State = DrainDone
			dr.finish(ctx, EventReasonDrainDone)
			return
		default:
			dr.setWaiting("")
		}
		if ctx.Err() == nil && dr.now().Add(wait).Before(dr.state.Deadline) {
			if w == nil {
				dr.state.Heartbeat = dr.now()
				err := dr.write(ctx, EventReasonDrainProgress)
				switch {
				case errors.Is(err, errDrainLost):
					dr.log().Info("drain stopped: its record is not this replica's any more (another replica took it over, or it was edited)", "error", err)
					return
				case errors.As(err, &w):
					dr.setWaiting(w.why)
				}
			}
			if dr.wait(ctx, wait) == nil {
				wait = min(2*wait, dr.maxBackoff)
				continue
			}
		}
		// The deadline: what is left is reported, never forced.
		dr.state.State = DrainIncomplete
		if w != nil {
			dr.state.Why = "it waited: " + w.why
		}
		dr.finish(context.Background(), EventReasonDrainIncomplete)
		return
	}
}

// setWaiting lists the drain as waiting for why in /readyz and logs it
// when why changes; "" ends the wait.
func (dr *drainer) setWaiting(why string) {
	if why == dr.waiting {
		return
	}
	dr.waiting = why
	if why == "" {
		dr.waits.Clear(dr.node.Name, false)
		dr.log().Info("drain no longer waits")
		return
	}
	dr.waits.Set(dr.node.Name, remediate.Wait{Alert: dr.state.Alert, Why: why, Deadline: dr.state.Deadline})
	dr.log().Warn("a drain is waiting: nothing is evicted or written until it may go on", "why", why, "deadline", dr.state.Deadline)
}

// finish records the drain's end: the node's annotation and an Event
// (reason), a log line and the metric. While the drain must write
// nothing (paused, dry-run), its record stays as it is, running, for a
// replica that may write to report it.
func (dr *drainer) finish(ctx context.Context, reason string) {
	s := dr.state
	logger := dr.log()
	if err := dr.write(ctx, reason); err != nil {
		var w *drainWaitError
		if errors.As(err, &w) {
			logger.Warn("a drain ended while it must write nothing; its record stays running until a replica that may write reports it", "state", s.State, "why", w.why, "evicted", s.Evicted, "left", s.Left)
			return
		}
		// Not counted: a Conflict on a take-over means another replica
		// reports it.
		logger.Warn("could not record the end of a drain", "error", err)
		return
	}
	if dr.countDrain != nil {
		dr.countDrain(s.State)
	}
	level := slog.LevelInfo
	if s.State != DrainDone && s.State != DrainStopped {
		level = slog.LevelWarn
	}
	logger.Log(ctx, level, "drain ended", "state", s.State, "evicted", s.Evicted, "left", s.Left, "refused", s.Refused, "skipped", s.Skipped, "why", s.Why, "deadline", s.Deadline)
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

// gated asks the gate and takes what the current policy says. It
// returns a *drainWaitError while the drain must wait.
func (dr *drainer) gated(ctx context.Context) error {
	if dr.gate == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		// The deadline, not a reason to wait.
		return err
	}
	g := dr.gate(ctx, dr.state.Alert)
	if g.wait != "" {
		return &drainWaitError{why: g.wait, mayWrite: g.mayWrite, paused: g.paused}
	}
	dr.configure(g.drain, g.scope)
	return nil
}

// check runs before each pass and each eviction: the gate, then the node
// as it is now: still carrying this drainer's record (else errDrainLost)
// and still cordoned (else errDrainUncordoned). It renews the heartbeat,
// under the node's resourceVersion, once it is drainRenewEvery old.
func (dr *drainer) check(ctx context.Context) error {
	if err := dr.gated(ctx); err != nil {
		return err
	}
	n, err := dr.client.CoreV1().Nodes().Get(ctx, dr.node.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s is gone", errDrainLost, dr.node)
	case err != nil:
		return fmt.Errorf("drain: read %s: %w", dr.node, remediate.ClassifyKube(err))
	}
	if err := dr.stillMine(n); err != nil {
		return err
	}
	dr.rv = n.ResourceVersion
	if !n.Spec.Unschedulable {
		return errDrainUncordoned
	}
	if now := dr.now(); now.Sub(dr.renewed) >= drainRenewEvery {
		dr.state.Heartbeat = now
		return dr.record(ctx, "")
	}
	return nil
}

// stillMine returns errDrainLost unless n carries the record this
// drainer last wrote or read.
func (dr *drainer) stillMine(n *corev1.Node) error {
	cur := n.Annotations[AnnotationDrain]
	if cur == dr.mine {
		return nil
	}
	owner := "none"
	if s, ok := readDrain(n.Annotations); ok {
		owner = fmt.Sprintf("%s, %s", s.Owner, s.State)
	}
	return fmt.Errorf("%w: %s carries another drain record (owner %s)", errDrainLost, dr.node, owner)
}

// pass lists the node's pods and evicts those to evict once, checking
// before each eviction. It sets the state's left, refused and skipped;
// the pods a stopped pass did not reach count as left.
func (dr *drainer) pass(ctx context.Context) error {
	if err := dr.check(ctx); err != nil {
		return err
	}
	pods, err := listPodsOnNode(ctx, dr.client, dr.node.Name)
	if err != nil {
		dr.state.Left, dr.state.Refused = -1, []string{err.Error()}
		return err
	}
	optedOut := map[string]bool{}
	for _, ns := range namespacesOf(pods) {
		n, err := dr.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		switch {
		case err == nil:
			optedOut[ns] = remediate.OptedOut(n.Annotations)
		case apierrors.IsNotFound(err):
		default:
			// Fail closed: a namespace whose opt-out cannot be read is
			// left alone this pass.
			optedOut[ns] = true
		}
	}
	// Each pass reads the owners again, once each.
	owners := remediate.NewOwnerReader(dr.client, dr.metadata)
	var left int
	var refused, skipped, finished []string
	// A pass that the drain's deadline cuts short says no more of the pods
	// it did not reach than the pass before it did: their refusals are
	// kept, so that the record still says why they are left.
	prev := dr.state.Refused
	cut := func(rest []corev1.Pod) {
		for _, r := range rest {
			prefix := r.Namespace + "/" + r.Name + " ("
			for _, was := range prev {
				if strings.HasPrefix(was, prefix) {
					refused = append(refused, was)
				}
			}
		}
	}
	defer func() {
		sort.Strings(refused)
		// Finished pods last: they hold nothing on the node, and the
		// record's room is for those a person may have to move.
		dr.state.Left, dr.state.Refused, dr.state.Skipped = left, firstN(refused, maxDrainRefused), firstN(append(skipped, finished...), maxDrainRefused)
	}()
	for i := range pods {
		p := &pods[i]
		name := p.Namespace + "/" + p.Name
		why, err := dr.skipReason(ctx, owners, p, optedOut[p.Namespace])
		switch {
		case err != nil:
			// Fail closed: a pod whose owners cannot be read is not
			// evicted; it is left, so that the drain does not end done.
			left++
			refused = append(refused, fmt.Sprintf("%s (owner not read: %v)", name, err))
			continue
		case why == skipTerminating:
			continue
		case why == skipFinished:
			finished = append(finished, name+" ("+why+")")
			continue
		case why != "":
			skipped = append(skipped, name+" ("+why+")")
			continue
		}
		if err := dr.check(ctx); err != nil {
			left += len(pods) - i
			cut(pods[i:])
			return err
		}
		ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace},
			DeleteOptions: &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &p.UID}}}
		err = dr.client.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
		switch {
		case err == nil:
			dr.state.Evicted++
		case apierrors.IsNotFound(err), apierrors.IsConflict(err):
			// Gone, or replaced by another pod of that name: not ours to evict.
		case apierrors.IsTooManyRequests(err):
			left++
			refused = append(refused, name+" (disruption budget)")
		case ctx.Err() != nil:
			// The deadline ended the eviction's request: what the pod
			// answered last time still stands.
			left++
			cut(pods[i : i+1])
		default:
			left++
			refused = append(refused, fmt.Sprintf("%s (%v)", name, remediate.ClassifyKube(err)))
		}
	}
	return nil
}

// skipReason says why drain leaves p alone, or "": kubectl drain's list
// (finished, mirror, DaemonSet, no controller, emptyDir), the policy's
// scope, and the opt-out on the pod, its namespace or any owner up its
// controller chain (read as target resolution reads it). An owner that
// cannot be read is an error.
func (dr *drainer) skipReason(ctx context.Context, owners *remediate.OwnerReader, p *corev1.Pod, nsOptedOut bool) (string, error) {
	switch {
	case p.DeletionTimestamp != nil:
		return skipTerminating, nil
	case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
		return skipFinished, nil
	}
	if _, mirror := p.Annotations[corev1.MirrorPodAnnotationKey]; mirror {
		return skipMirror, nil
	}
	c := metav1.GetControllerOf(p)
	if c != nil && c.Kind == remediate.KindDaemonSet {
		return skipDaemonSet, nil
	}
	if dr.scope == nil {
		if p.Namespace == remediate.SystemNamespace {
			return skipOutOfScope, nil
		}
	} else if !dr.scope(p.Namespace) {
		return skipOutOfScope, nil
	}
	if remediate.OptedOut(p.Annotations) || nsOptedOut {
		return skipOptOut, nil
	}
	if c == nil && !dr.evictUnreplicated {
		return skipUnreplicated, nil
	}
	if !dr.deleteEmptyDirData {
		for _, v := range p.Spec.Volumes {
			if v.EmptyDir != nil {
				return skipEmptyDir, nil
			}
		}
	}
	ref, optedOut, err := owners.OptedOutOwner(ctx, p)
	if err != nil {
		return "", err
	}
	if optedOut {
		return fmt.Sprintf("%s on %s", skipOptOut, ref), nil
	}
	return "", nil
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
			return nil, fmt.Errorf("list pods on Node %s: %w", node, remediate.ClassifyKube(err))
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

// write asks the gate and records the drain's state on the node and,
// with reason, an Event. A waiting drain writes only where the gate
// allows writes and the record ends the drain (never while paused or in
// dry-run).
func (dr *drainer) write(ctx context.Context, reason string) error {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remediate.EventTimeout)
	defer cancel()
	if err := dr.gated(gctx); err != nil {
		var w *drainWaitError
		ending := dr.state.State != DrainRunning
		if !errors.As(err, &w) || !w.mayWrite || !ending {
			return err
		}
	}
	return dr.record(ctx, reason)
}

// record writes the drain's state on the node under the
// resourceVersion of the record this drainer last wrote or read; on a
// Conflict it reads the node again and writes again only while the
// record is still that one (else errDrainLost). With reason it writes
// an Event too.
func (dr *drainer) record(ctx context.Context, reason string) error {
	v, err := json.Marshal(dr.state)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remediate.EventTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		md := map[string]any{"annotations": map[string]string{AnnotationDrain: string(v)}}
		if dr.rv != "" {
			md["resourceVersion"] = dr.rv
		}
		patch, _ := json.Marshal(map[string]any{"metadata": md})
		n, err := dr.client.CoreV1().Nodes().Patch(wctx, dr.node.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: remediate.FieldManager})
		if err == nil {
			dr.mine, dr.rv, dr.renewed = string(v), n.ResourceVersion, dr.now()
			break
		}
		if !apierrors.IsConflict(err) || attempt == drainWriteAttempts {
			return fmt.Errorf("drain: record progress on %s: %w", dr.node, remediate.ClassifyKube(err))
		}
		// Someone wrote the node since: the kubelet, a label, or
		// another replica's take-over. Only the last stops this one.
		cur, err := dr.client.CoreV1().Nodes().Get(wctx, dr.node.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("drain: read %s again: %w", dr.node, remediate.ClassifyKube(err))
		}
		if err := dr.stillMine(cur); err != nil {
			return err
		}
		dr.rv = cur.ResourceVersion
	}
	if reason == "" {
		return nil
	}
	s := dr.state
	msg := fmt.Sprintf("drain %s: %d evicted, %d left", s.State, s.Evicted, s.Left)
	if s.Why != "" {
		msg += "; " + s.Why
	}
	if len(s.Refused) > 0 {
		msg += "; refused: " + strings.Join(s.Refused, ", ")
	}
	if len(s.Skipped) > 0 {
		msg += "; skipped: " + strings.Join(s.Skipped, ", ")
	}
	msg += fmt.Sprintf("; deadline %s", s.Deadline.UTC().Format(time.RFC3339))
	eventType := corev1.EventTypeNormal
	if reason == EventReasonDrainIncomplete {
		eventType = corev1.EventTypeWarning
	}
	return remediate.RecordEvent(wctx, dr.client, &remediate.Target{Object: dr.node}, remediate.Event{Alert: s.Alert, Action: "drain", Message: msg, Type: eventType, Reason: reason, At: dr.now()})
}

// drainGateOf is the engine's gate for drain, as the drainer reads it:
// the current policy's Drain, asserted here, in drain's own code.
func drainGateOf(gate func(ctx context.Context, alert, name string) remediate.Gate) func(ctx context.Context, alert string) drainGate {
	if gate == nil {
		return nil
	}
	return func(ctx context.Context, alert string) drainGate {
		g := gate(ctx, alert, RemediatorDrain)
		dg := drainGate{wait: g.Wait, mayWrite: g.MayWrite, paused: g.Paused, scope: g.Scope}
		if g.Wait == "" {
			d, ok := g.Remediator.(Drain)
			if !ok {
				return drainGate{wait: fmt.Sprintf("the policy's entry for %s has no drain", alert), mayWrite: true}
			}
			dg.drain = d
		}
		return dg
	}
}

// drainResumer takes up the drains that a stopped replica left running.
type drainResumer struct{}

var _ remediate.Resumer = drainResumer{}

// Resume (drain's Resumer) finds the nodes whose drain by leakguard is recorded as
// running with a stale heartbeat (the replica that ran it stopped). It
// asks the gate first: while leakguard is paused or in dry-run it writes
// nothing and lists the drain as waiting (log and WaitingDrains), and
// looks again at its next call. Otherwise one past its deadline is
// reported incomplete (annotation and Event), one on a node schedulable
// again is reported stopped, and one within its deadline whose alert
// the current policy still drains is resumed in the background (the
// take-over is written under the node's resourceVersion, so of two
// replicas one resumes it); one whose alert the policy no longer drains
// waits until its deadline, for a reload. `serve` calls it at start and
// every minute, through Engine.Resume.
func (drainResumer) Resume(ctx context.Context, env remediate.Env) (resumed, reported int, err error) {
	nodes, err := listNodes(ctx, env.Client)
	if err != nil {
		return 0, 0, err
	}
	now := env.Now
	clock := env.Clock
	if clock == nil {
		clock = time.Now
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	gate := drainGateOf(env.Gate)
	if gate == nil {
		// Fail closed: without the engine's gate nothing says whether
		// leakguard is paused or in dry-run.
		return 0, 0, errors.New("resume drains: no gate to ask (Env.Gate)")
	}
	waiting := map[string]remediate.Wait{}
	for i := range nodes {
		n := &nodes[i]
		s, ok := readDrain(n.Annotations)
		if !ok || s.State != DrainRunning || now.Sub(s.Heartbeat) < drainStaleAfter {
			continue
		}
		dr := newDrainer(env.Client, env.Metadata, remediate.RefOf(remediate.KindNode, n), s, n)
		dr.now, dr.logger, dr.countDrain, dr.gate, dr.waits = clock, logger, env.CountDrain, gate, env.Waits
		g := gate(ctx, s.Alert)
		pastDeadline := !now.Before(s.Deadline)
		if g.wait != "" && (!g.mayWrite || !pastDeadline) {
			// Nothing is written: the record stays as it is, and the next
			// call looks again.
			waiting[n.Name] = remediate.Wait{Alert: s.Alert, Why: g.wait, Deadline: s.Deadline}
			continue
		}
		switch {
		case pastDeadline:
			dr.state.State = DrainIncomplete
			dr.state.Why = "its replica stopped and its deadline passed"
			if g.wait != "" {
				dr.state.Why += "; " + g.wait
			}
		case !n.Spec.Unschedulable:
			dr.state.State, dr.state.Why = DrainStopped, fmt.Sprintf("its replica stopped, and %s is schedulable again (uncordoned)", dr.node)
		}
		if dr.state.State != DrainRunning {
			dr.state.Heartbeat = now
			reason := EventReasonDrainIncomplete
			if dr.state.State == DrainStopped {
				reason = EventReasonDrainStopped
			}
			dr.finish(ctx, reason)
			reported++
			continue
		}
		dr.configure(g.drain, g.scope)
		dr.state.Heartbeat = now
		if err := dr.write(ctx, ""); err != nil {
			// A Conflict: another replica took it over first.
			logger.Warn("could not resume a drain", "node", n.Name, "error", err)
			continue
		}
		logger.Info("resuming an interrupted drain", "node", n.Name, "alert", s.Alert, "deadline", s.Deadline)
		start(env, dr.run)
		resumed++
	}
	for _, node := range env.Waits.Scanned(waiting) {
		w := waiting[node]
		logger.Warn("a drain is waiting: its replica stopped, and nothing is resumed, reported or written until it may go on", "node", node, "alert", w.Alert, "why", w.Why, "deadline", w.Deadline)
	}
	return resumed, reported, nil
}

// orDefault is d, or def when d is the zero value.
func orDefault[T comparable](d, def T) T {
	var zero T
	if d == zero {
		return def
	}
	return d
}
