package restart

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/check"
	"github.com/leakguard/leakguard/remediate/remediatetest"
	"github.com/leakguard/leakguard/rules"
)

// engineSetup is what a restart test's engine differs in.
type engineSetup struct {
	policy string // YAML
	objs   []runtime.Object
	opts   func(*remediate.Options)
	// react installs reactors on the clientset before the engine runs.
	react func(*fake.Clientset)
}

// newTestEngine builds an engine over a fake cluster of s.objs that knows
// the working-set-slope check and restart, with the clock at
// remediatetest.Now and its metrics in a registry of its own.
func newTestEngine(t *testing.T, s engineSetup) (*remediate.Engine, *fake.Clientset) {
	t.Helper()
	cs := remediatetest.NewCluster(t, s.objs...)
	if s.react != nil {
		s.react(cs)
	}
	reg := remediate.NewRegistry()
	if err := reg.AddCheck(check.CheckWorkingSetSlope, check.NewWorkingSetSlope); err != nil {
		t.Fatal(err)
	}
	if err := reg.AddRemediator(Info); err != nil {
		t.Fatal(err)
	}
	p, err := remediate.ParsePolicy([]byte(s.policy), reg)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	o := remediate.Options{Client: cs, Policy: p, Now: func() time.Time { return remediatetest.Now }, Registerer: prometheus.NewRegistry()}
	if s.opts != nil {
		s.opts(&o)
	}
	e, err := remediate.NewEngine(o)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e, cs
}

// confirmingQuerier confirms the working-set-slope check: 10 kB/s of
// growth (36 MB/h).
type confirmingQuerier struct{}

func (confirmingQuerier) Query(_ context.Context, q string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	if !strings.Contains(q, rules.RecWorkingSetDeriv) {
		return model.Vector{}, nil, nil, nil
	}
	return model.Vector{{Metric: model.Metric{}, Value: 1e4, Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}

func getDeployment(t testing.TB, cs *fake.Clientset) metav1.Object {
	t.Helper()
	d, err := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
