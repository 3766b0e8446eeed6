package remediate

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BudgetLeaseName is the coordination.k8s.io Lease, in leakguard's own
// namespace, that holds the budgets every replica shares: the global
// action rate, the disruptive actions per namespace in the last hour and
// the storm guard's record. It is updated under its resourceVersion (an
// Update is refused with a Conflict when another replica wrote first), so
// that two replicas, or a restarted one, never spend a budget twice.
const BudgetLeaseName = "leakguard-budget"

// StormLeaseName is the Lease, beside the budget Lease, that keeps a
// storm pause a second time: deleting the budget Lease by hand (to reset
// the rate and the hour's counts) does not lift a pause that runs. A
// pause holds while either Lease records it; lifting one early takes
// deleting both.
const StormLeaseName = "leakguard-storm"

// Annotations of the budget Lease and of leakguard's namespace.
const (
	annotationBudgetRate        = "leakguard.io/rate"
	annotationBudgetDisruptions = "leakguard.io/disruptions"
	annotationBudgetStorm       = "leakguard.io/storm"
	// AnnotationPause set to "true" on leakguard's namespace stops every
	// disruptive action at once (held with reason paused), without a
	// redeploy; annotating goes on.
	AnnotationPause = "leakguard.io/pause"
)

// budgetAttempts bounds the Lease updates of one take when other replicas
// keep writing it.
const budgetAttempts = 5

// budgetTimeout bounds a give-back, which outlives the request.
const budgetTimeout = 10 * time.Second

// budgetState is what the Lease holds.
type budgetState struct {
	Rate rateState `json:"-"`
	// Disruptions maps a budget bucket (a namespace, or the nodes' keys
	// of disruptionBuckets) to the times of its disruptive actions within
	// the last hour.
	Disruptions map[string][]time.Time `json:"-"`
	Storm       stormState             `json:"-"`
}

// rateState is the rate bucket: Tokens at At, a time on the API server's
// clock (serverClock), never on a replica's own.
type rateState struct {
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
}

type stormState struct {
	// Targets maps each target that needed a disruptive action to when
	// it last did, within the storm window.
	Targets map[string]time.Time `json:"targets,omitempty"`
	// PausedUntil is when the storm pause ends; Why says what caused it.
	PausedUntil time.Time `json:"pausedUntil,omitzero"`
	Why         string    `json:"why,omitempty"`
}

// tokensAt returns the bucket's tokens at now: refilled at perMinute since
// the last take, up to burst. A bucket never written is full; a time in
// the future (another replica's clock runs ahead) refills nothing.
func (r rateState) tokensAt(now time.Time, perMinute float64, burst int) float64 {
	if r.At.IsZero() {
		return float64(burst)
	}
	elapsed := now.Sub(r.At).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	return math.Min(float64(burst), r.Tokens+elapsed*perMinute/60)
}

// take returns the bucket after one token is taken at now, or false when
// it has none. The bucket's time never goes back: a take at a time before
// At (an estimate of the server's clock a little behind another
// replica's) refills nothing and leaves At where it is.
func (r rateState) take(now time.Time, perMinute float64, burst int) (rateState, bool) {
	tokens := r.tokensAt(now, perMinute, burst)
	if tokens < 1 {
		return r, false
	}
	return rateState{Tokens: tokens - 1, At: later(r.At, now)}, true
}

// giveBack returns the bucket with one token more at now, up to burst.
func (r rateState) giveBack(now time.Time, perMinute float64, burst int) rateState {
	return rateState{Tokens: math.Min(float64(burst), r.tokensAt(now, perMinute, burst)+1), At: later(r.At, now)}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// serverClock is the one clock every replica judges the rate bucket on:
// the API server's. A replica's wall clock must not decide the refill:
// one running 30 s ahead would find the bucket refilled by 30 s at every
// take (20 actions at one instant against a burst of 5), and one behind
// would find nothing refilled until its clock caught up. The API server
// stamps every answer with its time (the Date header); the clock learns
// its offset from the engine's own clock from a GET /version, again
// every minute, and reads the engine's clock plus that offset. The Date
// has a resolution of a second, so the replicas' readings of one instant
// differ by about a second and a round trip, not by their skew; and the
// bucket's time never goes back (rateState.take), so the replica whose
// reading is ahead refills at most that much.
type serverClock struct {
	// probe reads the server's time; nil when the client has no HTTP
	// client to ask (a fake clientset), and the engine's clock is used.
	probe func(context.Context) (time.Time, error)
	local func() time.Time

	mu     sync.Mutex
	offset time.Duration
	probed time.Time // on the local clock; zero before the first probe
}

// serverClockRefresh is how often the offset is learned again.
const serverClockRefresh = time.Minute

// now returns the server's time. An error is transient: a budget that
// cannot be judged acts on nothing.
func (c *serverClock) now(ctx context.Context) (time.Time, error) {
	local := c.local()
	if c.probe == nil {
		return local, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.probed.IsZero() || local.Sub(c.probed) >= serverClockRefresh || local.Before(c.probed) {
		server, err := c.probe(ctx)
		if err != nil {
			return time.Time{}, MarkTransient(fmt.Errorf("read the API server's clock: %w", err))
		}
		local = c.local()
		c.offset, c.probed = server.Sub(local), local
	}
	return local.Add(c.offset), nil
}

// apiserverTime returns a probe that reads the Date the API server sets
// on its answer to GET /version (which every authenticated user may
// read), through client's own HTTP client; nil when client has none.
func apiserverTime(client kubernetes.Interface) func(context.Context) (time.Time, error) {
	if client == nil || client.Discovery() == nil {
		return nil
	}
	rc, ok := client.Discovery().RESTClient().(*rest.RESTClient)
	if !ok || rc == nil || rc.Client == nil {
		return nil
	}
	return func(ctx context.Context) (time.Time, error) {
		ctx, cancel := context.WithTimeout(ctx, budgetTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.Get().AbsPath("/version").URL().String(), nil)
		if err != nil {
			return time.Time{}, err
		}
		resp, err := rc.Client.Do(req)
		if err != nil {
			return time.Time{}, err
		}
		defer resp.Body.Close()
		// Any answer carries the server's time, a refusal too.
		t, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			return time.Time{}, fmt.Errorf("the API server's answer has no usable Date header %q: %w", resp.Header.Get("Date"), err)
		}
		return t, nil
	}
}

// budgetStore reads and updates the budget Lease.
type budgetStore struct {
	client    kubernetes.Interface
	namespace string
	// clock is the API server's clock, for the rate bucket.
	clock *serverClock
}

func (b budgetStore) ref() string { return "Lease " + b.namespace + "/" + BudgetLeaseName }

// read returns the Lease's budget state; a Lease not yet created is an
// empty state. An error is transient when the API could not answer: a
// budget that cannot be read stops every action.
func (b budgetStore) read(ctx context.Context) (*coordinationv1.Lease, budgetState, error) {
	lease, err := b.client.CoordinationV1().Leases(b.namespace).Get(ctx, BudgetLeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, budgetState{Disruptions: map[string][]time.Time{}}, nil
	}
	if err != nil {
		return nil, budgetState{}, MarkTransient(fmt.Errorf("read budget %s: %w", b.ref(), err))
	}
	st, err := decodeBudget(lease.Annotations)
	if err != nil {
		// Fail closed: a record that does not parse (edited by hand, say)
		// is not a budget that allows. A person fixes or deletes the
		// Lease; the error names it.
		return nil, budgetState{}, fmt.Errorf("budget %s does not parse (fix or delete it): %w", b.ref(), err)
	}
	return lease, st, nil
}

func decodeBudget(ann map[string]string) (budgetState, error) {
	st := budgetState{Disruptions: map[string][]time.Time{}}
	if v := ann[annotationBudgetRate]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Rate); err != nil {
			return st, err
		}
	}
	if v := ann[annotationBudgetDisruptions]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Disruptions); err != nil {
			return st, err
		}
	}
	if v := ann[annotationBudgetStorm]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Storm); err != nil {
			return st, err
		}
	}
	return st, nil
}

func encodeBudget(st budgetState) (map[string]string, error) {
	rate, err := json.Marshal(st.Rate)
	if err != nil {
		return nil, err
	}
	dis, err := json.Marshal(st.Disruptions)
	if err != nil {
		return nil, err
	}
	storm, err := json.Marshal(st.Storm)
	if err != nil {
		return nil, err
	}
	return map[string]string{annotationBudgetRate: string(rate), annotationBudgetDisruptions: string(dis), annotationBudgetStorm: string(storm)}, nil
}

// update reads the state, lets change modify it and writes it back under
// the Lease's resourceVersion, retrying on a Conflict. change returns
// false to write nothing. Errors are transient when a retry may help.
func (b budgetStore) update(ctx context.Context, now time.Time, change func(*budgetState) bool) error {
	for attempt := 1; ; attempt++ {
		lease, st, err := b.read(ctx)
		if err != nil {
			return err
		}
		if !change(&st) {
			return nil
		}
		ann, err := encodeBudget(st)
		if err != nil {
			return fmt.Errorf("encode budget: %w", err)
		}
		holder := "leakguard"
		renew := metav1.NewMicroTime(now)
		leases := b.client.CoordinationV1().Leases(b.namespace)
		if lease == nil {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: BudgetLeaseName, Namespace: b.namespace, Annotations: ann,
					Labels: map[string]string{"app.kubernetes.io/managed-by": EventComponent}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &renew},
			}, metav1.CreateOptions{FieldManager: FieldManager})
		} else {
			lease = lease.DeepCopy()
			if lease.Annotations == nil {
				lease.Annotations = map[string]string{}
			}
			for k, v := range ann {
				lease.Annotations[k] = v
			}
			lease.Spec.HolderIdentity, lease.Spec.RenewTime = &holder, &renew
			// Update carries the resourceVersion read: a Conflict means
			// another replica wrote first, and the take is redone on
			// what it wrote.
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
		}
		if err == nil {
			return nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return TransientOr(fmt.Errorf("update budget %s: %w", b.ref(), ClassifyKube(err)))
		}
		if attempt == budgetAttempts {
			return MarkTransient(fmt.Errorf("update budget %s: changed %d times while taking: %w", b.ref(), attempt, err))
		}
	}
}

// paused reports whether leakguard's namespace carries the pause switch.
// A namespace that cannot be read is transient: nothing disruptive acts.
func (b budgetStore) paused(ctx context.Context) (bool, error) {
	ns, err := b.client.CoreV1().Namespaces().Get(ctx, b.namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// No namespace, no switch: leakguard runs outside its namespace
		// (a laptop, a test).
		return false, nil
	}
	if err != nil {
		return false, MarkTransient(fmt.Errorf("read the pause switch on Namespace %s: %w", b.namespace, err))
	}
	return strings.EqualFold(strings.TrimSpace(ns.Annotations[AnnotationPause]), "true"), nil
}

// prune drops what lies outside the windows at now.
func (st *budgetState) prune(now time.Time, stormWindow time.Duration) {
	for ns, times := range st.Disruptions {
		kept := times[:0]
		for _, t := range times {
			if now.Sub(t) < time.Hour {
				kept = append(kept, t)
			}
		}
		if len(kept) == 0 {
			delete(st.Disruptions, ns)
		} else {
			st.Disruptions[ns] = kept
		}
	}
	for k, t := range st.Storm.Targets {
		if now.Sub(t) >= stormWindow {
			delete(st.Storm.Targets, k)
		}
	}
}

// stormTargets lists the storm record's targets, sorted, for the reason
// a storm pause gives.
func (st *budgetState) stormTargets() []string {
	var out []string
	for k := range st.Storm.Targets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// rateBudget is the global action rate: a token bucket kept in the
// budget Lease, one token per alert that acts, whatever the number of
// remediators it runs and the number of replicas.
type rateBudget struct{ store budgetStore }

func (rateBudget) Name() string      { return "rate" }
func (rateBudget) Reason() string    { return ReasonRateLimited }
func (rateBudget) Applies(*run) bool { return true }

func (g rateBudget) Take(ctx context.Context, r *run) (bool, string, func(), error) {
	p := r.st.policy
	why := fmt.Sprintf("more than %g actions per minute (burst %d), counted across replicas in %s", p.RatePerMinute, p.RateBurst, g.store.ref())
	// The bucket is judged on the API server's clock, not the alert's
	// time on this replica's (serverClock says why).
	now, err := g.store.clock.now(ctx)
	if err != nil {
		return false, "", nil, err
	}
	if r.dryRun {
		_, st, err := g.store.read(ctx)
		if err != nil {
			return false, "", nil, err
		}
		if st.Rate.tokensAt(now, p.RatePerMinute, p.RateBurst) < float64(r.ledger.actions+1) {
			return false, why, nil, nil
		}
		r.ledger.actions++
		return true, "", func() { r.ledger.actions-- }, nil
	}
	took := false
	err = g.store.update(ctx, r.d.at, func(st *budgetState) bool {
		st.Rate, took = st.Rate.take(now, p.RatePerMinute, p.RateBurst)
		return took
	})
	if err != nil || !took {
		return false, why, nil, err
	}
	release := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetTimeout)
		defer cancel()
		err := g.store.update(ctx, r.d.at, func(st *budgetState) bool {
			st.Rate = st.Rate.giveBack(now, p.RatePerMinute, p.RateBurst)
			return true
		})
		if err != nil {
			r.log().Warn("could not give a rate token back", "error", err)
		}
	}
	return true, "", release, nil
}

// disruptionBudget holds disruptive remediators by two budgets kept in
// the Lease. The storm guard: when more than Storm.Targets targets need
// a disruptive action within Storm.Window, every disruptive remediator
// pauses for Storm.Pause (many leaks at once are more likely a bad
// rollout, a node problem or a wrong rule than many leaks), and the
// Lease records why, and so does the storm Lease; annotating goes on.
// The hourly caps: at most PerNamespacePerHour disruptive actions per
// namespace in any hour, and for nodes, which have none, a bucket of
// their own (disruptionBuckets). Non-disruptive remediators pass
// untouched.
type disruptionBudget struct{ store budgetStore }

func (disruptionBudget) Name() string   { return "disruption" }
func (disruptionBudget) Reason() string { return ReasonStorm }

// Applies reports whether a disruptive remediator is still to act.
func (disruptionBudget) Applies(r *run) bool {
	for _, s := range r.steps {
		if s.held == "" && s.rem.Disruptive {
			return true
		}
	}
	return false
}

// disruptionBucket is one hourly cap a disruptive action counts against.
type disruptionBucket struct {
	// key is the bucket's key in budgetState.Disruptions: a namespace,
	// or for nodes a key no namespace can have (a colon).
	key    string
	limit  int
	reason string
	// what names the bucket in a held remediator's detail.
	what string
}

// Keys of the nodes' buckets in budgetState.Disruptions: a namespace
// name has no colon. legacyNodesKey is where node actions were counted
// before nodes had a bucket of their own; they count towards the
// cluster's node budget until they leave the hour.
const (
	nodesKey       = "node:*"
	nodePoolPrefix = "node-pool:"
	legacyNodesKey = ""
)

// disruptionBuckets are the caps a disruptive action on t counts
// against: its namespace's, or for a node (a target without a namespace)
// the cluster's node budget and, when the policy names a pool label, its
// pool's (the nodes without the label make one pool).
func (p *Policy) disruptionBuckets(t *Target) []disruptionBucket {
	if ns := t.Object.Namespace; ns != "" {
		return []disruptionBucket{{key: ns, limit: p.DisruptivePerNamespacePerHour, reason: ReasonNamespaceBudget, what: fmt.Sprintf("in namespace %q", ns)}}
	}
	out := []disruptionBucket{{key: nodesKey, limit: p.DisruptiveNodesPerHour, reason: ReasonNodeBudget, what: "on nodes"}}
	if p.NodePoolLabel != "" {
		pool := ""
		if t.obj != nil {
			pool = t.obj.GetLabels()[p.NodePoolLabel]
		}
		what := fmt.Sprintf("in the node pool %s=%s", p.NodePoolLabel, pool)
		if pool == "" {
			what = fmt.Sprintf("on the nodes without %s", p.NodePoolLabel)
		}
		out = append(out, disruptionBucket{key: nodePoolPrefix + pool, limit: p.DisruptivePerNodePoolPerHour, reason: ReasonNodeBudget, what: what})
	}
	return out
}

// spent counts the disruptive actions of bucket b in st.
func (st *budgetState) spent(b disruptionBucket) int {
	n := len(st.Disruptions[b.key])
	if b.key == nodesKey {
		n += len(st.Disruptions[legacyNodesKey])
	}
	return n
}

func (g disruptionBudget) Take(ctx context.Context, r *run) (bool, string, func(), error) {
	var live []*step
	for _, s := range r.steps {
		if s.held == "" && s.rem.Disruptive {
			live = append(live, s)
		}
	}
	if len(live) == 0 {
		return true, "", nil, nil
	}
	p, now := r.st.policy, r.d.at
	key := r.t.Object.String()
	buckets := p.disruptionBuckets(r.t)
	var reason, why string
	started := false // this take started a storm pause
	paused, err := g.store.stormPause(ctx)
	if err != nil {
		return false, "", nil, err
	}
	judge := func(st *budgetState, extra map[string]int, extraTargets map[string]bool) (write bool) {
		reason, why, started = "", "", false
		st.prune(now, p.StormWindow)
		if st.Storm.Targets == nil {
			st.Storm.Targets = map[string]time.Time{}
		}
		if now.Before(paused.PausedUntil) && !now.Before(st.Storm.PausedUntil) {
			// The budget Lease lost the pause (deleted by hand, say);
			// the storm Lease keeps it.
			st.Storm.PausedUntil, st.Storm.Why = paused.PausedUntil, paused.Why
		}
		if now.Before(st.Storm.PausedUntil) {
			reason, why = ReasonStorm, fmt.Sprintf("disruptive remediators paused until %s: %s", st.Storm.PausedUntil.UTC().Format(time.RFC3339), st.Storm.Why)
			return false
		}
		st.Storm.Targets[key] = now
		for k := range extraTargets {
			st.Storm.Targets[k] = now
		}
		if n := len(st.Storm.Targets); n > p.StormTargets {
			targets := st.stormTargets()
			if len(targets) > 5 {
				targets = append(targets[:5], "…")
			}
			st.Storm.PausedUntil = now.Add(p.StormPause)
			st.Storm.Why = fmt.Sprintf("%d targets needed a disruptive action within %s (more than %d): %s", n, p.StormWindow, p.StormTargets, strings.Join(targets, ", "))
			reason, why, started = ReasonStorm, "storm: "+st.Storm.Why+"; disruptive remediators paused for "+p.StormPause.String(), true
			r.log().Warn("storm guard: pausing every disruptive remediator", "until", st.Storm.PausedUntil, "why", st.Storm.Why)
			return true
		}
		for _, b := range buckets {
			if n := st.spent(b) + extra[b.key]; n >= b.limit {
				reason, why = b.reason, fmt.Sprintf("%d disruptive actions %s within the last hour, the most allowed", n, b.what)
				return true
			}
		}
		for _, b := range buckets {
			st.Disruptions[b.key] = append(st.Disruptions[b.key], now)
		}
		return true
	}
	var release func()
	if r.dryRun {
		_, st, err := g.store.read(ctx)
		if err != nil {
			return false, "", nil, err
		}
		judge(&st, r.ledger.disruptions, r.ledger.stormTargets)
		r.ledger.stormTargets[key] = true
		if reason == "" {
			for _, b := range buckets {
				r.ledger.disruptions[b.key]++
			}
			release = func() {
				for _, b := range buckets {
					r.ledger.disruptions[b.key]--
				}
			}
		}
	} else {
		var storm stormState
		err := g.store.update(ctx, now, func(st *budgetState) bool {
			write := judge(st, nil, nil)
			storm = st.Storm
			return write
		})
		if err != nil {
			return false, "", nil, err
		}
		if started {
			// This take started the pause: the storm Lease keeps it too.
			if err := g.store.recordStorm(ctx, now, storm); err != nil {
				// The budget Lease holds the pause all the same.
				r.log().Warn("could not record the storm pause in its own Lease", "lease", StormLeaseName, "error", err)
			}
		}
		if reason == "" {
			release = func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetTimeout)
				defer cancel()
				err := g.store.update(ctx, now, func(st *budgetState) bool {
					changed := false
					for _, b := range buckets {
						times := st.Disruptions[b.key]
						for i := len(times) - 1; i >= 0; i-- {
							if times[i].Equal(now) {
								st.Disruptions[b.key] = append(times[:i:i], times[i+1:]...)
								changed = true
								break
							}
						}
					}
					return changed
				})
				if err != nil {
					r.log().Warn("could not give a disruption budget back", "target", key, "error", err)
				}
			}
		}
	}
	if reason != "" {
		for _, s := range live {
			s.hold(reason, why)
		}
	}
	return true, "", release, nil
}

// stormPause reads the storm pause the storm Lease records; a Lease not
// there records none. A Lease that cannot be read is transient, and one
// that does not parse fails closed, as the budget Lease does.
func (b budgetStore) stormPause(ctx context.Context) (stormState, error) {
	lease, err := b.client.CoordinationV1().Leases(b.namespace).Get(ctx, StormLeaseName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return stormState{}, nil
	}
	if err != nil {
		return stormState{}, MarkTransient(fmt.Errorf("read the storm record Lease %s/%s: %w", b.namespace, StormLeaseName, err))
	}
	var st stormState
	if v := lease.Annotations[annotationBudgetStorm]; v != "" {
		if err := json.Unmarshal([]byte(v), &st); err != nil {
			return stormState{}, fmt.Errorf("storm record Lease %s/%s does not parse (fix or delete it): %w", b.namespace, StormLeaseName, err)
		}
	}
	return st, nil
}

// recordStorm writes the storm pause that began at now to the storm
// Lease: the pause's end and why in its annotation, and as a Lease held
// from now for the pause (kubectl get lease shows it).
func (b budgetStore) recordStorm(ctx context.Context, now time.Time, st stormState) error {
	rec, err := json.Marshal(stormState{PausedUntil: st.PausedUntil, Why: st.Why})
	if err != nil {
		return fmt.Errorf("encode the storm record: %w", err)
	}
	holder, at := "leakguard storm guard", metav1.NewMicroTime(now)
	secs := int32(math.Ceil(st.PausedUntil.Sub(now).Seconds()))
	spec := coordinationv1.LeaseSpec{HolderIdentity: &holder, AcquireTime: &at, RenewTime: &at, LeaseDurationSeconds: &secs}
	leases := b.client.CoordinationV1().Leases(b.namespace)
	for attempt := 1; ; attempt++ {
		lease, err := leases.Get(ctx, StormLeaseName, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: StormLeaseName, Namespace: b.namespace,
					Annotations: map[string]string{annotationBudgetStorm: string(rec)},
					Labels:      map[string]string{"app.kubernetes.io/managed-by": EventComponent}},
				Spec: spec,
			}, metav1.CreateOptions{FieldManager: FieldManager})
		case err == nil:
			lease = lease.DeepCopy()
			if lease.Annotations == nil {
				lease.Annotations = map[string]string{}
			}
			lease.Annotations[annotationBudgetStorm] = string(rec)
			lease.Spec = spec
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: FieldManager})
		}
		if err == nil || (!apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err)) || attempt == budgetAttempts {
			if err != nil {
				return fmt.Errorf("write the storm record Lease %s/%s: %w", b.namespace, StormLeaseName, err)
			}
			return nil
		}
	}
}

// pauseGuard holds every disruptive remediator while leakguard's
// namespace carries leakguard.io/pause: "true".
type pauseGuard struct{ store budgetStore }

func (pauseGuard) Name() string         { return "pause" }
func (pauseGuard) Reason() string       { return ReasonPaused }
func (pauseGuard) DisruptiveOnly() bool { return true }

func (g pauseGuard) Allow(ctx context.Context, _ *run, _ *step) (bool, string, error) {
	paused, err := g.store.paused(ctx)
	if err != nil {
		return false, "", err
	}
	if paused {
		return false, fmt.Sprintf("Namespace %s has %s: \"true\"", g.store.namespace, AnnotationPause), nil
	}
	return true, "", nil
}
