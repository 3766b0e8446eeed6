package remediate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

// TestDryRunLedger sends two pods of one Deployment in one delivery in
// dry-run: the first would act, the second is held by the cooldown that
// the first would have claimed, as in a real run, and nothing but Events
// is written. The plan says what a real run would write.
func TestDryRunLedger(t *testing.T) {
	objs := append(fixtures(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-7d9-fghij", UID: "uid-web-7d9-fghij",
		ResourceVersion: "1", OwnerReferences: ownedBy(KindReplicaSet, "web-7d9")}})
	policy := "alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: none}\n    remediators: [{name: annotate}]\n"
	e, cs := newTestEngine(t, engineSetup{objs: objs, policy: policy, opts: func(o *Options) { o.DryRun = true }})
	second := leakAlert()
	second.Labels["pod"] = "web-7d9-fghij"
	ds, err := e.Decide(context.Background(), []template.Alert{leakAlert(), second})
	if err != nil {
		t.Fatalf("Decide() error: %v", err)
	}
	got := outcomes(ds)
	if diff := cmp.Diff([]string{"dry-run/would-act", "dry-run/cooldown"}, got); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}
	wantPlan := []RemediatorOutcome{{Name: "annotate", Result: ResultDryRun, Detail: "would patch Deployment shop/web annotations leakguard.io/finding=ContainerMemoryLeak"}}
	if diff := cmp.Diff(wantPlan, ds[0].Remediators); diff != "" {
		t.Errorf("first decision's plan mismatch (-want +got):\n%s", diff)
	}
	if len(ds[1].Remediators) != 1 || ds[1].Remediators[0].Result != ResultHeld {
		t.Errorf("second decision's remediators = %+v, want annotate held", ds[1].Remediators)
	}
	for _, a := range cs.Actions() {
		if v := a.GetVerb(); (v == "patch" || v == "update" || v == "create") && a.GetResource().Resource != "events" {
			t.Errorf("dry-run wrote: %s %s", v, a.GetResource().Resource)
		}
	}
	// A second delivery has a ledger of its own: it would act again.
	d, _ := e.DecideOne(context.Background(), second)
	if d.Decision != DecisionDryRun || d.Reason != ReasonWouldAct {
		t.Errorf("next delivery: DecideOne() = %s/%s, want dry-run/would-act", d.Decision, d.Reason)
	}
}

// disruptor is a disruptive remediator for the validation tests.
type disruptor struct{}

func (disruptor) Plan(t *Target, _ Finding, _ time.Time) Plan {
	return Plan{Action: "disrupt " + t.Object.String(), Apply: func(context.Context, Env) (string, error) { return "disrupted", nil }}
}

func testRegistry(t *testing.T) *Registry {
	t.Helper()
	reg := shippedRegistry()
	if err := reg.AddRemediator(RemediatorInfo{Name: "disrupt", Targets: []string{TargetWorkload}, Disruptive: true,
		New: func(json.RawMessage) (Remediator, error) { return disruptor{}, nil }}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestPolicyValidatesRemediators checks that policy validation judges
// each remediator against what it declares, naming the entry.
func TestPolicyValidatesRemediators(t *testing.T) {
	tests := []struct {
		name    string
		entry   string
		wantErr string
	}{
		{"disruptive on a node", "target: node\n    check: {name: orphan-cgroups}\n    remediators: [{name: disrupt, enabled: true}]",
			`alert "A": remediators[0]: disrupt cannot act on target node (it acts on workload)`},
		{"disruptive behind check none", "target: workload\n    check: {name: none}\n    remediators: [{name: disrupt, enabled: true}]",
			`alert "A": remediators[0]: disrupt disrupts running workloads and needs a check that re-asks Prometheus, not check: none`},
		{"disruptive not enabled", "target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: disrupt}]",
			`alert "A": remediators[0]: disrupt disrupts running workloads and must be enabled explicitly (enabled: true)`},
		{"enabled false", "target: workload\n    check: {name: none}\n    remediators: [{name: annotate, enabled: false}]",
			`alert "A": remediators[0]: annotate has enabled: false; remove it from the list instead`},
		{"enabled on a check", "target: workload\n    check: {name: none, enabled: true}\n    remediators: [{name: annotate}]",
			`alert "A": check: enabled is a remediator setting`},
		{"disruptive enabled behind a check", "target: workload\n    check: {name: working-set-slope}\n    remediators: [{name: annotate}, {name: disrupt, enabled: true}]", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy([]byte("alerts:\n  A:\n    "+tc.entry+"\n"), testRegistry(t))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("ParsePolicy() error = %q, want %q", got, tc.wantErr)
			}
		})
	}
}

// TestPlanIsPure checks that planning writes nothing: the plan of a real
// run, taken apart from Apply, makes no request.
func TestPlanIsPure(t *testing.T) {
	cs := newCluster(t, fixtures()...)
	tg, err := ResolveTarget(context.Background(), cs, TargetWorkload, leakAlert())
	if err != nil {
		t.Fatal(err)
	}
	before := len(cs.Actions())
	_, annotate, err := shippedRegistry().newRemediator("annotate", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := annotate.Plan(tg, Finding{Alert: leakAlert()}, testNow)
	if n := len(cs.Actions()) - before; n != 0 || p.Apply == nil || !strings.Contains(p.Action, "Deployment shop/web") {
		t.Errorf("Plan() made %d requests, plan %+v; want none and an action on Deployment shop/web", n, p)
	}
}

// TestOptOutDuringClaim writes an opt-out on the Deployment while the
// cooldown claim is in flight: the claim conflicts, the engine reads the
// Deployment again, and the opt-out guard, run again on what it read,
// holds. Nothing but the failed claim is written.
func TestOptOutDuringClaim(t *testing.T) {
	e, cs := newTestEngine(t, engineSetup{})
	raced := false
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if raced {
			return false, nil, nil
		}
		raced = true
		obj, err := cs.Tracker().Get(gvrDeployments, "shop", "web")
		if err != nil {
			return true, nil, err
		}
		dep := obj.(*appsv1.Deployment).DeepCopy()
		dep.Annotations = map[string]string{AnnotationIgnore: "true"}
		dep.ResourceVersion = "2"
		if err := cs.Tracker().Update(gvrDeployments, dep, "shop"); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewConflict(gvrDeployments.GroupResource(), "web", errors.New("the object has been modified"))
	})
	d, err := e.DecideOne(context.Background(), leakAlert())
	if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonOptOut {
		t.Fatalf("DecideOne() = %s/%s (%s), %v; want held/opt-out", d.Decision, d.Reason, d.Message, err)
	}
	if n := len(patches(cs, "deployments")); n != 1 {
		t.Errorf("%d deployment patches, want only the conflicting claim", n)
	}
	if diff := cmp.Diff(map[string]string{AnnotationIgnore: "true"}, getDeployment(t, cs).GetAnnotations()); diff != "" {
		t.Errorf("Deployment annotations mismatch (-want +got):\n%s", diff)
	}
}

// TestInvalidTargetLabels sends alerts whose labels cannot name an object:
// each is held with its own reason, without a request to the API server
// and without an error (no retry can fix it). Log lines carry the label
// values cut short.
func TestInvalidTargetLabels(t *testing.T) {
	long := strings.Repeat("a", 5000)
	tests := []struct {
		name   string
		labels map[string]string
	}{
		{"pod name too long", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": long, "container": "app"}},
		{"pod name with a slash", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": "web/../x", "container": "app"}},
		{"namespace in capitals", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "Shop", "pod": "web", "container": "app"}},
		{"node with a space", map[string]string{"alertname": "NodeCgroupLeak", "node": "n 1"}},
		{"apiserver node too long", map[string]string{"alertname": "KubeAPIServerMemoryHigh", "node": long}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			e, cs := newTestEngine(t, engineSetup{opts: func(o *Options) {
				o.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			}})
			a := alert("firing", tc.labels)
			a.Fingerprint = long
			d, err := e.DecideOne(context.Background(), a)
			if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonInvalidLabels {
				t.Errorf("DecideOne() = %s/%s (%s), %v; want held/%s, no error", d.Decision, d.Reason, d.Message, err, ReasonInvalidLabels)
			}
			if n := len(cs.Actions()); n != 0 {
				t.Errorf("%d requests to the API server, want none: %v", n, cs.Actions())
			}
			if n := len(logs.String()); n > 1500 || n == 0 {
				t.Errorf("log of %d bytes, want some and at most 1500: %s", n, logs.String())
			}
			if len(d.Fingerprint) > MaxLabelLen || len(d.Message) > MaxMessageLen {
				t.Errorf("decision carries a fingerprint of %d and a message of %d bytes, want at most %d and %d", len(d.Fingerprint), len(d.Message), MaxLabelLen, MaxMessageLen)
			}
		})
	}
}

// TestOptOutDuringPlanClaim: the opt-out is written while the claim of both
// remediators' cooldowns is in flight; the claim conflicts, the guards run
// again on the object re-read, both remediators are held and no cooldown
// is left on the Deployment.
func TestOptOutDuringPlanClaim(t *testing.T) {
	objs := restartFixtures(nil)
	e, cs := newDisruptiveEngine(t, disruptivePolicy(""), objs, nil)
	raced := false
	cs.PrependReactor("patch", "deployments", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if raced || !strings.Contains(string(a.(k8stesting.PatchActionImpl).Patch), CooldownAnnotation("disrupt")) {
			return false, nil, nil
		}
		raced = true
		obj, err := cs.Tracker().Get(gvrDeployments, "shop", "web")
		if err != nil {
			return true, nil, err
		}
		dep := obj.(*appsv1.Deployment).DeepCopy()
		if dep.Annotations == nil {
			dep.Annotations = map[string]string{}
		}
		dep.Annotations[AnnotationIgnore] = "true"
		dep.ResourceVersion = "9"
		if err := cs.Tracker().Update(gvrDeployments, dep, "shop"); err != nil {
			return true, nil, err
		}
		return true, nil, apierrors.NewConflict(gvrDeployments.GroupResource(), "web", errors.New("the object has been modified"))
	})
	d, err := e.DecideOne(context.Background(), podAlert("web-7d9-abcde"))
	if err != nil || d.Decision != DecisionHeld || d.Reason != ReasonOptOut {
		t.Fatalf("DecideOne() = %s/%s (%s), %v; want held/opt-out", d.Decision, d.Reason, d.Message, err)
	}
	ann := getDeployment(t, cs).GetAnnotations()
	for _, k := range []string{CooldownAnnotation("annotate"), CooldownAnnotation("disrupt"), AnnotationFinding} {
		if _, ok := ann[k]; ok {
			t.Errorf("Deployment keeps %s after the opt-out: %v", k, ann)
		}
	}
	var claims int
	for _, a := range cs.Actions() {
		if p, ok := a.(k8stesting.PatchActionImpl); ok && strings.Contains(string(p.Patch), CooldownAnnotation("disrupt")) {
			claims++
			if !strings.Contains(string(p.Patch), CooldownAnnotation("annotate")) {
				t.Errorf("claim %s does not carry annotate's cooldown with disrupt's", p.Patch)
			}
		}
	}
	if claims != 1 {
		t.Errorf("%d claims sent, want 1 (refused; the re-read object opts out)", claims)
	}
}
