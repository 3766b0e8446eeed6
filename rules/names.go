// Package rules holds leakguard's alert catalogue as Go values and renders
// it to a Prometheus rule file and to a PrometheusRule object.
//
// The alert names, their labels and the metrics they read are the public
// contract of shared/ALERTS.md; the recording rules below are shared with the
// dashboards and the remediation checks, so that none of them disagree.
package rules

// Alert names: the contract of shared/ALERTS.md.
const (
	AlertContainerMemoryLeak              = "ContainerMemoryLeak"
	AlertContainerMemoryOOMPredicted      = "ContainerMemoryOOMPredicted"
	AlertContainerMemoryNearLimit         = "ContainerMemoryNearLimit"
	AlertContainerOOMKilled               = "ContainerOOMKilled"
	AlertContainerMemoryLimitMissing      = "ContainerMemoryLimitMissing"
	AlertNodeOrphanCgroups                = "NodeOrphanCgroups"
	AlertNodeCgroupLeak                   = "NodeCgroupLeak"
	AlertControlPlaneMemoryAboveWaterline = "ControlPlaneMemoryAboveWaterline"
	AlertKubeAPIServerMemoryHigh          = "KubeAPIServerMemoryHigh"
	AlertKubeAPIServerObjectSurge         = "KubeAPIServerObjectSurge"
)

// Recording rules, named level:metric:operations. Container-level series
// carry namespace, pod, container and node; node-level ones node.
const (
	// RecWorkingSet is the working set of each container: cAdvisor's series
	// without the pod cgroup (container=""), the pause container
	// (container="POD") and non-container cgroups (image=""), and with the
	// lingering series of a previous container run folded in by max.
	RecWorkingSet = "namespace_pod_container:container_memory_working_set_bytes:max"
	// RecWorkingSetFloorFast is the lowest working set over one step of the
	// fast trend (15m): the floor of a fast leak, which it follows sooner.
	RecWorkingSetFloorFast = "namespace_pod_container:container_memory_working_set_bytes:floor_fast"
	// RecWorkingSetFloor is the lowest working set over the floor window: the
	// level after garbage collection, which a GC sawtooth does not move.
	RecWorkingSetFloor = "namespace_pod_container:container_memory_working_set_bytes:floor"
	// RecWorkingSetFloorFastStep is the rise of the fast floor over the last
	// step of the fast trend, and RecWorkingSetFloorFastGrowth over all its
	// steps; like the other trend records below, present only where the rise
	// is large enough to matter to its trend (see the leak runbook).
	RecWorkingSetFloorFastStep   = "namespace_pod_container:container_memory_working_set_bytes:floor_fast_step"
	RecWorkingSetFloorFastGrowth = "namespace_pod_container:container_memory_working_set_bytes:floor_fast_growth"
	// RecWorkingSetFloorStep is the rise of the floor over the last step of
	// the steady leak trend, and RecWorkingSetFloorGrowth over all its steps.
	RecWorkingSetFloorStep   = "namespace_pod_container:container_memory_working_set_bytes:floor_step"
	RecWorkingSetFloorGrowth = "namespace_pod_container:container_memory_working_set_bytes:floor_growth"
	// RecWorkingSetFloorSlowStep is the rise of the floor over the last step
	// of the slow trend (recorded only when the slow step is not the steady
	// trend's span, whose growth it then is), and RecWorkingSetFloorSlowGrowth
	// over all its steps.
	RecWorkingSetFloorSlowStep   = "namespace_pod_container:container_memory_working_set_bytes:floor_slow_step"
	RecWorkingSetFloorSlowGrowth = "namespace_pod_container:container_memory_working_set_bytes:floor_slow_growth"
	// RecRecentStart is the start time of each container run that started
	// within the slow trend's window: the leak trends skip a container that
	// restarted within theirs, and the young trend judges the runs younger
	// than the steady trend's window.
	RecRecentStart = "namespace_pod_container:kube_pod_container_state_started:recent"
	// RecWorkingSetDeriv is the slope of the floor over the leak span, in
	// bytes per second (the growth rate the dashboards and checks show).
	RecWorkingSetDeriv = "namespace_pod_container:container_memory_working_set_bytes:deriv"
	// RecLeakRate is how fast a leaking container's floor grows, in bytes per
	// second, present only where one of the trends (fast, steady, slow, or
	// young for a run that leaks from its start) holds and the container
	// did not restart within it.
	RecLeakRate = "namespace_pod_container:container_memory_working_set_bytes:leak_rate"
	// RecLeakRateFast, RecLeakRateSteady and RecLeakRateSlow are the leak
	// rate of each trend, present only where that trend holds.
	RecLeakRateFast   = "namespace_pod_container:container_memory_working_set_bytes:leak_rate_fast"
	RecLeakRateSteady = "namespace_pod_container:container_memory_working_set_bytes:leak_rate_steady"
	RecLeakRateSlow   = "namespace_pod_container:container_memory_working_set_bytes:leak_rate_slow"
	// RecLeakRateYoung is the leak rate of a young run (one that started
	// within the steady trend's window, which the other trends skip) that
	// has grown in every step since its start for longer than a warm-up
	// may (maxWarmUp); present only where that holds.
	RecLeakRateYoung = "namespace_pod_container:container_memory_working_set_bytes:leak_rate_young"
	// RecWorkingSetFloorYoung is the lowest working set of a young run over
	// one step of the young trend (the trend interval by default), from the
	// run's second step on; RecWorkingSetFloorYoungStep its rise over the
	// last step, and RecWorkingSetFloorYoungSteps the last steps of the
	// current run, labelled apart by step (as the other trends compare
	// theirs). Present only for young runs, a few series.
	RecWorkingSetFloorYoung      = "namespace_pod_container:container_memory_working_set_bytes:floor_young"
	RecWorkingSetFloorYoungStep  = "namespace_pod_container:container_memory_working_set_bytes:floor_young_step"
	RecWorkingSetFloorYoungSteps = "namespace_pod_container:container_memory_working_set_bytes:floor_young_steps"
	// RecMemoryLimit is each container's memory limit in bytes
	// (namespace, pod, container); absent for a container without one.
	RecMemoryLimit = "namespace_pod_container:kube_pod_container_resource_limits_memory_bytes:max"
	// RecMemoryRequest is each container's memory request in bytes
	// (namespace, pod, container), for the dashboards; absent without one.
	RecMemoryRequest = "namespace_pod_container:kube_pod_container_resource_requests_memory_bytes:max"
	// RecLimitRatio is the working set as a share of the limit.
	RecLimitRatio = "namespace_pod_container:container_memory_working_set_bytes:ratio_limit"
	// RecSecondsToLimit is when the leak reaches the limit at RecLeakRate, in
	// seconds from now; present only for a leaking container with a limit.
	RecSecondsToLimit = "namespace_pod_container:container_memory_working_set_bytes:seconds_to_limit"

	// RecWorkingSetPeakStep is the peak working set over the last step of
	// the recommendation group (RecommendInterval, 1h), recorded once a
	// step, for containers without a memory limit only.
	RecWorkingSetPeakStep = "namespace_pod_container:container_memory_working_set_bytes:peak_step"
	// RecWorkingSetPeak is the peak working set over RecommendWindow (7d),
	// from the step peaks, of a container without a memory limit whose pod
	// has run for at least RecommendMinHistory (1d).
	RecWorkingSetPeak = "namespace_pod_container:container_memory_working_set_bytes:peak"
	// RecMemoryLimitRecommended is the memory limit recommended for a
	// container without one, in bytes: RecWorkingSetPeak plus
	// RecommendHeadroom, rounded up as leakguard recommend rounds; absent
	// for a container that the leak trends flagged in the window (its peak
	// measures the leak, not its need), that has a limit, or whose pod is
	// younger than RecommendMinHistory.
	RecMemoryLimitRecommended = "namespace_pod_container:kube_pod_container_resource_limits_memory_bytes:recommended"

	// RecNodeOrphanCgroups is the node agent's orphan cgroup count per node.
	RecNodeOrphanCgroups = "node:leakguard_node_orphan_cgroups:max"
	// RecNodeDyingCgroups is the node agent's dying cgroup count per node.
	RecNodeDyingCgroups = "node:leakguard_node_dying_cgroups:max"
	// RecNodeDyingCgroupsStep is the rise of dying cgroups over the last step
	// of their trend, and RecNodeDyingCgroupsGrowth over all its steps.
	RecNodeDyingCgroupsStep   = "node:leakguard_node_dying_cgroups:step"
	RecNodeDyingCgroupsGrowth = "node:leakguard_node_dying_cgroups:growth"
	// RecNodeMemoryCgroups is live memory cgroups per node (the memory
	// controller on cgroup v1, all cgroups on v2) plus dying ones.
	RecNodeMemoryCgroups = "node:leakguard_node_memory_cgroups:sum"
	// RecNodeMemoryRatio is the node's root-cgroup working set as a share of
	// its memory.
	RecNodeMemoryRatio = "node:container_memory_working_set_bytes:ratio"
	// RecAPIServerMemoryRatio is kube-apiserver's resident memory as a share
	// of its node's memory, with node (and pod for a static pod).
	RecAPIServerMemoryRatio = "node:apiserver_process_resident_memory_bytes:ratio"
	// RecAPIServerObjects is the number of objects per resource.
	RecAPIServerObjects = "resource:apiserver_resource_objects:max"
)

// AlertNames lists every alert of the catalogue, in the contract's order.
func AlertNames() []string {
	return []string{
		AlertContainerMemoryLeak,
		AlertContainerMemoryOOMPredicted,
		AlertContainerMemoryNearLimit,
		AlertContainerOOMKilled,
		AlertContainerMemoryLimitMissing,
		AlertNodeOrphanCgroups,
		AlertNodeCgroupLeak,
		AlertControlPlaneMemoryAboveWaterline,
		AlertKubeAPIServerMemoryHigh,
		AlertKubeAPIServerObjectSurge,
	}
}
