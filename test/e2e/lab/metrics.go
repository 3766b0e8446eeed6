package lab

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Metrics is the lab's synthetic metrics endpoint: a loopback HTTP server
// that serves, for the containers and nodes registered with it, the series
// that cAdvisor, kube-state-metrics, kube-apiserver and the leakguard node
// agent export, with the label sets of a kube-prometheus-stack Prometheus
// (shared/traces/README.md, "Series in the traces"). Each source has its
// own path, scraped as its own job:
//
//	/metrics/cadvisor            job="kubelet", metrics_path="/metrics/cadvisor"
//	/metrics/kube-state-metrics  job="kube-state-metrics"
//	/metrics/apiserver           job="apiserver"
//	/metrics/agent               job="leakguard-agent"
//
// The exposition carries instance, node and the object labels itself, so
// the scrape configuration honours them (honor_labels).
type Metrics struct {
	srv  *http.Server
	addr string
	now  func() time.Time

	mu         sync.Mutex
	containers map[string]*Container
	nodes      map[string]*Node
}

// Container is one container run of a pod as the exporters see it.
type Container struct {
	Namespace, Pod, UID, Container, Node string
	// Image is the container's image; ContainerID is the runtime's id of
	// this run (cAdvisor's name label).
	Image, ContainerID string
	// LimitBytes and RequestBytes are the memory limit and request; 0
	// means none.
	LimitBytes, RequestBytes int64
	// OwnerKind and OwnerName are the pod's controller (a ReplicaSet).
	OwnerKind, OwnerName string
	// Started is when this run started (kube_pod_container_state_started).
	Started time.Time
	// BaseBytes is the working set while it does not leak.
	BaseBytes float64
	// LeakBytesPerSecond is how fast the working set grows from
	// LeakStart; 0 (or a zero LeakStart) means flat. The working set
	// stops growing at LeakCapRatio of the limit (0 means 0.9), where a
	// real leak would soon be OOM-killed.
	LeakBytesPerSecond float64
	LeakStart          time.Time
	LeakCapRatio       float64
}

// Key names the container as "namespace/pod/container".
func (c *Container) Key() string { return c.Namespace + "/" + c.Pod + "/" + c.Container }

// WorkingSet is the container's working set at t, in whole 4 KiB pages.
func (c *Container) WorkingSet(t time.Time) float64 {
	v := c.BaseBytes
	if c.LeakBytesPerSecond > 0 && !c.LeakStart.IsZero() && t.After(c.LeakStart) {
		v += c.LeakBytesPerSecond * t.Sub(c.LeakStart).Seconds()
		capRatio := c.LeakCapRatio
		if capRatio == 0 {
			capRatio = 0.9
		}
		if c.LimitBytes > 0 {
			v = math.Min(v, capRatio*float64(c.LimitBytes))
		}
	}
	return math.Floor(v/4096) * 4096
}

// Node is one node as the exporters see it.
type Node struct {
	Name string
	// IP is the node's InternalIP (kube_node_info, instance labels).
	IP          string
	MemoryBytes int64
	// ControlPlane nodes carry kube_node_role{role="control-plane"}.
	ControlPlane bool
	// APIServerRSSBytes, when set, is the resident memory of a
	// kube-apiserver on this node (job="apiserver", instance IP:6443).
	APIServerRSSBytes int64
	// OrphanCgroups, when not nil, is the node agent's orphan count; nil
	// leaves the node out of /metrics/agent, as an agent that has not got
	// the pod list yet does.
	OrphanCgroups *int
	// Dockershim serves the node's pause containers as dockershim named
	// them, container="POD"; otherwise they are served as containerd and
	// CRI-O show them to the kubelet's cAdvisor, container="" with the
	// pause image (beside the pod cgroup, container="" without an image).
	Dockershim bool
}

// StartMetrics serves the synthetic endpoint on a free loopback port.
func StartMetrics() (*Metrics, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	m := &Metrics{addr: ln.Addr().String(), now: time.Now, containers: map[string]*Container{}, nodes: map[string]*Node{}}
	mux := http.NewServeMux()
	for path, write := range map[string]func(*strings.Builder, time.Time){
		"/metrics/cadvisor":           m.writeCadvisor,
		"/metrics/kube-state-metrics": m.writeKubeStateMetrics,
		"/metrics/apiserver":          m.writeAPIServer,
		"/metrics/agent":              m.writeAgent,
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			var b strings.Builder
			m.mu.Lock()
			write(&b, m.now())
			m.mu.Unlock()
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte(b.String()))
		})
	}
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = m.srv.Serve(ln) }()
	return m, nil
}

// Addr is the endpoint's host:port.
func (m *Metrics) Addr() string { return m.addr }

// Close stops the server.
func (m *Metrics) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics endpoint: %w", err)
	}
	return nil
}

// SetContainer adds or replaces a container (by Key).
func (m *Metrics) SetContainer(c Container) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.containers[c.Key()] = &c
}

// StartLeak makes the container key grow by bytesPerSecond from now on.
func (m *Metrics) StartLeak(key string, bytesPerSecond float64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.containers[key]
	if !ok {
		return fmt.Errorf("metrics: no container %s", key)
	}
	c.BaseBytes = c.WorkingSet(m.now())
	c.LeakBytesPerSecond, c.LeakStart = bytesPerSecond, m.now()
	return nil
}

// Container returns a copy of the container key.
func (m *Metrics) Container(key string) (Container, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.containers[key]
	if !ok {
		return Container{}, false
	}
	return *c, true
}

// SetNode adds or replaces a node (by name).
func (m *Metrics) SetNode(n Node) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[n.Name] = &n
}

// SetOrphanCgroups sets the agent's orphan count of node.
func (m *Metrics) SetOrphanCgroups(node string, n int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	nd, ok := m.nodes[node]
	if !ok {
		return fmt.Errorf("metrics: no node %s", node)
	}
	nd.OrphanCgroups = &n
	return nil
}

// series writes one sample line with its labels in a fixed order.
func series(b *strings.Builder, name string, value float64, labels ...string) {
	b.WriteString(name)
	if len(labels) > 0 {
		b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(labels[i])
			b.WriteString("=")
			b.WriteString(strconv.Quote(labels[i+1]))
		}
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatFloat(value, 'f', -1, 64))
	b.WriteByte('\n')
}

func (m *Metrics) sortedContainers() []*Container {
	out := make([]*Container, 0, len(m.containers))
	for _, c := range m.containers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out
}

func (m *Metrics) sortedNodes() []*Node {
	out := make([]*Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pauseImage and pauseBytes describe every pod's pause container.
const (
	pauseImage = "registry.k8s.io/pause:3.10"
	pauseBytes = 1 << 20
)

// podCgroup is the systemd cgroup path of a Burstable pod.
func podCgroup(uid string) string {
	return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
}

func (m *Metrics) instance(node string) string {
	if n, ok := m.nodes[node]; ok && n.IP != "" {
		return n.IP + ":10250"
	}
	return node + ":10250"
}

// writeCadvisor writes, per container, its run, the pod's pause
// container (container="" with the pause image, or "POD" on a Dockershim
// node) and the pod cgroup (the sum of both, container="" without an
// image), and machine_memory_bytes per node.
func (m *Metrics) writeCadvisor(b *strings.Builder, now time.Time) {
	kubelet := func(node string, extra ...string) []string {
		return append([]string{"endpoint", "https-metrics", "instance", m.instance(node), "node", node, "service", "kube-prometheus-stack-kubelet"}, extra...)
	}
	metrics := []string{"container_memory_working_set_bytes", "container_memory_usage_bytes", "container_memory_rss", "container_memory_cache", "container_oom_events_total"}
	for _, name := range metrics {
		fmt.Fprintf(b, "# TYPE %s %s\n", name, map[bool]string{true: "counter", false: "gauge"}[strings.HasSuffix(name, "_total")])
		for _, c := range m.sortedContainers() {
			ws := c.WorkingSet(now)
			const cache = 24 << 20
			values := map[string][3]float64{ // container, pause, pod cgroup
				"container_memory_working_set_bytes": {ws, pauseBytes, ws + pauseBytes},
				"container_memory_usage_bytes":       {ws + cache, pauseBytes, ws + cache + pauseBytes},
				"container_memory_rss":               {ws - 4<<20, pauseBytes, ws - 4<<20 + pauseBytes},
				"container_memory_cache":             {cache + 4<<20, 0, cache + 4<<20},
				"container_oom_events_total":         {0, 0, 0},
			}[name]
			cg := podCgroup(c.UID)
			pauseID := "pause" + c.ContainerID
			pauseName := ""
			if n, ok := m.nodes[c.Node]; ok && n.Dockershim {
				pauseName = "POD"
			}
			series(b, name, values[0], kubelet(c.Node, "namespace", c.Namespace, "pod", c.Pod, "container", c.Container,
				"image", c.Image, "id", cg+"/cri-containerd-"+c.ContainerID+".scope", "name", c.ContainerID)...)
			series(b, name, values[1], kubelet(c.Node, "namespace", c.Namespace, "pod", c.Pod, "container", pauseName,
				"image", pauseImage, "id", cg+"/cri-containerd-"+pauseID+".scope", "name", pauseID)...)
			series(b, name, values[2], kubelet(c.Node, "namespace", c.Namespace, "pod", c.Pod, "id", cg)...)
		}
	}
	b.WriteString("# TYPE machine_memory_bytes gauge\n")
	for _, n := range m.sortedNodes() {
		series(b, "machine_memory_bytes", float64(n.MemoryBytes), kubelet(n.Name,
			"boot_id", "boot-"+n.Name, "machine_id", "machine-"+n.Name, "system_uuid", "uuid-"+n.Name)...)
	}
}

// writeKubeStateMetrics writes the pod, container and node series of
// kube-state-metrics.
func (m *Metrics) writeKubeStateMetrics(b *strings.Builder, _ time.Time) {
	for _, c := range m.sortedContainers() {
		pod := []string{"namespace", c.Namespace, "pod", c.Pod, "uid", c.UID}
		ctr := append(append([]string{}, pod...), "container", c.Container)
		if c.LimitBytes > 0 {
			series(b, "kube_pod_container_resource_limits", float64(c.LimitBytes), append(append([]string{}, ctr...), "node", c.Node, "resource", "memory", "unit", "byte")...)
		}
		if c.RequestBytes > 0 {
			series(b, "kube_pod_container_resource_requests", float64(c.RequestBytes), append(append([]string{}, ctr...), "node", c.Node, "resource", "memory", "unit", "byte")...)
		}
		series(b, "kube_pod_container_status_restarts_total", 0, ctr...)
		series(b, "kube_pod_container_info", 1, append(append([]string{}, ctr...), "container_id", "containerd://"+c.ContainerID,
			"image", c.Image, "image_id", c.Image+"@sha256:0", "image_spec", c.Image)...)
		series(b, "kube_pod_container_state_started", float64(c.Started.Unix()), ctr...)
		series(b, "kube_pod_container_status_running", 1, ctr...)
		hostIP := ""
		if n, ok := m.nodes[c.Node]; ok {
			hostIP = n.IP
		}
		series(b, "kube_pod_info", 1, append(append([]string{}, pod...), "created_by_kind", c.OwnerKind, "created_by_name", c.OwnerName,
			"host_ip", hostIP, "node", c.Node, "pod_ip", "10.244.0.10")...)
		series(b, "kube_pod_owner", 1, append(append([]string{}, pod...), "owner_is_controller", "true", "owner_kind", c.OwnerKind, "owner_name", c.OwnerName)...)
	}
	for _, n := range m.sortedNodes() {
		series(b, "kube_node_status_capacity", float64(n.MemoryBytes), "node", n.Name, "resource", "memory", "unit", "byte")
		series(b, "kube_node_info", 1, "internal_ip", n.IP, "kubelet_version", "v1.37.2", "node", n.Name)
		if n.ControlPlane {
			series(b, "kube_node_role", 1, "node", n.Name, "role", "control-plane")
		}
	}
}

// writeAPIServer writes the resident memory of each node's kube-apiserver.
func (m *Metrics) writeAPIServer(b *strings.Builder, _ time.Time) {
	for _, n := range m.sortedNodes() {
		if n.APIServerRSSBytes > 0 {
			series(b, "process_resident_memory_bytes", float64(n.APIServerRSSBytes), "instance", n.IP+":6443")
		}
	}
}

// writeAgent writes the node agent's series of the nodes that have an
// orphan count.
func (m *Metrics) writeAgent(b *strings.Builder, _ time.Time) {
	for _, n := range m.sortedNodes() {
		if n.OrphanCgroups == nil {
			continue
		}
		agent := []string{"instance", n.IP + ":9808", "namespace", "monitoring", "node", n.Name, "pod", "leakguard-agent-" + n.Name}
		series(b, "leakguard_node_orphan_cgroups", float64(*n.OrphanCgroups), agent...)
		series(b, "leakguard_node_dying_cgroups", 40, agent...)
		series(b, "leakguard_node_cgroups", 180, append(append([]string{}, agent...), "controller", "unified")...)
	}
}
