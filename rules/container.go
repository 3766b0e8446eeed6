package rules

// containerSelector picks the containers' own series out of cAdvisor's:
// not the pod cgroup (container=""), the pause container (container="POD")
// or cgroups that are no container (image="").
func containerSelector(p Params) string {
	return sel(p.CadvisorSelector, `container!=""`, `container!="POD"`, `image!=""`)
}

// containerGroup runs every Interval (1m): the working set, the limit and
// the alerts that must be quick (near the limit, OOM killed).
func containerGroup(p Params) Group {
	v := vars{
		"workingSet":     RecWorkingSet,
		"limit":          RecMemoryLimit,
		"limitRatio":     RecLimitRatio,
		"containers":     containerSelector(p),
		"ksm":            sel(p.KubeStateMetricsSelector),
		"memoryLimits":   sel(p.KubeStateMetricsSelector, `resource="memory"`, `unit="byte"`),
		"oomKilled":      sel(p.KubeStateMetricsSelector, `reason="OOMKilled"`),
		"oomWindow":      prom(p.OOMKilledWindow),
		"nearLimitRatio": num(p.NearLimitRatio),
	}
	return Group{
		Name:     GroupContainer,
		Interval: p.Interval,
		Records: []Record{
			{RecWorkingSet, expand(`max by (namespace, pod, container, node) (
  container_memory_working_set_bytes${containers}
)`, v)},
			{RecMemoryLimit, expand(`max by (namespace, pod, container) (
  kube_pod_container_resource_limits${memoryLimits}
) > 0`, v)},
			{RecLimitRatio, expand(`${workingSet}
/ on (namespace, pod, container) group_left
${limit}`, v)},
		},
		Alerts: []Alert{
			{
				Name:        AlertContainerMemoryNearLimit,
				Severity:    SeverityWarning,
				Expr:        expand(`${limitRatio} >= ${nearLimitRatio}`, v),
				For:         p.NearLimitFor,
				Summary:     "A container's working set is close to its memory limit.",
				Description: `Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }} uses {{ $value | humanizePercentage }} of its memory limit.`,
				Labels:      []string{"namespace", "pod", "container", "node"},
			},
			{
				Name:     AlertContainerOOMKilled,
				Severity: SeverityWarning,
				Expr: expand(`(
  max by (namespace, pod, container) (
    increase(kube_pod_container_status_restarts_total${ksm}[${oomWindow}])
  ) > 0
  and on (namespace, pod, container)
  max by (namespace, pod, container) (
    kube_pod_container_status_last_terminated_reason${oomKilled}
  ) == 1
)
or on (namespace, pod, container)
(
  max by (namespace, pod, container) (
    increase(container_oom_events_total${containers}[${oomWindow}])
  ) > 0
)`, v),
				Summary:     "A container was killed because it ran out of memory.",
				Description: expand(`Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} was OOM-killed in the last ${oomWindow}.`, v),
				Labels:      []string{"namespace", "pod", "container"},
			},
		},
	}
}
