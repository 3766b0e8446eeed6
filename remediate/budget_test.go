package remediate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

func nodeAlert(node string) template.Alert {
	return alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": node})
}

func podAlert(pod string) template.Alert {
	return alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": pod, "container": "app"})
}

func outcomes(ds []Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Decision+"/"+d.Reason)
	}
	return out
}

func getLease(t *testing.T, cs *fake.Clientset) *coordinationv1.Lease {
	t.Helper()
	l, err := cs.CoordinationV1().Leases(DefaultNamespace).Get(context.Background(), BudgetLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get budget lease: %v", err)
	}
	return l
}

const nodeRatePolicy = "rateLimit: {perMinute: 1, burst: 1}\nalerts:\n  NodeCgroupLeak:\n    target: node\n    check: {name: none}\n    remediators: [{name: annotate}]\n"

// TestRateAcrossReplicas gives two engines (two replicas, or one before
// and after a restart) one token between them: the second is held,
// which an in-memory bucket per replica did not do.
func TestRateAcrossReplicas(t *testing.T) {
	e1, cs := newTestEngine(t, engineSetup{policy: nodeRatePolicy})
	p, _ := ParsePolicy([]byte(nodeRatePolicy), shippedRegistry())
	e2, err := NewEngine(Options{Client: cs, Policy: p, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := e1.DecideOne(context.Background(), nodeAlert("n1"))
	d2, _ := e2.DecideOne(context.Background(), nodeAlert("cp1"))
	if diff := cmp.Diff([]string{"acted/", "held/rate-limited"}, outcomes([]Decision{d1, d2})); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}
	if ann := getLease(t, cs).Annotations[annotationBudgetRate]; !strings.Contains(ann, `"tokens":0`) {
		t.Errorf("lease rate = %s, want an empty bucket", ann)
	}
}

// TestRateConcurrentReplicas has two engines take the last token at once:
// both read the Lease at one resourceVersion, one update conflicts, is
// redone on the fresh state and finds the bucket empty.
func TestRateConcurrentReplicas(t *testing.T) {
	for round := range 5 {
		cs := newCluster(t, fixtures()...)
		p, _ := ParsePolicy([]byte(strings.Replace(nodeRatePolicy, "check: {name: none}", "check: {name: orphan-cgroups}", 1)), shippedRegistry())
		var engines []*Engine
		bq := &barrierQuerier{q: &fakeQuerier{Answers: map[string]model.Value{
			`max(node:leakguard_node_orphan_cgroups:max{node="n1"})`:  vec(50),
			`max(node:leakguard_node_orphan_cgroups:max{node="cp1"})`: vec(50),
		}}, arrived: make(chan struct{}, 2), n: 2}
		for range 2 {
			e, err := NewEngine(Options{Client: cs, Querier: bq, Policy: p, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			engines = append(engines, e)
		}
		ds := make([]Decision, 2)
		var wg sync.WaitGroup
		for i, node := range []string{"n1", "cp1"} {
			wg.Go(func() { ds[i], _ = engines[i].DecideOne(context.Background(), nodeAlert(node)) })
		}
		wg.Wait()
		got := map[string]int{}
		for _, d := range ds {
			got[d.Decision+"/"+d.Reason]++
		}
		if diff := cmp.Diff(map[string]int{"acted/": 1, "held/rate-limited": 1}, got); diff != "" {
			t.Fatalf("round %d: decisions mismatch (-want +got):\n%s (%+v)", round, diff, ds)
		}
	}
}

// TestBudgetUnreadable: a budget Lease the API cannot serve stops every
// action, transiently (503, Alertmanager retries), and nothing is written
// but the cooldown-free reads.
func TestBudgetUnreadable(t *testing.T) {
	e, cs := newTestEngine(t, engineSetup{policy: nodeRatePolicy})
	cs.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd down")
	})
	d, err := e.DecideOne(context.Background(), nodeAlert("n1"))
	if d.Decision != DecisionError || d.Reason != ReasonGuardError || !IsTransient(err) {
		t.Errorf("DecideOne() = %s/%s, %v; want error/guard-error, transient", d.Decision, d.Reason, err)
	}
	if n := len(patches(cs, "nodes")); n != 0 {
		t.Errorf("%d node patches, want none", n)
	}
}

// disruptivePolicy runs annotate and the test's disruptive remediator on
// workloads, behind a check.
func disruptivePolicy(extra string) string {
	return extra + "alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: annotate}, {name: disrupt, enabled: true}]\n"
}

func newDisruptiveEngine(t *testing.T, policy string, objs []runtime.Object, opts func(*Options)) (*Engine, *fake.Clientset) {
	t.Helper()
	if objs == nil {
		objs = fixtures()
	}
	cs := newCluster(t, objs...)
	p, err := ParsePolicy([]byte(policy), testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Client: cs, Querier: confirmingQuerier{}, Policy: p, Now: func() time.Time { return testNow }}
	if opts != nil {
		opts(&o)
	}
	e, err := NewEngine(o)
	if err != nil {
		t.Fatal(err)
	}
	return e, cs
}

func remediatorResults(d Decision) []string {
	var out []string
	for _, r := range d.Remediators {
		out = append(out, r.Name+" "+r.Result)
	}
	return out
}

// TestPauseSwitch flips leakguard.io/pause on leakguard's namespace: the
// disruptive remediator is held, annotate acts; unflipped, both act.
func TestPauseSwitch(t *testing.T) {
	objs := append(fixtures(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace, Annotations: map[string]string{AnnotationPause: "True"}}})
	e, cs := newDisruptiveEngine(t, disruptivePolicy(""), objs, nil)
	d, err := e.DecideOne(context.Background(), podAlert("web-7d9-abcde"))
	if err != nil || d.Decision != DecisionActed {
		t.Fatalf("DecideOne() = %s/%s, %v; want acted (annotate)", d.Decision, d.Reason, err)
	}
	if diff := cmp.Diff([]string{"annotate acted", "disrupt held"}, remediatorResults(d)); diff != "" {
		t.Errorf("remediators mismatch (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(d.Remediators[1].Detail, ReasonPaused+":") {
		t.Errorf("disrupt detail = %q, want %s", d.Remediators[1].Detail, ReasonPaused)
	}
	ns, _ := cs.CoreV1().Namespaces().Get(context.Background(), DefaultNamespace, metav1.GetOptions{})
	ns.Annotations = nil
	if _, err := cs.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	d, _ = e.DecideOne(context.Background(), podAlert("db-0"))
	if diff := cmp.Diff([]string{"annotate acted", "disrupt acted"}, remediatorResults(d)); diff != "" {
		t.Errorf("unpaused: remediators mismatch (-want +got):\n%s", diff)
	}
	// Only the disruptive remediator is paused: an entry that only
	// disrupts is held with the reason.
	e2, cs2 := newDisruptiveEngine(t, strings.Replace(disruptivePolicy(""), "{name: annotate}, ", "", 1), objs, nil)
	d, err = e2.DecideOne(context.Background(), podAlert("web-7d9-abcde"))
	if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonPaused {
		t.Errorf("disrupt only: DecideOne() = %s/%s, %v; want held/paused", d.Decision, d.Reason, err)
	}
	if n := len(patches(cs2, "deployments")); n != 0 {
		t.Errorf("paused: %d deployment patches, want none", n)
	}
}

// TestPauseSwitchUnreadable: leakguard's namespace cannot be read, so
// nothing disruptive acts and the delivery is retried.
func TestPauseSwitchUnreadable(t *testing.T) {
	e, cs := newDisruptiveEngine(t, disruptivePolicy(""), nil, nil)
	cs.PrependReactor("get", "namespaces", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.(k8stesting.GetAction).GetName() == DefaultNamespace {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	d, err := e.DecideOne(context.Background(), podAlert("web-7d9-abcde"))
	if d.Decision != DecisionError || !IsTransient(err) {
		t.Errorf("DecideOne() = %s/%s, %v; want error, transient", d.Decision, d.Reason, err)
	}
	if n := len(patches(cs, "deployments")); n != 0 {
		t.Errorf("%d deployment patches, want none", n)
	}
}

// TestStormGuard: with storm targets 2, the third target needing a
// disruptive action within the window pauses the disruptive remediator
// for every target, recorded in the Lease; annotate goes on.
func TestStormGuard(t *testing.T) {
	policy := disruptivePolicy("disruption: {perNamespacePerHour: 10, storm: {targets: 2, window: 10m, pause: 30m}}\n")
	e, cs := newDisruptiveEngine(t, policy, nil, nil)
	ds, err := e.Decide(context.Background(), []template.Alert{
		podAlert("web-7d9-abcde"), podAlert("db-0"), podAlert("lonely"), podAlert("report-2911-xyz"),
	})
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	var got [][]string
	for _, d := range ds {
		got = append(got, remediatorResults(d))
	}
	want := [][]string{{"annotate acted", "disrupt acted"}, {"annotate acted", "disrupt acted"}, {"annotate acted", "disrupt held"}, {"annotate acted", "disrupt held"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("remediators mismatch (-want +got):\n%s", diff)
	}
	for _, d := range ds[2:] {
		if !strings.HasPrefix(d.Remediators[1].Detail, ReasonStorm+":") {
			t.Errorf("%s: disrupt detail = %q, want %s", d.Target, d.Remediators[1].Detail, ReasonStorm)
		}
	}
	storm := getLease(t, cs).Annotations[annotationBudgetStorm]
	if !strings.Contains(storm, "3 targets needed a disruptive action within 10m0s") || !strings.Contains(storm, `"pausedUntil":"2026-11-23T12:30:00Z"`) {
		t.Errorf("lease storm record = %s, want why and the pause's end", storm)
	}
	// After the pause, disruptive actions resume (annotate is still in
	// its hour of cooldown).
	e.now = func() time.Time { return testNow.Add(31 * time.Minute) }
	d, _ := e.DecideOne(context.Background(), podAlert("report-2911-xyz"))
	if diff := cmp.Diff([]string{"annotate held", "disrupt acted"}, remediatorResults(d)); diff != "" {
		t.Errorf("after the pause: remediators mismatch (-want +got):\n%s", diff)
	}
}

// TestNamespaceDisruptionCap allows one disruptive action per namespace
// and hour: the second target in shop is held, an hour later it acts. In
// dry-run, the ledger holds the second as a real run would.
func TestNamespaceDisruptionCap(t *testing.T) {
	policy := disruptivePolicy("disruption: {perNamespacePerHour: 1}\n")
	for _, dry := range []bool{false, true} {
		e, cs := newDisruptiveEngine(t, policy, nil, func(o *Options) { o.DryRun = dry })
		ds, _ := e.Decide(context.Background(), []template.Alert{podAlert("web-7d9-abcde"), podAlert("db-0")})
		word := "acted"
		if dry {
			word = "dry-run"
		}
		if diff := cmp.Diff([][]string{{"annotate " + word, "disrupt " + word}, {"annotate " + word, "disrupt held"}},
			[][]string{remediatorResults(ds[0]), remediatorResults(ds[1])}); diff != "" {
			t.Errorf("dry-run %v: remediators mismatch (-want +got):\n%s", dry, diff)
		}
		if !strings.HasPrefix(ds[1].Remediators[1].Detail, ReasonNamespaceBudget+":") {
			t.Errorf("dry-run %v: held detail = %q, want %s", dry, ds[1].Remediators[1].Detail, ReasonNamespaceBudget)
		}
		if dry {
			if _, err := cs.CoordinationV1().Leases(DefaultNamespace).Get(context.Background(), BudgetLeaseName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dry-run wrote the budget lease: %v", err)
			}
			continue
		}
		e.now = func() time.Time { return testNow.Add(61 * time.Minute) }
		d, _ := e.DecideOne(context.Background(), podAlert("lonely"))
		if diff := cmp.Diff([]string{"annotate acted", "disrupt acted"}, remediatorResults(d)); diff != "" {
			t.Errorf("an hour later: remediators mismatch (-want +got):\n%s", diff)
		}
	}
}

// TestBudgetKeptAfterUncertainFailure: an action that timed out may have
// happened, so its rate token stays spent; one the API refused (403)
// gives it back.
func TestBudgetKeptAfterUncertainFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		tokens string
	}{
		{"timeout keeps the token", apierrors.NewTimeoutError("patch timed out", 1), `"tokens":0`},
		{"forbidden gives it back", apierrors.NewForbidden(schemaNodes, "n1", errors.New("RBAC")), `"tokens":1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, cs := newTestEngine(t, engineSetup{policy: nodeRatePolicy})
			cs.PrependReactor("patch", "nodes", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if strings.Contains(string(a.(k8stesting.PatchActionImpl).Patch), AnnotationFinding) {
					return true, nil, tc.err
				}
				return false, nil, nil
			})
			if d, _ := e.DecideOne(context.Background(), nodeAlert("n1")); d.Decision != DecisionError {
				t.Fatalf("DecideOne() = %s/%s, want error", d.Decision, d.Reason)
			}
			if ann := getLease(t, cs).Annotations[annotationBudgetRate]; !strings.Contains(ann, tc.tokens) {
				t.Errorf("lease rate = %s, want %s", ann, tc.tokens)
			}
		})
	}
}

var schemaNodes = schema.GroupResource{Resource: "nodes"}

// nodeCordonPolicy cordons nodes (annotate first) with room for every
// cordon the node budget tests make, under the extra budget lines.
func nodeCordonPolicy(extra string) string {
	return "rateLimit: {perMinute: 600, burst: 100}\n" + extra + `alerts:
  NodeOrphanCgroups:
    target: node
    check: {name: orphan-cgroups, args: {threshold: 20}}
    remediators:
      - name: annotate
      - name: cordon
        enabled: true
        args: {maxUnschedulable: 100, maxUnschedulablePercent: 100, poolLabel: pool}
`
}

func nodeLeak(n string) template.Alert {
	return alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": n})
}

// TestNodeDisruptionBudget: nodes have a disruption budget of their own,
// apart from the namespaces': a workload's disruptive action in shop does
// not spend it, and a node's does not spend any namespace's. With a pool
// label, each pool (and the nodes without the label, together) has a
// budget too, under the cluster's.
func TestNodeDisruptionBudget(t *testing.T) {
	t.Run("nodes and namespaces apart", func(t *testing.T) {
		objs := append(fixtures(), nodes(4, "a")...)
		cs := newCluster(t, objs...)
		workloads, err := ParsePolicy([]byte(disruptivePolicy("disruption: {perNamespacePerHour: 1, nodes: {perHour: 1}}\n")), testRegistry(t))
		if err != nil {
			t.Fatal(err)
		}
		nodePolicy, err := ParsePolicy([]byte(nodeCordonPolicy("disruption: {perNamespacePerHour: 1, nodes: {perHour: 1}}\n")), shippedRegistry())
		if err != nil {
			t.Fatal(err)
		}
		ew, err := NewEngine(Options{Client: cs, Querier: confirmingQuerier{}, Policy: workloads, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		en, err := NewEngine(Options{Client: cs, Querier: anyQuerier(42), Policy: nodePolicy, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		var got [][]string
		for _, d := range []func() (Decision, error){
			func() (Decision, error) { return ew.DecideOne(context.Background(), podAlert("web-7d9-abcde")) },
			func() (Decision, error) { return en.DecideOne(context.Background(), nodeLeak("node-0")) },
			func() (Decision, error) { return en.DecideOne(context.Background(), nodeLeak("node-1")) },
			func() (Decision, error) { return ew.DecideOne(context.Background(), podAlert("db-0")) },
		} {
			dd, err := d()
			if err != nil {
				t.Fatalf("DecideOne() error: %v", err)
			}
			got = append(got, remediatorResults(dd))
			if r := dd.Remediators[len(dd.Remediators)-1]; r.Result == ResultHeld {
				got[len(got)-1] = append(got[len(got)-1], strings.SplitN(r.Detail, ":", 2)[0])
			}
		}
		want := [][]string{
			{"annotate acted", "disrupt acted"},
			{"annotate acted", "cordon acted"},
			{"annotate acted", "cordon held", ReasonNodeBudget},
			{"annotate acted", "disrupt held", ReasonNamespaceBudget},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("remediators mismatch (-want +got):\n%s", diff)
		}
		st, err := decodeBudget(getLease(t, cs).Annotations)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string][]time.Time{"shop": {testNow}, nodesKey: {testNow}}, st.Disruptions); diff != "" {
			t.Errorf("the Lease's disruptions mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("per pool", func(t *testing.T) {
		objs := append(fixtures(), node("a0", "a", false), node("a1", "a", false), node("b0", "b", false), node("b1", "b", false), node("x0", "", false), node("x1", "", false))
		e, cs := newTestEngine(t, engineSetup{policy: nodeCordonPolicy("disruption: {nodes: {perHour: 3, poolLabel: pool, perPoolPerHour: 1}}\n"), objs: objs,
			opts: func(o *Options) { o.Querier = anyQuerier(42) }})
		var got []string
		for _, n := range []string{"a0", "a1", "b0", "x0", "b1"} {
			d, err := e.DecideOne(context.Background(), nodeLeak(n))
			if err != nil {
				t.Fatalf("%s: DecideOne() error: %v", n, err)
			}
			got = append(got, n+" "+d.Remediators[1].Result+" "+d.Remediators[1].Detail)
		}
		want := []string{
			"a0 acted cordoned Node a0 for NodeOrphanCgroups (42 orphan cgroups > 20 orphan cgroups)",
			"a1 held " + ReasonNodeBudget + `: 1 disruptive actions in the node pool pool=a within the last hour, the most allowed`,
			"b0 acted cordoned Node b0 for NodeOrphanCgroups (42 orphan cgroups > 20 orphan cgroups)",
			"x0 acted cordoned Node x0 for NodeOrphanCgroups (42 orphan cgroups > 20 orphan cgroups)",
			"b1 held " + ReasonNodeBudget + ": 3 disruptive actions on nodes within the last hour, the most allowed",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cordon outcomes mismatch (-want +got):\n%s", diff)
		}
		st, err := decodeBudget(getLease(t, cs).Annotations)
		if err != nil {
			t.Fatal(err)
		}
		want2 := map[string][]time.Time{nodesKey: {testNow, testNow, testNow}, nodePoolPrefix + "a": {testNow}, nodePoolPrefix + "b": {testNow}, nodePoolPrefix: {testNow}}
		if diff := cmp.Diff(want2, st.Disruptions); diff != "" {
			t.Errorf("the Lease's disruptions mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestNodeBudgetPolicy: the node budget's fields, their defaults and
// what validation refuses.
func TestNodeBudgetPolicy(t *testing.T) {
	for _, tc := range []struct {
		name, disruption string
		perHour, perPool int
		label, wantErr   string
	}{
		{"defaults", "{}", DefaultDisruptiveNodesPerHour, DefaultDisruptivePerNodePoolPerHour, "", ""},
		{"a pool label", "{nodes: {perHour: 4, poolLabel: cloud.google.com/gke-nodepool}}", 4, DefaultDisruptivePerNodePoolPerHour, "cloud.google.com/gke-nodepool", ""},
		{"per pool set", "{nodes: {poolLabel: pool, perPoolPerHour: 3}}", DefaultDisruptiveNodesPerHour, 3, "pool", ""},
		{"negative", "{nodes: {perHour: -1}}", 0, 0, "", "disruption.nodes: perHour and perPoolPerHour must not be negative, got -1 and 0"},
		{"per pool without a label", "{nodes: {perPoolPerHour: 2}}", 0, 0, "", "disruption.nodes.perPoolPerHour: needs poolLabel, the node label that names a node's pool"},
		{"not a label key", "{nodes: {poolLabel: 'a b'}}", 0, 0, "", `disruption.nodes.poolLabel: "a b" is not a label key`},
		{"unknown field", "{nodes: {perDay: 2}}", 0, 0, "", "perDay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte("disruption: "+tc.disruption+"\n"+strings.SplitN(nodeCordonPolicy(""), "\n", 2)[1]), shippedRegistry())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("ParsePolicy() error = %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy() error: %v", err)
			}
			if p.DisruptiveNodesPerHour != tc.perHour || p.DisruptivePerNodePoolPerHour != tc.perPool || p.NodePoolLabel != tc.label {
				t.Errorf("node budget = %d, %d, %q; want %d, %d, %q", p.DisruptiveNodesPerHour, p.DisruptivePerNodePoolPerHour, p.NodePoolLabel, tc.perHour, tc.perPool, tc.label)
			}
		})
	}
}

// skewedEngines builds two engines on cs whose clocks run skew apart
// (the second ahead) around the true time *now, and whose server clock
// reads *now, as the API server's Date would.
func skewedEngines(t *testing.T, cs *fake.Clientset, policy string, now *time.Time, skew time.Duration, server bool) [2]*Engine {
	t.Helper()
	p, err := ParsePolicy([]byte(policy), shippedRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var out [2]*Engine
	for i, off := range []time.Duration{0, skew} {
		o := Options{Client: cs, Policy: p, Now: func() time.Time { return now.Add(off) }}
		if server {
			o.ServerTime = func(context.Context) (time.Time, error) { return *now, nil }
		}
		if out[i], err = NewEngine(o); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRateSkewedReplicas: the rate bucket is judged on the API server's
// clock, so the replicas' own clocks neither widen it nor stall it.
func TestRateSkewedReplicas(t *testing.T) {
	var objs []runtime.Object
	for i := range 20 {
		objs = append(objs, node(fmt.Sprintf("node-%d", i), "a", false))
	}
	const policy = "rateLimit: {perMinute: 10, burst: 5}\nalerts:\n  NodeCgroupLeak:\n    target: node\n    check: {name: none}\n    remediators: [{name: annotate}]\n"
	t.Run("a clock ahead does not refill", func(t *testing.T) {
		// Two replicas 30 s apart take 20 times at one instant, in
		// turns: on their own clocks the one ahead found 30 s of refill
		// (5 tokens) at each take, and all 20 acted.
		now := testNow
		cs := newCluster(t, objs...)
		engines := skewedEngines(t, cs, policy, &now, 30*time.Second, true)
		acted := 0
		for i := range 20 {
			d, err := engines[i%2].DecideOne(context.Background(), nodeAlert(fmt.Sprintf("node-%d", i)))
			if err != nil {
				t.Fatalf("alert %d: %v", i, err)
			}
			if d.Decision == DecisionActed {
				acted++
			}
		}
		if acted != 5 {
			t.Errorf("%d of 20 alerts acted at one instant, want the burst, 5", acted)
		}
		st, err := decodeBudget(getLease(t, cs).Annotations)
		if err != nil {
			t.Fatal(err)
		}
		if !st.Rate.At.Equal(testNow) {
			t.Errorf("the bucket's time = %s, want the server's %s", st.Rate.At, testNow)
		}
	})
	t.Run("a clock behind does not stall", func(t *testing.T) {
		// Burst 1, a token every 6 s. The replica ahead takes the token;
		// 6 s later the replica 30 s behind it finds one refilled (on
		// its own clock it found the bucket's time 24 s in its future,
		// and nothing refilled for 24 s more).
		now := testNow
		cs := newCluster(t, objs...)
		engines := skewedEngines(t, cs, strings.Replace(policy, "burst: 5", "burst: 1", 1), &now, 30*time.Second, true)
		var got []string
		for i, step := range []struct {
			engine  int
			advance time.Duration
		}{{1, 0}, {0, 3 * time.Second}, {0, 3 * time.Second}, {1, 0}} {
			now = now.Add(step.advance)
			d, err := engines[step.engine].DecideOne(context.Background(), nodeAlert(fmt.Sprintf("node-%d", i)))
			if err != nil {
				t.Fatalf("alert %d: %v", i, err)
			}
			got = append(got, d.Decision+"/"+d.Reason)
		}
		// At 0 s the replica ahead acts; at 3 s the one behind finds no
		// token yet; at 6 s it finds one; the one ahead then none.
		if diff := cmp.Diff([]string{"acted/", "held/rate-limited", "acted/", "held/rate-limited"}, got); diff != "" {
			t.Errorf("decisions mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestServerClock: the clock reads the Date of the API server's answer
// to GET /version, adds the time passed on the engine's clock since, and
// asks again after a minute; a server that cannot be asked is transient.
func TestServerClock(t *testing.T) {
	serverNow := testNow.Add(-30 * time.Second) // the server runs 30 s behind the engine
	asked := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		if r.URL.Path != "/version" {
			t.Errorf("asked %s, want /version", r.URL.Path)
		}
		w.Header().Set("Date", serverNow.UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	probe := apiserverTime(cs)
	if probe == nil {
		t.Fatal("apiserverTime() = nil for a client with an HTTP client")
	}
	if apiserverTime(fake.NewClientset()) != nil {
		t.Error("apiserverTime(fake) != nil, want nil: a fake has no server to ask")
	}
	local := testNow
	c := &serverClock{probe: probe, local: func() time.Time { return local }}
	var got []time.Time
	for _, advance := range []time.Duration{0, 10 * time.Second, 50 * time.Second} {
		local = local.Add(advance)
		now, err := c.now(context.Background())
		if err != nil {
			t.Fatalf("now() error: %v", err)
		}
		got = append(got, now)
	}
	want := []time.Time{serverNow, serverNow.Add(10 * time.Second), serverNow} // the third asks again: the server says serverNow still
	if diff := cmp.Diff(want, got); diff != "" || asked != 2 {
		t.Errorf("readings mismatch (-want +got):\n%s\nasked %d times, want 2", diff, asked)
	}
	srv.Close()
	local = local.Add(time.Minute)
	if _, err := c.now(context.Background()); !IsTransient(err) {
		t.Errorf("now() with the server gone: error = %v, want a transient one", err)
	}
}

// TestStormPauseSurvivesBudgetLeaseDeletion: a storm pause is kept in
// the storm Lease too, so deleting the budget Lease by hand (to reset
// the rate, say) does not lift it; deleting both does.
func TestStormPauseSurvivesBudgetLeaseDeletion(t *testing.T) {
	policy := disruptivePolicy("disruption: {perNamespacePerHour: 10, storm: {targets: 1, window: 10m, pause: 30m}}\n")
	e, cs := newDisruptiveEngine(t, policy, nil, nil)
	ds, err := e.Decide(context.Background(), []template.Alert{podAlert("web-7d9-abcde"), podAlert("db-0")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][]string{{"annotate acted", "disrupt acted"}, {"annotate acted", "disrupt held"}}, [][]string{remediatorResults(ds[0]), remediatorResults(ds[1])}); diff != "" {
		t.Fatalf("remediators mismatch (-want +got):\n%s", diff)
	}
	storm, err := cs.CoordinationV1().Leases(DefaultNamespace).Get(context.Background(), StormLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the storm Lease: %v", err)
	}
	if rec := storm.Annotations[annotationBudgetStorm]; !strings.Contains(rec, `"pausedUntil":"2026-11-23T12:30:00Z"`) || !strings.Contains(rec, "2 targets needed a disruptive action") {
		t.Errorf("the storm Lease's record = %s, want the pause's end and why", rec)
	}
	if d := storm.Spec.LeaseDurationSeconds; d == nil || *d != 1800 {
		t.Errorf("the storm Lease's duration = %v, want the pause, 1800 s", d)
	}
	del := func(name string) {
		t.Helper()
		if err := cs.CoordinationV1().Leases(DefaultNamespace).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	del(BudgetLeaseName)
	e.now = func() time.Time { return testNow.Add(time.Minute) }
	d, err := e.DecideOne(context.Background(), podAlert("report-2911-xyz"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"annotate acted", "disrupt held"}, remediatorResults(d)); diff != "" || !strings.HasPrefix(d.Remediators[1].Detail, ReasonStorm+": disruptive remediators paused until 2026-11-23T12:30:00Z") {
		t.Errorf("after the budget Lease's deletion: remediators mismatch (-want +got):\n%s\ndetail %q", diff, d.Remediators[1].Detail)
	}
	// Both deleted: a person lifted the pause, and the next acts.
	del(BudgetLeaseName)
	del(StormLeaseName)
	d, err = e.DecideOne(context.Background(), podAlert("lonely"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"annotate acted", "disrupt acted"}, remediatorResults(d)); diff != "" {
		t.Errorf("after both Leases' deletion: remediators mismatch (-want +got):\n%s", diff)
	}
}

// TestNodeBudgetCountsLegacyEntries: node actions a Lease recorded
// under the namespace "" (before nodes had a budget of their own) count
// towards the nodes' budget until they leave the hour.
func TestNodeBudgetCountsLegacyEntries(t *testing.T) {
	legacy := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: BudgetLeaseName, Namespace: DefaultNamespace,
		Annotations: map[string]string{annotationBudgetDisruptions: `{"":["` + testNow.Add(-time.Hour+time.Second).Format(time.RFC3339) + `"]}`}}}
	e, _ := newTestEngine(t, engineSetup{policy: nodeCordonPolicy("disruption: {nodes: {perHour: 1}}\n"), objs: append(fixtures(), nodes(3, "a")...),
		opts: func(o *Options) { o.Querier = anyQuerier(42) }, react: func(cs *fake.Clientset) {
			if err := cs.Tracker().Add(legacy); err != nil {
				t.Fatal(err)
			}
		}})
	d, err := e.DecideOne(context.Background(), nodeLeak("node-0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Remediators[1]; got.Result != ResultHeld || !strings.HasPrefix(got.Detail, ReasonNodeBudget+": 1 disruptive actions on nodes") {
		t.Errorf("cordon = %+v, want held by %s counting the legacy entry", got, ReasonNodeBudget)
	}
	e.now = func() time.Time { return testNow.Add(2 * time.Second) }
	d, err = e.DecideOne(context.Background(), nodeLeak("node-1"))
	if err != nil || len(d.Remediators) != 2 || d.Remediators[1].Result != ResultActed {
		t.Errorf("after the legacy entry's hour: %s/%s %+v (%v), want cordon acted", d.Decision, d.Reason, d.Remediators, err)
	}
}

// TestStormLeaseFailsClosed: a storm Lease that cannot be read holds
// every disruptive action, transiently; one that does not parse holds
// them too, naming it; in dry-run, a pause it records holds the would-be
// action.
func TestStormLeaseFailsClosed(t *testing.T) {
	storm := func(rec string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: StormLeaseName, Namespace: DefaultNamespace,
			Annotations: map[string]string{annotationBudgetStorm: rec}}}
	}
	for _, tc := range []struct {
		name    string
		lease   *coordinationv1.Lease
		getErr  error
		dry     bool
		want    string // decision/reason
		wantErr string
	}{
		{"unreadable", nil, apierrors.NewServiceUnavailable("etcd down"), false, DecisionError + "/" + ReasonGuardError, "read the storm record Lease"},
		{"does not parse", storm("{"), nil, false, DecisionError + "/" + ReasonGuardError, "storm record Lease leakguard/leakguard-storm does not parse"},
		{"a pause in dry-run", storm(`{"pausedUntil":"2026-11-23T12:30:00Z","why":"a storm"}`), nil, true, DecisionDryRun + "/" + ReasonStorm, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := fixtures()
			if tc.lease != nil {
				objs = append(objs, tc.lease)
			}
			e, cs := newDisruptiveEngine(t, strings.Replace(disruptivePolicy(""), "{name: annotate}, ", "", 1), objs, func(o *Options) { o.DryRun = tc.dry })
			if tc.getErr != nil {
				cs.PrependReactor("get", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
					if a.(k8stesting.GetAction).GetName() == StormLeaseName {
						return true, nil, tc.getErr
					}
					return false, nil, nil
				})
			}
			d, err := e.DecideOne(context.Background(), podAlert("web-7d9-abcde"))
			if got := d.Decision + "/" + d.Reason; got != tc.want {
				t.Errorf("DecideOne() = %s, want %s", got, tc.want)
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("DecideOne() error = %v, want one saying %q", err, tc.wantErr)
			}
			if tc.getErr != nil && !IsTransient(err) {
				t.Errorf("DecideOne() error = %v, want a transient one", err)
			}
			if n := len(patches(cs, "deployments")); n != 0 {
				t.Errorf("%d deployment patches, want none", n)
			}
		})
	}
}
