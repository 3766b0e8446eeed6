package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leakguard/leakguard/remediate"
	nodeplugin "github.com/leakguard/leakguard/remediate/node"
)

// undoQuerier is a fake Prometheus whose answer a test switches: a value,
// an empty vector (no series) or an error.
type undoQuerier struct {
	mu    sync.Mutex
	value float64
	empty bool
	err   error
	n     int
}

var _ remediate.Querier = (*undoQuerier)(nil)

func (q *undoQuerier) Query(_ context.Context, _ string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	switch {
	case q.err != nil:
		return nil, nil, nil, q.err
	case q.empty:
		return model.Vector{}, nil, nil, nil
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(q.value), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}

// answer sets what the next queries get and forgets the count.
func (q *undoQuerier) answer(value float64, empty bool, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.value, q.empty, q.err, q.n = value, empty, err, 0
}

func (q *undoQuerier) queries() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// unschedulableOwners names the field managers that own spec.unschedulable
// of n, as the API server recorded them.
func unschedulableOwners(t *testing.T, n *corev1.Node) []string {
	t.Helper()
	var out []string
	for _, mf := range n.ManagedFields {
		if mf.FieldsV1 == nil {
			continue
		}
		var f struct {
			Spec map[string]json.RawMessage `json:"f:spec"`
		}
		if err := json.Unmarshal(mf.FieldsV1.Raw, &f); err != nil {
			t.Fatalf("managedFields of %s: %v", n.Name, err)
		}
		if _, ok := f.Spec["f:unschedulable"]; ok {
			out = append(out, mf.Manager+"/"+string(mf.Operation))
		}
	}
	return out
}

// uncordonOnResolve on the real API server: a resolved alert uncordons
// leakguard's own cordon only when Prometheus answers that the finding is
// gone, not while leakguard's drain of the node runs, and never a cordon
// that spec.unschedulable's managedFields give to anyone but leakguard.
// Each hold leaves the node's resourceVersion as it was.
func TestUndoOnResolveAsksPrometheusAndLeavesOthersCordons(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	ns := budgetNamespace(t)
	pool := fmt.Sprintf("undo-%d", worldSeq.Add(1))
	labels := map[string]string{"leakguard.io/e2e-pool": pool}
	cases := []string{"clear", "leaking", "nodata", "queryerr", "draining", "beforehand", "applied"}
	createReadyNode(ctx, t, pool+"-spare", labels)
	for _, c := range cases {
		createReadyNode(ctx, t, pool+"-"+c, labels)
	}
	q := &undoQuerier{value: confirmingValue}
	e := newEngineWithPolicy(t, leakguardClient(t), fmt.Sprintf(uncordonPolicy, unschedulableNodes(ctx, t)+len(cases)), ns, func(o *remediate.Options) { o.Querier = q })
	decide := func(node, status string) remediate.Decision {
		t.Helper()
		a := alert("NodeOrphanCgroups", map[string]string{"node": node})
		a.Status = status
		d, err := e.DecideOne(ctx, a)
		if err != nil {
			t.Fatalf("%s %s: %v", node, status, err)
		}
		return d
	}
	get := func(node string) *corev1.Node {
		t.Helper()
		n, err := l.Admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	patch := func(c kubernetes.Interface, node, manager string, pt types.PatchType, body string) {
		t.Helper()
		opts := metav1.PatchOptions{FieldManager: manager}
		if pt == types.ApplyPatchType {
			force := true
			opts.Force = &force
		}
		if _, err := c.CoreV1().Nodes().Patch(ctx, node, pt, []byte(body), opts); err != nil {
			t.Fatalf("%s patches %s: %v", manager, node, err)
		}
	}
	name := func(c string) string { return pool + "-" + c }

	// A person cordons "beforehand"; leakguard's mark then lands on it
	// with a write that changes nothing of spec.unschedulable (as a
	// cordon that raced the person's could write): the API server gives
	// that write no ownership of the field.
	patch(l.Admin, name("beforehand"), "kubectl-cordon", types.StrategicMergePatchType, `{"spec":{"unschedulable":true}}`)
	mark, _ := json.Marshal(map[string]any{"alert": "NodeOrphanCgroups", "at": time.Now().UTC().Truncate(time.Second)})
	noop, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{nodeplugin.AnnotationCordonedBy: string(mark)}}, "spec": map[string]any{"unschedulable": true}})
	patch(leakguardClient(t), name("beforehand"), "leakguard", types.MergePatchType, string(noop))
	if got := unschedulableOwners(t, get(name("beforehand"))); len(got) != 1 || got[0] != "kubectl-cordon/Update" {
		t.Fatalf("spec.unschedulable after a no-op write by leakguard owned by %v, want only kubectl-cordon/Update", got)
	}

	// leakguard cordons every other node, and owns the field alone.
	for _, c := range cases {
		if c == "beforehand" {
			continue
		}
		if d := decide(name(c), "firing"); d.Decision != remediate.DecisionActed {
			t.Fatalf("cordon %s: %s %s %s", name(c), d.Decision, d.Reason, d.Message)
		}
		if got := unschedulableOwners(t, get(name(c))); len(got) != 1 || got[0] != "leakguard/Update" {
			t.Fatalf("spec.unschedulable of %s owned by %v after leakguard's cordon, want only leakguard/Update", name(c), got)
		}
	}
	// A person's server-side apply of the same value shares the field.
	patch(l.Admin, name("applied"), "ops-team", types.ApplyPatchType, fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q},"spec":{"unschedulable":true}}`, name("applied")))
	// leakguard's drain of "draining" runs (its record as the drainer
	// writes it, heartbeat fresh).
	now := time.Now().UTC()
	rec, _ := json.Marshal(map[string]any{"alert": "NodeOrphanCgroups", "state": nodeplugin.DrainRunning, "started": now, "deadline": now.Add(10 * time.Minute), "heartbeat": now, "left": 1})
	patch(leakguardClient(t), name("draining"), "leakguard", types.MergePatchType, fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, nodeplugin.AnnotationDrain, rec))

	// The limit docs/remediation.md names: a person's cordon of a node that leakguard
	// cordoned already changes nothing, and the API server records
	// nothing of it (no write, no managedFields entry).
	quiet := get(name("clear"))
	patch(l.Admin, name("clear"), "kubectl-patch", types.StrategicMergePatchType, `{"spec":{"unschedulable":true}}`)
	if after := get(name("clear")); after.ResourceVersion != quiet.ResourceVersion || len(unschedulableOwners(t, after)) != 1 {
		t.Fatalf("a no-op cordon was recorded: resourceVersion %s → %s, owners %v", quiet.ResourceVersion, after.ResourceVersion, unschedulableOwners(t, after))
	}

	const clean = 3 // orphan cgroups, under the threshold 20
	for _, tc := range []struct {
		node  string
		value float64
		empty bool
		err   error
		want  string // the reason that holds, "" for the uncordon
		asked bool
	}{
		{node: "leaking", value: confirmingValue, want: remediate.ReasonStillFiring, asked: true},
		{node: "nodata", empty: true, want: remediate.ReasonCheckUnanswered, asked: true},
		{node: "queryerr", err: errors.New("connection refused"), want: remediate.ReasonCheckUnanswered, asked: true},
		{node: "draining", value: clean, want: nodeplugin.ReasonDrainInProgress},
		{node: "beforehand", value: clean, want: nodeplugin.ReasonNotOurs},
		{node: "applied", value: clean, want: nodeplugin.ReasonNotOurs},
		{node: "clear", value: clean, asked: true},
	} {
		t.Run(tc.node, func(t *testing.T) {
			before := get(name(tc.node))
			q.answer(tc.value, tc.empty, tc.err)
			d := decide(name(tc.node), "resolved")
			after := get(name(tc.node))
			if got := q.queries() > 0; got != tc.asked {
				t.Errorf("Prometheus asked %d times, want asked %v", q.queries(), tc.asked)
			}
			if tc.want == "" {
				if d.Decision != remediate.DecisionActed || after.Spec.Unschedulable || after.Annotations[nodeplugin.AnnotationCordonedBy] != "" {
					t.Errorf("resolved and clear: %s %s %s, unschedulable %v; want uncordoned without leakguard's mark", d.Decision, d.Reason, d.Message, after.Spec.Unschedulable)
				}
				return
			}
			if d.Decision != remediate.DecisionHeld || d.Reason != tc.want {
				t.Errorf("resolved: %s %s %s, want held %s", d.Decision, d.Reason, d.Message, tc.want)
			}
			if after.ResourceVersion != before.ResourceVersion || !after.Spec.Unschedulable {
				t.Errorf("held, yet the node changed: resourceVersion %s → %s, unschedulable %v", before.ResourceVersion, after.ResourceVersion, after.Spec.Unschedulable)
			}
			// The hold is recorded on the node; an unanswered check as a
			// Warning, since nothing but a person or the next resolve
			// will uncordon it.
			found := false
			for _, ev := range events(ctx, t, l.Admin, metav1.NamespaceDefault, name(tc.node)) {
				if strings.Contains(ev.Message, tc.want) && (tc.want != remediate.ReasonCheckUnanswered || ev.Type == corev1.EventTypeWarning) {
					found = true
				}
			}
			if !found {
				t.Errorf("no Event on %s records the hold %s", name(tc.node), tc.want)
			}
		})
	}
}

// A person's cordon that lands between leakguard's judgement and its
// patch: the patch, under the resourceVersion read, is a Conflict on the
// real API server; cordon reads the node again, finds it unschedulable
// and leaves it without its mark, so that uncordonOnResolve never takes
// that person's cordon for leakguard's.
func TestCordonLeavesAPersonsCordonUnmarked(t *testing.T) {
	l := needLab(t)
	ctx := testContext(t)
	ns := budgetNamespace(t)
	pool := fmt.Sprintf("undo-race-%d", worldSeq.Add(1))
	labels := map[string]string{"leakguard.io/e2e-pool": pool}
	node := pool + "-n"
	createReadyNode(ctx, t, pool+"-spare", labels)
	createReadyNode(ctx, t, node, labels)
	cfg := rest.CopyConfig(leakguardConfig)
	var once sync.Once
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method == http.MethodPatch && r.URL.Path == "/api/v1/nodes/"+node && r.Body != nil {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					return nil, err
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
				if strings.Contains(string(body), `"unschedulable":true`) {
					once.Do(func() {
						// The person's cordon lands first.
						if _, err := l.Admin.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{FieldManager: "kubectl-cordon"}); err != nil {
							t.Errorf("the person's cordon: %v", err)
						}
					})
				}
			}
			return rt.RoundTrip(r)
		})
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngineWithPolicy(t, c, fmt.Sprintf(uncordonPolicy, unschedulableNodes(ctx, t)+1), ns, nil)
	d, err := e.DecideOne(ctx, alert("NodeOrphanCgroups", map[string]string{"node": node}))
	if err != nil || d.Decision != remediate.DecisionHeld || d.Reason != nodeplugin.ReasonAlreadyUnschedulable {
		t.Errorf("firing: %s %s %s (%v), want held %s", d.Decision, d.Reason, d.Message, err, nodeplugin.ReasonAlreadyUnschedulable)
	}
	n, err := l.Admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := n.Annotations[nodeplugin.AnnotationCordonedBy]; ok || !n.Spec.Unschedulable {
		t.Errorf("after a person's cordon raced leakguard's: mark %q, unschedulable %v; want the person's cordon, unmarked", m, n.Spec.Unschedulable)
	}
	if got := unschedulableOwners(t, n); len(got) != 1 || got[0] != "kubectl-cordon/Update" {
		t.Errorf("spec.unschedulable owned by %v, want only kubectl-cordon/Update", got)
	}
}
