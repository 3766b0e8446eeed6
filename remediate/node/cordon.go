package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/leakguard/leakguard/remediate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// RemediatorCordon is the name of the cordon remediator.
const RemediatorCordon = "cordon"

// Names cordon reads and writes.
const (
	// AnnotationCordonedBy on a node says that leakguard cordoned it, for
	// which alert, on what measurement and when (JSON, cordonMark). Only
	// a node that carries it is ever uncordoned by leakguard.
	AnnotationCordonedBy = "leakguard.io/cordoned-by"
	// TaintCgroupLeak is the NoSchedule taint cordon adds when its taint
	// argument is set.
	TaintCgroupLeak = "leakguard.io/cgroup-leak"
	// CordonLeaseName is the Lease, in leakguard's namespace, through
	// which the replicas serialize their cordon decisions: each decision
	// writes a reservation of its node under the Lease's resourceVersion
	// before it patches the node, and every decision counts the
	// reservations still fresh with the nodes the cluster shows
	// unschedulable, so two replicas cannot both take the last slot.
	CordonLeaseName = "leakguard-cordon"
	// annotationCordonReservations on the Lease maps a node to the time
	// of its reservation.
	annotationCordonReservations = "leakguard.io/cordons"
	// labelControlPlane and labelMaster mark control-plane nodes.
	labelControlPlane = "node-role.kubernetes.io/control-plane"
	labelMaster       = "node-role.kubernetes.io/master"
)

// Reasons of cordon's own guards, each a budget or a rule that refuses.
const (
	// ReasonAlreadyUnschedulable: the node is unschedulable already (by
	// leakguard or anyone else); nothing to do.
	ReasonAlreadyUnschedulable = "already-unschedulable"
	// ReasonMaxUnschedulable: as many nodes as maxUnschedulable are
	// unschedulable already, whoever cordoned them.
	ReasonMaxUnschedulable = "max-unschedulable"
	// ReasonMaxUnschedulableShare: one more would make more than
	// maxUnschedulablePercent of the cluster's nodes unschedulable.
	ReasonMaxUnschedulableShare = "max-unschedulable-share"
	// ReasonLastInPool: the node is the last schedulable one of its pool.
	ReasonLastInPool = "last-in-pool"
	// ReasonControlPlane: the node is a control-plane node and the
	// policy does not allow cordoning one.
	ReasonControlPlane = "control-plane"
	// ReasonUncordonedByPerson: leakguard cordoned this node for this
	// alert within the cooldown and someone uncordoned it; that person's
	// decision stands.
	ReasonUncordonedByPerson = "uncordoned-by-person"
	// ReasonNotOurs: the resolved alert's node is not leakguard's cordon
	// as it left it (another alert's, touched since, or a cordon that
	// leakguard's write did not make); it stays as it is.
	ReasonNotOurs = "not-leakguards-cordon"
)

// Defaults of cordon's arguments.
const (
	DefaultMaxUnschedulable        = 1
	DefaultMaxUnschedulablePercent = 10
	// cordonReservationTTL is how long a reservation counts: long enough
	// for the node patch that follows it, short enough that a replica
	// that died between the two blocks nobody for long.
	cordonReservationTTL = 2 * time.Minute
	cordonAttempts       = 5
)

// poolLabels are the node-pool labels of the common providers, tried in
// order when the policy names none.
var poolLabels = []string{"cloud.google.com/gke-nodepool", "eks.amazonaws.com/nodegroup", "kubernetes.azure.com/agentpool", "karpenter.sh/nodepool", "node.kubernetes.io/pool"}

// CordonInfo declares cordon: node targets only, disruptive.
var CordonInfo = remediate.RemediatorInfo{Name: RemediatorCordon, Targets: []string{remediate.TargetNode}, Disruptive: true, New: NewCordon,
	// cordon (and uncordonOnResolve) changes the node's spec: the
	// admission policy asks for cordon on the node.
	Rights: func(string) []remediate.Right {
		return []remediate.Right{remediate.ResourceRight("cordon", "", "nodes", remediate.GrantNode)}
	},
}

// CordonArgs are cordon's policy arguments.
type CordonArgs struct {
	// MaxUnschedulable is the most nodes unschedulable at once, for any
	// reason (default 1).
	MaxUnschedulable *int `json:"maxUnschedulable"`
	// MaxUnschedulablePercent is the most of the cluster's nodes
	// unschedulable at once, in percent, rounded down (default 10).
	MaxUnschedulablePercent *float64 `json:"maxUnschedulablePercent"`
	// PoolLabel is the node label that names a node's pool; empty tries
	// the providers' labels (poolLabels), and nodes with none are one
	// pool.
	PoolLabel string `json:"poolLabel"`
	// AllowControlPlane allows cordoning a control-plane node.
	AllowControlPlane bool `json:"allowControlPlane"`
	// Taint adds the leakguard.io/cgroup-leak:NoSchedule taint too.
	Taint bool `json:"taint"`
	// UncordonOnResolve uncordons, when the alert resolves, a node that
	// leakguard cordoned for it and nobody touched since (default off).
	UncordonOnResolve bool `json:"uncordonOnResolve"`
}

// Cordon marks a node unschedulable, under budgets counted from the
// cluster at decision time and serialized through a Lease.
type Cordon struct {
	MaxUnschedulable        int
	MaxUnschedulablePercent float64
	PoolLabel               string
	AllowControlPlane       bool
	Taint                   bool
	UncordonOnResolve       bool
}

var (
	_ remediate.Remediator = Cordon{}
	_ remediate.Undoer     = Cordon{}
)

// NewCordon builds cordon from its arguments.
func NewCordon(args json.RawMessage) (remediate.Remediator, error) {
	var a CordonArgs
	if err := remediate.DecodeArgs(args, &a); err != nil {
		return nil, err
	}
	c := Cordon{MaxUnschedulable: DefaultMaxUnschedulable, MaxUnschedulablePercent: DefaultMaxUnschedulablePercent,
		PoolLabel: a.PoolLabel, AllowControlPlane: a.AllowControlPlane, Taint: a.Taint, UncordonOnResolve: a.UncordonOnResolve}
	var errs []error
	if a.MaxUnschedulable != nil {
		if *a.MaxUnschedulable < 1 {
			errs = append(errs, fmt.Errorf("maxUnschedulable: must be at least 1, got %d (remove cordon to never cordon)", *a.MaxUnschedulable))
		}
		c.MaxUnschedulable = *a.MaxUnschedulable
	}
	if a.MaxUnschedulablePercent != nil {
		if p := *a.MaxUnschedulablePercent; p <= 0 || p > 100 || math.IsNaN(p) {
			errs = append(errs, fmt.Errorf("maxUnschedulablePercent: must be above 0 and at most 100, got %g", p))
		}
		c.MaxUnschedulablePercent = *a.MaxUnschedulablePercent
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// cordonMark is the value of AnnotationCordonedBy.
type cordonMark struct {
	Alert string    `json:"alert"`
	Value string    `json:"value,omitempty"`
	At    time.Time `json:"at"`
	Taint bool      `json:"taint,omitempty"`
}

func readMark(ann map[string]string) (cordonMark, bool) {
	var m cordonMark
	v, ok := ann[AnnotationCordonedBy]
	if !ok || json.Unmarshal([]byte(v), &m) != nil || m.Alert == "" {
		return cordonMark{}, false
	}
	return m, true
}

func isControlPlane(n *corev1.Node) bool {
	_, cp := n.Labels[labelControlPlane]
	_, m := n.Labels[labelMaster]
	return cp || m
}

// unschedulable reports whether the scheduler places no new pod on n:
// cordoned, or tainted NoSchedule by the node lifecycle controller (not
// ready, unreachable) or by leakguard. Other NoSchedule taints dedicate
// a node to some pods, and do not count.
func unschedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return true
	}
	for _, t := range n.Spec.Taints {
		switch t.Key {
		case corev1.TaintNodeUnschedulable, corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable, TaintCgroupLeak:
			if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
				return true
			}
		}
	}
	return false
}

func (c Cordon) pool(n *corev1.Node) string {
	if c.PoolLabel != "" {
		return c.PoolLabel + "=" + n.Labels[c.PoolLabel]
	}
	for _, l := range poolLabels {
		if v, ok := n.Labels[l]; ok {
			return l + "=" + v
		}
	}
	return "(no pool label)"
}

// Plan judges the node as resolved; the budgets that count the cluster
// are judged in Apply, under the Lease.
func (c Cordon) Plan(t *remediate.Target, f remediate.Finding, now time.Time) remediate.Plan {
	n, ok := t.Resolved().(*corev1.Node)
	if !ok {
		return remediate.Plan{Hold: remediate.ReasonUnsupportedKind, Detail: fmt.Sprintf("cordon acts on nodes, not on %s", t.Object)}
	}
	if unschedulable(n) {
		who := "someone else"
		if m, ok := readMark(n.Annotations); ok {
			who = "leakguard, for " + m.Alert + " at " + m.At.UTC().Format(time.RFC3339)
		}
		return remediate.Plan{Hold: ReasonAlreadyUnschedulable, Detail: fmt.Sprintf("%s is unschedulable already (cordoned by %s)", t.Object, who)}
	}
	if m, ok := readMark(n.Annotations); ok && m.Alert == f.AlertName() && now.Sub(m.At) < f.Cooldown {
		// Cordoned by leakguard, now schedulable, mark still there: a
		// person uncordoned it (leakguard's own uncordon removes the mark).
		return remediate.Plan{Hold: ReasonUncordonedByPerson, Warn: true, Detail: fmt.Sprintf("leakguard cordoned %s for %s at %s and someone uncordoned it; not again within the cooldown %s", t.Object, m.Alert, m.At.UTC().Format(time.RFC3339), f.Cooldown)}
	}
	if isControlPlane(n) && !c.AllowControlPlane {
		return remediate.Plan{Hold: ReasonControlPlane, Detail: fmt.Sprintf("%s is a control-plane node; set allowControlPlane to cordon one", t.Object)}
	}
	mark := cordonMark{Alert: f.AlertName(), Value: f.Check.Summary, At: now.UTC().Truncate(time.Second), Taint: c.Taint}
	action := fmt.Sprintf("patch %s spec.unschedulable=true", t.Object)
	if c.Taint {
		action += fmt.Sprintf(", taint %s:NoSchedule", TaintCgroupLeak)
	}
	return remediate.Plan{
		Action: action + fmt.Sprintf(" (at most %d and %g %% of the nodes unschedulable, not the last of its pool)", c.MaxUnschedulable, c.MaxUnschedulablePercent),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			return c.apply(ctx, env, t, mark)
		},
	}
}

// reservations maps a node to when a replica reserved its cordon.
type reservations map[string]time.Time

func (c Cordon) apply(ctx context.Context, env remediate.Env, t *remediate.Target, mark cordonMark) (string, error) {
	leases := env.Client.CoordinationV1().Leases(env.Namespace)
	for attempt := 1; ; attempt++ {
		lease, err := leases.Get(ctx, CordonLeaseName, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return "", remediate.MarkTransient(fmt.Errorf("cordon %s: read Lease %s/%s: %w", t.Object, env.Namespace, CordonLeaseName, err))
		}
		res := reservations{}
		if err == nil {
			if v := lease.Annotations[annotationCordonReservations]; v != "" {
				// A record that does not parse fails closed: no slot is
				// known to be free.
				if err := json.Unmarshal([]byte(v), &res); err != nil {
					return "", fmt.Errorf("cordon: Lease %s/%s does not parse (fix or delete it): %w", env.Namespace, CordonLeaseName, err)
				}
			}
		} else {
			lease = nil
		}
		for n, at := range res {
			if env.Now.Sub(at) >= cordonReservationTTL || at.After(env.Now.Add(cordonReservationTTL)) {
				delete(res, n)
			}
		}
		nodes, err := listNodes(ctx, env.Client)
		if err != nil {
			return "", fmt.Errorf("cordon %s: %w", t.Object, err)
		}
		if reason, why := c.judge(t.Object.Name, nodes, res); reason != "" {
			return "", &remediate.HeldError{Reason: reason, Detail: why}
		}
		res[t.Object.Name] = env.Now
		if err := writeReservations(ctx, env, lease, res); err != nil {
			if (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) && attempt < cordonAttempts {
				continue // another replica decided meanwhile: judge again on what it wrote
			}
			return "", remediate.TransientOr(fmt.Errorf("cordon %s: reserve in Lease %s/%s: %w", t.Object, env.Namespace, CordonLeaseName, remediate.ClassifyKube(err)))
		}
		break
	}
	if err := c.patchNode(ctx, env.Client, t, mark); err != nil {
		return "", err
	}
	what := fmt.Sprintf("cordoned %s for %s", t.Object, mark.Alert)
	if mark.Value != "" {
		what += " (" + mark.Value + ")"
	}
	if c.Taint {
		what += fmt.Sprintf(", tainted %s:NoSchedule", TaintCgroupLeak)
	}
	return what, nil
}

// judge applies the budgets that count the cluster to cordoning node.
func (c Cordon) judge(node string, nodes []corev1.Node, res reservations) (reason, why string) {
	var target *corev1.Node
	var down []string
	for i := range nodes {
		n := &nodes[i]
		if n.Name == node {
			target = n
		}
		if unschedulable(n) {
			down = append(down, n.Name)
		} else if _, ok := res[n.Name]; ok && n.Name != node {
			down = append(down, n.Name+" (reserved)")
		}
	}
	if target == nil {
		return remediate.ReasonTargetNotFound, fmt.Sprintf("Node %s is not in the cluster's list of nodes", node)
	}
	if unschedulable(target) {
		return ReasonAlreadyUnschedulable, fmt.Sprintf("Node %s is unschedulable already", node)
	}
	sort.Strings(down)
	list := strings.Join(firstN(down, 5), ", ")
	if len(down) >= c.MaxUnschedulable {
		return ReasonMaxUnschedulable, fmt.Sprintf("%d of %d nodes unschedulable already (%s), the most maxUnschedulable %d allows", len(down), len(nodes), list, c.MaxUnschedulable)
	}
	allowed := int(math.Floor(c.MaxUnschedulablePercent / 100 * float64(len(nodes))))
	if len(down)+1 > allowed {
		return ReasonMaxUnschedulableShare, fmt.Sprintf("cordoning Node %s would make %d of %d nodes unschedulable, more than maxUnschedulablePercent %g %% (%d nodes, rounded down)", node, len(down)+1, len(nodes), c.MaxUnschedulablePercent, allowed)
	}
	pool, schedulable := c.pool(target), 0
	for i := range nodes {
		n := &nodes[i]
		if _, reserved := res[n.Name]; n.Name != node && !reserved && !unschedulable(n) && c.pool(n) == pool {
			schedulable++
		}
	}
	if schedulable == 0 {
		return ReasonLastInPool, fmt.Sprintf("Node %s is the last schedulable node of pool %s", node, pool)
	}
	return "", ""
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// listNodes lists every node, a page at a time.
func listNodes(ctx context.Context, c kubernetes.Interface) ([]corev1.Node, error) {
	var out []corev1.Node
	opts := metav1.ListOptions{Limit: 500}
	for {
		l, err := c.CoreV1().Nodes().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list nodes: %w", remediate.ClassifyKube(err))
		}
		out = append(out, l.Items...)
		if l.Continue == "" {
			return out, nil
		}
		opts.Continue = l.Continue
	}
}

func writeReservations(ctx context.Context, env remediate.Env, lease *coordinationv1.Lease, res reservations) error {
	v, err := json.Marshal(res)
	if err != nil {
		return err
	}
	holder := remediate.FieldManager
	renew := metav1.NewMicroTime(env.Now)
	leases := env.Client.CoordinationV1().Leases(env.Namespace)
	if lease == nil {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: CordonLeaseName, Namespace: env.Namespace,
				Annotations: map[string]string{annotationCordonReservations: string(v)},
				Labels:      map[string]string{"app.kubernetes.io/managed-by": remediate.EventComponent}},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, RenewTime: &renew},
		}, metav1.CreateOptions{FieldManager: remediate.FieldManager})
		return err
	}
	lease = lease.DeepCopy()
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	lease.Annotations[annotationCordonReservations] = string(v)
	lease.Spec.HolderIdentity, lease.Spec.RenewTime = &holder, &renew
	// The resourceVersion read goes with the update: a Conflict means
	// another replica reserved first.
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{FieldManager: remediate.FieldManager})
	return err
}

// patchNode sets spec.unschedulable, the mark and, with Taint, the taint,
// under the node's resourceVersion (the taint list is replaced whole, so
// a taint another writer added meanwhile must not be lost).
func (c Cordon) patchNode(ctx context.Context, client kubernetes.Interface, t *remediate.Target, mark cordonMark) error {
	mv, err := json.Marshal(mark)
	if err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		n, err := client.CoreV1().Nodes().Get(ctx, t.Object.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("cordon: %w", remediate.NotFound(remediate.ClassifyKube(err)))
		}
		if n.Annotations[AnnotationCordonedBy] == string(mv) && n.Spec.Unschedulable {
			// An earlier attempt of this very write landed (its answer
			// was lost): the cordon is leakguard's.
			t.ResourceVersion = n.ResourceVersion
			return nil
		}
		if unschedulable(n) {
			// Someone cordoned the node since it was judged (a Conflict
			// brought us here): writing the mark now would be a no-op
			// cordon that claims a person's as leakguard's, which
			// uncordonOnResolve could later undo.
			return &remediate.HeldError{Reason: ReasonAlreadyUnschedulable, Detail: fmt.Sprintf("%s became unschedulable (cordoned by someone else) while leakguard was cordoning it; left without leakguard's mark", t.Object)}
		}
		spec := map[string]any{"unschedulable": true}
		if c.Taint && !hasTaint(n, TaintCgroupLeak) {
			taints := append(append([]corev1.Taint{}, n.Spec.Taints...), corev1.Taint{Key: TaintCgroupLeak, Value: mark.Alert, Effect: corev1.TaintEffectNoSchedule})
			spec["taints"] = taints
		}
		patch, err := json.Marshal(map[string]any{
			"metadata": map[string]any{"resourceVersion": n.ResourceVersion, "annotations": map[string]string{AnnotationCordonedBy: string(mv)}},
			"spec":     spec,
		})
		if err != nil {
			return err
		}
		rv, err := remediate.PatchObject(ctx, client, t.Object, types.MergePatchType, patch)
		if err == nil {
			t.ResourceVersion = rv
			return nil
		}
		if !apierrors.IsConflict(err) || attempt == cordonAttempts {
			return fmt.Errorf("cordon: %w", err)
		}
	}
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// Undo uncordons the node when the alert resolves, with
// uncordonOnResolve, only when the node is leakguard's cordon for this
// alert as leakguard left it: unschedulable, carrying the mark for the
// same alert, the taint still there if it added one, spec.unschedulable
// owned by leakguard's field manager alone, and no drain of leakguard's
// running on it. The engine asks Prometheus before it applies the plan
// (Engine.undo).
func (c Cordon) Undo(t *remediate.Target, f remediate.Finding, now time.Time) remediate.Plan {
	if !c.UncordonOnResolve {
		return remediate.Plan{}
	}
	n, ok := t.Resolved().(*corev1.Node)
	if !ok {
		return remediate.Plan{}
	}
	m, ok := readMark(n.Annotations)
	switch {
	case !ok:
		return remediate.Plan{} // not leakguard's cordon: nothing to say
	case m.Alert != f.AlertName():
		return remediate.Plan{Hold: ReasonNotOurs, Detail: fmt.Sprintf("%s was cordoned by leakguard for %s, not %s", t.Object, m.Alert, f.AlertName())}
	case !n.Spec.Unschedulable:
		return remediate.Plan{Hold: ReasonNotOurs, Detail: fmt.Sprintf("%s is schedulable already (someone uncordoned it)", t.Object)}
	case m.Taint && !hasTaint(n, TaintCgroupLeak):
		return remediate.Plan{Hold: ReasonNotOurs, Detail: fmt.Sprintf("%s: the %s taint leakguard added is gone; someone changed the node", t.Object, TaintCgroupLeak)}
	}
	if why := notLeakguardsWrite(n); why != "" {
		return remediate.Plan{Hold: ReasonNotOurs, Detail: fmt.Sprintf("%s: %s; left cordoned", t.Object, why)}
	}
	if why := drainRunning(n.Annotations, now); why != "" {
		return remediate.Plan{Hold: ReasonDrainInProgress, Detail: fmt.Sprintf("%s: %s; not uncordoned under it", t.Object, why)}
	}
	rv, mark := n.ResourceVersion, n.Annotations[AnnotationCordonedBy]
	return remediate.Plan{
		Action: fmt.Sprintf("uncordon %s (leakguard cordoned it for %s at %s)", t.Object, m.Alert, m.At.UTC().Format(time.RFC3339)),
		Apply: func(ctx context.Context, env remediate.Env) (string, error) {
			spec := map[string]any{"unschedulable": nil}
			if m.Taint {
				var kept []corev1.Taint
				for _, tt := range n.Spec.Taints {
					if tt.Key != TaintCgroupLeak {
						kept = append(kept, tt)
					}
				}
				spec["taints"] = kept
			}
			// Under the resourceVersion judged: a change meanwhile is a
			// Conflict, and the node stays cordoned.
			patch, err := json.Marshal(map[string]any{
				"metadata": map[string]any{"resourceVersion": rv, "annotations": map[string]any{AnnotationCordonedBy: nil}},
				"spec":     spec,
			})
			if err != nil {
				return "", err
			}
			_ = mark
			if _, err := remediate.PatchObject(ctx, env.Client, t.Object, types.MergePatchType, patch); err != nil {
				if apierrors.IsConflict(errors.Unwrap(err)) || apierrors.IsConflict(err) {
					return "", &remediate.HeldError{Reason: ReasonNotOurs, Detail: fmt.Sprintf("%s changed while uncordoning; left cordoned", t.Object)}
				}
				return "", fmt.Errorf("uncordon: %w", err)
			}
			return fmt.Sprintf("uncordoned %s: %s resolved", t.Object, m.Alert), nil
		},
	}
}

// notLeakguardsWrite says why spec.unschedulable of n cannot be shown to
// be leakguard's own write, or "" when it can: leakguard's field manager
// owns it and no other manager does. On the API server a write that
// changes a field (an Update or a patch) takes the field from every other
// manager, and one that leaves it as it was (a cordon of a node that was
// cordoned already) takes nothing, so:
//   - leakguard's mark on a node that was unschedulable already when
//     leakguard patched it (a no-op cordon) leaves the field to whoever
//     cordoned it: held;
//   - a person who uncordons and cordons again (kubectl cordon, patch,
//     edit) owns it afterwards: held;
//   - a server-side apply of the same value makes its manager a co-owner:
//     held.
//
// Without managedFields (a client that cleared them) nothing can be shown,
// and the answer fails closed: not leakguard's. A person's no-op write
// (kubectl cordon of a node leakguard cordoned: kubectl writes nothing, and
// a patch of the same value changes nothing) leaves no trace on the node;
// the opt-out annotation or removing leakguard's mark keeps such a node
// cordoned. Taints do not count: the node lifecycle controller adds
// node.kubernetes.io/unschedulable to every cordoned node, and leakguard's
// own taint is checked by its presence instead.
func notLeakguardsWrite(n *corev1.Node) string {
	ours := false
	var others []string
	for _, mf := range n.ManagedFields {
		if !ownsUnschedulable(mf) {
			continue
		}
		if mf.Manager == remediate.FieldManager && mf.Subresource == "" {
			ours = true
			continue
		}
		who := fmt.Sprintf("%q (%s", mf.Manager, mf.Operation)
		if mf.Time != nil {
			who += " at " + mf.Time.UTC().Format(time.RFC3339)
		}
		others = append(others, who+")")
	}
	switch {
	case len(others) > 0:
		return fmt.Sprintf("spec.unschedulable was written by field manager %s, not by leakguard alone (a person's or another tool's cordon)", strings.Join(others, ", "))
	case !ours:
		return "leakguard's field manager does not own spec.unschedulable in managedFields (the node was unschedulable already when leakguard's cordon was written, or managedFields were cleared): the cordon cannot be shown to be leakguard's"
	}
	return ""
}

// ownsUnschedulable reports whether mf's field set holds spec.unschedulable.
// A field set that does not parse counts as owning it (fail closed: the
// manager may have written it).
func ownsUnschedulable(mf metav1.ManagedFieldsEntry) bool {
	if mf.FieldsV1 == nil {
		return false
	}
	var fields struct {
		Spec map[string]json.RawMessage `json:"f:spec"`
	}
	if err := json.Unmarshal(mf.FieldsV1.Raw, &fields); err != nil {
		return true
	}
	_, ok := fields.Spec["f:unschedulable"]
	return ok
}

// drainRunning says why a drain of leakguard's may be running on the node
// whose annotations are ann, or "": its record says running and either
// its heartbeat is fresh or its deadline is still ahead (a replica that
// starts resumes a drain whose heartbeat went stale before its deadline,
// drain's Resume). A record that does not parse fails closed: it may be a
// running drain's.
func drainRunning(ann map[string]string, now time.Time) string {
	if _, ok := ann[AnnotationDrain]; !ok {
		return ""
	}
	s, ok := readDrain(ann)
	switch {
	case !ok:
		return fmt.Sprintf("its drain record %s does not parse, so a drain by leakguard may be running", AnnotationDrain)
	case s.State != DrainRunning:
		return ""
	case now.Sub(s.Heartbeat) < drainStaleAfter || now.Before(s.Deadline):
		return fmt.Sprintf("leakguard's drain for %s, started at %s, is running (heartbeat %s, deadline %s, %d pods left)", s.Alert, s.Started.UTC().Format(time.RFC3339), s.Heartbeat.UTC().Format(time.RFC3339), s.Deadline.UTC().Format(time.RFC3339), s.Left)
	}
	return ""
}
