package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

const (
	namespace = "leak"
	// appName's container leaks at 4 MiB/s under a 128 MiB limit: the
	// kernel kills it about every half minute and the kubelet restarts it.
	appName = "leaker"
	// workerName's container leaks in a child process (leaker -worker)
	// under a 64 MiB limit: the kernel kills the child, the container's
	// PID 1 lives on and starts another, and the container never
	// restarts.
	workerName = "worker"
)

// TestRealNode brings up the real node and checks, on real series, what
// the rules and checks rely on: a Deployment's leaking container is
// OOM-killed by the kernel (the pod's lastState says OOMKilled),
// kube-state-metrics exports that as last_terminated_reason, the kubelet's
// cAdvisor exports the container's working set with its namespace, pod and
// container labels, a rollout restart replaces the pod (a new UID, the old
// one gone), and closing the lab puts the host back as it was.
func TestRealNode(t *testing.T) {
	c, _ := need(t)
	l := c.Lab
	t.Logf("timing: bring-up to node Ready with the chain around it (etcd, kube-apiserver, images, containerd, controller manager, scheduler, kubelet, kube-state-metrics, leakguard, Alertmanager, Prometheus): %s", bringUp.Round(100*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	// Every port of the node is on loopback.
	pids := l.RealNode.PIDs()
	for name, pid := range pids {
		addrs := listeningAddrs(t, pid)
		t.Logf("%s (pid %d) listens on %v", name, pid, addrs)
		for _, addr := range addrs {
			if !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") {
				t.Errorf("%s (pid %d) listens on %s, want loopback only", name, pid, addr)
			}
		}
	}
	if kubelet := strings.TrimPrefix(l.RealNode.KubeletURL, "https://"); !slices.Contains(listeningAddrs(t, pids["kubelet"]), kubelet) {
		t.Errorf("the kubelet's listening sockets do not include %s, its URL's", kubelet)
	}

	admin := l.Admin
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	for _, d := range []*appsv1.Deployment{
		leakerDeployment(namespace, appName, "128Mi", "-rate", "4Mi"),
		leakerDeployment(namespace, workerName, "64Mi", "-rate", "4Mi", "-worker"),
	} {
		if _, err := admin.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The scenarios after this test drain the node: leave them only
	// their own pods.
	t.Cleanup(func() { deleteDeployments(t, l, namespace, appName, workerName) })

	pod := waitPod(ctx, t, l, namespace, appName, "the leaker Running", 3*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil
	})
	podRunning := time.Now()
	t.Logf("timing: pod %s Running %s after the Deployment was created", pod.Name, podRunning.Sub(applied).Round(100*time.Millisecond))

	// 128 MiB at 4 MiB/s: the kernel kills the container after about 32 s.
	pod = waitPod(ctx, t, l, namespace, appName, "an OOM kill of the leaker", 3*time.Minute, func(p *corev1.Pod) bool {
		if p.UID != pod.UID || len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		term := p.Status.ContainerStatuses[0].LastTerminationState.Terminated
		return term != nil && term.Reason == "OOMKilled"
	})
	killed := time.Now()
	cs := pod.Status.ContainerStatuses[0]
	t.Logf("timing: first OOM kill seen %s after Running (restarts %d, exit code %d)", killed.Sub(podRunning).Round(100*time.Millisecond),
		cs.RestartCount, cs.LastTerminationState.Terminated.ExitCode)
	if got := cs.LastTerminationState.Terminated.ExitCode; got != 137 {
		t.Errorf("OOM-killed container's exit code = %d, want 137 (SIGKILL)", got)
	}

	// kube-state-metrics: the series ContainerOOMKilled's usual branch reads.
	want := map[string]string{"namespace": namespace, "pod": pod.Name, "container": appName, "reason": "OOMKilled"}
	ksm := waitSeries(ctx, t, l.RealNode.HTTPClient, l.RealNode.KubeStateMetricsURL+"/metrics", "kube_pod_container_status_last_terminated_reason", want, 1)
	t.Logf("kube-state-metrics: kube_pod_container_status_last_terminated_reason%s", labelString(ksm))
	if ksm["uid"] != string(pod.UID) {
		t.Errorf("kube_pod_container_status_last_terminated_reason uid = %q, want the pod's UID %s", ksm["uid"], pod.UID)
	}

	// The kubelet's cAdvisor: the working set of the container, with the
	// labels the rules join on.
	ws := waitSeries(ctx, t, l.RealNode.HTTPClient, l.RealNode.KubeletURL+"/metrics/cadvisor", "container_memory_working_set_bytes",
		map[string]string{"namespace": namespace, "pod": pod.Name, "container": appName}, -1)
	t.Logf("cAdvisor: container_memory_working_set_bytes%s", labelString(ws))
	if ws["image"] == "" || ws["id"] == "" {
		t.Errorf("the container's working set has no image or id label: %s", labelString(ws))
	}
	logCadvisorShape(ctx, t, l.RealNode, pod)
	logContractShapes(ctx, t, l.RealNode, pod)

	// A worker process OOM-killed while the container's PID 1 lives on:
	// cAdvisor counts it in container_oom_events_total (the case
	// ContainerOOMKilled's cAdvisor branch is for), the container does
	// not restart, so kube-state-metrics has no terminated reason.
	worker := waitPod(ctx, t, l, namespace, workerName, "the worker leaker Running", 3*time.Minute, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning
	})
	oom := waitSeries(ctx, t, l.RealNode.HTTPClient, l.RealNode.KubeletURL+"/metrics/cadvisor", "container_oom_events_total",
		map[string]string{"namespace": namespace, "pod": worker.Name, "container": workerName}, 1)
	t.Logf("cAdvisor: container_oom_events_total%s at least 1 after a worker process's OOM kill", labelString(oom))
	worker, err := admin.CoreV1().Pods(namespace).Get(ctx, worker.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := worker.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("worker container restarts = %d after its child's OOM kill, want 0 (PID 1 lives on)", n)
	}
	families, err := scrape(ctx, l.RealNode.HTTPClient, l.RealNode.KubeStateMetricsURL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if ls, ok := find(families, "kube_pod_container_status_last_terminated_reason", map[string]string{"pod": worker.Name}, -1); ok {
		t.Errorf("kube-state-metrics has a terminated reason for the worker's container, which never terminated: %s", labelString(ls))
	}

	// A rollout restart, as restart does it: the Deployment controller
	// makes a new ReplicaSet, the scheduler places its pod, the kubelet
	// runs it, the old pod goes.
	restartAt := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, restartAt.UTC().Format(time.RFC3339))
	if _, err := admin.AppsV1().Deployments(namespace).Patch(ctx, appName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("rollout restart: %v", err)
	}
	old := pod
	pod = waitPod(ctx, t, l, namespace, appName, "the replacement pod Running", 2*time.Minute, func(p *corev1.Pod) bool {
		return p.UID != old.UID && p.Status.Phase == corev1.PodRunning
	})
	replaced := time.Now()
	if err := pollUntil(ctx, time.Minute, func() error {
		_, err := admin.CoreV1().Pods(namespace).Get(ctx, old.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("old pod %s still there", old.Name)
	}); err != nil {
		t.Fatalf("the old pod after the rollout restart: %v", err)
	}
	t.Logf("timing: replacement pod %s (uid %s) Running %s after the rollout restart; old pod %s (uid %s) gone %s after it",
		pod.Name, pod.UID, replaced.Sub(restartAt).Round(100*time.Millisecond), old.Name, old.UID, time.Since(restartAt).Round(100*time.Millisecond))

}

// leakerDeployment is one replica of the leaker in namespace ns, run with
// args, on the host network (there is no pod network), under the memory
// limit limit (none when ""); its name is also its container's and its app
// label's.
func leakerDeployment(ns, name, limit string, args ...string) *appsv1.Deployment {
	replicas := int32(1)
	grace := int64(5)
	labels := map[string]string{"app": name}
	var resources corev1.ResourceRequirements
	if limit != "" {
		resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name:            name,
						Image:           lab.LeakerImage,
						ImagePullPolicy: corev1.PullNever,
						Args:            args,
						Resources:       resources,
					}},
				},
			},
		},
	}
}

// deleteDeployments deletes the Deployments names of ns (the garbage
// collector deletes their ReplicaSets and pods) and waits, for at most a
// minute, until no pod of theirs is left.
func deleteDeployments(t *testing.T, l *lab.Lab, ns string, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, name := range names {
		if err := l.Admin.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete deployment %s/%s: %v", ns, name, err)
		}
	}
	for _, name := range names {
		if err := pollUntil(ctx, time.Minute, func() error {
			pods, err := l.Admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
			if err != nil {
				return err
			}
			if len(pods.Items) > 0 {
				return fmt.Errorf("%d pods of %s/%s left", len(pods.Items), ns, name)
			}
			return nil
		}); err != nil {
			t.Errorf("pods of the deleted deployment %s/%s: %v", ns, name, err)
		}
	}
}

// waitPod polls the pods of the app app in namespace ns every half second
// until one satisfies ok, for at most timeout, and returns it; it fails
// the test otherwise.
func waitPod(ctx context.Context, t *testing.T, l *lab.Lab, ns, app, what string, timeout time.Duration, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	err := pollUntil(ctx, timeout, func() error {
		pods, err := l.Admin.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return err
		}
		var states []string
		for i := range pods.Items {
			p := &pods.Items[i]
			if ok(p) {
				found = p
				return nil
			}
			states = append(states, podState(p))
		}
		return fmt.Errorf("pods: %v", states)
	})
	if err != nil {
		t.Fatalf("%s: %v\n%s", what, err, l.Logs())
	}
	return found
}

func podState(p *corev1.Pod) string {
	s := fmt.Sprintf("%s(%s %s", p.Name, p.UID, p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			s += fmt.Sprintf(" waiting %s: %s", cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			s += " terminated " + cs.State.Terminated.Reason
		case cs.State.Running != nil:
			s += " running"
		}
		s += fmt.Sprintf(" restarts %d", cs.RestartCount)
	}
	return s + ")"
}

// pollUntil calls f every half second until it returns nil or timeout
// passes, and returns its last error then.
func pollUntil(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// scrape GETs url and parses the text exposition format.
func scrape(ctx context.Context, client *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// labelsOf returns a sample's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		out[lp.GetName()] = lp.GetValue()
	}
	return out
}

// sampleValue is a gauge's, counter's or untyped sample's value.
func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// find returns the labels of the first sample of family name whose labels
// include match and whose value is at least min (any value when min < 0).
func find(families map[string]*dto.MetricFamily, name string, match map[string]string, min float64) (map[string]string, bool) {
	mf := families[name]
	if mf == nil {
		return nil, false
	}
next:
	for _, m := range mf.GetMetric() {
		ls := labelsOf(m)
		for k, v := range match {
			if ls[k] != v {
				continue next
			}
		}
		if min >= 0 && sampleValue(m) < min {
			continue
		}
		return ls, true
	}
	return nil, false
}

// waitSeries scrapes url every half second, for at most a minute, until
// it has a sample of name with the labels of match and a value of at least
// min (any when min < 0); it returns that sample's labels.
func waitSeries(ctx context.Context, t *testing.T, client *http.Client, url, name string, match map[string]string, min float64) map[string]string {
	t.Helper()
	var got map[string]string
	err := pollUntil(ctx, time.Minute, func() error {
		families, err := scrape(ctx, client, url)
		if err != nil {
			return err
		}
		ls, ok := find(families, name, match, min)
		if !ok {
			return fmt.Errorf("no %s%s of at least %v among %d samples", name, labelString(match), min, len(families[name].GetMetric()))
		}
		got = ls
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return got
}

// labelString renders labels as {a="b", ...}, sorted.
func labelString(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, ls[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// logCadvisorShape logs, for the record, the shape of the real cAdvisor
// series of the pod: which containers it has (the pause container's
// name), and container_oom_events_total for them.
func logCadvisorShape(ctx context.Context, t *testing.T, n *lab.RealNode, pod *corev1.Pod) {
	t.Helper()
	families, err := scrape(ctx, n.HTTPClient, n.KubeletURL+"/metrics/cadvisor")
	if err != nil {
		t.Errorf("scrape cAdvisor: %v", err)
		return
	}
	for _, name := range []string{"container_memory_working_set_bytes", "container_oom_events_total"} {
		for _, m := range families[name].GetMetric() {
			ls := labelsOf(m)
			if ls["pod"] == pod.Name {
				t.Logf("cAdvisor: %s%s %v", name, labelString(ls), sampleValue(m))
			}
		}
	}
}

// hostSnapshot is what the real node may change on the host.
type hostSnapshot map[string]string

// snapshotHost reads the sysctls the kubelet sets, whether each path the
// node writes exists and whether the node's programs run.
func snapshotHost() (hostSnapshot, error) {
	s := hostSnapshot{}
	for _, key := range []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes"} {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			return nil, err
		}
		s["sysctl "+key] = strings.TrimSpace(string(b))
	}
	paths := []string{"/var/log/pods", "/var/log/containers", "/run/containerd", "/opt/containerd", "/var/lib/containerd", "/var/lib/kubelet", "/etc/kubernetes", "/usr/libexec/kubernetes"}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods")
	if _, err := os.Stat("/sys/fs/cgroup/kubepods"); err == nil {
		cgroups = append(cgroups, "/sys/fs/cgroup/kubepods")
	}
	paths = append(paths, cgroups...)
	for _, p := range paths {
		_, err := os.Stat(p)
		s["exists "+p] = fmt.Sprint(err == nil)
	}
	// Processes the node starts; after it stops none may be left.
	for _, comm := range []string{"containerd", "containerd-shim-runc-v2", "kubelet", "leaker", "pause"} {
		s["running "+comm] = fmt.Sprint(len(pidsNamed(comm)) > 0)
	}
	return s, nil
}

// compareHost lists what differs between two snapshots.
func compareHost(before, after hostSnapshot) string {
	keys := make(map[string]bool)
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var diffs []string
	for k := range keys {
		if before[k] != after[k] {
			diffs = append(diffs, fmt.Sprintf("%s: before %q, after %q", k, before[k], after[k]))
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "\n")
}

// pidsNamed returns the PIDs whose /proc/PID/comm is comm.
func pidsNamed(comm string) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*/comm")
	var pids []string
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err == nil && strings.TrimSpace(string(b)) == comm {
			pids = append(pids, filepath.Base(filepath.Dir(d)))
		}
	}
	return pids
}

// listeningAddrs returns the addresses on which the process pid has a TCP
// socket listening, from its file descriptors and /proc/net/tcp{,6}.
func listeningAddrs(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("file descriptors of %d: %v", pid, err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			addrs = append(addrs, procNetAddr(f[1]))
		}
	}
	return addrs
}

// procNetAddr renders /proc/net/tcp's HEXIP:HEXPORT (the IP in the host's
// byte order, 32-bit words) as IP:port or [IPv6]:port.
func procNetAddr(s string) string {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	var port int
	fmt.Sscanf(hexPort, "%X", &port)
	ip := make([]byte, 0, 16)
	for i := 0; i+8 <= len(hexIP); i += 8 {
		var w uint32
		fmt.Sscanf(hexIP[i:i+8], "%X", &w)
		ip = append(ip, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	if v4 := net.IP(ip).To4(); v4 != nil {
		// IPv4, or IPv4-mapped in tcp6.
		return fmt.Sprintf("%s:%d", v4, port)
	}
	return fmt.Sprintf("[%s]:%d", net.IP(ip), port)
}

func TestProcNetAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"00000000:0050", "0.0.0.0:80"},
		{"00000000000000000000000001000000:2710", "[::1]:10000"},
		{"00000000000000000000000000000000:0016", "[::]:22"},
		{"0000000000000000FFFF00000100007F:0035", "127.0.0.1:53"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := procNetAddr(tc.in); got != tc.want {
				t.Errorf("procNetAddr(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// contractSeries are the series ../shared/ALERTS.md says the rules read
// from the kubelet's cAdvisor and from kube-state-metrics.
var contractSeries = map[string][]string{
	"/metrics/cadvisor": {"container_memory_working_set_bytes", "container_memory_usage_bytes", "container_memory_rss",
		"container_memory_cache", "container_oom_events_total", "machine_memory_bytes"},
	"kube-state-metrics": {"kube_pod_container_resource_limits", "kube_pod_container_status_restarts_total",
		"kube_pod_container_status_last_terminated_reason", "kube_pod_container_info", "kube_pod_container_state_started",
		"kube_pod_info", "kube_pod_owner", "kube_node_status_capacity", "kube_node_role", "kube_node_info",
		"kube_pod_container_resource_requests"},
}

// logContractShapes logs, for the record, the label names each series of
// contractSeries has on the real node (a sample of the pod where the
// series is per pod), or that the endpoint does not export it.
func logContractShapes(ctx context.Context, t *testing.T, n *lab.RealNode, pod *corev1.Pod) {
	t.Helper()
	for _, source := range []string{"/metrics/cadvisor", "kube-state-metrics"} {
		url := n.KubeletURL + source
		if source == "kube-state-metrics" {
			url = n.KubeStateMetricsURL + "/metrics"
		}
		families, err := scrape(ctx, n.HTTPClient, url)
		if err != nil {
			t.Errorf("scrape %s: %v", source, err)
			continue
		}
		for _, name := range contractSeries[source] {
			mf := families[name]
			if mf == nil || len(mf.GetMetric()) == 0 {
				t.Logf("%s: no %s", source, name)
				continue
			}
			m := mf.GetMetric()[0]
			for _, cand := range mf.GetMetric() {
				if labelsOf(cand)["pod"] == pod.Name {
					m = cand
					break
				}
			}
			names := make([]string, 0, len(m.GetLabel()))
			for _, lp := range m.GetLabel() {
				names = append(names, lp.GetName())
			}
			sort.Strings(names)
			t.Logf("%s: %s %s {%s}", source, mf.GetType(), name, strings.Join(names, ","))
		}
	}
}
