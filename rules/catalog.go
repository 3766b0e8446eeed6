package rules

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Severity of an alert: critical pages, warning tickets, info is not routed.
type Severity string

// The severities of shared/ALERTS.md.
const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Alert is one alerting rule of the catalogue.
type Alert struct {
	Name        string
	Severity    Severity
	Expr        string
	For         model.Duration
	Summary     string // a static sentence
	Description string // templated with the object and the value
	// Labels are the labels the contract requires the alert to carry; they
	// come out of Expr (the catalogue test checks them against the traces).
	Labels []string
}

// Record is one recording rule.
type Record struct {
	Name string
	Expr string
}

// Group is a named group of recording and alerting rules, evaluated in order.
type Group struct {
	Name string
	// Interval is how often the group is evaluated; 0 is the rule file's
	// global evaluation interval.
	Interval model.Duration
	Records  []Record
	Alerts   []Alert
}

// Group names, in the order the rule file evaluates them (Groups).
const (
	// GroupContainer is the working set, the limit and the quick alerts
	// (containerGroup).
	GroupContainer = "leakguard.container-memory"
	// GroupContainerTrend is the leak trends and their alerts
	// (containerTrendGroup). GroupRecommendation and GroupLimits follow it.
	GroupContainerTrend = "leakguard.container-memory-trend"
	// GroupNodeCgroups is the node agent's cgroup counts and their alerts
	// (nodeCgroupsGroup).
	GroupNodeCgroups = "leakguard.node-cgroups"
	// GroupControlPlane is the control-plane nodes' and kube-apiserver's
	// memory and the API server's object counts (controlPlaneGroup).
	GroupControlPlane = "leakguard.control-plane"
)

// Groups returns the whole catalogue for p, one function per group, in the
// order the rule file evaluates them: a group reads only records of its own
// or of an earlier group. With a cluster label, every aggregation and join
// keeps it (keepCluster).
func Groups(p Params) []Group {
	// ContainerMemoryLimitMissing is in the limits group, after the
	// recommendation it shows (recommendGroups).
	recommendation, limits := recommendGroups(p)
	groups := []Group{
		containerGroup(p),
		containerTrendGroup(p),
		recommendation,
		limits,
		nodeCgroupsGroup(p),
		controlPlaneGroup(p),
	}
	if p.ClusterLabel != "" {
		for i := range groups {
			for j := range groups[i].Records {
				groups[i].Records[j].Expr = keepCluster(groups[i].Records[j].Expr, p.ClusterLabel)
			}
			for j := range groups[i].Alerts {
				groups[i].Alerts[j].Expr = keepCluster(groups[i].Alerts[j].Expr, p.ClusterLabel)
			}
		}
	}
	return groups
}

// groupings are the label lists of aggregations ("max by (node)") and of
// vector matching ("on (namespace, pod)"); the labels that group_left and
// group_right copy are not among them.
var groupings = regexp.MustCompile(`\b(by|on) \(`)

// keepCluster adds the cluster label to every aggregation and join of expr,
// so that no rule mixes two clusters' series: on a central engine holding
// many clusters (Thanos, Mimir, VictoriaMetrics) two clusters' shop/cart-0
// stay two series, and every record and alert carries its cluster. On the
// series of one cluster without that label, grouping by it changes nothing.
func keepCluster(expr, label string) string {
	return groupings.ReplaceAllString(expr, "$1 ("+label+", ")
}

// sel joins selector fragments into a brace-enclosed matcher list.
func sel(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return "{" + strings.Join(kept, ", ") + "}"
}

// prom renders a duration the way PromQL and rule files write it ("1h30m").
func prom(d model.Duration) string { return d.String() }

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// bytesNum writes a number of bytes without an exponent, rounded down (the
// gates of the trend records must not exceed the bounds they stand for).
func bytesNum(f float64) string { return strconv.FormatFloat(math.Floor(f), 'f', -1, 64) }

func seconds(d model.Duration) string { return num(time.Duration(d).Seconds()) }

// offset returns "metric offset d", or the metric alone for d == 0.
func offset(metric string, d time.Duration) string {
	if d == 0 {
		return metric
	}
	return metric + " offset " + prom(model.Duration(d))
}

func percent(f float64) string { return num(f*100) + " %" }

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// vars are the named parameters of an expression template (expand).
type vars map[string]string

// expand returns tmpl with each ${name} replaced by vars[name], so that an
// expression reads its parameters by name rather than by position. PromQL
// and the alert templates write $1, $labels and $value but never "${", so
// nothing else is taken for a placeholder, and the values are not expanded
// again. A name that v lacks is a mistake in the catalogue, not in its
// input: expand panics, which every test that builds the groups catches.
func expand(tmpl string, v vars) string {
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "${")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String()
		}
		j := strings.IndexByte(tmpl[i:], '}')
		if j < 0 {
			panic(fmt.Sprintf("rules: unterminated ${ in expression template %q", tmpl))
		}
		name := tmpl[i+2 : i+j]
		value, ok := v[name]
		if !ok {
			panic(fmt.Sprintf("rules: expression template reads ${%s}, which it was not given", name))
		}
		b.WriteString(tmpl[:i])
		b.WriteString(value)
		tmpl = tmpl[i+j+1:]
	}
}
