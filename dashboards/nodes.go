package dashboards

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

// Nodes is cgroup leaks per node and the control plane's memory: orphan and
// dying cgroups against their thresholds, cgroups per controller,
// control-plane node memory against the waterline, kube-apiserver memory and
// the resources with the most objects.
func Nodes(p rules.Params) Dashboard {
	node := `node=~"$node"`
	vars := []Variable{
		datasourceVar(),
		clusterVar(p),
		queryVar("node", "Node", "Nodes the leakguard node agent reports on.",
			fmt.Sprintf("label_values(%s, node)", metric("leakguard_node_cgroups", p.AgentSelector, clusterM)), true, true, ".*", varHideNone),
	}
	dying := metric(rules.RecNodeDyingCgroups, clusterM, node)
	controlPlane := "max by (node) (" + metric("kube_node_role", p.KubeStateMetricsSelector, p.ControlPlaneRoleSelector, clusterM) + ")"

	specs := []panelSpec{
		timeseries("Orphan cgroups per node",
			fmt.Sprintf("Pod cgroups whose pod is gone from the node and that hold no process, per node. NodeOrphanCgroups fires above %s (red line) for %s; drain and reboot the node, or clean the cgroups as the runbook says.", num(p.OrphanCgroupsThreshold), p.OrphanCgroupsFor),
			unitShort,
			query(metric(rules.RecNodeOrphanCgroups, clusterM, node), "{{node}}"),
		).withThresholds(thresholds("green", p.OrphanCgroupsThreshold, "red"), "line").withMinMax(ptr(0.0), nil).
			withLinks(runbookLinks(p, rules.AlertNodeOrphanCgroups)),

		timeseries("Dying cgroups per node",
			"Cgroups removed but not yet freed by the kernel (nr_dying_descendants on cgroup v2; memory num_cgroups minus live directories on v1), per node. A count that only grows means memory the kernel cannot reclaim and slower reclaim for the whole node.",
			unitShort,
			query(dying, "{{node}}"),
		).withMinMax(ptr(0.0), nil).withLinks(runbookLinks(p, rules.AlertNodeCgroupLeak)),

		timeseries("Dying cgroup growth over "+dyingSpan(p),
			fmt.Sprintf("How many dying cgroups each node gained over the last %d steps of %s. NodeCgroupLeak fires when they grew in every step and by more than %s in all (red line).", p.DyingSteps, p.DyingStepWindow, num(p.DyingMinGrowth)),
			unitShort,
			query(fmt.Sprintf("%s - %s offset %s", dying, dying, dyingSpan(p)), "{{node}}"),
		).withThresholds(thresholds("green", p.DyingMinGrowth, "red"), "line").withLinks(runbookLinks(p, rules.AlertNodeCgroupLeak)),

		timeseries("Memory cgroups, live and dying",
			fmt.Sprintf("Live plus dying memory cgroups per node. The kernel's memory cgroup ids end at 65,535; NodeCgroupLeak fires above %s (red line).", num(p.MemoryCgroupsLimit)),
			unitShort,
			query(metric(rules.RecNodeMemoryCgroups, clusterM, node), "{{node}}"),
		).withThresholds(thresholds("green", p.MemoryCgroupsLimit, "red"), "line").withMinMax(ptr(0.0), nil).
			withLinks(runbookLinks(p, rules.AlertNodeCgroupLeak)),

		timeseries("Cgroups per controller",
			"Live cgroups per node and controller (/proc/cgroups on cgroup v1; all cgroup directories, controller \"unified\", on v2). Compare nodes: one that has many more than its peers with the same pods leaks cgroups.",
			unitShort,
			query("max by (node, controller) ("+metric("leakguard_node_cgroups", p.AgentSelector, clusterM, node)+")", "{{node}} {{controller}}"),
		).size(24, 8),

		timeseries("Control-plane node memory",
			fmt.Sprintf("Memory in use on each control-plane node (root cgroup working set over the machine's memory). The field's waterline is %s (red line): above it for %s, ControlPlaneMemoryAboveWaterline fires; take a heap profile of kube-apiserver.", percent(p.ControlPlaneWaterline), p.ControlPlaneFor),
			unitPercent,
			query(metric(rules.RecNodeMemoryRatio, clusterM)+"\nand on (node)\n"+controlPlane, "{{node}}"),
		).withThresholds(thresholds("green", p.ControlPlaneWaterline, "red"), "line+area").withMinMax(ptr(0.0), ptr(1.0)).
			withLinks(runbookLinks(p, rules.AlertControlPlaneMemoryAboveWaterline)),

		timeseries("kube-apiserver memory, share of its node",
			fmt.Sprintf("kube-apiserver's resident memory as a share of its node's memory. KubeAPIServerMemoryHigh fires above %s (red line) for %s.", percent(p.APIServerMemoryRatio), p.APIServerMemoryFor),
			unitPercent,
			query(metric(rules.RecAPIServerMemoryRatio, clusterM), "{{node}} {{pod}}"),
		).withThresholds(thresholds("green", p.APIServerMemoryRatio, "red"), "line+area").withMinMax(ptr(0.0), ptr(1.0)).
			withLinks(runbookLinks(p, rules.AlertKubeAPIServerMemoryHigh)),

		timeseries("kube-apiserver resident memory",
			"kube-apiserver's resident memory per instance, in bytes. A step up that stays usually follows a burst of large objects: check the resources beside it.",
			unitBytes,
			query("max by (instance) ("+metric("process_resident_memory_bytes", p.APIServerSelector, clusterM)+")", "{{instance}}"),
		).withLinks(runbookLinks(p, rules.AlertKubeAPIServerMemoryHigh)),

		timeseries("Resources with the most objects",
			fmt.Sprintf("The 10 resources with the most objects in etcd, as kube-apiserver counts them. KubeAPIServerObjectSurge fires when one grows by more than %s and by %s objects in %s; find who creates them.", percent(p.ObjectSurgeMinRatio), num(p.ObjectSurgeMinObjects), p.ObjectSurgeWindow),
			unitShort,
			query("topk(10, "+metric(rules.RecAPIServerObjects, clusterM)+")", "{{resource}}"),
		).withLinks(runbookLinks(p, rules.AlertKubeAPIServerObjectSurge)),

		timeseries("Object growth over "+p.ObjectSurgeWindow.String(),
			fmt.Sprintf("How many objects each resource gained over the last %s (the 10 that gained most). KubeAPIServerObjectSurge fires when the gain passes %s objects (red line) and %s of where the count started; a burst of large ConfigMaps or Secrets is the classic cause of an apiserver memory spike.", p.ObjectSurgeWindow, num(p.ObjectSurgeMinObjects), percent(p.ObjectSurgeMinRatio)),
			unitShort,
			query(fmt.Sprintf("topk(10, %s - %s offset %s)", metric(rules.RecAPIServerObjects, clusterM), metric(rules.RecAPIServerObjects, clusterM), p.ObjectSurgeWindow), "{{resource}}"),
		).withThresholds(thresholds("green", p.ObjectSurgeMinObjects, "red"), "line").
			withLinks(runbookLinks(p, rules.AlertKubeAPIServerObjectSurge)).size(24, 8),
	}
	d := newDashboard(UIDNodes, "leakguard / Nodes and control plane",
		"Cgroup leaks per node (orphan, dying and live cgroups against their thresholds) and the control plane's memory: nodes against the waterline, kube-apiserver memory and object counts.",
		vars, nil)
	return build(d, specs)
}

// dyingSpan is the span of NodeCgroupLeak's growth condition.
func dyingSpan(p rules.Params) string {
	return model.Duration(time.Duration(p.DyingStepWindow) * time.Duration(p.DyingSteps)).String()
}
