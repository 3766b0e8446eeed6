package chain

// This file and scenarios_test.go use the remediate package's API:
// DefaultRegistry, DefaultPolicy, Policy.Entry and Entry.Check, the Check
// interface (Query, Evaluate), ErrNoData, and the annotation, Event and
// reason names. When the engine's API changes, these are the files to
// adapt.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/check"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// labelsFrom says, for each alert of the default policy whose check runs
// a query, which alert of the scenario carries the labels to ask it with:
// its own, or (OOMPredicted, which the scenario does not reach) those of
// the same container's ContainerMemoryLeak.
var labelsFrom = map[string]string{
	rules.AlertContainerMemoryLeak:         rules.AlertContainerMemoryLeak,
	rules.AlertContainerMemoryOOMPredicted: rules.AlertContainerMemoryLeak,
	rules.AlertNodeOrphanCgroups:           rules.AlertNodeOrphanCgroups,
	rules.AlertKubeAPIServerMemoryHigh:     rules.AlertKubeAPIServerMemoryHigh,
}

// TestChecksQueryTheRecordingRules runs the query of every check of the
// default policy against the lab's Prometheus, loaded with the generated
// recording rules, with the labels of the alerts Prometheus fired for the
// scenario's objects, and evaluates the answer with the check's own code:
// each returns data and confirms. A recording rule renamed in rules/ but
// not in a check would make the check answer "no data" here.
func TestChecksQueryTheRecordingRules(t *testing.T) {
	c, s := need(t)
	policy, err := remediate.DefaultPolicy(builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	client, err := api.NewClient(api.Config{Address: c.Prometheus.URL()})
	if err != nil {
		t.Fatal(err)
	}
	prom := v1.NewAPI(client)

	// The firing alerts of the scenario's objects, by name.
	want := map[string]map[string]string{
		rules.AlertContainerMemoryLeak:     {"namespace": s.Leaking.Namespace, "pod": s.Leaking.Pod()},
		rules.AlertNodeOrphanCgroups:       {"node": s.OrphanNode.Name},
		rules.AlertKubeAPIServerMemoryHigh: {"node": s.ControlPlane.Name},
	}
	firing := map[string]map[string]string{}
	waitFor(t, alertTimeout, "the scenario's alerts firing in Prometheus", func(ctx context.Context) (bool, string, error) {
		alerts, err := c.Prometheus.Alerts(ctx)
		if err != nil {
			return false, "", err
		}
		for _, a := range alerts {
			if m, ok := want[a.Labels["alertname"]]; ok && a.State == "firing" && matches(a.Labels, m) {
				firing[a.Labels["alertname"]] = a.Labels
			}
		}
		return len(firing) == len(want), fmt.Sprintf("firing %v", firing), nil
	})

	checked := 0
	for _, name := range policy.AlertNames() {
		entry := policy.Entry(name)
		probe := template.Alert{Status: "firing", Labels: template.KV{"alertname": name}}
		if q, err := entry.Check.Query(probe); err == nil && q == "" {
			continue // a check without a query (none)
		}
		t.Run(name, func(t *testing.T) {
			from, ok := labelsFrom[name]
			if !ok {
				t.Fatalf("check %s of %s has a query and the lab has no alert to ask it with: add one to lab.Scenario and labelsFrom", entry.Check.Name(), name)
			}
			a := template.Alert{Status: "firing", Labels: template.KV{}, StartsAt: time.Now().Add(-time.Minute)}
			for k, v := range firing[from] {
				a.Labels[k] = v
			}
			a.Labels["alertname"] = name
			res := runCheck(t, prom, entry.Check, a)
			if !res.Confirmed {
				t.Errorf("check %s = %q, not confirmed", entry.Check.Name(), res.Summary)
			}
			t.Logf("%s: check %s: %s", name, entry.Check.Name(), res.Summary)
		})
		checked++
	}
	if checked != len(labelsFrom) {
		t.Errorf("checked %d alerts' checks, want %d", checked, len(labelsFrom))
	}

	// The real agent's series feed the same recording rule.
	t.Run("agent node", func(t *testing.T) {
		check, err := check.NewOrphanCgroups(nil)
		if err != nil {
			t.Fatal(err)
		}
		a := template.Alert{Status: "firing", Labels: template.KV{"alertname": rules.AlertNodeOrphanCgroups, "node": s.AgentNode.Name}}
		res := runCheck(t, prom, check, a)
		if want := fmt.Sprintf("%d orphan cgroups > 20 orphan cgroups", s.AgentOrphans); !res.Confirmed || res.Summary != want {
			t.Errorf("check %s = %q (confirmed %v), want %q", check.Name(), res.Summary, res.Confirmed, want)
		}
	})

	// A flat container answers with data, and the check does not confirm.
	t.Run("flat container", func(t *testing.T) {
		check, err := check.NewWorkingSetSlope(nil)
		if err != nil {
			t.Fatal(err)
		}
		a := template.Alert{Status: "firing", Labels: template.KV{
			"alertname": rules.AlertContainerMemoryLeak, "namespace": s.Flat.Namespace, "pod": s.Flat.Pod(),
			"container": lab.ContainerName, "node": s.Flat.Node,
		}}
		if res := runCheck(t, prom, check, a); res.Confirmed {
			t.Errorf("check %s confirmed a flat container: %s", check.Name(), res.Summary)
		}
	})
}

// runCheck runs check's query for a at Prometheus and evaluates the
// answer; no data fails the test.
func runCheck(t *testing.T, prom v1.API, check remediate.Check, a template.Alert) remediate.Result {
	t.Helper()
	q, err := check.Query(a)
	if err != nil {
		t.Fatalf("%s.Query: %v", check.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	answer, _, _, err := prom.Query(ctx, q, now)
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	res, err := check.Evaluate(a, answer, now)
	if errors.Is(err, remediate.ErrNoData) {
		t.Fatalf("check %s: %s answered no data (%v): does a recording rule of rules/ have another name?", check.Name(), q, err)
	}
	if err != nil {
		t.Fatalf("check %s: %v", check.Name(), err)
	}
	return res
}

func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}
