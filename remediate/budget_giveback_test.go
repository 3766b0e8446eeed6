package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestBudgetGivenBackWhenALaterBudgetFails: the rate token is taken,
// then the disruption budget's Lease update fails (a 500: transient,
// Alertmanager retries the delivery). Nothing acted, so the token goes
// back: the retry, and every other alert, find the bucket as it was.
func TestBudgetGivenBackWhenALaterBudgetFails(t *testing.T) {
	policy := "rateLimit: {perMinute: 1, burst: 3}\nalerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: restart, enabled: true}]\n"
	failed := false
	e, cs := newTestEngine(t, engineSetup{objs: restartFixtures(nil), policy: policy, react: func(cs *fake.Clientset) {
		// The rate take creates the Lease; the disruption take's update
		// is the first, and fails once.
		cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failed {
				return false, nil, nil
			}
			failed = true
			return true, nil, apierrors.NewInternalError(errors.New("etcd leader changed"))
		})
	}})
	_, err := e.Decide(context.Background(), []template.Alert{leakAlert()})
	if !IsTransient(err) {
		t.Fatalf("Decide() error = %v, want a transient one", err)
	}
	st, err := decodeBudget(getLease(t, cs).Annotations)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Rate.tokensAt(testNow, 1, 3); got != 3 {
		t.Errorf("rate tokens after the failed delivery = %g, want 3: the token must be given back", got)
	}
}

// refuser is a disruptive test remediator whose action the API refuses
// for a reason that holds it, as a PodDisruptionBudget refuses an
// eviction: Apply returns a *HeldError.
type refuser struct{}

func (refuser) Plan(t *Target, _ Finding, _ time.Time) Plan {
	return Plan{Action: "refuse " + t.Object.String(), Apply: func(context.Context, Env) (string, error) {
		return "", &HeldError{Reason: ReasonPDB, Detail: "the API refused"}
	}}
}

func refuserRegistry(t *testing.T) *Registry {
	t.Helper()
	reg := testRegistry(t)
	if err := reg.AddRemediator(RemediatorInfo{Name: "refuse", Targets: []string{TargetWorkload}, Disruptive: true,
		New: func(json.RawMessage) (Remediator, error) { return refuser{}, nil }}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestHeldAtApplyGivesBudgetBack: a remediator held as it applies (a
// HeldError) did nothing, so what only it needed goes back: the
// disruption budget when no disruptive remediator acted, the rate token
// when nothing acted. What a remediator that acted spent stays spent,
// in whichever order the two run.
func TestHeldAtApplyGivesBudgetBack(t *testing.T) {
	for _, tc := range []struct {
		name        string
		remediators string
		want        []string
		// tokens is the rate bucket after the alert (burst 3), spent the
		// disruptive actions counted in shop.
		tokens float64
		spent  int
	}{
		{"held alone", "[{name: refuse, enabled: true}]", []string{"refuse held"}, 3, 0},
		{"annotate acts, the disruptive one is held", "[{name: annotate}, {name: refuse, enabled: true}]", []string{"annotate acted", "refuse held"}, 2, 0},
		{"a disruptive one acts, then one is held", "[{name: disrupt, enabled: true}, {name: refuse, enabled: true}]", []string{"disrupt acted", "refuse held"}, 2, 1},
		{"one is held, then a disruptive one acts", "[{name: refuse, enabled: true}, {name: disrupt, enabled: true}]", []string{"refuse held", "disrupt acted"}, 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy := "rateLimit: {perMinute: 1, burst: 3}\ndisruption: {perNamespacePerHour: 5}\nalerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: working-set-slope}\n    remediators: " + tc.remediators + "\n"
			p, err := ParsePolicy([]byte(policy), refuserRegistry(t))
			if err != nil {
				t.Fatal(err)
			}
			cs := newCluster(t, fixtures()...)
			e, err := NewEngine(Options{Client: cs, Querier: confirmingQuerier{}, Policy: p, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.DecideOne(context.Background(), podAlert("web-7d9-abcde"))
			if err != nil {
				t.Fatalf("DecideOne() error: %v", err)
			}
			if diff := cmp.Diff(tc.want, remediatorResults(d)); diff != "" {
				t.Errorf("remediators mismatch (-want +got):\n%s", diff)
			}
			st, err := decodeBudget(getLease(t, cs).Annotations)
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Rate.tokensAt(testNow, 1, 3); got != tc.tokens {
				t.Errorf("rate tokens = %g, want %g", got, tc.tokens)
			}
			if got := len(st.Disruptions["shop"]); got != tc.spent {
				t.Errorf("disruptive actions counted in shop = %d (%v), want %d", got, st.Disruptions, tc.spent)
			}
		})
	}
}

// TestCordonHeldAtApplyGivesDisruptionBack: cordon held at apply by
// max-unschedulable (one node cordoned already, by the first alert) next
// to annotate, which acts: the rate token stays spent, the node budget's
// entry goes back, so the node budget counts the one cordon that
// happened.
func TestCordonHeldAtApplyGivesDisruptionBack(t *testing.T) {
	objs := append(nodes(10, "a"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: DefaultNamespace}})
	policy := "rateLimit: {perMinute: 1, burst: 5}\ndisruption: {nodes: {perHour: 5}}\n" + cordonPolicy
	e, cs := newTestEngine(t, engineSetup{policy: policy, objs: objs, opts: func(o *Options) { o.Querier = anyQuerier(42) }})
	var got [][]string
	for _, n := range []string{"node-3", "node-4"} {
		d, err := e.DecideOne(context.Background(), alert("firing", map[string]string{"alertname": "NodeOrphanCgroups", "node": n}))
		if err != nil {
			t.Fatalf("%s: DecideOne() error: %v", n, err)
		}
		got = append(got, remediatorResults(d))
	}
	if diff := cmp.Diff([][]string{{"annotate acted", "cordon acted"}, {"annotate acted", "cordon held"}}, got); diff != "" {
		t.Fatalf("remediators mismatch (-want +got):\n%s", diff)
	}
	st, err := decodeBudget(getLease(t, cs).Annotations)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Rate.tokensAt(testNow, 1, 5); got != 3 {
		t.Errorf("rate tokens = %g, want 3: both alerts acted (annotate)", got)
	}
	if diff := cmp.Diff(map[string][]time.Time{nodesKey: {testNow}}, st.Disruptions); diff != "" {
		t.Errorf("disruptions mismatch (-want +got):\n%s", diff)
	}
}
