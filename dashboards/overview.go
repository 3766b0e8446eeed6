package dashboards

import (
	"fmt"
	"strings"

	"github.com/leakguard/leakguard/rules"
)

// UIDs of the dashboards: stable, so that links and bookmarks survive a
// regeneration.
const (
	UIDOverview = "leakguard-overview"
	UIDWorkload = "leakguard-workload"
	UIDNodes    = "leakguard-nodes"
	UIDSelf     = "leakguard-operations"
)

// byContainer aggregates a container-level series to one per container.
func byContainer(expr string) string {
	return "max by (namespace, pod, container) (" + expr + ")"
}

// alertsRegex matches every alert of the catalogue.
func alertsRegex() string { return strings.Join(rules.AlertNames(), "|") }

// workloadLink opens the workload dashboard on a table row's pod.
func workloadLink() DataLink {
	return DataLink{
		Title: "Workload memory of ${__data.fields.namespace}/${__data.fields.pod}",
		URL: "/d/" + UIDWorkload + "/leakguard-workload-memory?${datasource:queryparam}&${cluster:queryparam}" +
			"&var-namespace=${__data.fields.namespace}&var-workload=$__all&var-pod=${__data.fields.pod}&${__url_time_range}",
	}
}

// Overview is the memory leaks overview: who leaks, how fast, when they
// will die, what is firing, who was OOM-killed and who has no limit.
func Overview(p rules.Params) Dashboard {
	ns := `namespace=~"$namespace"`
	ws := metric(rules.RecWorkingSet, clusterM, ns)
	deriv := metric(rules.RecWorkingSetDeriv, clusterM, ns)
	limit := metric(rules.RecMemoryLimit, clusterM, ns)
	ratio := metric(rules.RecLimitRatio, clusterM, ns)
	toLimit := metric(rules.RecSecondsToLimit, clusterM, ns)
	// The growing containers: the 20 with the steepest positive slope of
	// the working-set floor.
	growing := "topk(20, " + byContainer(deriv) + " > 0)"
	onGrowing := func(expr string) string {
		return byContainer(expr) + "\nand on (namespace, pod, container)\n" + growing
	}
	horizon := seconds(p.OOMHorizon)

	vars := []Variable{
		datasourceVar(),
		clusterVar(p),
		queryVar("namespace", "Namespace", "Namespaces to show.",
			fmt.Sprintf("label_values(%s, namespace)", metric(rules.RecWorkingSet, clusterM)), true, true, ".*", varHideNone),
	}
	firing := metric("ALERTS", `alertstate="firing"`, fmt.Sprintf("alertname=~%q", alertsRegex()), clusterM)

	specs := []panelSpec{
		stat("Alerts firing", "How many leakguard alerts fire now, by severity. Critical ones page: open the table below, then the runbook of the alert.",
			unitShort, thresholds("green", 1.0, "red"),
			instantQuery("count by (severity) ("+firing+")", "{{severity}}")).size(6, 6),
		stat("Predicted to hit their limit", fmt.Sprintf("Containers whose working-set trend reaches their memory limit within %s: ContainerMemoryOOMPredicted fires for those that also grew steadily. Restart or fix them before the OOM killer does.", p.OOMHorizon),
			unitShort, thresholds("green", 1.0, "red"),
			instantQuery(fmt.Sprintf("count(%s < %s) or vector(0)", byContainer(toLimit), horizon), "containers")).
			withLinks(runbookLinks(p, rules.AlertContainerMemoryOOMPredicted)).size(6, 6),
		stat("Running without a memory limit", "Running containers without a memory limit: a leak in one of them takes the whole node down. Set limits (see the table at the bottom).",
			unitShort, thresholds("green", 1.0, "yellow"),
			instantQuery(fmt.Sprintf("count(%s) or vector(0)", noLimitExpr(p, ns)), "containers")).
			withLinks(runbookLinks(p, rules.AlertContainerMemoryLimitMissing)).size(6, 6),
		stat("OOM kills in the time range", "Containers killed by the kernel's OOM killer in the dashboard's time range (cAdvisor's oom events). Each one lost in-flight work.",
			unitShort, thresholds("green", 1.0, "red"),
			instantQuery(fmt.Sprintf("sum(increase(%s[$__range])) or vector(0)",
				metric("container_oom_events_total", p.CadvisorSelector, realContainers, clusterM, ns)), "OOM kills")).
			withLinks(runbookLinks(p, rules.AlertContainerOOMKilled)).size(6, 6),

		table("Firing leakguard alerts", "Every leakguard alert firing now and the object it is about. Click the alert name for its runbook.",
			[]string{"alertname", "severity", "namespace", "pod", "container", "node", "resource"},
			map[string]DataLink{"alertname": {Title: "Runbook of ${__value.raw}", URL: p.RunbookBaseURL + "${__value.raw}.md", TargetBlank: true}},
			"",
			column{name: "Firing", unit: unitShort, expr: "max by (alertname, severity, namespace, pod, container, node, resource) (" + firing + ")", hidden: true},
		).size(24, 8),

		timeseries("Working-set growth rate (top 10, per hour)",
			"How fast the working set after garbage collection (its floor over "+p.FloorWindow.String()+") grows, per hour, fitted over the last "+p.LeakSpan().String()+". A line that stays above zero for hours is a leak; open the workload dashboard from the table below.",
			unitBytes,
			query("topk(10, "+byContainer(deriv)+" * 3600 > 0)", "{{namespace}}/{{pod}}/{{container}}")).
			withLinks(runbookLinks(p, rules.AlertContainerMemoryLeak)).size(12, 9),
		timeseries("OOM kills",
			"OOM kills per container: the kernel's count from cAdvisor and restarts whose last terminated reason is OOMKilled (kube-state-metrics). A container that is killed again and again needs a higher limit or a fix.",
			unitShort,
			query("sum by (namespace, pod, container) (increase("+metric("container_oom_events_total", p.CadvisorSelector, realContainers, clusterM, ns)+"[$__rate_interval])) > 0", "{{namespace}}/{{pod}}/{{container}} (kernel)"),
			query("sum by (namespace, pod, container) (increase("+metric("kube_pod_container_status_restarts_total", p.KubeStateMetricsSelector, clusterM, ns)+"[$__rate_interval]))\n> 0\nand on (namespace, pod, container)\n"+
				byContainer(metric("kube_pod_container_status_last_terminated_reason", p.KubeStateMetricsSelector, `reason="OOMKilled"`, clusterM, ns))+" == 1",
				"{{namespace}}/{{pod}}/{{container}} (restart)"),
		).bars().withLinks(runbookLinks(p, rules.AlertContainerOOMKilled)).size(12, 9),

		table("Growing containers",
			fmt.Sprintf("The 20 containers whose working-set floor grows fastest, with their limit, the growth per hour and when the trend reaches the limit (red below the %s alert horizon). Sort by any column; click a pod for its workload dashboard.", p.OOMHorizon),
			[]string{"namespace", "pod", "container"},
			map[string]DataLink{"pod": workloadLink()},
			"Growth per hour",
			column{name: "Working set", unit: unitBytes, expr: onGrowing(ws)},
			column{name: "Limit", unit: unitBytes, expr: onGrowing(limit)},
			column{name: "Share of limit", unit: unitPercent, expr: onGrowing(ratio),
				thresholds: thresholds("green", p.NearLimitRatio, "red")},
			column{name: "Growth per hour", unit: unitBytes, expr: growing + " * 3600"},
			column{name: "Time to limit", unit: unitSeconds, expr: onGrowing(toLimit),
				thresholds: thresholds("red", secondsF(p.OOMHorizon), "yellow", 2*secondsF(p.OOMHorizon), "green")},
		).withLinks(runbookLinks(p, rules.AlertContainerMemoryLeak, rules.AlertContainerMemoryOOMPredicted, rules.AlertContainerMemoryNearLimit)).size(24, 10),

		table("Containers without a memory limit",
			fmt.Sprintf("Running containers that have no memory limit, largest working set first, with the limit to set: the peak working set over %s plus %s, rounded up as leakguard recommend rounds (empty while the pod has run less than %s, or while the leak trends flag the container: its peak is the leak's).", p.RecommendWindow, percent(p.RecommendHeadroom), p.RecommendMinHistory),
			[]string{"namespace", "pod", "container"},
			map[string]DataLink{"pod": workloadLink()},
			"Working set",
			column{name: "Working set", unit: unitBytes, expr: byContainer(ws) + "\nand on (namespace, pod, container)\n" + noLimitExpr(p, ns)},
			column{name: "Recommended limit", unit: unitBytes, expr: byContainer(recommendedLimit(p, ns)) + "\nand on (namespace, pod, container)\n" + noLimitExpr(p, ns)},
		).withLinks(runbookLinks(p, rules.AlertContainerMemoryLimitMissing)).size(24, 8),
	}
	d := newDashboard(UIDOverview, "leakguard / Memory leaks overview",
		"Which containers leak memory, how fast, and when they will reach their limit; firing leakguard alerts, OOM kills and containers without limits.",
		vars, nil)
	return build(d, specs)
}

// noLimitExpr is the running containers without a memory limit, as
// ContainerMemoryLimitMissing sees them.
func noLimitExpr(p rules.Params, ns string) string {
	return byContainer(metric(rules.RecWorkingSet, clusterM, ns)) +
		"\nunless on (namespace, pod, container)\n" + metric(rules.RecMemoryLimit, clusterM)
}
