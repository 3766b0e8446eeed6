package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/leakguard/leakguard/rules"
)

// LabParams are the rules' parameters with time compressed for the lab:
// every window, step and `for` of the shipped defaults divided by 90 or
// so (a 15-minute step is 10 s, the steady trend's two hours 80 s), the
// thresholds as shipped except the fast trend's share of the room to the
// limit (5 % instead of 10 %, so that a leak of a few MiB/s against a
// 2 GiB limit is a fast one). A leak of 3 MiB/s fires ContainerMemoryLeak
// about a minute after it starts.
func LabParams() rules.Params {
	s := func(d time.Duration) model.Duration { return model.Duration(d) }
	p := rules.DefaultParams()
	p.FloorWindow = s(20 * time.Second)
	p.FastStepWindow = s(10 * time.Second)
	p.LeakStepWindow = s(20 * time.Second)
	p.SlowStepWindow = s(80 * time.Second)
	// The trend group every 2s: every window is a multiple of it.
	p.TrendInterval = s(2 * time.Second)
	p.Interval = 0 // the lab's global 1s
	p.FastMinHeadroomRatio = 0.05
	p.LeakFor = s(5 * time.Second)
	p.OOMHorizon = s(2 * time.Minute)
	p.OOMFor = s(5 * time.Second)
	p.NearLimitFor = s(10 * time.Second)
	p.OOMKilledWindow = s(10 * time.Second)
	p.LimitMissingFor = s(40 * time.Second)
	p.OrphanCgroupsFor = s(10 * time.Second)
	p.DyingStepWindow = s(10 * time.Second)
	p.CgroupLeakFor = s(5 * time.Second)
	p.ControlPlaneFor = s(10 * time.Second)
	p.APIServerMemoryFor = s(5 * time.Second)
	p.ObjectSurgeWindow = s(40 * time.Second)
	p.ObjectSurgeFor = s(5 * time.Second)
	// The recommended limit: a 2-minute window in steps of 4 s, for pods
	// that have run 20 s.
	p.RecommendInterval = s(4 * time.Second)
	p.RecommendWindow = s(2 * time.Minute)
	p.RecommendMinHistory = s(20 * time.Second)
	return p
}

// ChainOptions configure StartChain.
type ChainOptions struct {
	// RepoRoot is the leakguard module (deploy/ is read from it, and the
	// binary built from it).
	RepoRoot string
	// BinDir holds kube-apiserver and etcd (FindBinaries).
	BinDir string
	// Leakguard is a built binary; "" builds one (BuildLeakguard).
	Leakguard string
	// Replicas of leakguard serve; 0 means 2, as deploy/ runs it.
	Replicas int
	// Params are the rules' parameters; nil means LabParams().
	Params *rules.Params
	// Policy, when set, is written to a file that every replica loads
	// with --policy (the embedded default policy otherwise): the way a
	// scenario turns on a remediator the default policy does not run.
	// PolicyAPIServerPort in it is replaced by the port of the lab's
	// kube-apiserver (profile's apiserverPort).
	Policy []byte
	// ServeArgs are extra flags for every replica.
	ServeArgs []string
	// AgentNode, when set, runs `leakguard agent` for that node over a
	// fixture cgroup tree (Chain.CgroupTree) holding AgentOrphans empty
	// pod cgroups of pods that do not exist, as deploy/agent's service
	// account; Prometheus scrapes it as job="leakguard-agent".
	AgentNode    string
	AgentOrphans int
	// Profiling runs the lab's kube-apiserver with --profiling, so that
	// the profile remediator can fetch its heap (the lab turns it off
	// otherwise, as a hardened cluster does).
	Profiling bool
	// APIServerObjects makes Prometheus scrape the lab's own
	// kube-apiserver for its object counts (apiserver_resource_objects,
	// counted every 2 s instead of every minute), as job="apiserver":
	// resource:apiserver_resource_objects:max then has the lab's real
	// objects. The apiserver's memory stays synthetic
	// (Node.APIServerRSSBytes): the lab's kube-apiserver uses a few
	// hundred MiB, no node's share worth an alert.
	APIServerObjects bool
	// RealNode runs the chain on the lab's real node (Options.RealNode)
	// instead of the synthetic endpoint: Prometheus scrapes the real
	// kubelet's /metrics/cadvisor and kube-state-metrics with
	// kube-prometheus's labels (Chain.Metrics is nil), the rules'
	// parameters default to RealNodeParams, and there is no pod network.
	// Start refuses where the host cannot run the node (CheckNodeHost).
	RealNode bool
	// Progress, when set, is told each step of the start.
	Progress func(step string, took time.Duration)
}

// PolicyAPIServerPort, in ChainOptions.Policy, stands for the port of the
// lab's kube-apiserver, known only once it runs.
const PolicyAPIServerPort = "$(APISERVER_PORT)"

// Chain is the whole alert chain on loopback: etcd and kube-apiserver
// (the Lab), the synthetic metrics endpoint, Prometheus with the
// generated rules, Alertmanager with deploy/'s receiver, and the replicas
// of leakguard serve, authenticated as deploy/leakguard's service account.
type Chain struct {
	*Lab
	Metrics      *Metrics
	Prometheus   *Prometheus
	Alertmanager *Alertmanager
	Serve        []*Serve
	Agent        *Agent
	CgroupTree   *CgroupTree
	Params       rules.Params
	// RuleFile is the generated rule file Prometheus loads.
	RuleFile string
	// Kubeconfig is the admin's, for kubectl.
	Kubeconfig string
	// AlertmanagerConfig is the configuration made from receiver.yaml.
	AlertmanagerConfig string
	// ServiceAccount is leakguard's, as namespace/name.
	ServiceAccount string
	// AgentKubeconfig is deploy/agent's service account's kubeconfig
	// (ChainOptions.AgentNode), "" without an agent.
	AgentKubeconfig string
}

// StartChain starts everything; on error nothing is left running.
func StartChain(ctx context.Context, o ChainOptions) (_ *Chain, err error) {
	if o.Replicas == 0 {
		o.Replicas = 2
	}
	params := LabParams()
	if o.RealNode {
		params = RealNodeParams()
	}
	if o.Params != nil {
		params = *o.Params
	}
	if err := params.Validate(); err != nil {
		return nil, fmt.Errorf("lab: rule parameters: %w", err)
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, time.Duration) {}
	}
	step := time.Now()
	done := func(what string) {
		progress(what, time.Since(step))
		step = time.Now()
	}

	// The pod network lets pods/proxy reach the pprof endpoints of the
	// workloads that serve one (Workload.PprofPort).
	labOpts := Options{BinDir: o.BinDir, Profiling: o.Profiling, PodNetwork: true}
	if o.RealNode {
		// Prometheus scrapes the real node's apiserver for its object
		// counts too (realNodeScrapeJobs), counted as often as
		// APIServerObjects has them counted.
		labOpts = Options{BinDir: o.BinDir, Profiling: o.Profiling, RealNode: true, RepoRoot: o.RepoRoot, StartTimeout: 2 * time.Minute,
			ObjectCountPoll: objectCountPoll}
	}
	if o.APIServerObjects {
		labOpts.ObjectCountPoll = objectCountPoll
	}
	l, err := Start(ctx, labOpts)
	if err != nil {
		return nil, err
	}
	c := &Chain{Lab: l, Params: params}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.Close())
		}
	}()
	if o.RealNode {
		done("etcd, kube-apiserver and the real node " + NodeName + " Ready")
	} else {
		done("etcd and kube-apiserver " + l.Host())
	}

	bin := o.Leakguard
	if bin == "" {
		if bin, err = BuildLeakguard(ctx, o.RepoRoot, l.dir); err != nil {
			return nil, err
		}
		done("go build leakguard")
	}

	// The policy every replica loads, and the components of deploy/
	// that grant its remediators' rights: serve refuses to start without
	// them.
	var policy []byte
	if o.Policy != nil {
		u, err := url.Parse(l.Host())
		if err != nil {
			return nil, err
		}
		policy = bytes.ReplaceAll(o.Policy, []byte(PolicyAPIServerPort), []byte(u.Port()))
	}
	components, err := PolicyComponents(policy)
	if err != nil {
		return nil, err
	}

	// deploy/leakguard's RBAC and admission policies (enforced before
	// this returns) with those components, and a token for its service
	// account.
	saNS, saName, err := InstallLeakguard(ctx, l, o.RepoRoot, components...)
	if err != nil {
		return nil, err
	}
	c.ServiceAccount = saNS + "/" + saName
	token, err := l.ServiceAccountToken(ctx, saNS, saName, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	saKubeconfig := filepath.Join(l.dir, "leakguard.kubeconfig")
	if err := l.WriteTokenKubeconfig(saKubeconfig, saName, token); err != nil {
		return nil, err
	}
	c.Kubeconfig = filepath.Join(l.dir, "admin.kubeconfig")
	if err := l.WriteAdminKubeconfig(c.Kubeconfig); err != nil {
		return nil, err
	}
	done("deploy/leakguard RBAC, admission policies in force, a token")

	var scrapeConfigs []map[string]any
	if o.RealNode {
		cert, key, err := l.prometheusKubeletClient(ctx)
		if err != nil {
			return nil, err
		}
		scrapeConfigs = realNodeScrapeJobs(l.RealNode, l.Host(), l.CAFile(), cert, key)
	} else if c.Metrics, err = StartMetrics(); err != nil {
		return nil, err
	}
	var extraScrapeConfigs []map[string]any
	if o.APIServerObjects {
		job, err := l.apiserverObjectsJob(ctx)
		if err != nil {
			return nil, err
		}
		extraScrapeConfigs = append(extraScrapeConfigs, job)
	}

	// The rules, from the same generator as deploy/prometheus/rules.yaml.
	files, err := rules.Files(params)
	if err != nil {
		return nil, err
	}
	c.RuleFile = filepath.Join(l.dir, "rules.yaml")
	if err := os.WriteFile(c.RuleFile, files[rules.RuleFilePath], 0o600); err != nil {
		return nil, err
	}

	// serve needs Prometheus's address before Prometheus needs
	// Alertmanager's, which needs serve's: pick Prometheus's port first.
	promAddr := freeAddr()
	webhookToken := make([]byte, 24)
	if _, err := rand.Read(webhookToken); err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(l.dir, "webhook-token")
	if err := os.WriteFile(tokenFile, []byte(hex.EncodeToString(webhookToken)), 0o600); err != nil {
		return nil, err
	}
	cert, key := l.ServingCertFiles()
	serveArgs := o.ServeArgs
	if policy != nil {
		policyFile := filepath.Join(l.dir, "policy.yaml")
		if err := os.WriteFile(policyFile, policy, 0o600); err != nil {
			return nil, err
		}
		serveArgs = append([]string{"--policy=" + policyFile}, serveArgs...)
	}
	var addrs []string
	for i := 1; i <= o.Replicas; i++ {
		name := fmt.Sprintf("serve-%d", i)
		s, err := StartServe(ctx, ServeOptions{
			Bin: bin, Name: name, Dir: l.dir, Kubeconfig: saKubeconfig,
			ProfileDir:    filepath.Join(l.dir, name+"-profiles"),
			PrometheusURL: "http://" + promAddr, TokenFile: tokenFile,
			CertFile: cert, KeyFile: key, CAFile: l.CAFile(), Args: serveArgs,
		})
		if err != nil {
			return nil, err
		}
		c.Serve = append(c.Serve, s)
		addrs = append(addrs, s.Addr())
	}
	done(fmt.Sprintf("%d replicas of leakguard serve", o.Replicas))

	fragment, err := os.ReadFile(filepath.Join(o.RepoRoot, "deploy", "alertmanager", "receiver.yaml"))
	if err != nil {
		return nil, err
	}
	amConfig, err := ReceiverConfig(fragment, addrs, tokenFile, l.CAFile(), time.Second, time.Second)
	if err != nil {
		return nil, err
	}
	c.AlertmanagerConfig = string(amConfig)
	if c.Alertmanager, err = StartAlertmanager(ctx, AlertmanagerOptions{Dir: filepath.Join(l.dir, "alertmanager"), Config: amConfig}); err != nil {
		return nil, err
	}
	done("alertmanager " + c.Alertmanager.URL())

	var agents []string
	if o.AgentNode != "" {
		if err := c.startAgent(ctx, o, bin); err != nil {
			return nil, err
		}
		agents = append(agents, c.Agent.Addr())
		done("leakguard agent for " + o.AgentNode + " over a fixture cgroup tree")
	}

	promOpts := PrometheusOptions{
		Dir: filepath.Join(l.dir, "prometheus"), Addr: promAddr, RuleFile: c.RuleFile,
		ScrapeConfigs: scrapeConfigs, ExtraScrapeConfigs: extraScrapeConfigs, AgentAddrs: agents, AlertmanagerAddr: c.Alertmanager.Addr(),
	}
	if c.Metrics != nil {
		promOpts.MetricsAddr = c.Metrics.Addr()
	}
	if c.Prometheus, err = StartPrometheus(ctx, promOpts); err != nil {
		return nil, err
	}
	done("prometheus " + c.Prometheus.URL())
	return c, nil
}

// agentManifests are deploy/agent's RBAC files, read as they ship; its
// kustomization sets the namespace, which the binding's subject names.
var agentManifests = []string{"serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml"}

func (c *Chain) startAgent(ctx context.Context, o ChainOptions, bin string) error {
	paths := make([]string, len(agentManifests))
	for i, f := range agentManifests {
		paths[i] = filepath.Join(o.RepoRoot, "deploy", "agent", f)
	}
	objs, err := ReadManifests(paths...)
	if err != nil {
		return err
	}
	var ns, name string
	for _, obj := range objs {
		if b, ok := obj.(*rbacv1.ClusterRoleBinding); ok && len(b.Subjects) == 1 {
			ns, name = b.Subjects[0].Namespace, b.Subjects[0].Name
		}
	}
	if name == "" || ns == "" {
		return errors.New("lab: deploy/agent's ClusterRoleBinding names no service account with a namespace")
	}
	for _, obj := range objs {
		if sa, ok := obj.(*corev1.ServiceAccount); ok {
			sa.Namespace = ns
		}
	}
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if err := Create(ctx, c.Admin, objs...); err != nil {
		return err
	}
	token, err := c.ServiceAccountToken(ctx, ns, name, 24*time.Hour)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(c.dir, "agent.kubeconfig")
	if err := c.WriteTokenKubeconfig(kubeconfig, name, token); err != nil {
		return err
	}
	c.AgentKubeconfig = kubeconfig
	if c.CgroupTree, err = NewCgroupTree(filepath.Join(c.dir, "cgroup-"+o.AgentNode)); err != nil {
		return err
	}
	for i := 0; i < o.AgentOrphans; i++ {
		if err := c.CgroupTree.AddPod(fmt.Sprintf("0a0b0c0d-0000-4000-8000-%012d", i), false); err != nil {
			return err
		}
	}
	c.Agent, err = StartAgent(ctx, AgentOptions{Bin: bin, Dir: c.dir, Node: o.AgentNode, CgroupRoot: c.CgroupTree.Root, Kubeconfig: kubeconfig})
	return err
}

// Close stops every component and the lab, and removes the lab's
// directory.
func (c *Chain) Close() error {
	var errs []error
	if c.Prometheus != nil {
		errs = append(errs, c.Prometheus.Stop())
	}
	if c.Alertmanager != nil {
		errs = append(errs, c.Alertmanager.Stop())
	}
	for _, s := range c.Serve {
		errs = append(errs, s.Stop())
	}
	if c.Agent != nil {
		errs = append(errs, c.Agent.Stop())
	}
	if c.Metrics != nil {
		errs = append(errs, c.Metrics.Close())
	}
	errs = append(errs, c.Lab.Close())
	return errors.Join(errs...)
}

// Logs are the tails of every component's log, for a failure message.
func (c *Chain) Logs() string {
	s := c.Lab.Logs()
	if c.Prometheus != nil {
		s += "\n" + c.Prometheus.Log(20)
	}
	if c.Alertmanager != nil {
		s += "\n" + c.Alertmanager.Log(30)
	}
	for _, r := range c.Serve {
		s += "\n" + r.Log(20)
	}
	return s
}

// AddNode creates the Node object and registers it with the metrics
// endpoint.
func (c *Chain) AddNode(ctx context.Context, n Node, annotations map[string]string) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: n.Name, Labels: map[string]string{"kubernetes.io/hostname": n.Name}, Annotations: annotations,
	}}
	if n.ControlPlane {
		node.Labels["node-role.kubernetes.io/control-plane"] = ""
	}
	created, err := c.Admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	if n.IP != "" {
		// What a kubelet reports: the profile remediator reaches a
		// node's apiserver at its InternalIP.
		created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}}
		if _, err := c.Admin.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("status of node %s: %w", n.Name, err)
		}
	}
	c.Metrics.SetNode(n)
	return nil
}

// Workload is a Deployment with one container, its ReplicaSet and one
// pod on Node, as the admin creates them (nothing reconciles them).
type Workload struct {
	Namespace, Name, Node string
	// Annotations of the Deployment (leakguard.io/ignore, say).
	Annotations map[string]string
	// LimitBytes is the container's memory limit; BaseBytes its working set
	// before any leak.
	LimitBytes, BaseBytes int64
	// PprofPort, when set, opts the pod in to the profile remediator
	// (leakguard.io/pprof-port in the pod template) and serves this
	// process's net/http/pprof at that port of the pod's IP on the lab's
	// pod network.
	PprofPort int
}

// Pod is the name of the workload's pod.
func (w Workload) Pod() string { return w.Name + "-5f7c9-x2x4q" }

// ReplicaSet is the workload's ReplicaSet name.
func (w Workload) ReplicaSet() string { return w.Name + "-5f7c9" }

// ContainerName is the name of every workload's only container.
const ContainerName = "app"

// Key names its container in Metrics.
func (w Workload) Key() string { return w.Namespace + "/" + w.Pod() + "/" + ContainerName }

// AddWorkload creates the namespace (when missing), the Deployment, its
// ReplicaSet and pod, and registers the container, flat, with the metrics
// endpoint.
func (c *Chain) AddWorkload(ctx context.Context, w Workload) error {
	a := c.Admin
	if _, err := a.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", w.Namespace, err)
	}
	if err := c.EnsureDefaultServiceAccount(ctx, w.Namespace); err != nil {
		return err
	}
	labels := map[string]string{"app": w.Name}
	image := "registry.invalid/" + w.Namespace + "/" + w.Name + ":1"
	limit := resource.NewQuantity(w.LimitBytes, resource.BinarySI)
	var podAnnotations map[string]string
	if w.PprofPort != 0 {
		podAnnotations = map[string]string{pprofPortAnnotation: strconv.Itoa(w.PprofPort)}
	}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: ContainerName, Image: image,
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: *limit},
				Requests: corev1.ResourceList{corev1.ResourceMemory: *limit},
			},
		}}},
	}
	dep, err := a.AppsV1().Deployments(w.Namespace).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Annotations: w.Annotations},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create deployment %s/%s: %w", w.Namespace, w.Name, err)
	}
	rsLabels := map[string]string{"app": w.Name, "pod-template-hash": "5f7c9"}
	rsTemplate := *template.DeepCopy()
	rsTemplate.Labels = rsLabels
	rs, err := a.AppsV1().ReplicaSets(w.Namespace).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: w.ReplicaSet(), Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{controller("apps/v1", "Deployment", dep.Name, dep.UID)}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: rsLabels}, Template: rsTemplate},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create replicaset: %w", err)
	}
	spec := *rsTemplate.Spec.DeepCopy()
	spec.NodeName = w.Node
	pod, err := a.CoreV1().Pods(w.Namespace).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: w.Pod(), Labels: rsLabels, Annotations: podAnnotations,
			OwnerReferences: []metav1.OwnerReference{controller("apps/v1", "ReplicaSet", rs.Name, rs.UID)}},
		Spec: spec,
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod: %w", err)
	}
	if w.PprofPort != 0 {
		if _, err := c.AttachPod(ctx, w.Namespace, pod.Name, w.PprofPort, PprofHandler()); err != nil {
			return err
		}
	}
	c.Metrics.SetContainer(Container{
		Namespace: w.Namespace, Pod: pod.Name, UID: string(pod.UID), Container: ContainerName, Node: w.Node,
		Image: image, ContainerID: hex.EncodeToString([]byte(string(pod.UID)))[:32],
		LimitBytes: w.LimitBytes, RequestBytes: w.LimitBytes,
		OwnerKind: "ReplicaSet", OwnerName: rs.Name,
		// Started long before the lab: no trend sees a restart.
		Started:   time.Now().Add(-time.Hour),
		BaseBytes: float64(w.BaseBytes),
	})
	return nil
}

// pprofPortAnnotation opts a pod in to profile (profile.AnnotationPprofPort).
const pprofPortAnnotation = "leakguard.io/pprof-port"

// SetRolledOut writes, as the admin through the status subresource, the
// status a controller would give w's Deployment once its one replica is
// ready and rolled out: restart's guards read it (the lab runs no
// controller-manager).
func (c *Chain) SetRolledOut(ctx context.Context, w Workload) error {
	deps := c.Admin.AppsV1().Deployments(w.Namespace)
	d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	d.Status.ObservedGeneration = d.Generation
	d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 1, 1, 1, 1
	if _, err := deps.UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("status of %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

func controller(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes, BlockOwnerDeletion: &yes}
}
