package e2e

// With engine_test.go, this is the file of the package that uses the
// remediate package's API: engines with a policy of the test's own, a
// metadata client, their own budget namespace and clock.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/restart"
)

// restartPolicy restarts the workload of a confirmed leak. The budgets
// are wide, so that only the guard a test is about holds.
const restartPolicy = `
cooldown: 1h
rateLimit: {perMinute: 600, burst: 100}
disruption:
  perNamespacePerHour: 100
  storm: {targets: 100, window: 10m, pause: 30m}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope, args: {threshold: 1048576}}
    remediators:
      - name: restart
        enabled: true
`

// More names from the remediate package.
const (
	decisionError = remediate.DecisionError

	reasonNotReady          = restart.ReasonNotReady
	reasonRolloutInProgress = restart.ReasonRolloutInProgress
	reasonJob               = restart.ReasonJob
	reasonPDB               = restart.ReasonPDB
	reasonRecurrence        = remediate.ReasonRecurrence
	reasonPaused            = remediate.ReasonPaused
	reasonRateLimited       = remediate.ReasonRateLimited
	reasonNamespaceBudget   = remediate.ReasonNamespaceBudget
	reasonStorm             = remediate.ReasonStorm
	reasonTargetError       = remediate.ReasonTargetError

	resultActed = remediate.ResultActed
	resultHeld  = remediate.ResultHeld

	annotationRestartedAt    = restart.AnnotationRestartedAt
	annotationRestartHistory = restart.AnnotationRestartHistory
	annotationRecurring      = restart.AnnotationRecurring
	annotationPause          = remediate.AnnotationPause
	budgetLease              = remediate.BudgetLeaseName
)

var restartCooldown = remediate.CooldownAnnotation("restart")

// fullDecision is the engine's whole decision.
type fullDecision = remediate.Decision

// policyEngine is an engine with a policy of the test's own.
type policyEngine struct {
	e *remediate.Engine
}

type policyOptions struct {
	// namespace is leakguard's namespace for the engine: its budget
	// Lease and pause switch. Empty means the lab's leakguard namespace.
	namespace string
	dryRun    bool
	// now is the engine's clock; nil means time.Now.
	now func() time.Time
	// metadata reads owners of kinds without a typed client; nil means
	// one for leakguard's service account.
	metadata metadata.Interface
}

// newPolicyEngine builds an engine with policy, acting through c as
// serve does: with a metadata client for leakguard's service account and
// the checks answered by a Prometheus stand-in that confirms.
func newPolicyEngine(t *testing.T, c kubernetes.Interface, policy string, o policyOptions) *policyEngine {
	t.Helper()
	p, err := remediate.ParsePolicy([]byte(policy), builtin.Registry())
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	md := o.metadata
	if md == nil {
		md, err = metadata.NewForConfig(leakguardConfig)
		if err != nil {
			t.Fatal(err)
		}
	}
	ns := o.namespace
	if ns == "" {
		ns = leakguardNamespace
	}
	e, err := remediate.NewEngine(remediate.Options{
		Client:       c,
		Metadata:     md,
		Querier:      &answerQuerier{value: confirmingValue},
		Policy:       p,
		Namespace:    ns,
		DryRun:       o.dryRun,
		QueryTimeout: 5 * time.Second,
		Now:          o.now,
	})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return &policyEngine{e: e}
}

// decide decides the ContainerMemoryLeak alert of a; an error fails the
// test.
func (e *policyEngine) decide(ctx context.Context, t *testing.T, a alertOf) remediate.Decision {
	t.Helper()
	d, err := e.e.DecideOne(ctx, leakOf(a))
	if err != nil {
		t.Fatalf("DecideOne(%+v) error: %v (decision %+v)", a, err, d)
	}
	return d
}

// decideRetrying decides the alert as Alertmanager delivers it: a
// transient failure (a budget Lease that changed too often under
// concurrent takes, say; serve answers it 503) is delivered again, at
// most 10 times. Any other error fails the test.
func (e *policyEngine) decideRetrying(ctx context.Context, t *testing.T, a alertOf) remediate.Decision {
	t.Helper()
	for attempt := 1; ; attempt++ {
		d, err := e.e.DecideOne(ctx, leakOf(a))
		if err == nil {
			return d
		}
		if !remediate.IsTransient(err) || attempt == 10 {
			t.Errorf("DecideOne(%+v), attempt %d: %v (decision %+v)", a, attempt, err, d)
			return d
		}
	}
}

func leakOf(a alertOf) template.Alert {
	return alert("ContainerMemoryLeak", map[string]string{"namespace": a.Namespace, "pod": a.Pod, "container": "app", "node": a.Node})
}

func short(d remediate.Decision) decision {
	return decision{Target: d.Target, Decision: d.Decision, Reason: d.Reason}
}

// outcome returns the outcome of the remediator named name in d.
func outcome(d remediate.Decision, name string) remediate.RemediatorOutcome {
	for _, o := range d.Remediators {
		if o.Name == name {
			return o
		}
	}
	return remediate.RemediatorOutcome{}
}

func isTransient(err error) bool { return remediate.IsTransient(err) }

// clock is a settable clock for an engine.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
