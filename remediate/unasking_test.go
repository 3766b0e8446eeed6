package remediate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// askingNothing is a check that asks Prometheus nothing and confirms every
// alert; with says set it also says so (Unasking), as check none does.
type askingNothing struct{ name string }

func (c askingNothing) Name() string { return c.name }

func (askingNothing) Query(template.Alert) (string, error) { return "", nil }

func (askingNothing) Evaluate(template.Alert, model.Value, time.Time) (Result, error) {
	// A check cannot claim to have asked: the engine sets Asked.
	return Result{Confirmed: true, Summary: "the alert is the finding", Asked: true}, nil
}

// sayingNothing is askingNothing that says it asks nothing.
type sayingNothing struct{ askingNothing }

func (sayingNothing) AsksNothing() {}

// countingDisruptor is a disruptive remediator that counts its applies.
type countingDisruptor struct{ applied *int }

func (c countingDisruptor) Plan(t *Target, _ Finding, _ time.Time) Plan {
	return Plan{Action: "disrupt " + t.Object.String(), Apply: func(context.Context, Env) (string, error) {
		*c.applied++
		return "disrupted", nil
	}}
}

// unaskingRegistry is the shipped registry plus a check "quiet" that says
// it asks nothing, a check "silent" that asks nothing without saying so,
// and a disruptive remediator "disrupt" that counts into applied.
func unaskingRegistry(t *testing.T, applied *int) *Registry {
	t.Helper()
	reg := shippedRegistry()
	for _, c := range []Check{sayingNothing{askingNothing{"quiet"}}, askingNothing{"silent"}} {
		if err := reg.AddCheck(c.Name(), func(json.RawMessage) (Check, error) { return c, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.AddRemediator(RemediatorInfo{Name: "disrupt", Targets: []string{TargetWorkload}, Disruptive: true,
		New: func(json.RawMessage) (Remediator, error) { return countingDisruptor{applied}, nil }}); err != nil {
		t.Fatal(err)
	}
	return reg
}

// TestPolicyRefusesADisruptiveRemediatorBehindAnUnaskingCheck: the rule
// that keeps a disruptive remediator from acting on the alert alone holds
// for every check that says it asks nothing, not only for none.
func TestPolicyRefusesADisruptiveRemediatorBehindAnUnaskingCheck(t *testing.T) {
	var applied int
	_, err := ParsePolicy([]byte("alerts:\n  A:\n    target: workload\n    check: {name: quiet}\n    remediators: [{name: disrupt, enabled: true}]\n"), unaskingRegistry(t, &applied))
	want := `alert "A": remediators[0]: disrupt disrupts running workloads and needs a check that re-asks Prometheus, not check: quiet`
	if err == nil || err.Error() != want {
		t.Errorf("ParsePolicy() error = %v, want %q", err, want)
	}
	// Behind it, a remediator that disrupts nothing is fine.
	if _, err := ParsePolicy([]byte("alerts:\n  A:\n    target: workload\n    check: {name: quiet}\n    remediators: [{name: annotate}]\n"), unaskingRegistry(t, &applied)); err != nil {
		t.Errorf("ParsePolicy(quiet, annotate) = %v, want no error", err)
	}
}

// TestEngineHoldsADisruptiveRemediatorBehindACheckThatAskedNothing: a
// check that asks nothing without saying so passes the policy, and the
// engine holds a disruptive remediator behind it at run time (fail
// closed: the finding was never re-asked), while a mild one acts.
func TestEngineHoldsADisruptiveRemediatorBehindACheckThatAskedNothing(t *testing.T) {
	for _, tc := range []struct {
		name, remediators string
		decision, reason  string
		applied           int
	}{
		{"disruptive", "[{name: disrupt, enabled: true}]", DecisionHeld, ReasonCheckNotConfirmed, 0},
		{"mild", "[{name: annotate}]", DecisionActed, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var applied int
			p, err := ParsePolicy([]byte("alerts:\n  ContainerMemoryLeak:\n    target: workload\n    check: {name: silent}\n    remediators: "+tc.remediators+"\n"), unaskingRegistry(t, &applied))
			if err != nil {
				t.Fatalf("ParsePolicy() = %v; a check that does not say it asks nothing passes the policy", err)
			}
			cs := newCluster(t, fixtures()...)
			e, err := NewEngine(Options{Client: cs, Policy: p, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.DecideOne(context.Background(), leakAlert())
			if err != nil {
				t.Fatal(err)
			}
			if d.Decision != tc.decision || d.Reason != tc.reason || applied != tc.applied {
				t.Errorf("DecideOne() = %s/%s (%s), %d applies; want %s/%s, %d", d.Decision, d.Reason, d.Message, applied, tc.decision, tc.reason, tc.applied)
			}
			if tc.reason == ReasonCheckNotConfirmed && !strings.Contains(d.Message, "check silent asked Prometheus nothing, and disrupt disrupts running workloads") {
				t.Errorf("Detail = %q, want it to say which check asked nothing and which remediator disrupts", d.Message)
			}
			if tc.decision == DecisionHeld {
				for _, a := range cs.Actions() {
					if v := a.GetVerb(); (v == "patch" || v == "update" || v == "create" || v == "delete") && a.GetResource().Resource != "events" {
						t.Errorf("held decision wrote: %s %s", v, a.GetResource().Resource)
					}
				}
			}
		})
	}
}
