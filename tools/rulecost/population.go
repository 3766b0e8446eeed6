package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// population describes the synthetic cluster: containers (one per pod, each
// pod with its pause container and its pod cgroup), 40 pods to a node, three
// control-plane nodes running kube-apiserver, one leakguard agent per node.
type population struct {
	containers  int
	podsPerNode int
	start, end  time.Time     // first and last scrape
	scrape      time.Duration // scrape interval
}

func (p population) nodes() int { return (p.containers + p.podsPerNode - 1) / p.podsPerNode }

// leaking reports whether container i leaks: one in 50, so that a few
// alerts fire, as in most clusters; each has a limit (so that the fast
// trend and the time to the limit are computed) and has not restarted.
func leaking(i int) bool { return i%50 == 5 }

// pauseIsPOD reports whether pod i's pause container is in dockershim's form
// (container="POD"); the others are in containerd's and CRI-O's, with no
// container label (container="") and the pause image, beside the pod
// cgroup, which has neither. Half and half: the rules must drop both.
func pauseIsPOD(i int) bool { return i%2 == 1 }

// hasLimit reports whether container i has a memory limit: all but one in 10.
func hasLimit(i int) bool { return i%10 != 0 }

const (
	mib = 1 << 20
	gib = 1 << 30
	// kube-prometheus-stack's targets: the kubelet's cAdvisor endpoint and
	// kube-state-metrics, as its ServiceMonitors label them.
	kubeletTarget = `endpoint="https-metrics",job="kubelet",metrics_path="/metrics/cadvisor",service="kube-prometheus-stack-kubelet"`
	ksmTarget     = `endpoint="http",instance="10.96.0.20:8080",job="kube-state-metrics",service="kube-prometheus-stack-kube-state-metrics"`
)

func nodeName(n int) string { return "node-" + strconv.Itoa(n) }
func nodeIP(n int) string   { return fmt.Sprintf("10.%d.%d.%d", 1+n/65536, n/256%256, n%256) }
func podUID(i int) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", i, i%65536, i%4096, (i*7)%4096, uint64(i)*2654435761)
}
func containerID(i, kind int) string {
	return fmt.Sprintf("%016x", uint64(i)*0x9e3779b97f4a7c15+uint64(kind))
}

// staticSeries is one series whose labels are fixed and whose value is a
// function of the step.
type staticSeries struct {
	name, labels string
	value        func(step int) float64
}

// build returns every series of the population. The order within each
// scrape is the order of this slice; the OpenMetrics file repeats it once
// per scrape, in time order, which is what promtool's backfill needs.
func (p population) build() []staticSeries {
	var out []staticSeries
	add := func(name, labels string, value func(int) float64) {
		out = append(out, staticSeries{name, labels, value})
	}
	constant := func(v float64) func(int) float64 { return func(int) float64 { return v } }
	for n := 0; n < p.nodes(); n++ {
		node, ip := nodeName(n), nodeIP(n)
		kl := fmt.Sprintf(`%s,instance="%s:10250",node="%s"`, kubeletTarget, ip, node)
		add("machine_memory_bytes", kl, constant(64*gib))
		root := kl + `,id="/"`
		nn := n
		add("container_memory_working_set_bytes", root, func(s int) float64 { return float64(20*gib + (nn%7)*gib + s*mib) })
		add("container_memory_usage_bytes", root, func(s int) float64 { return float64(30*gib + s*mib) })
		ksmNode := fmt.Sprintf(`%s,node="%s"`, ksmTarget, node)
		add("kube_node_status_capacity", ksmNode+`,resource="memory",unit="byte"`, constant(64*gib))
		add("kube_node_status_capacity", ksmNode+`,resource="cpu",unit="core"`, constant(16))
		add("kube_node_status_capacity", ksmNode+`,resource="pods",unit="integer"`, constant(110))
		add("kube_node_info", ksmNode+fmt.Sprintf(`,container_runtime_version="containerd://1.7.13",internal_ip="%s",kernel_version="6.1.0-18-amd64",kubelet_version="v1.29.2",os_image="Debian GNU/Linux 12 (bookworm)",pod_cidr="10.244.%d.0/24",provider_id="kvm://%s"`, ip, n%256, node), constant(1))
		agent := fmt.Sprintf(`instance="%s:9187",job="leakguard-agent",namespace="leakguard",node="%s",pod="leakguard-agent-%05d"`, ip, node, n)
		add("leakguard_node_orphan_cgroups", agent, constant(float64(n%30)))
		add("leakguard_node_dying_cgroups", agent, func(s int) float64 { return float64(100 + s*(nn%3)) })
		add("leakguard_node_cgroups", agent+`,controller="unified"`, constant(1500))
		add("leakguard_node_cgroup_scan_errors_total", agent, constant(0))
		add("leakguard_node_cgroup_scan_duration_seconds_count", agent, func(s int) float64 { return float64(s / 2) })
		add("leakguard_node_cgroup_scan_duration_seconds_sum", agent, func(s int) float64 { return float64(s) * 0.0125 })
		if n < 3 {
			add("kube_node_role", ksmNode+`,role="control-plane"`, constant(1))
			api := fmt.Sprintf(`endpoint="https",instance="%s:6443",job="apiserver",namespace="default",service="kubernetes"`, ip)
			add("process_resident_memory_bytes", api, func(s int) float64 { return float64(8*gib + s*mib) })
			for r := 0; r < 60; r++ {
				rr := r
				add("apiserver_storage_objects", api+fmt.Sprintf(`,resource="resource%d.group%d.k8s.io"`, r, r%5), func(s int) float64 { return float64(1000*rr + s*rr/10) })
			}
			add("kube_pod_info", ksmTarget+fmt.Sprintf(`,created_by_kind="Node",created_by_name="%s",host_ip="%s",host_network="true",namespace="kube-system",node="%s",pod="kube-apiserver-%s",pod_ip="%s",priority_class="system-node-critical",uid="%s"`, node, ip, node, node, ip, podUID(1<<30+n)), constant(1))
		}
	}
	for i := 0; i < p.containers; i++ {
		n := i / p.podsPerNode
		node, ip := nodeName(n), nodeIP(n)
		ns := fmt.Sprintf("team-%d", i%50)
		pod := fmt.Sprintf("app-%d-7d9f8b6c5-%05d", i/3, i)
		uid := podUID(i)
		image := fmt.Sprintf("registry.example.com/team-%d/app:1.%d.0", i%50, i%7)
		cg := fmt.Sprintf("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s.slice", uid)
		kl := fmt.Sprintf(`%s,instance="%s:10250",namespace="%s",node="%s",pod="%s"`, kubeletTarget, ip, ns, node, pod)
		app := kl + fmt.Sprintf(`,container="app",id="%s/cri-containerd-%s.scope",image="%s",name="%s"`, cg, containerID(i, 0), image, containerID(i, 0))
		pause := kl + fmt.Sprintf(`,id="%s/cri-containerd-%s.scope",image="registry.k8s.io/pause:3.9",name="%s"`, cg, containerID(i, 1), containerID(i, 1))
		if pauseIsPOD(i) {
			pause = kl + fmt.Sprintf(`,container="POD",id="%s/docker-%s.scope",image="registry.k8s.io/pause:3.9",name="%s"`, cg, containerID(i, 1), containerID(i, 1))
		}
		podcg := kl + fmt.Sprintf(`,id="%s"`, cg)
		base := float64(200+i%800) * mib
		growth := 0.0
		if leaking(i) {
			growth = 2 * mib // 240 MiB an hour at a 30 s scrape
		}
		ii := i
		phase := float64(i%360) / 360
		ws := func(s int) float64 {
			// A sawtooth of garbage over the floor, period 10 scrapes, over a
			// floor that wanders by 6 MiB either way over 3 hours, as the
			// floors of containers that do not leak do: enough that the
			// trend records, which leave out steps too small to matter, hold
			// a good part of the containers.
			wander := 6 * mib * math.Sin(2*math.Pi*(float64(s)/360+phase))
			return base + growth*float64(s) + wander + float64((s+ii)%10)*mib
		}
		for _, c := range []struct {
			labels string
			ws     func(int) float64
		}{
			{app, ws},
			{pause, constant(mib)},
			{podcg, func(s int) float64 { return ws(s) + mib }},
		} {
			w := c.ws
			add("container_memory_working_set_bytes", c.labels, w)
			add("container_memory_usage_bytes", c.labels, func(s int) float64 { return w(s) + 100*mib })
			add("container_memory_rss", c.labels, func(s int) float64 { return w(s) * 0.8 })
			add("container_memory_cache", c.labels, constant(100*mib))
			add("container_oom_events_total", c.labels, constant(0))
		}
		ksm := fmt.Sprintf(`%s,namespace="%s",pod="%s",uid="%s"`, ksmTarget, ns, pod, uid)
		kc := ksm + `,container="app"`
		if hasLimit(i) {
			add("kube_pod_container_resource_limits", kc+`,node="`+node+`",resource="memory",unit="byte"`, constant(2*gib))
			add("kube_pod_container_resource_limits", kc+`,node="`+node+`",resource="cpu",unit="core"`, constant(1))
		}
		add("kube_pod_container_resource_requests", kc+`,node="`+node+`",resource="memory",unit="byte"`, constant(512*mib))
		add("kube_pod_container_resource_requests", kc+`,node="`+node+`",resource="cpu",unit="core"`, constant(0.25))
		add("kube_pod_container_status_restarts_total", kc, constant(0))
		started := float64(p.start.Add(-24 * time.Hour).Unix())
		if i%5 == 1 { // one container in 5 started within the last 12 hours
			started = float64(p.end.Add(-time.Duration(1+i%12) * time.Hour).Unix())
		}
		add("kube_pod_container_state_started", kc, constant(started))
		if i%100 == 7 { // a few containers were OOM-killed once, long ago
			add("kube_pod_container_status_last_terminated_reason", kc+`,reason="OOMKilled"`, constant(1))
		}
		add("kube_pod_info", ksm+fmt.Sprintf(`,created_by_kind="ReplicaSet",created_by_name="app-%d-7d9f8b6c5",host_ip="%s",host_network="false",node="%s",pod_ip="10.244.%d.%d",priority_class=""`, i/3, ip, node, n%256, i%p.podsPerNode+2), constant(1))
		add("kube_pod_owner", ksm+fmt.Sprintf(`,owner_is_controller="true",owner_kind="ReplicaSet",owner_name="app-%d-7d9f8b6c5"`, i/3), constant(1))
	}
	return out
}

func (p population) steps() int { return int(p.end.Sub(p.start)/p.scrape) + 1 }

// writeOpenMetrics writes every series at every scrape from start to end, in
// time order, as the OpenMetrics text promtool tsdb create-blocks-from
// openmetrics reads (untyped samples, timestamps in seconds, # EOF).
func (p population) writeOpenMetrics(w io.Writer, series []staticSeries) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	for s := 0; s < p.steps(); s++ {
		ts := strconv.FormatInt(p.start.Add(time.Duration(s)*p.scrape).Unix(), 10)
		for _, x := range series {
			buf = buf[:0]
			buf = append(buf, x.name...)
			buf = append(buf, '{')
			buf = append(buf, x.labels...)
			buf = append(buf, "} "...)
			buf = strconv.AppendFloat(buf, x.value(s), 'g', -1, 64)
			buf = append(buf, ' ')
			buf = append(buf, ts...)
			buf = append(buf, '\n')
			if _, err := bw.Write(buf); err != nil {
				return err
			}
		}
	}
	if _, err := bw.WriteString("# EOF\n"); err != nil {
		return err
	}
	return bw.Flush()
}

// writeSeriesStream writes every series with all its samples, one series
// after another, in the form tools/tsdbblocks reads: the series as
// name{labels} (uvarint length, then the bytes), then one little-endian
// float64 per scrape from start to end.
func (p population) writeSeriesStream(w io.Writer, series []staticSeries) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	steps := p.steps()
	buf := make([]byte, 0, 512)
	vals := make([]byte, 8*steps)
	for _, x := range series {
		name := x.name + "{" + x.labels + "}"
		buf = binary.AppendUvarint(buf[:0], uint64(len(name)))
		buf = append(buf, name...)
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		for s := 0; s < steps; s++ {
			binary.LittleEndian.PutUint64(vals[8*s:], math.Float64bits(x.value(s)))
		}
		if _, err := bw.Write(vals); err != nil {
			return err
		}
	}
	return bw.Flush()
}
