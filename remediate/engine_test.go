package remediate

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate/remediatetest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/leakguard/leakguard/rules"
)

const slopeQuery = `max(namespace_pod_container:container_memory_working_set_bytes:deriv{namespace="shop",pod="web-7d9-abcde",container="app"})`

// leakingQuerier answers the slope query with 8 MiB/h.
func leakingQuerier() *fakeQuerier {
	return &fakeQuerier{Answers: map[string]model.Value{slopeQuery: vec(8 << 20 / 3600.0)}}
}

type engineSetup struct {
	policy   string // YAML; "" is the default policy
	opts     func(*Options)
	querier  *fakeQuerier
	objs     []runtime.Object
	registry *prometheus.Registry
	// simple uses the fake clientset without field management, whose
	// cost would otherwise dominate the benchmarks.
	simple bool
	// react installs reactors on the clientset before the engine runs.
	react func(*fake.Clientset)
}

// forbid makes verb on resource fail with 403.
func forbid(verb, resource string) func(*fake.Clientset) {
	return func(cs *fake.Clientset) {
		cs.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "x", errors.New("RBAC"))
		})
	}
}

// throttle makes verb on resource fail with 429.
func throttle(verb, resource string) func(*fake.Clientset) {
	return func(cs *fake.Clientset) {
		cs.PrependReactor(verb, resource, func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewTooManyRequests("slow down", 1)
		})
	}
}

func newTestEngine(t testing.TB, s engineSetup) (*Engine, *fake.Clientset) {
	t.Helper()
	objs := s.objs
	if objs == nil {
		objs = fixtures()
	}
	cs := newCluster(t, objs...)
	if s.simple {
		cs = withPreconditions(fake.NewSimpleClientset(objs...))
	}
	if s.react != nil {
		s.react(cs)
	}
	var p *Policy
	var err error
	if s.policy == "" {
		p, err = DefaultPolicy(shippedRegistry())
	} else {
		p, err = ParsePolicy([]byte(s.policy), shippedRegistry())
	}
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	q := s.querier
	if q == nil {
		q = leakingQuerier()
	}
	o := Options{Client: cs, Querier: q, Policy: p, Now: func() time.Time { return testNow }}
	if s.registry != nil {
		o.Registerer = s.registry
	}
	if s.opts != nil {
		s.opts(&o)
	}
	e, err := NewEngine(o)
	if err != nil {
		t.Fatalf("NewEngine: %v", err)
	}
	return e, cs
}

func getDeployment(t testing.TB, cs *fake.Clientset) metav1.Object {
	t.Helper()
	d, err := cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEngineActs follows one confirmed leak through to the annotations on
// the Deployment, the cooldown annotation and the Event.
func TestEngineActs(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, cs := newTestEngine(t, engineSetup{registry: reg})
	ds, err := e.Decide(context.Background(), []template.Alert{leakAlert()})
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	want := []Decision{{
		AlertName: "ContainerMemoryLeak", Fingerprint: leakAlert().Fingerprint, Status: "firing",
		Target: "Deployment shop/web", Check: CheckWorkingSetSlope, CheckResult: "8.0 MiB/h > 1.0 MiB/h",
		Guards:      []string{"namespace: ok", "opt-out: ok", "cooldown: ok", "rate: ok", "claim: ok"},
		Remediators: []RemediatorOutcome{{Name: "annotate", Result: ResultActed, Detail: "annotated Deployment shop/web with ContainerMemoryLeak"}},
		Decision:    DecisionActed,
	}}
	if diff := cmp.Diff(want, ds, cmpopts.IgnoreUnexported(Decision{})); diff != "" {
		t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
	}
	wantAnn := map[string]string{
		AnnotationFinding:              "ContainerMemoryLeak",
		AnnotationSubject:              "pod shop/web-7d9-abcde, container app",
		AnnotationValue:                "8.0 MiB/h > 1.0 MiB/h",
		AnnotationSince:                "2026-11-23T10:00:00Z",
		AnnotationRunbookURL:           "https://example.com/runbooks/ContainerMemoryLeak.md",
		CooldownAnnotation("annotate"): "2026-11-23T12:00:00Z",
	}
	if diff := cmp.Diff(wantAnn, getDeployment(t, cs).GetAnnotations()); diff != "" {
		t.Errorf("Deployment annotations mismatch (-want +got):\n%s", diff)
	}
	// Two writes on the Deployment: the cooldown claim (with the
	// resourceVersion precondition) and the annotations.
	ps := patches(cs, "deployments")
	if len(ps) != 2 || !strings.Contains(string(ps[0].Patch), `"resourceVersion":"1"`) {
		t.Errorf("deployment patches = %d (%v), want the claim with resourceVersion 1, then annotate", len(ps), ps)
	}
	if n := len(patches(cs, "pods")); n != 0 {
		t.Errorf("pods patched %d times, want 0", n)
	}
	evs := events(t, cs)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	if ev.Reason != EventReasonActed || ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != KindDeployment ||
		ev.InvolvedObject.Name != "web" || ev.Namespace != "shop" || !strings.Contains(ev.Message, "annotate acted") {
		t.Errorf("event = %s %s on %s %s in %s: %q; want LeakguardActed Warning on Deployment web in shop",
			ev.Reason, ev.Type, ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Namespace, ev.Message)
	}
	if got := testutil.ToFloat64(e.metrics.decisions.WithLabelValues("ContainerMemoryLeak", "acted", "")); got != 1 {
		t.Errorf("decisions{acted} = %g, want 1", got)
	}
	if got := testutil.ToFloat64(e.metrics.remediations.WithLabelValues("annotate", "success")); got != 1 {
		t.Errorf("remediations{annotate,success} = %g, want 1", got)
	}
	if n := testutil.CollectAndCount(reg, "leakguard_check_duration_seconds"); n != 1 {
		t.Errorf("check duration series = %d, want 1", n)
	}
}

// TestEngineDecisions runs one alert per row through a fresh cluster and
// checks the decision, the reason, whether anything was written and the
// Events.
func TestEngineDecisions(t *testing.T) {
	optOut := func(objs []runtime.Object, kind, name string) []runtime.Object {
		for _, o := range objs {
			m := o.(metav1.Object)
			if m.GetName() == name && kindOf(o) == kind {
				m.SetAnnotations(map[string]string{AnnotationIgnore: "true"})
			}
		}
		return objs
	}
	cooled := func(at time.Time) []runtime.Object {
		objs := fixtures()
		for _, o := range objs {
			if kindOf(o) == KindDeployment {
				o.(metav1.Object).SetAnnotations(map[string]string{CooldownAnnotation("annotate"): at.Format(time.RFC3339)})
			}
		}
		return objs
	}
	apiserverAlert := alert("firing", map[string]string{"alertname": rules.AlertKubeAPIServerMemoryHigh, "node": "cp1"})
	tests := []struct {
		name          string
		setup         engineSetup
		alert         template.Alert
		decision      string
		reason        string
		wantErr       bool
		MarkTransient bool
		writes        bool
		eventCount    int
		eventOn       string
	}{
		{name: "resolved changes nothing", alert: func() template.Alert { a := leakAlert(); a.Status = "resolved"; return a }(),
			decision: DecisionResolved},
		{name: "unknown alert", alert: alert("firing", map[string]string{"alertname": "Watchdog"}), decision: DecisionHeld, reason: ReasonNoPolicy},
		{name: "record only", alert: alert("firing", map[string]string{"alertname": rules.AlertKubeAPIServerObjectSurge, "resource": "configmaps"}),
			decision: DecisionHeld, reason: ReasonRecordOnly},
		{name: "pod gone", alert: alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": "gone", "container": "app"}),
			decision: DecisionHeld, reason: ReasonTargetNotFound},
		{name: "kube-system excluded", alert: alert("firing", map[string]string{"alertname": "ContainerOOMKilled", "namespace": "kube-system", "pod": "kube-apiserver-cp1", "container": "x"}),
			decision: DecisionHeld, reason: ReasonNamespaceExcluded}, // judged on the label: nothing read, no Event (TestExcludedNamespaceReadsNothing)
		{name: "apiserver entry allowed in kube-system", alert: apiserverAlert,
			setup:    engineSetup{querier: &fakeQuerier{Answers: map[string]model.Value{`max(node:apiserver_process_resident_memory_bytes:ratio{node="cp1"})`: vec(0.8)}}},
			decision: DecisionActed, writes: true, eventCount: 1, eventOn: "Pod kube-system/kube-apiserver-cp1"},
		{name: "opt-out on pod", setup: engineSetup{objs: optOut(fixtures(), KindPod, "web-7d9-abcde")}, alert: leakAlert(),
			decision: DecisionHeld, reason: ReasonOptOut, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "opt-out on deployment", setup: engineSetup{objs: optOut(fixtures(), KindDeployment, "web")}, alert: leakAlert(),
			decision: DecisionHeld, reason: ReasonOptOut, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "opt-out on deployment holds a pod target", setup: engineSetup{objs: optOut(fixtures(), KindDeployment, "web"),
			policy: "alerts:\n  ContainerMemoryLeak:\n    target: pod\n    check: {name: none}\n    remediators: [{name: annotate}]\n"},
			alert: leakAlert(), decision: DecisionHeld, reason: ReasonOptOut, eventCount: 1, eventOn: "Pod shop/web-7d9-abcde"},
		{name: "opt-out on namespace", setup: engineSetup{objs: optOut(fixtures(), KindNamespace, "shop")}, alert: leakAlert(),
			decision: DecisionHeld, reason: ReasonOptOut, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "check not confirmed", setup: engineSetup{querier: &fakeQuerier{Answers: map[string]model.Value{slopeQuery: vec(0)}}},
			alert: leakAlert(), decision: DecisionHeld, reason: ReasonCheckNotConfirmed},
		{name: "check no data fails closed", setup: engineSetup{querier: &fakeQuerier{}}, alert: leakAlert(),
			decision: DecisionHeld, reason: ReasonCheckNoData},
		{name: "prometheus down is transient", setup: engineSetup{querier: &fakeQuerier{Err: errors.New("connection refused")}}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonCheckError, wantErr: true, MarkTransient: true},
		{name: "prometheus 503 is transient", setup: engineSetup{querier: &fakeQuerier{Err: &v1.Error{Type: v1.ErrServer, Msg: "server error: 503"}}}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonCheckError, wantErr: true, MarkTransient: true},
		{name: "prometheus 429 is transient", setup: engineSetup{querier: &fakeQuerier{Err: &v1.Error{Type: v1.ErrClient, Msg: "client error: 429"}}}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonCheckError, wantErr: true, MarkTransient: true},
		{name: "prometheus rejects the query: permanent", setup: engineSetup{querier: &fakeQuerier{Err: &v1.Error{Type: v1.ErrBadData, Msg: "parse error"}}}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonCheckError, wantErr: true, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "prometheus 403: permanent", setup: engineSetup{querier: &fakeQuerier{Err: &v1.Error{Type: v1.ErrClient, Msg: "client error: 403"}}}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonCheckError, wantErr: true, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "pod read forbidden: permanent", setup: engineSetup{react: forbid("get", "pods")}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonTargetError, wantErr: true},
		{name: "pod read 429: transient", setup: engineSetup{react: throttle("get", "pods")}, alert: leakAlert(),
			decision: DecisionError, reason: ReasonTargetError, wantErr: true, MarkTransient: true},
		{name: "alert without container label", alert: alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": "web-7d9-abcde"}),
			decision: DecisionError, reason: ReasonCheckError, wantErr: true, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "global dry-run", setup: engineSetup{opts: func(o *Options) { o.DryRun = true }}, alert: leakAlert(),
			decision: DecisionDryRun, reason: ReasonWouldAct, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "policy entry dry-run", setup: engineSetup{policy: "alerts:\n  ContainerMemoryLeak:\n    target: workload\n    dryRun: true\n    check: {name: none}\n    remediators: [{name: annotate}]\n"},
			alert: leakAlert(), decision: DecisionDryRun, reason: ReasonWouldAct, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "read-only writes not even events", setup: engineSetup{opts: func(o *Options) { o.ReadOnly = true }}, alert: leakAlert(),
			decision: DecisionDryRun, reason: ReasonWouldAct},
		{name: "dry-run sees the cooldown", setup: engineSetup{objs: cooled(testNow.Add(-time.Minute)), opts: func(o *Options) { o.DryRun = true }},
			alert: leakAlert(), decision: DecisionDryRun, reason: ReasonCooldown, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "cooldown holds", setup: engineSetup{objs: cooled(testNow.Add(-59 * time.Minute))}, alert: leakAlert(),
			decision: DecisionHeld, reason: ReasonCooldown, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "cooldown over", setup: engineSetup{objs: cooled(testNow.Add(-61 * time.Minute))}, alert: leakAlert(),
			decision: DecisionActed, writes: true, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "cooldown in the future holds", setup: engineSetup{objs: cooled(testNow.Add(10 * time.Minute))}, alert: leakAlert(),
			decision: DecisionHeld, reason: ReasonCooldown, eventCount: 1, eventOn: "Deployment shop/web"},
		{name: "node target", alert: alert("firing", map[string]string{"alertname": rules.AlertNodeCgroupLeak, "node": "n1"}),
			decision: DecisionActed, writes: true, eventCount: 1, eventOn: "Node n1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, cs := newTestEngine(t, tc.setup)
			d, err := e.DecideOne(context.Background(), tc.alert)
			if d.Decision != tc.decision || d.Reason != tc.reason {
				t.Errorf("DecideOne() = %s/%s (%s), want %s/%s", d.Decision, d.Reason, d.Message, tc.decision, tc.reason)
			}
			if (err != nil) != tc.wantErr || IsTransient(err) != tc.MarkTransient {
				t.Errorf("DecideOne() error = %v (transient %v), want error %v transient %v", err, IsTransient(err), tc.wantErr, tc.MarkTransient)
			}
			var writes int
			for _, a := range cs.Actions() {
				if a.GetVerb() == "patch" || a.GetVerb() == "update" || (a.GetVerb() == "create" && a.GetResource().Resource != "events") {
					writes++
				}
			}
			if (writes > 0) != tc.writes {
				t.Errorf("%d writes to objects, want writes %v: %v", writes, tc.writes, cs.Actions())
			}
			evs := events(t, cs)
			if len(evs) != tc.eventCount {
				t.Fatalf("%d events, want %d: %+v", len(evs), tc.eventCount, evs)
			}
			if tc.eventCount == 1 {
				io := evs[0].InvolvedObject
				got := ObjectRef{Kind: io.Kind, Namespace: io.Namespace, Name: io.Name}.String()
				if got != tc.eventOn {
					t.Errorf("event on %s, want %s", got, tc.eventOn)
				}
			}
		})
	}
}

func kindOf(o runtime.Object) string { return remediatetest.KindOf(o) }

// barrierQuerier answers like q once n callers are waiting in Query (or
// after a timeout), so that n deliveries have all read their target before
// any of them claims the cooldown.
type barrierQuerier struct {
	q       *fakeQuerier
	arrived chan struct{}
	n       int
}

func (b *barrierQuerier) Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	b.arrived <- struct{}{}
	deadline := time.After(5 * time.Second)
	for len(b.arrived) < b.n {
		select {
		case <-deadline:
			return nil, nil, nil, errors.New("barrier: the other delivery never came")
		case <-time.After(time.Millisecond):
		}
	}
	return b.q.Query(ctx, query, ts, opts...)
}

// TestEngineConcurrentDeliveries delivers one alert to two engines (two
// replicas, sharing nothing but the cluster) at once. Both read the
// Deployment at the same resourceVersion before either claims the
// cooldown, so one claim wins and the other gets a Conflict, re-reads and
// backs off: exactly one annotate, one LeakguardActed and one
// LeakguardHeld Event.
func TestEngineConcurrentDeliveries(t *testing.T) {
	for round := range 10 {
		cs := newCluster(t, fixtures()...)
		p, _ := DefaultPolicy(shippedRegistry())
		bq := &barrierQuerier{q: leakingQuerier(), arrived: make(chan struct{}, 2), n: 2}
		var engines []*Engine
		for range 2 {
			e, err := NewEngine(Options{Client: cs, Querier: bq, Policy: p, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			engines = append(engines, e)
		}
		var wg sync.WaitGroup
		ds := make([]Decision, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { ds[i], errs[i] = engines[i].DecideOne(context.Background(), leakAlert()) })
		}
		wg.Wait()
		got := map[string]int{}
		for i := range 2 {
			if errs[i] != nil {
				t.Fatalf("round %d: delivery %d error: %v", round, i, errs[i])
			}
			got[ds[i].Decision+"/"+ds[i].Reason]++
		}
		if diff := cmp.Diff(map[string]int{"acted/": 1, "held/cooldown": 1}, got); diff != "" {
			t.Fatalf("round %d: decisions mismatch (-want +got):\n%s", round, diff)
		}
		var claims, annotates int
		for _, p := range patches(cs, "deployments") {
			switch {
			case strings.Contains(string(p.Patch), AnnotationFinding):
				annotates++
			case strings.Contains(string(p.Patch), `"resourceVersion":"1"`):
				claims++
			}
		}
		if claims != 2 || annotates != 1 {
			t.Errorf("round %d: %d claims at resourceVersion 1 and %d annotate patches, want 2 (one conflicting) and 1", round, claims, annotates)
		}
		reasons := map[string]int{}
		for _, ev := range events(t, cs) {
			reasons[ev.Reason]++
		}
		if diff := cmp.Diff(map[string]int{EventReasonActed: 1, EventReasonHeld: 1}, reasons); diff != "" {
			t.Errorf("round %d: events mismatch (-want +got):\n%s", round, diff)
		}
	}
}

// TestEngineRateLimit acts on two different nodes with a bucket of one
// token: the second is held.
func TestEngineRateLimit(t *testing.T) {
	policy := "rateLimit: {perMinute: 1, burst: 1}\nalerts:\n  NodeCgroupLeak:\n    target: node\n    check: {name: none}\n    remediators: [{name: annotate}]\n"
	e, cs := newTestEngine(t, engineSetup{policy: policy})
	ds, err := e.Decide(context.Background(), []template.Alert{
		alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "n1"}),
		alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "cp1"}),
	})
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	got := []string{ds[0].Decision + "/" + ds[0].Reason, ds[1].Decision + "/" + ds[1].Reason}
	if diff := cmp.Diff([]string{"acted/", "held/rate-limited"}, got); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}
	n, _ := cs.CoreV1().Nodes().Get(context.Background(), "cp1", metav1.GetOptions{})
	if len(n.Annotations) != 0 {
		t.Errorf("rate-limited node annotations = %v, want none", n.Annotations)
	}
	// A cooldown-held alert takes no token: the cooldown-held n1 must not
	// eat the token that refills for cp1.
	e.now = func() time.Time { return testNow.Add(time.Minute) }
	ds, _ = e.Decide(context.Background(), []template.Alert{
		alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "n1"}),
		alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "cp1"}),
	})
	got = []string{ds[0].Decision + "/" + ds[0].Reason, ds[1].Decision + "/" + ds[1].Reason}
	if diff := cmp.Diff([]string{"held/cooldown", "acted/"}, got); diff != "" {
		t.Errorf("after a minute: decisions mismatch (-want +got):\n%s", diff)
	}
}

// TestEngineRemediatorFailure makes the annotate patch fail: the decision
// is an error, transient for an unavailable API server. The cooldown claim
// is given back only when the API definitively refused the action (403):
// after a 503 the patch may have been applied, and the claim stands so
// that the retry does not act twice.
func TestEngineRemediatorFailure(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		MarkTransient bool
		released      bool
	}{
		{"unavailable", apierrors.NewServiceUnavailable("apiserver restarting"), true, false},
		{"timeout", apierrors.NewTimeoutError("patch timed out", 1), true, false},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true, true},
		{"forbidden", apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("no patch verb")), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, cs := newTestEngine(t, engineSetup{})
			cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if strings.Contains(string(a.(k8stesting.PatchActionImpl).Patch), AnnotationFinding) {
					return true, nil, tc.err
				}
				return false, nil, nil
			})
			d, err := e.DecideOne(context.Background(), leakAlert())
			if d.Decision != DecisionError || d.Reason != ReasonRemediatorError || err == nil || IsTransient(err) != tc.MarkTransient {
				t.Errorf("DecideOne() = %s/%s, %v (transient %v); want error/remediator-error transient %v",
					d.Decision, d.Reason, err, IsTransient(err), tc.MarkTransient)
			}
			want := map[string]string{CooldownAnnotation("annotate"): "2026-11-23T12:00:00Z"}
			if tc.released {
				want = nil
			}
			if diff := cmp.Diff(want, getDeployment(t, cs).GetAnnotations(), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("annotations after failure mismatch (-want +got):\n%s", diff)
			}
			if got := testutil.ToFloat64(e.metrics.remediations.WithLabelValues("annotate", "failure")); got != 1 {
				t.Errorf("remediations{failure} = %g, want 1", got)
			}
		})
	}
}

// TestDecideTransientPayload checks that one transient failure makes the
// whole payload's error transient, with every decision still returned.
func TestDecideTransientPayload(t *testing.T) {
	q := &fakeQuerier{Err: errors.New("prometheus: 502 bad gateway")}
	e, _ := newTestEngine(t, engineSetup{querier: q})
	ds, err := e.Decide(context.Background(), []template.Alert{
		alert("firing", map[string]string{"alertname": "NodeCgroupLeak", "node": "n1"}),
		leakAlert(),
	})
	if len(ds) != 2 || ds[0].Decision != DecisionActed || ds[1].Decision != DecisionError {
		t.Errorf("Decide() decisions = %+v, want acted then error", ds)
	}
	if !IsTransient(err) || !strings.Contains(err.Error(), "alert 1 (ContainerMemoryLeak)") {
		t.Errorf("Decide() error = %v, want a transient error naming alert 1", err)
	}
}

func TestNewEngineErrors(t *testing.T) {
	p, _ := DefaultPolicy(shippedRegistry())
	if _, err := NewEngine(Options{Policy: p}); err == nil {
		t.Errorf("NewEngine(no client) = nil error")
	}
	if _, err := NewEngine(Options{Client: fake.NewClientset()}); err == nil {
		t.Errorf("NewEngine(no policy) = nil error")
	}
	reg := prometheus.NewRegistry()
	if _, err := NewEngine(Options{Client: fake.NewClientset(), Policy: p, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEngine(Options{Client: fake.NewClientset(), Policy: p, Registerer: reg}); err == nil {
		t.Errorf("NewEngine(same registry twice) = nil error, want already registered")
	}
}

// TestEngineClaimFailure makes the cooldown claim fail: nothing is
// annotated and the decision is an error of the guard step.
func TestEngineClaimFailure(t *testing.T) {
	e, cs := newTestEngine(t, engineSetup{})
	cs.PrependReactor("patch", "deployments", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "web", errors.New("no patch verb"))
	})
	d, err := e.DecideOne(context.Background(), leakAlert())
	if d.Decision != DecisionError || d.Reason != ReasonGuardError || err == nil || IsTransient(err) {
		t.Errorf("DecideOne() = %s/%s, %v; want error/guard-error, permanent", d.Decision, d.Reason, err)
	}
	if n := len(patches(cs, "deployments")); n != 1 {
		t.Errorf("%d patches, want only the failed claim", n)
	}
	if got := testutil.ToFloat64(e.metrics.remediations.WithLabelValues("annotate", "success")); got != 0 {
		t.Errorf("remediations{success} = %g, want 0", got)
	}
	evs := events(t, cs)
	if len(evs) != 1 || evs[0].Reason != EventReasonFailed {
		t.Errorf("events = %+v, want one LeakguardFailed", evs)
	}
}

// TestEngineFailureGivesTokenBack makes the first annotate fail (429, a
// definitive refusal) with a bucket of one token: the failed action gives
// its claim and its token back, so that Alertmanager's retry, a moment
// later, acts instead of being held.
func TestEngineFailureGivesTokenBack(t *testing.T) {
	policy := "rateLimit: {perMinute: 1, burst: 1}\nalerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: none}\n    remediators: [{name: annotate}]\n"
	e, cs := newTestEngine(t, engineSetup{policy: policy})
	failures := 1
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if failures > 0 && strings.Contains(string(a.(k8stesting.PatchActionImpl).Patch), AnnotationFinding) {
			failures--
			return true, nil, apierrors.NewTooManyRequests("slow down", 1)
		}
		return false, nil, nil
	})
	var got []string
	for range 2 {
		d, _ := e.DecideOne(context.Background(), leakAlert())
		got = append(got, d.Decision+"/"+d.Reason)
	}
	if diff := cmp.Diff([]string{"error/remediator-error", "acted/"}, got); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}
}

// ctxClient is a fake clientset whose Deployment patches fail once their
// context is done, as a real client's requests do.
type ctxClient struct{ *fake.Clientset }

func (c ctxClient) AppsV1() appsv1client.AppsV1Interface { return ctxApps{c.Clientset.AppsV1()} }

type ctxApps struct{ appsv1client.AppsV1Interface }

func (a ctxApps) Deployments(ns string) appsv1client.DeploymentInterface {
	return ctxDeployments{a.AppsV1Interface.Deployments(ns)}
}

type ctxDeployments struct {
	appsv1client.DeploymentInterface
}

func (d ctxDeployments) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, sub ...string) (*appsv1.Deployment, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.DeploymentInterface.Patch(ctx, name, pt, data, opts, sub...)
}

// TestEngineKeepsClaimAfterHangUp makes Alertmanager hang up while
// annotate runs: the request's context is cancelled and annotate fails.
// The patch may have reached the API server, so the cooldown claim must
// stand: the retry that follows is held instead of acting a second time.
func TestEngineKeepsClaimAfterHangUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, cs := newTestEngine(t, engineSetup{opts: func(o *Options) { o.Client = ctxClient{o.Client.(*fake.Clientset)} }})
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if strings.Contains(string(a.(k8stesting.PatchActionImpl).Patch), AnnotationFinding) {
			cancel()
			return true, nil, context.Canceled
		}
		return false, nil, nil
	})
	d, err := e.DecideOne(ctx, leakAlert())
	if d.Decision != DecisionError || !IsTransient(err) {
		t.Errorf("DecideOne() = %s/%s, %v; want error, transient", d.Decision, d.Reason, err)
	}
	want := map[string]string{CooldownAnnotation("annotate"): "2026-11-23T12:00:00Z"}
	if diff := cmp.Diff(want, getDeployment(t, cs).GetAnnotations()); diff != "" {
		t.Errorf("annotations after the hang-up mismatch (-want +got):\n%s", diff)
	}
	d, _ = e.DecideOne(context.Background(), leakAlert())
	if d.Decision != DecisionHeld || d.Reason != ReasonCooldown {
		t.Errorf("retry: DecideOne() = %s/%s, want held/cooldown", d.Decision, d.Reason)
	}
}
