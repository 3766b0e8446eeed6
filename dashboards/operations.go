package dashboards

import (
	"github.com/leakguard/leakguard/rules"
)

// Metrics exported by `leakguard serve`: the webhook receiver
// (server/metrics.go) and the remediation engine (remediate/metrics.go).
// This is the one place the dashboards name them; the metric-name check
// accepts them besides the rules' recording rules and the inputs of
// shared/ALERTS.md.
const (
	MetricAlertsReceived      = "leakguard_alerts_received_total"         // counter {alertname, status}
	MetricDecisions           = "leakguard_decisions_total"               // counter {alertname, decision, reason}
	MetricRemediations        = "leakguard_remediations_total"            // counter {remediator, result}
	MetricCheckDuration       = "leakguard_check_duration_seconds"        // histogram {check}
	MetricHTTPRequestDuration = "leakguard_http_request_duration_seconds" // histogram {handler, method, code}
)

// ServeMetrics lists the metrics of `leakguard serve` as Prometheus stores
// them (a histogram as its _bucket, _sum and _count series).
func ServeMetrics() []string {
	var out []string
	for _, c := range []string{MetricAlertsReceived, MetricDecisions, MetricRemediations} {
		out = append(out, c)
	}
	for _, h := range []string{MetricCheckDuration, MetricHTTPRequestDuration} {
		out = append(out, h+"_bucket", h+"_sum", h+"_count")
	}
	return out
}

// Operations is leakguard's own dashboard: what it received, what it decided
// and why, what it did, and how long its checks take.
func Operations(p rules.Params) Dashboard {
	vars := []Variable{datasourceVar(), clusterVar(p)}
	rate := func(name, by string) string {
		return "sum by (" + by + ") (rate(" + metric(name, clusterM) + "[$__rate_interval]))"
	}
	quantileBy := func(q, name, by string) string {
		return "histogram_quantile(" + q + ", sum by (" + by + ", le) (rate(" + metric(name+"_bucket", clusterM) + "[$__rate_interval])))"
	}
	specs := []panelSpec{
		timeseries("Alerts received",
			"Alerts Alertmanager delivered to leakguard's webhook, per second, by alert and status (firing or resolved). Nothing here while leakguard alerts fire means the Alertmanager route or receiver is broken.",
			unitPerSec,
			query(rate(MetricAlertsReceived, "alertname, status"), "{{alertname}} {{status}}"),
		),
		timeseries("Decisions by outcome and reason",
			"What leakguard decided for each alert, per second, and why: acted, dry-run, held (the check no longer holds, or a guard stopped it: cooldown, opt-out, budget, rate limit, scope), resolved, or error. Many holds for one reason point at the guard or the policy to look at; errors at leakguard's log.",
			unitPerSec,
			query(rate(MetricDecisions, "decision, reason"), "{{decision}}: {{reason}}"),
		),
		timeseries("Remediations by kind and result",
			"Actions leakguard took, per second, by remediator (annotate, restart, cordon, evict, profile, ...) and result (success or failure). Failures need a look at leakguard's log and the target's events.",
			unitPerSec,
			query(rate(MetricRemediations, "remediator, result"), "{{remediator}} {{result}}"),
		),
		timeseries("Check latency",
			"How long leakguard's re-check of an alert against Prometheus takes, per check (median and 99th percentile). Slow checks delay every action; a check that fails or times out fails closed and nothing is done.",
			unitSeconds,
			query(quantileBy("0.5", MetricCheckDuration, "check"), "{{check}} p50"),
			query(quantileBy("0.99", MetricCheckDuration, "check"), "{{check}} p99"),
		),
		timeseries("Webhook request latency",
			"How long leakguard takes to answer HTTP requests, per handler (99th percentile and median), the Alertmanager webhook among them. Alertmanager retries a webhook that times out or answers 5xx.",
			unitSeconds,
			query(quantileBy("0.99", MetricHTTPRequestDuration, "handler"), "{{handler}} p99"),
			query(quantileBy("0.5", MetricHTTPRequestDuration, "handler"), "{{handler}} p50"),
		),
		timeseries("Node agent scan errors",
			"Failed cgroup scans of the leakguard node agent, per second and node. A node whose scans fail has no orphan or dying cgroup counts, so its cgroup alerts cannot fire: read the agent's log on that node.",
			unitPerSec,
			query("sum by (node) (rate("+metric("leakguard_node_cgroup_scan_errors_total", p.AgentSelector, clusterM)+"[$__rate_interval]))", "{{node}}"),
		).withLinks(runbookLinks(p, rules.AlertNodeOrphanCgroups, rules.AlertNodeCgroupLeak)),
		timeseries("Node agent scan duration",
			"How long one cgroup scan of the node agent takes, 99th percentile per node. A scan that takes seconds points at a node with a very large cgroup tree, itself a sign of a cgroup leak.",
			unitSeconds,
			query("histogram_quantile(0.99, sum by (node, le) (rate("+metric("leakguard_node_cgroup_scan_duration_seconds_bucket", p.AgentSelector, clusterM)+"[$__rate_interval])))", "{{node}}"),
		),
	}
	d := newDashboard(UIDSelf, "leakguard / Operations",
		"leakguard's own metrics: alerts received, decisions by outcome and reason, remediations by kind and result, check and webhook latency.",
		vars, nil)
	d.Tags = []string{"leakguard"}
	return build(d, specs)
}
