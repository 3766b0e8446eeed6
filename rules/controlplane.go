package rules

import "time"

// controlPlaneGroup is the memory of control-plane nodes and of
// kube-apiserver against their node's, and the API server's object counts,
// with an alert on each.
func controlPlaneGroup(p Params) Group {
	ksm := p.KubeStateMetricsSelector
	v := vars{
		"nodeRatio":      RecNodeMemoryRatio,
		"apiServerRatio": RecAPIServerMemoryRatio,
		"objects":        RecAPIServerObjects,
		"objectsBefore":  offset(RecAPIServerObjects, time.Duration(p.ObjectSurgeWindow)),
		"nodeRoot":       sel(p.CadvisorSelector, `id="/"`),
		"apiServer":      sel(p.APIServerSelector),
		"ksm":            sel(ksm),
		"apiServerPods":  sel(ksm, `namespace="kube-system"`, `pod=~"kube-apiserver-.+"`, `created_by_kind="Node"`),
		"controlPlane":   sel(ksm, p.ControlPlaneRoleSelector),
		// A node's memory: cAdvisor's machine_memory_bytes, or the capacity
		// kube-state-metrics reports where cAdvisor has none.
		"nodeMemory": expand(`(
  max by (node) (machine_memory_bytes${cadvisor})
  or
  max by (node) (kube_node_status_capacity${capacity})
)`, vars{"cadvisor": sel(p.CadvisorSelector), "capacity": sel(ksm, `resource="memory"`)}),
		"waterline":          num(p.ControlPlaneWaterline),
		"waterlineText":      percent(p.ControlPlaneWaterline),
		"apiServerLimit":     num(p.APIServerMemoryRatio),
		"apiServerLimitText": percent(p.APIServerMemoryRatio),
		"surgeMinObjects":    num(p.ObjectSurgeMinObjects),
		"surgeMinRatio":      num(p.ObjectSurgeMinRatio),
		"surgeWindow":        prom(p.ObjectSurgeWindow),
	}
	return Group{
		Name:     GroupControlPlane,
		Interval: p.Interval,
		Records: []Record{
			{RecNodeMemoryRatio, expand(`max by (node) (container_memory_working_set_bytes${nodeRoot})
/ on (node)
${nodeMemory}`, v)},
			{RecAPIServerMemoryRatio, expand(`(
  max by (node, pod) (
    label_replace(
      max by (instance) (process_resident_memory_bytes${apiServer}),
      "host_ip", "$1", "instance", "^\\[?([^\\]]*?)\\]?:[0-9]+$"
    )
    * on (host_ip) group_left (node, pod)
    topk by (host_ip) (1, max by (host_ip, node, pod) (kube_pod_info${apiServerPods}))
  )
  or on (node)
  max by (node) (
    label_replace(
      max by (instance) (process_resident_memory_bytes${apiServer}),
      "internal_ip", "$1", "instance", "^\\[?([^\\]]*?)\\]?:[0-9]+$"
    )
    * on (internal_ip) group_left (node)
    max by (internal_ip, node) (kube_node_info${ksm})
  )
)
/ on (node) group_left ()
${nodeMemory}`, v)},
			// apiserver_resource_objects (1.34+) names a resource by resource
			// and group; apiserver_storage_objects as "resource.group". Both
			// read -1 when the count is unknown, which is no count at all.
			{RecAPIServerObjects, expand(`max by (resource) (
  label_replace(
    label_join(apiserver_resource_objects${apiServer} >= 0, "resource", ".", "resource", "group"),
    "resource", "$1", "resource", "^(.*)\\.$"
  )
)
or
max by (resource) (apiserver_storage_objects${apiServer} >= 0)`, v)},
		},
		Alerts: []Alert{
			{
				Name:     AlertControlPlaneMemoryAboveWaterline,
				Severity: SeverityWarning,
				Expr: expand(`${nodeRatio} > ${waterline}
and on (node)
max by (node) (kube_node_role${controlPlane})`, v),
				For:         p.ControlPlaneFor,
				Summary:     "A control-plane node uses more memory than the waterline.",
				Description: expand(`Control-plane node {{ $labels.node }} uses {{ $value | humanizePercentage }} of its memory (waterline ${waterlineText}).`, v),
				Labels:      []string{"node"},
			},
			{
				Name:        AlertKubeAPIServerMemoryHigh,
				Severity:    SeverityCritical,
				Expr:        expand(`${apiServerRatio} > ${apiServerLimit}`, v),
				For:         p.APIServerMemoryFor,
				Summary:     "kube-apiserver uses more than the waterline of its node's memory.",
				Description: expand(`kube-apiserver on node {{ $labels.node }} uses {{ $value | humanizePercentage }} of the node's memory (waterline ${apiServerLimitText}); take a heap profile now.`, v),
				Labels:      []string{"node"},
			},
			{
				Name:     AlertKubeAPIServerObjectSurge,
				Severity: SeverityWarning,
				Expr: expand(`(${objects} - ${objectsBefore}) > ${surgeMinObjects}
and
${objects} > (1 + ${surgeMinRatio}) * ${objectsBefore}`, v),
				For:         p.ObjectSurgeFor,
				Summary:     "The number of one resource's objects in the API server surges.",
				Description: expand(`{{ $labels.resource }} objects grew by {{ $value }} in ${surgeWindow}; a burst of large objects inflates kube-apiserver's memory.`, v),
				Labels:      []string{"resource"},
			},
		},
	}
}
