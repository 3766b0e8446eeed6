package remediate

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

// leakIn is leakAlert with the cluster label label=cluster ("" leaves
// it out).
func leakIn(label, cluster string) template.Alert {
	a := leakAlert()
	if cluster != "" {
		a.Labels[label] = cluster
	}
	return a
}

// TestClusterScope: with Options.Cluster, an alert about another cluster
// (or, unless accepted, about none) is held other-cluster before any
// Kubernetes or Prometheus request, and the check's query of an alert
// that is decided carries the cluster matcher, exactly.
func TestClusterScope(t *testing.T) {
	scoped := func(label, cluster string) string {
		return `max(` + rules.RecWorkingSetDeriv + `{namespace="shop",pod="web-7d9-abcde",container="app",` + label + `="` + cluster + `"})`
	}
	cases := []struct {
		name   string
		opts   Options
		alert  template.Alert
		want   string // decision/reason
		query  string // the one query asked, "" for none
		quoted string // a part of the message
	}{
		{name: "this cluster", opts: Options{Cluster: "eu-1"}, alert: leakIn("cluster", "eu-1"),
			want: "acted/", query: scoped("cluster", "eu-1")},
		{name: "another cluster", opts: Options{Cluster: "eu-1"}, alert: leakIn("cluster", "us-2"),
			want: "held/" + ReasonOtherCluster, quoted: `cluster is "us-2", this is "eu-1"`},
		{name: "another cluster, resolved", opts: Options{Cluster: "eu-1"}, alert: func() template.Alert {
			a := leakIn("cluster", "us-2")
			a.Status = "resolved"
			return a
		}(), want: "held/" + ReasonOtherCluster},
		{name: "no cluster label, not accepted (the default)", opts: Options{Cluster: "eu-1"}, alert: leakIn("cluster", ""),
			want: "held/" + ReasonOtherCluster, quoted: "no cluster label"},
		{name: "no cluster label, accepted", opts: Options{Cluster: "eu-1", AcceptMissingCluster: true}, alert: leakIn("cluster", ""),
			want: "acted/", query: scoped("cluster", "eu-1")},
		{name: "the label is another", opts: Options{Cluster: "eu-1", ClusterLabel: "k8s_cluster"}, alert: leakIn("k8s_cluster", "eu-1"),
			want: "acted/", query: scoped("k8s_cluster", "eu-1")},
		{name: "the label is another, and cluster is just a label", opts: Options{Cluster: "eu-1", ClusterLabel: "k8s_cluster"},
			alert: func() template.Alert { a := leakIn("k8s_cluster", "us-2"); a.Labels["cluster"] = "eu-1"; return a }(),
			want:  "held/" + ReasonOtherCluster},
		{name: "no --cluster: one cluster, any label", opts: Options{}, alert: leakIn("cluster", "us-2"),
			want: "acted/", query: slopeQuery},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQuerier{Answers: map[string]model.Value{tc.query: vec(8 << 20 / 3600.0)}}
			reg := prometheus.NewRegistry()
			e, cs := newTestEngine(t, engineSetup{querier: q, registry: reg, opts: func(o *Options) {
				o.Cluster, o.ClusterLabel, o.AcceptMissingCluster = tc.opts.Cluster, tc.opts.ClusterLabel, tc.opts.AcceptMissingCluster
			}})
			ds, err := e.Decide(context.Background(), []template.Alert{tc.alert})
			if err != nil {
				t.Fatalf("Decide() error: %v", err)
			}
			d := ds[0]
			if got := d.Decision + "/" + d.Reason; got != tc.want {
				t.Fatalf("decision = %s (%s), want %s", got, d.Message, tc.want)
			}
			if !strings.Contains(d.Message, tc.quoted) {
				t.Errorf("message = %q, want it to say %q", d.Message, tc.quoted)
			}
			var want []string
			if tc.query != "" {
				want = []string{tc.query}
			}
			if diff := cmp.Diff(want, q.Queries); diff != "" {
				t.Errorf("queries (-want +got):\n%s", diff)
			}
			if d.Reason == ReasonOtherCluster {
				if acts := cs.Actions(); len(acts) != 0 {
					t.Errorf("held other-cluster after %d Kubernetes requests, want none: %v", len(acts), acts)
				}
				if n := testutil.ToFloat64(e.metrics.decisions.WithLabelValues("ContainerMemoryLeak", DecisionHeld, ReasonOtherCluster)); n != 1 {
					t.Errorf("leakguard_decisions_total{reason=%q} = %g, want 1", ReasonOtherCluster, n)
				}
			}
		})
	}
}

// unscopedCheck has a query that cannot carry a cluster matcher.
type unscopedCheck struct{ noneCheck }

func (unscopedCheck) Query(template.Alert) (string, error) { return "vector(1)", nil }

// TestClusterScopeFailsClosed: in a fleet, a check whose query cannot be
// confined to the cluster fails rather than read every cluster's series;
// a check without a query needs none.
func TestClusterScopeFailsClosed(t *testing.T) {
	e, _ := newTestEngine(t, engineSetup{opts: func(o *Options) { o.Cluster = "eu-1" }})
	if q, err := e.query(unscopedCheck{}, leakIn("cluster", "eu-1")); err == nil {
		t.Errorf("query(unscoped check) = %q, want an error", q)
	}
	if q, err := e.query(noneCheck{}, leakIn("cluster", "eu-1")); err != nil || q != "" {
		t.Errorf("query(none) = %q, %v; want no query", q, err)
	}
}

func TestClusterLabelValidated(t *testing.T) {
	p, err := DefaultPolicy(shippedRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"k8s-cluster", "0cluster", "a b"} {
		if _, err := NewEngine(Options{Client: newCluster(t), Policy: p, Cluster: "eu-1", ClusterLabel: label}); err == nil {
			t.Errorf("NewEngine(ClusterLabel %q) = nil error, want one: not a label name", label)
		}
	}
}
