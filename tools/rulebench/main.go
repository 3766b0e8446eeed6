// Command rulebench writes a promtool test file that loads synthetic memory
// series for many containers and nodes and evaluates a rule file every minute
// over them, to measure what leakguard's rules cost to evaluate.
//
// It is driven by hack/rules-bench.sh, which times promtool on the file with
// the real rules and with no rules, and reports the difference.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
)

func main() {
	containers := flag.Int("containers", 1000, "containers (one per pod, each with a pause container and a pod cgroup)")
	minutes := flag.Int("minutes", 180, "minutes of series; rules are evaluated once a minute over them")
	nodesPer := flag.Int("pods-per-node", 40, "pods per node")
	rules := flag.String("rules", "", "rule file the test loads")
	flag.Parse()
	if *rules == "" || *containers < 1 || *minutes < 2 || *nodesPer < 1 {
		fmt.Fprintln(os.Stderr, "usage: rulebench -rules FILE [-containers N] [-minutes M] [-pods-per-node K]")
		os.Exit(2)
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	m := *minutes
	fmt.Fprintf(w, "rule_files:\n  - '%s'\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n", *rules)
	series := func(s, values string) {
		fmt.Fprintf(w, "      - series: '%s'\n        values: '%s'\n", s, values)
	}
	const mib = 1 << 20
	nodes := (*containers + *nodesPer - 1) / *nodesPer
	for n := 0; n < nodes; n++ {
		node := fmt.Sprintf("node-%d", n)
		series(fmt.Sprintf(`machine_memory_bytes{job="kubelet",metrics_path="/metrics/cadvisor",node="%s"}`, node), fmt.Sprintf("%d+0x%d", 64<<30, m))
		series(fmt.Sprintf(`container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",id="/",node="%s"}`, node), fmt.Sprintf("%d+%dx%d", 20<<30, mib, m))
		series(fmt.Sprintf(`leakguard_node_orphan_cgroups{job="leakguard-agent",node="%s"}`, node), fmt.Sprintf("%d+0x%d", n%30, m))
		series(fmt.Sprintf(`leakguard_node_dying_cgroups{job="leakguard-agent",node="%s"}`, node), fmt.Sprintf("%d+%dx%d", 100, n%3, m))
		series(fmt.Sprintf(`leakguard_node_cgroups{job="leakguard-agent",node="%s",controller="unified"}`, node), fmt.Sprintf("%d+0x%d", 1500, m))
		if n < 3 {
			series(fmt.Sprintf(`kube_node_role{job="kube-state-metrics",node="%s",role="control-plane"}`, node), fmt.Sprintf("1+0x%d", m))
			series(fmt.Sprintf(`process_resident_memory_bytes{job="apiserver",instance="10.0.0.%d:6443"}`, n+1), fmt.Sprintf("%d+%dx%d", 8<<30, mib, m))
			series(fmt.Sprintf(`kube_pod_info{job="kube-state-metrics",namespace="kube-system",pod="kube-apiserver-%s",node="%s",host_ip="10.0.0.%d",created_by_kind="Node"}`, node, node, n+1), fmt.Sprintf("1+0x%d", m))
		}
	}
	for r := 0; r < 40; r++ {
		series(fmt.Sprintf(`apiserver_resource_objects{job="apiserver",instance="10.0.0.1:6443",resource="r%d",group="g"}`, r), fmt.Sprintf("%d+%dx%d", 1000*r, r, m))
	}
	for i := 0; i < *containers; i++ {
		ns, pod, node := fmt.Sprintf("ns-%d", i%50), fmt.Sprintf("app-%d", i), fmt.Sprintf("node-%d", i / *nodesPer)
		id := fmt.Sprintf("/kubepods.slice/pod%d.slice", i)
		base := int64(200+i%800) * mib
		// One container in 50 leaks and one in 10 has no limit, the rest are
		// flat: a cluster with a few alerts firing, as most are.
		growth := int64(0)
		if i%50 == 0 {
			growth = mib
		}
		ws := fmt.Sprintf("%d+%dx%d", base, growth, m)
		series(fmt.Sprintf(`container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",namespace="%s",pod="%s",container="app",image="app:1",node="%s",id="%s/c"}`, ns, pod, node, id), ws)
		// The pause container in containerd's and CRI-O's form (no container
		// label, the pause image) for even pods, dockershim's ("POD") for
		// odd ones: the rules drop both.
		pause := ""
		if i%2 == 1 {
			pause = `container="POD",`
		}
		series(fmt.Sprintf(`container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",namespace="%s",pod="%s",%simage="pause:3.9",node="%s",id="%s/p"}`, ns, pod, pause, node, id), fmt.Sprintf("%d+0x%d", mib, m))
		series(fmt.Sprintf(`container_memory_working_set_bytes{job="kubelet",metrics_path="/metrics/cadvisor",namespace="%s",pod="%s",node="%s",id="%s"}`, ns, pod, node, id), ws)
		series(fmt.Sprintf(`container_oom_events_total{job="kubelet",metrics_path="/metrics/cadvisor",namespace="%s",pod="%s",container="app",image="app:1",node="%s",id="%s/c"}`, ns, pod, node, id), fmt.Sprintf("0+0x%d", m))
		if i%10 != 0 {
			series(fmt.Sprintf(`kube_pod_container_resource_limits{job="kube-state-metrics",namespace="%s",pod="%s",container="app",resource="memory",unit="byte"}`, ns, pod), fmt.Sprintf("%d+0x%d", 2<<30, m))
		}
		series(fmt.Sprintf(`kube_pod_container_status_restarts_total{job="kube-state-metrics",namespace="%s",pod="%s",container="app"}`, ns, pod), fmt.Sprintf("0+0x%d", m))
	}
	// One expression test at the end, so that promtool evaluates the rules
	// over the whole span; it expects what the data holds.
	fmt.Fprintf(w, "    promql_expr_test:\n      - expr: count(container_memory_working_set_bytes{container=\"app\"})\n        eval_time: %dm\n        exp_samples:\n          - labels: '{}'\n            value: %d\n", m, *containers)
}
