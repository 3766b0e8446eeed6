package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The real node's fixed names.
const (
	// NodeName is the real node's name and its InternalIP: the kubelet
	// refuses --node-ip=127.0.0.1 ("nodeIP can't be loopback") but takes
	// --hostname-override=127.0.0.1, which gives the Node that address.
	NodeName = "127.0.0.1"
	// PauseImage is the pod sandbox image that containerd's sandbox_image
	// names: test/e2e/lab/images/pause, built and imported by the lab.
	PauseImage = "leakguard.local/pause:lab"
	// LeakerImage is the leaking workload, test/e2e/lab/images/leaker
	// (entrypoint /leaker; its flags say how it leaks).
	LeakerImage = "leakguard.local/leaker:lab"
	// containerdSocket is where containerd must listen: cAdvisor inside
	// the kubelet looks for it there and nowhere else, and without it the
	// container series lose their namespace, pod, container and image
	// labels.
	containerdSocket = "/run/containerd/containerd.sock"
)

// NodeBinaries are the executables of the real node that hack/node-binaries.sh
// puts in the binaries' directory, beside kube-apiserver and etcd.
var NodeBinaries = []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-state-metrics"}

// NodeCommandPackages are the real node's programs from the host's
// packages, each with the Debian package that installs it (.ci/run installs
// them; so does make demo when it runs as root).
var NodeCommandPackages = []struct{ Command, Package string }{
	{"containerd", "containerd"},
	{"containerd-shim-runc-v2", "containerd"},
	{"ctr", "containerd"},
	{"runc", "runc"},
}

// ErrNodeUnsupported means the host cannot run the lab's real node; the
// error that wraps it says why.
var ErrNodeUnsupported = errors.New("this host cannot run the lab's real node")

// RealNode is the lab's real node: containerd with runc, a kubelet registered
// as NodeName, kube-controller-manager, kube-scheduler and
// kube-state-metrics, all on 127.0.0.1. Pods run for real (cgroups, OOM
// kills, restarts), with hostNetwork: true, since there is no pod network;
// their images are the lab's own (PauseImage, LeakerImage).
//
// It changes the host while it runs, and Lab.Close puts back what it
// changed (see close). A test binary killed outright (SIGKILL, go test's
// -timeout) takes the node's processes with it, but not the containers and
// their shims, which containerd runs apart, and puts nothing back (sysctls,
// cgroups, /var/log/pods, /run/containerd): the next start then refuses,
// their kubepods cgroups being busy, until they are killed.
type RealNode struct {
	dir  string
	host *hostState

	containerd, controllerManager, scheduler, kubelet, kubeStateMetrics *process

	// KubeletURL is the kubelet's HTTPS endpoint (/metrics,
	// /metrics/cadvisor, /metrics/resource, /stats/summary); it takes
	// the lab's client certificates (HTTPClient) and asks the API server
	// whether they may.
	KubeletURL string
	// KubeStateMetricsURL is kube-state-metrics' endpoint (/metrics),
	// plain HTTP on loopback.
	KubeStateMetricsURL string
	// HTTPClient trusts the lab's CA and presents the admin's client
	// certificate: it reads the kubelet's endpoints.
	HTTPClient *http.Client
}

// CheckNodeHost returns nil when this host can run the real node with the
// executables in binDir, or an error wrapping ErrNodeUnsupported that names
// every reason it cannot: not root, no writable memory cgroup, no
// /dev/kmsg, another containerd owning its socket, a kubelet already
// running or its kubepods cgroup in use, a binary or command missing.
func CheckNodeHost(binDir string) error {
	why := nodeHostProblems()
	for _, bin := range MissingNodeBinaries(binDir) {
		why = append(why, fmt.Errorf("no %s in %s (hack/node-binaries.sh builds it)", bin, binDir))
	}
	for _, cmd := range MissingNodeCommands() {
		why = append(why, fmt.Errorf("no %s in PATH (apt-get install containerd runc)", cmd))
	}
	return unsupported(why)
}

// CheckNodeHostOnly is CheckNodeHost without the executables that can be
// built (NodeBinaries: hack/node-binaries.sh) or installed (containerd's
// and runc's: MissingNodeCommands): nil when the host itself can run the
// real node once they are there, or an error wrapping ErrNodeUnsupported
// that names every reason it cannot (not root, no writable memory cgroup,
// no /dev/kmsg, another containerd owning its socket, a kubelet already
// running or its kubepods cgroup in use, no go to build the pod images).
func CheckNodeHostOnly() error {
	return unsupported(nodeHostProblems())
}

func unsupported(why []error) error {
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrNodeUnsupported, errors.Join(why...))
}

// nodeHostProblems are the reasons, other than a missing binary or
// package, why this host cannot run the real node.
func nodeHostProblems() []error {
	var why []error
	if os.Geteuid() != 0 {
		why = append(why, errors.New("not root: the kubelet and containerd run as root"))
	}
	if err := probeMemoryCgroup(); err != nil {
		why = append(why, err)
	}
	if _, err := os.Stat("/dev/kmsg"); err != nil {
		why = append(why, fmt.Errorf("no /dev/kmsg, which the kubelet's OOM watcher reads: %w", err))
	}
	if conn, err := net.DialTimeout("unix", containerdSocket, time.Second); err == nil {
		conn.Close()
		why = append(why, fmt.Errorf("another containerd owns %s (stop it first: the lab's containerd must listen there, where cAdvisor looks)", containerdSocket))
	}
	if pids := processesNamed("kubelet"); len(pids) > 0 {
		why = append(why, fmt.Errorf("a kubelet is running already (pid %v)", pids))
	}
	if busy := busyKubepods(); busy != "" {
		why = append(why, fmt.Errorf("%s holds processes: another kubelet's pods", busy))
	}
	if _, err := exec.LookPath("go"); err != nil {
		why = append(why, fmt.Errorf("no go in PATH, which builds the pod images: %w", err))
	}
	return why
}

// MissingNodeBinaries returns those of NodeBinaries that binDir lacks, in
// NodeBinaries' order.
func MissingNodeBinaries(binDir string) []string {
	var missing []string
	for _, bin := range NodeBinaries {
		if _, err := os.Stat(filepath.Join(binDir, bin)); err != nil {
			missing = append(missing, bin)
		}
	}
	return missing
}

// MissingNodeCommands returns the real node's commands from the host's
// packages (NodeCommandPackages) that are not in PATH.
func MissingNodeCommands() []string {
	var missing []string
	for _, c := range NodeCommandPackages {
		if _, err := exec.LookPath(c.Command); err != nil {
			missing = append(missing, c.Command)
		}
	}
	return missing
}

// startNode starts the real node on the lab's API server: containerd (the
// images imported), kube-controller-manager, kube-scheduler, the kubelet,
// and once the Node is Ready and schedulable, kube-state-metrics. On error
// the caller closes what was started (Lab.Close).
func (l *Lab) startNode(ctx context.Context, o Options) error {
	client, err := newNodeHTTPClient(l.pki)
	if err != nil {
		return err
	}
	n := &RealNode{dir: filepath.Join(l.dir, "node"), HTTPClient: client}
	l.RealNode = n
	for _, d := range []string{"cni", "containerd", "kubelet", "images"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o700); err != nil {
			return err
		}
	}
	// The images first: building them changes nothing on the host.
	images, err := buildImages(ctx, o.RepoRoot, filepath.Join(n.dir, "images"))
	if err != nil {
		return fmt.Errorf("lab: node images: %w", err)
	}
	if n.host, err = saveHostState(); err != nil {
		return fmt.Errorf("lab: node: %w", err)
	}

	if err := n.startContainerd(ctx, o); err != nil {
		return err
	}
	if err := ctr(ctx, "images", "import", images); err != nil {
		return fmt.Errorf("lab: import the node images: %w", err)
	}

	certFile, keyFile := l.pki.servingCertFile, l.pki.servingKeyFile
	kubeconfigs := map[string][2]string{
		// kubeadm's identities: the Node authorizer and the bootstrap
		// RBAC policy know each of them.
		"kubelet":                 {"system:node:" + NodeName, "system:nodes"},
		"kube-controller-manager": {"system:kube-controller-manager", ""},
		"kube-scheduler":          {"system:kube-scheduler", ""},
		// kube-state-metrics reads every kind it exports; the lab gives
		// it the admin's group rather than its ClusterRole.
		"kube-state-metrics": {"kube-state-metrics", "system:masters"},
	}
	for name, id := range kubeconfigs {
		var orgs []string
		if id[1] != "" {
			orgs = []string{id[1]}
		}
		cert, key, err := l.pki.issueClient(id[0], orgs...)
		if err != nil {
			return fmt.Errorf("lab: %s certificate: %w", name, err)
		}
		if err := l.writeKubeconfig(filepath.Join(n.dir, name+".kubeconfig"), id[0], &clientcmdapi.AuthInfo{
			ClientCertificateData: cert, ClientKeyData: key,
		}); err != nil {
			return err
		}
	}
	kubeconfig := func(name string) string { return filepath.Join(n.dir, name+".kubeconfig") }

	_, kcmPort, _ := net.SplitHostPort(freeAddr())
	n.controllerManager, err = startProcess("kube-controller-manager", filepath.Join(n.dir, "kube-controller-manager.log"), nil,
		filepath.Join(o.BinDir, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig("kube-controller-manager"),
		"--authentication-kubeconfig="+kubeconfig("kube-controller-manager"),
		"--authorization-kubeconfig="+kubeconfig("kube-controller-manager"),
		"--bind-address=127.0.0.1",
		"--secure-port="+kcmPort,
		"--tls-cert-file="+certFile,
		"--tls-private-key-file="+keyFile,
		"--leader-elect=false",
		// Each controller acts as its own service account, as kubeadm
		// runs it: the bootstrap roles grant the controllers, not the
		// manager's identity, what they do.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+l.pki.saPrivateFile,
		"--root-ca-file="+l.pki.caFile,
		"--cluster-name=leakguard-lab",
		// Its default, /usr/libexec/kubernetes/..., is created at start.
		"--flex-volume-plugin-dir="+filepath.Join(n.dir, "flex-volume-plugins"),
	)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, o.StartTimeout, n.controllerManager, n.healthz("https://127.0.0.1:"+kcmPort+"/healthz")); err != nil {
		return fmt.Errorf("lab: kube-controller-manager not healthy: %w", err)
	}

	_, schedPort, _ := net.SplitHostPort(freeAddr())
	n.scheduler, err = startProcess("kube-scheduler", filepath.Join(n.dir, "kube-scheduler.log"), nil,
		filepath.Join(o.BinDir, "kube-scheduler"),
		"--kubeconfig="+kubeconfig("kube-scheduler"),
		"--authentication-kubeconfig="+kubeconfig("kube-scheduler"),
		"--authorization-kubeconfig="+kubeconfig("kube-scheduler"),
		"--bind-address=127.0.0.1",
		"--secure-port="+schedPort,
		"--tls-cert-file="+certFile,
		"--tls-private-key-file="+keyFile,
		"--leader-elect=false",
	)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, o.StartTimeout, n.scheduler, n.healthz("https://127.0.0.1:"+schedPort+"/healthz")); err != nil {
		return fmt.Errorf("lab: kube-scheduler not healthy: %w", err)
	}

	_, kubeletPort, _ := net.SplitHostPort(freeAddr())
	_, healthzPort, _ := net.SplitHostPort(freeAddr())
	kubeletConfig := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(kubeletConfig, []byte(renderKubeletConfig(kubeletConfigParams{
		Port: kubeletPort, HealthzPort: healthzPort, CAFile: l.pki.caFile,
		CertFile: certFile, KeyFile: keyFile, Socket: containerdSocket,
		VolumePluginDir: filepath.Join(n.dir, "kubelet", "volume-plugins"),
	})), 0o600); err != nil {
		return err
	}
	n.kubelet, err = startProcess("kubelet", filepath.Join(n.dir, "kubelet.log"), nil,
		filepath.Join(o.BinDir, "kubelet"),
		"--config="+kubeletConfig,
		"--kubeconfig="+kubeconfig("kubelet"),
		"--root-dir="+filepath.Join(n.dir, "kubelet"),
		"--hostname-override="+NodeName,
		"--v=2",
	)
	if err != nil {
		return err
	}
	n.KubeletURL = "https://127.0.0.1:" + kubeletPort
	if err := waitFor(ctx, o.StartTimeout, n.kubelet, func(ctx context.Context) error {
		return nodeReady(ctx, l, NodeName)
	}); err != nil {
		return fmt.Errorf("lab: node %s not ready: %w\n%s", NodeName, err, n.containerd.tail(20))
	}

	ksmAddr := freeAddr()
	_, ksmPort, _ := net.SplitHostPort(ksmAddr)
	_, telemetryPort, _ := net.SplitHostPort(freeAddr())
	n.kubeStateMetrics, err = startProcess("kube-state-metrics", filepath.Join(n.dir, "kube-state-metrics.log"), nil,
		filepath.Join(o.BinDir, "kube-state-metrics"),
		"--kubeconfig="+kubeconfig("kube-state-metrics"),
		"--host=127.0.0.1",
		"--port="+ksmPort,
		"--telemetry-host=127.0.0.1",
		"--telemetry-port="+telemetryPort,
	)
	if err != nil {
		return err
	}
	n.KubeStateMetricsURL = "http://" + ksmAddr
	// Ready once it exports the node: its informers have synced.
	if err := waitFor(ctx, o.StartTimeout, n.kubeStateMetrics, n.exports(n.KubeStateMetricsURL+"/metrics", "kube_node_info{")); err != nil {
		return fmt.Errorf("lab: kube-state-metrics not ready: %w", err)
	}
	return nil
}

// startContainerd writes containerd's configuration and a loopback-only
// CNI network into the node's directory and starts containerd on
// containerdSocket, its root and state in that directory.
func (n *RealNode) startContainerd(ctx context.Context, o Options) error {
	cniDir := filepath.Join(n.dir, "cni")
	// With only the loopback plugin the runtime reports NetworkReady;
	// no plugin runs for a hostNetwork pod.
	conflist := `{"cniVersion": "1.0.0", "name": "leakguard-lab", "plugins": [{"type": "loopback"}]}` + "\n"
	if err := os.WriteFile(filepath.Join(cniDir, "10-leakguard-lab.conflist"), []byte(conflist), 0o600); err != nil {
		return err
	}
	cfg := filepath.Join(n.dir, "containerd.toml")
	if err := os.WriteFile(cfg, []byte(renderContainerdConfig(filepath.Join(n.dir, "containerd"), cniDir)), 0o600); err != nil {
		return err
	}
	var err error
	n.containerd, err = startProcess("containerd", filepath.Join(n.dir, "containerd.log"), nil, "containerd", "--config="+cfg)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, o.StartTimeout, n.containerd, func(ctx context.Context) error {
		return ctr(ctx, "version")
	}); err != nil {
		return fmt.Errorf("lab: containerd not answering on %s: %w", containerdSocket, err)
	}
	return nil
}

// healthz returns a readiness probe that GETs url with n's client and
// wants 200.
func (n *RealNode) healthz(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := n.HTTPClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
		}
		return nil
	}
}

// exports returns a readiness probe that GETs url with n's client and
// wants 200 and a body that contains want.
func (n *RealNode) exports(url, want string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := n.HTTPClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		if !strings.Contains(string(body), want) {
			return fmt.Errorf("GET %s: no %q yet", url, want)
		}
		return nil
	}
}

// nodeReady returns nil once the Node is Ready and carries neither the
// not-ready nor the unreachable taint (the node lifecycle controller takes
// them off), so that the scheduler places pods on it.
func nodeReady(ctx context.Context, l *Lab, name string) error {
	node, err := l.Admin.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	ready := false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			if c.Status != corev1.ConditionTrue {
				return fmt.Errorf("node %s Ready=%s: %s", name, c.Status, c.Message)
			}
			ready = true
		}
	}
	if !ready {
		return fmt.Errorf("node %s has no Ready condition yet", name)
	}
	for _, t := range node.Spec.Taints {
		if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
			return fmt.Errorf("node %s is still tainted %s", name, t.Key)
		}
	}
	return nil
}

// ctr runs ctr against the lab's containerd in the k8s.io namespace (the
// CRI plugin's), bounded in time.
func ctr(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", append([]string{"--address", containerdSocket, "--namespace", "k8s.io"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNodeHTTPClient is a client that trusts the lab's CA and presents the
// admin's certificate.
func newNodeHTTPClient(p *pki) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.caPEM) {
		return nil, errors.New("lab CA: no certificate")
	}
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return nil, err
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		},
	}, nil
}

// kubeletClientFiles writes the API server's client certificate towards
// the kubelet (in system:masters, as kubeadm's apiserver-kubelet-client is
// bound to the kubelet API's role) and returns its files.
func (l *Lab) kubeletClientFiles() (certFile, keyFile string, err error) {
	cert, key, err := l.pki.issueClient("kube-apiserver-kubelet-client", "system:masters")
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(l.dir, "apiserver-kubelet-client.crt"), filepath.Join(l.dir, "apiserver-kubelet-client.key")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, key, 0o600)
}

// KubeletRootDir is the kubelet's --root-dir (its pods' directories,
// volumes among them, are under pods/).
func (n *RealNode) KubeletRootDir() string { return filepath.Join(n.dir, "kubelet") }

// PIDs returns the process ID of each of the node's programs that runs,
// by name (containerd, kubelet, kube-controller-manager, kube-scheduler,
// kube-state-metrics).
func (n *RealNode) PIDs() map[string]int {
	out := map[string]int{}
	for _, p := range n.processes() {
		if p != nil && p.running() == nil {
			out[p.name] = p.cmd.Process.Pid
		}
	}
	return out
}

// processes returns the node's processes, in the order they stop.
func (n *RealNode) processes() []*process {
	return []*process{n.kubeStateMetrics, n.scheduler, n.controllerManager, n.kubelet, n.containerd}
}

// close stops the node and puts back what it changed on the host: it stops
// kube-state-metrics, the scheduler, the controller manager and the kubelet
// by their PIDs, kills every container and its shim through containerd,
// stops containerd, unmounts what is left under the node's directory,
// removes the kubepods cgroups, /var/log/pods and /var/log/containers (where
// the node made them) and restores the sysctls the kubelet sets.
func (n *RealNode) close() error {
	var errs []error
	for _, p := range []*process{n.kubeStateMetrics, n.scheduler, n.controllerManager, n.kubelet} {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	if n.containerd != nil {
		errs = append(errs, removeContainers(n.containerd))
		errs = append(errs, n.containerd.stop())
	}
	errs = append(errs, killShims(n.dir))
	errs = append(errs, unmountUnder(n.dir))
	if n.host != nil {
		errs = append(errs, n.host.restore())
	}
	return errors.Join(errs...)
}

// removeContainers kills and deletes every container of the CRI
// namespace, so that their shims exit, while containerd still runs.
func removeContainers(containerd *process) error {
	if containerd.running() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ctr", "--address", containerdSocket, "--namespace", "k8s.io", "containers", "list", "--quiet").Output()
	if err != nil {
		return fmt.Errorf("list the node's containers: %w", err)
	}
	var errs []error
	for _, id := range strings.Fields(string(out)) {
		// A container without a task (never started, or already
		// exited) refuses the kill: only the delete matters.
		_ = ctr(ctx, "tasks", "kill", "--signal", "SIGKILL", id)
		if err := deleteTask(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ctr(ctx, "containers", "delete", id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteTask deletes a container's task once it has exited; a container
// without a task is done.
func deleteTask(ctx context.Context, id string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ctr(ctx, "tasks", "delete", id)
		if err == nil || strings.Contains(err.Error(), "not found") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete the task of container %s: %w", id, err)
		case <-tick.C:
		}
	}
}
