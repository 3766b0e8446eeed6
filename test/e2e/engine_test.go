package e2e

// This file and policy_engine_test.go are the only ones of the package
// that use the remediate package's API (NewEngine, Options, ParsePolicy,
// DefaultRegistry, Querier, Decision and its constants, the annotation
// and Event names): when the engine's API changes, they are the files to
// adapt.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/builtin"
)

// testPolicy acts on each kind of target the default policy names: a
// workload (the Deployment above the pod), a pod, a node. The checks are
// real; the Querier below answers them.
const testPolicy = `
cooldown: 1h
rateLimit:
  perMinute: 600
  burst: 100
alerts:
  ContainerMemoryLeak:
    target: workload
    check:
      name: working-set-slope
      args:
        threshold: 1048576
    remediators:
      - name: annotate
  ContainerOOMKilled:
    target: pod
    check:
      name: none
    remediators:
      - name: annotate
  NodeOrphanCgroups:
    target: node
    check:
      name: orphan-cgroups
      args:
        threshold: 20
    remediators:
      - name: annotate
`

// Names the tests compare with, from the remediate package.
const (
	decisionActed  = remediate.DecisionActed
	decisionDryRun = remediate.DecisionDryRun
	decisionHeld   = remediate.DecisionHeld
	reasonCooldown = remediate.ReasonCooldown
	reasonOptOut   = remediate.ReasonOptOut
	reasonWouldAct = remediate.ReasonWouldAct

	eventActed  = remediate.EventReasonActed
	eventHeld   = remediate.EventReasonHeld
	eventDryRun = remediate.EventReasonDryRun

	annotationFinding = annotate.AnnotationFinding
	annotationIgnore  = remediate.AnnotationIgnore
)

// cooldownAnnotation is where the annotate remediator's cooldown claim
// lives on its target.
var cooldownAnnotation = remediate.CooldownAnnotation("annotate")

// decision is the part of remediate.Decision the tests compare.
type decision struct {
	Target, Decision, Reason string
}

// engine decides alerts against the lab through one client.
type engine struct {
	e       *remediate.Engine
	querier *answerQuerier
}

type engineOptions struct {
	// dryRun sets the engine's --dry-run.
	dryRun bool
	// readOnly is replay's mode: nothing written, not even Events.
	readOnly bool
}

// newEngine builds an engine with testPolicy that acts through c.
func newEngine(t *testing.T, c kubernetes.Interface, o engineOptions) *engine {
	t.Helper()
	p, err := remediate.ParsePolicy([]byte(testPolicy), builtin.Registry())
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	q := &answerQuerier{value: confirmingValue}
	e, err := remediate.NewEngine(remediate.Options{
		Client:       c,
		Querier:      q,
		Policy:       p,
		DryRun:       o.dryRun,
		ReadOnly:     o.readOnly,
		QueryTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return &engine{e: e, querier: q}
}

// decide decides one alert; an engine error fails the test.
func (e *engine) decide(ctx context.Context, t *testing.T, a template.Alert) decision {
	t.Helper()
	d, err := e.e.DecideOne(ctx, a)
	if err != nil {
		t.Fatalf("DecideOne(%s) error: %v (decision %+v)", a.Labels["alertname"], err, d)
	}
	return decision{Target: d.Target, Decision: d.Decision, Reason: d.Reason}
}

// confirmingValue confirms both checks of testPolicy: 5000 B/s is about
// 17 MiB/h of working-set growth (threshold 1 MiB/h), and 5000 orphan
// cgroups are above 20.
const confirmingValue = 5000

// answerQuerier stands in for Prometheus: it answers every instant query
// with one fresh sample of value, and counts the queries.
type answerQuerier struct {
	value float64
	mu    sync.Mutex
	n     int
}

var _ remediate.Querier = (*answerQuerier)(nil)

func (q *answerQuerier) Query(_ context.Context, _ string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.mu.Lock()
	q.n++
	q.mu.Unlock()
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(q.value), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}

func (q *answerQuerier) queries() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// The alerts, labelled as the rules in rules/ label them.

func leakAlert(w world) template.Alert {
	return alert("ContainerMemoryLeak", map[string]string{
		"namespace": w.Namespace, "pod": w.Pod, "container": "app", "node": w.Node,
	})
}

func oomAlert(w world) template.Alert {
	return alert("ContainerOOMKilled", map[string]string{
		"namespace": w.Namespace, "pod": w.Pod, "container": "app", "node": w.Node,
	})
}

func orphanAlert(w world) template.Alert {
	return alert("NodeOrphanCgroups", map[string]string{"node": w.Node})
}

func alert(name string, labels map[string]string) template.Alert {
	kv := template.KV{"alertname": name, "severity": "warning"}
	for k, v := range labels {
		kv[k] = v
	}
	return template.Alert{
		Status:      "firing",
		Labels:      kv,
		Annotations: template.KV{"summary": name, "runbook_url": "https://leakguard.invalid/runbooks/" + name},
		StartsAt:    time.Now().Add(-10 * time.Minute),
		Fingerprint: "e2e-" + name + "-" + labels["namespace"] + "-" + labels["node"],
	}
}
