package rules

import "fmt"

// nodeCgroupsGroup is the node agent's cgroup counts per node and the two
// alerts on them: orphan pod cgroups, and dying or memory cgroups piling up.
func nodeCgroupsGroup(p Params) Group {
	dyingStep, dyingGrowth := trendRecords(RecNodeDyingCgroups, RecNodeDyingCgroupsStep, RecNodeDyingCgroupsGrowth, p.DyingStepWindow, p.DyingSteps)
	dying := trend{
		step: RecNodeDyingCgroupsStep, growth: RecNodeDyingCgroupsGrowth,
		window: p.DyingStepWindow, steps: p.DyingSteps, minRising: p.DyingSteps, minShare: p.DyingMinStepShare,
	}
	v := vars{
		"orphan":             RecNodeOrphanCgroups,
		"dying":              RecNodeDyingCgroups,
		"memoryCgroups":      RecNodeMemoryCgroups,
		"agent":              sel(p.AgentSelector),
		"memoryController":   sel(p.AgentSelector, `controller=~"memory|unified"`),
		"unified":            sel(p.AgentSelector, `controller="unified"`),
		"orphanThreshold":    num(p.OrphanCgroupsThreshold),
		"dyingTrend":         indent(dying.expr("")),
		"dyingMinGrowth":     num(p.DyingMinGrowth),
		"dyingSteps":         fmt.Sprint(p.DyingSteps),
		"dyingStepWindow":    prom(p.DyingStepWindow),
		"memoryCgroupsLimit": num(p.MemoryCgroupsLimit),
	}
	return Group{
		Name:     GroupNodeCgroups,
		Interval: p.Interval,
		Records: []Record{
			{RecNodeOrphanCgroups, expand(`max by (node) (leakguard_node_orphan_cgroups${agent})`, v)},
			{RecNodeDyingCgroups, expand(`max by (node) (leakguard_node_dying_cgroups${agent})`, v)},
			dyingStep, dyingGrowth,
			// Live plus dying memory cgroups. On v2 the directory count
			// ("unified") is the live ones alone, and the dying ones are
			// added; on v1 the memory controller's num_cgroups counts
			// both already (the agent's v1 dying count is derived from
			// it), so nothing is added there.
			{RecNodeMemoryCgroups, expand(`(
  max by (node) (leakguard_node_cgroups${unified})
  + on (node)
  ${dying}
)
or
max by (node) (leakguard_node_cgroups${memoryController})`, v)},
		},
		Alerts: []Alert{
			{
				Name:        AlertNodeOrphanCgroups,
				Severity:    SeverityWarning,
				Expr:        expand(`${orphan} > ${orphanThreshold}`, v),
				For:         p.OrphanCgroupsFor,
				Summary:     "Pod cgroups outlive their pods on a node.",
				Description: `Node {{ $labels.node }} has {{ $value }} pod cgroups whose pod is gone and which hold no process.`,
				Labels:      []string{"node"},
			},
			{
				// Both branches return the node's live plus dying memory
				// cgroups, so that the description means one thing.
				Name:     AlertNodeCgroupLeak,
				Severity: SeverityWarning,
				Expr: expand(`${memoryCgroups}
and on (node)
(
${dyingTrend}
) > ${dyingMinGrowth}
or
${memoryCgroups} > ${memoryCgroupsLimit}`, v),
				For:         p.CgroupLeakFor,
				Summary:     "Cgroups pile up on a node: dying cgroups keep growing, or memory cgroups near the kernel's limit.",
				Description: expand(`Node {{ $labels.node }} holds {{ $value }} live and dying memory cgroups: dying cgroups grew in each of the last ${dyingSteps} steps of ${dyingStepWindow}, or the count passed ${memoryCgroupsLimit} (the kernel's memory cgroup ids end at 65,535, after which pods fail to start).`, v),
				Labels:      []string{"node"},
			},
		},
	}
}
