package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/check"
	"github.com/leakguard/leakguard/remediate/remediatetest"
)

// k8sClient is what the tests hand to the package's functions.
type k8sClient = *fake.Clientset

// testNow is the clock of the node remediators' tests.
var testNow = remediatetest.Now

// shippedRegistry is what the node remediators' tests compile their
// policies with: every shipped check, annotate, cordon and drain.
func shippedRegistry() *remediate.Registry {
	reg := remediate.NewRegistry()
	for name, f := range map[string]remediate.CheckFactory{
		check.CheckWorkingSetSlope: check.NewWorkingSetSlope,
		check.CheckOrphanCgroups:   check.NewOrphanCgroups,
		check.CheckAPIServerMemory: check.NewAPIServerMemory,
		check.CheckNone:            check.NewNone,
		check.CheckDyingCgroups:    check.NewDyingCgroups,
	} {
		if err := reg.AddCheck(name, f); err != nil {
			panic(err)
		}
	}
	for _, info := range []remediate.RemediatorInfo{annotate.Info, CordonInfo, DrainInfo} {
		if err := reg.AddRemediator(info); err != nil {
			panic(err)
		}
	}
	return reg
}

// engineSetup is what a test's engine differs in.
type engineSetup struct {
	policy   string // YAML
	objs     []runtime.Object
	registry *prometheus.Registry
	opts     func(*remediate.Options)
	// react installs reactors on the clientset before the engine runs.
	react func(*fake.Clientset)
}

// newTestEngine builds an engine over a fake cluster of s.objs (the
// fixtures when nil), with the clock at testNow and, unless s.opts sets
// one, the engine tests' querier that answers the leak's slope only.
func newTestEngine(t *testing.T, s engineSetup) (*remediate.Engine, *fake.Clientset) {
	t.Helper()
	objs := s.objs
	if objs == nil {
		objs = remediatetest.Fixtures()
	}
	cs := remediatetest.NewCluster(t, objs...)
	if s.react != nil {
		s.react(cs)
	}
	p, err := remediate.ParsePolicy([]byte(s.policy), shippedRegistry())
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	o := remediate.Options{Client: cs, Policy: p, Querier: &remediatetest.Querier{Answers: map[string]model.Value{slopeQuery: remediatetest.Vec(8 << 20 / 3600.0)}}, Now: func() time.Time { return testNow }}
	if s.registry != nil {
		o.Registerer = s.registry
	}
	if s.opts != nil {
		s.opts(&o)
	}
	e, err := remediate.NewEngine(o)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e, cs
}

// slopeQuery is working-set-slope's query for remediatetest.LeakAlert.
const slopeQuery = `max(namespace_pod_container:container_memory_working_set_bytes:deriv{namespace="shop",pod="web-7d9-abcde",container="app"})`

func ptrTrue() *bool { b := true; return &b }

// settableQuerier answers every query with its value, which a test
// changes while the engine runs (Prometheus answers that the finding is
// gone).
type settableQuerier struct {
	mu sync.Mutex
	v  float64
}

func (q *settableQuerier) set(v float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.v = v
}

func (q *settableQuerier) Query(context.Context, string, time.Time, ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return remediatetest.Vec(q.v), nil, nil, nil
}

// noneCheck asks nothing and confirms every alert, as check none does.
type noneCheck struct{}

func (noneCheck) Name() string { return remediate.CheckNone }

func (noneCheck) Query(template.Alert) (string, error) { return "", nil }

func (noneCheck) Evaluate(template.Alert, model.Value, time.Time) (remediate.Result, error) {
	return remediate.Result{Confirmed: true, Summary: "no check: the alert is the finding"}, nil
}
