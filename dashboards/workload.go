package dashboards

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

func secondsF(d model.Duration) float64 { return time.Duration(d).Seconds() }

// Workload is the memory of one workload's pods, container by container:
// working set against the limit, the fitted trend and its crossing, RSS and
// cache, restarts and OOM kills on the time axis.
func Workload(p rules.Params) Dashboard {
	ns, pod := `namespace="$namespace"`, `pod=~"$pod"`
	vars := []Variable{
		datasourceVar(),
		clusterVar(p),
		queryVar("namespace", "Namespace", "The workload's namespace.",
			fmt.Sprintf("label_values(%s, namespace)", metric(rules.RecWorkingSet, clusterM)), false, false, "", varHideNone),
		queryVar("workload", "Workload", "The pods' owner (ReplicaSet, StatefulSet, DaemonSet or Job, from kube_pod_owner).",
			fmt.Sprintf("label_values(%s, owner_name)", metric("kube_pod_owner", p.KubeStateMetricsSelector, clusterM, ns)), true, false, ".*", varHideNone),
		// No allValue: "All" expands to the workload's own pods.
		queryVar("pod", "Pod", "Pods of the workload.",
			fmt.Sprintf("label_values(%s, pod)", metric("kube_pod_owner", p.KubeStateMetricsSelector, clusterM, ns, `owner_name=~"$workload"`)), true, true, "", varHideNone),
	}
	cad := func(name string) string {
		return byContainer(metric(name, p.CadvisorSelector, realContainers, clusterM, ns, pod))
	}
	restarts := "sum by (namespace, pod, container) (increase(" +
		metric("kube_pod_container_status_restarts_total", p.KubeStateMetricsSelector, clusterM, ns, pod) + "[$__rate_interval]))"
	oomRestarts := restarts + " > 0\nand on (namespace, pod, container)\n" +
		byContainer(metric("kube_pod_container_status_last_terminated_reason", p.KubeStateMetricsSelector, `reason="OOMKilled"`, clusterM, ns, pod)) + " == 1"
	oomEvents := "sum by (namespace, pod, container) (increase(" +
		metric("container_oom_events_total", p.CadvisorSelector, realContainers, clusterM, ns, pod) + "[$__rate_interval])) > 0"
	annotations := []Annotation{
		promAnnotation("Restarts", "orange", restarts+" > 0", "Restart of {{container}}", "{{namespace}}/{{pod}}", "container"),
		promAnnotation("OOM kills", "red", oomRestarts+"\nor\n"+oomEvents, "OOM kill of {{container}}", "{{namespace}}/{{pod}}", "container"),
	}
	ws := metric(rules.RecWorkingSet, clusterM, ns, pod)
	limit := metric(rules.RecMemoryLimit, clusterM, ns, pod)
	request := metric(rules.RecMemoryRequest, clusterM, ns, pod)
	recommended := recommendedLimit(p, ns, pod)
	floor := metric(rules.RecWorkingSetFloor, clusterM, ns, pod)
	deriv := metric(rules.RecWorkingSetDeriv, clusterM, ns, pod)
	horizon := seconds(p.OOMHorizon)

	specs := []panelSpec{
		timeseries("Working set against limit and request",
			fmt.Sprintf("Each container's working set (what the OOM killer compares with the limit), its memory limit (dashed red) and its memory request (dashed orange: what the scheduler reserved; above it, the pod is among the first the kubelet evicts under node memory pressure). For a container without a limit, the limit to set (dashed green): its peak working set over %s plus %s, rounded up as leakguard recommend rounds, once its pod has run %s; none while the leak trends flag it, whose peak is the leak's. Restarts and OOM kills are marked on the time axis. A working set that touches the limit gets the container killed.",
				p.RecommendWindow, percent(p.RecommendHeadroom), p.RecommendMinHistory),
			unitBytes,
			query(byContainer(ws), "{{pod}}/{{container}}"),
			query(byContainer(limit), "{{pod}}/{{container}} limit"),
			query(byContainer(request), "{{pod}}/{{container}} request"),
			query(byContainer(recommended), "{{pod}}/{{container}} recommended"),
		).withOverrides(dashedRed(".* limit$"), dashed(".* request$", "orange"), dashed(".* recommended$", "green")).
			withLinks(runbookLinks(p, rules.AlertContainerMemoryNearLimit, rules.AlertContainerOOMKilled, rules.AlertContainerMemoryLimitMissing)).size(24, 9),

		timeseries("Fitted trend and predicted crossing",
			fmt.Sprintf("The working-set floor (lowest over %s, so a GC sawtooth does not move it), where that floor will be in %s at the slope fitted over %s (dotted), and the limit (dashed red). When the dotted line crosses the limit, ContainerMemoryOOMPredicted is about to fire; the stat beside it says when.", p.FloorWindow, p.OOMHorizon, p.LeakSpan()),
			unitBytes,
			query(byContainer(floor), "{{pod}}/{{container}} floor"),
			query(byContainer(floor)+"\n+ on (namespace, pod, container)\n"+byContainer(deriv)+" * "+horizon, "{{pod}}/{{container}} in "+p.OOMHorizon.String()),
			query(byContainer(limit), "{{pod}}/{{container}} limit"),
		).withOverrides(dashedRed(".* limit$"), Override{
			Matcher:    Matcher{ID: "byRegexp", Options: ".* in " + p.OOMHorizon.String() + "$"},
			Properties: []Property{{ID: "custom.lineStyle", Value: LineStyle{Fill: "dot"}}},
		}).withLinks(runbookLinks(p, rules.AlertContainerMemoryLeak, rules.AlertContainerMemoryOOMPredicted)).size(16, 9),

		stat("Predicted time to limit",
			fmt.Sprintf("When the fitted trend reaches the limit, per container (none: not growing, or no limit). Red below %s, the horizon of ContainerMemoryOOMPredicted.", p.OOMHorizon),
			unitSeconds, thresholds("red", secondsF(p.OOMHorizon), "yellow", 2*secondsF(p.OOMHorizon), "green"),
			instantQuery(byContainer(metric(rules.RecSecondsToLimit, clusterM, ns, pod)), "{{pod}}/{{container}}"),
		).noValue("not growing").withLinks(runbookLinks(p, rules.AlertContainerMemoryOOMPredicted)).size(8, 9),

		timeseries("Working set, RSS and cache",
			"RSS (anonymous memory: heap, stacks) and page cache beside the working set and usage. A rise in cache alone is not a leak: the kernel reclaims it under pressure. A leak shows in RSS and the working set.",
			unitBytes,
			query(cad("container_memory_working_set_bytes"), "{{pod}}/{{container}} working set"),
			query(cad("container_memory_rss"), "{{pod}}/{{container}} rss"),
			query(cad("container_memory_cache"), "{{pod}}/{{container}} cache"),
			query(cad("container_memory_usage_bytes"), "{{pod}}/{{container}} usage"),
		).size(12, 9),

		timeseries("Share of limit",
			fmt.Sprintf("Working set as a share of the limit. ContainerMemoryNearLimit fires above %s for %s.", percent(p.NearLimitRatio), p.NearLimitFor),
			unitPercent,
			query(byContainer(metric(rules.RecLimitRatio, clusterM, ns, pod)), "{{pod}}/{{container}}"),
		).withThresholds(thresholds("green", p.NearLimitRatio, "red"), "line").withMinMax(ptr(0.0), nil).
			withLinks(runbookLinks(p, rules.AlertContainerMemoryNearLimit)).size(12, 9),

		timeseries("Restarts",
			"Container restarts per interval. Restarts after OOM kills show up on the time axis of the graphs above as well.",
			unitShort,
			query(restarts, "{{pod}}/{{container}}"),
		).bars().withLinks(runbookLinks(p, rules.AlertContainerOOMKilled)).size(24, 7),
	}
	d := newDashboard(UIDWorkload, "leakguard / Workload memory",
		"One workload's containers: working set against limit, the fitted trend and when it reaches the limit, RSS and cache, restarts and OOM kills.",
		vars, annotations)
	return build(d, specs)
}

func percent(f float64) string { return num(f*100) + " %" }

// recommendedLimit is the recorded recommendation for a container without
// a limit, as ContainerMemoryLimitMissing reads it: recorded once every
// RecommendInterval, so its last value within an interval and a trend
// interval (an instant look-up would find it only minutes an hour).
func recommendedLimit(p rules.Params, matchers ...string) string {
	return fmt.Sprintf("last_over_time(%s[%s])", metric(rules.RecMemoryLimitRecommended, append([]string{clusterM}, matchers...)...), p.RecommendInterval+p.TrendInterval)
}
