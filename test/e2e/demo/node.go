package main

// The demo's story on the lab's real node (lab.ChainOptions.RealNode): real
// pods that leak, a real kernel OOM kill, the alerts from Prometheus
// scraping the real kubelet and kube-state-metrics, leakguard's restart and
// the real Deployment controller's replacement pod.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// The real node's workloads: Deployments in nodeNamespace, each with one
// container named lab.ContainerName running lab.LeakerImage.
const (
	nodeNamespace = "shop"
	// nodeLeaking leaks 1 MiB/s from 8 MiB under a 400 MiB limit: the
	// trends see it once it is older than their span and floor (2.5
	// minutes with lab.RealNodeParams), ContainerMemoryOOMPredicted (5
	// minutes ahead) at once then, and the kernel would kill it about 6.5
	// minutes after its start, long after leakguard has restarted it.
	nodeLeaking      = "web"
	nodeLeakingRate  = 1 << 20
	nodeLeakingFrom  = 8 << 20
	nodeLeakingLimit = 400 << 20
	// nodeOOM leaks 4 MiB/s under a 96 MiB limit: the kernel kills it
	// about 25 s after each start, and the kubelet restarts it with its
	// CrashLoopBackOff delays.
	nodeOOM      = "worker"
	nodeOOMRate  = 4 << 20
	nodeOOMLimit = 96 << 20
)

// nodeDemoPolicy is the default policy with restart turned on for
// ContainerMemoryOOMPredicted, after annotate (minReadyReplicas 1, as the
// Deployments have one replica; the rollout starts the new pod before it
// stops the old one), and a rate limit raised so that the annotations of
// the OOM-killed worker cannot use up the bucket before the restart.
func nodeDemoPolicy() ([]byte, error) {
	var p map[string]any
	if err := yaml.Unmarshal(remediate.DefaultPolicyYAML(), &p); err != nil {
		return nil, err
	}
	alerts, _ := p["alerts"].(map[string]any)
	predicted, _ := alerts[rules.AlertContainerMemoryOOMPredicted].(map[string]any)
	if predicted == nil {
		return nil, errors.New("the default policy has no ContainerMemoryOOMPredicted entry")
	}
	predicted["remediators"] = []any{
		map[string]any{"name": annotate.Name},
		map[string]any{"name": restart.Name, "enabled": true, "args": map[string]any{"minReadyReplicas": 1}},
	}
	p["rateLimit"] = map[string]any{"perMinute": 60, "burst": 20}
	return yaml.Marshal(p)
}

// leakerDeployment is a Deployment of one pod on the real node running
// the lab's leaker with args, under a memory limit of limit bytes.
func leakerDeployment(name string, limit int64, args ...string) *appsv1.Deployment {
	replicas := int32(1)
	grace := int64(5)
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: nodeNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// No pod network on the real node.
					HostNetwork:                   true,
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{
						Name:            lab.ContainerName,
						Image:           lab.LeakerImage,
						ImagePullPolicy: corev1.PullNever,
						Args:            args,
						Resources: corev1.ResourceRequirements{
							Limits: corev1.ResourceList{corev1.ResourceMemory: *resource.NewQuantity(limit, resource.BinarySI)},
						},
					}},
				},
			},
		},
	}
}

// ensureNodeBinaries returns the directory of the real node's binaries,
// running hack/node-binaries.sh (its progress on stderr) when choice says
// some must be built first.
func ensureNodeBinaries(ctx context.Context, root string, choice labChoice, out *printer, stderr io.Writer) (string, error) {
	if len(choice.Build) == 0 {
		dir, err := lab.FindBinaries(root)
		if err != nil {
			return "", err
		}
		out.line("  %-24s %s", "the node's binaries", dir)
		return dir, nil
	}
	out.line("  building %s: hack/node-binaries.sh", strings.Join(choice.Build, ", "))
	start := time.Now()
	c := exec.CommandContext(ctx, filepath.Join(root, "hack", "node-binaries.sh"))
	c.Dir = root
	c.Stderr = stderr
	dirOut, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("hack/node-binaries.sh: %w", err)
	}
	dir := strings.TrimSpace(string(dirOut))
	out.line("  built in %s: %s", time.Since(start).Round(time.Second), dir)
	return dir, nil
}

// runNode is the demo on the real node.
func runNode(ctx context.Context, root string, choice labChoice, o options, out *printer, stderr io.Writer) error {
	out.head("Checking what the lab needs")
	if err := ensurePackages(ctx, out, choice.Install); err != nil {
		return err
	}
	bin, err := ensureNodeBinaries(ctx, root, choice, out, stderr)
	if err != nil {
		return err
	}
	// Again, with everything built and installed: the lab refuses
	// anyway where this fails, but here it is said before anything
	// starts.
	if err := lab.CheckNodeHost(bin); err != nil {
		return err
	}

	out.head("Starting the lab on 127.0.0.1 with a real node")
	start := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	policy, err := nodeDemoPolicy()
	if err != nil {
		return err
	}
	c, err := lab.StartChain(startCtx, lab.ChainOptions{RepoRoot: root, BinDir: bin, Policy: policy, RealNode: true,
		Progress: func(step string, took time.Duration) {
			out.line("  started %-58s %6s", step, took.Round(10*time.Millisecond))
		}})
	if err != nil {
		return fmt.Errorf("start the lab: %w", err)
	}
	defer func() {
		out.head("Stopping the lab")
		if cerr := c.Close(); cerr != nil {
			fmt.Fprintf(stderr, "demo: stop the lab: %v\n", cerr)
		} else {
			out.line("  stopped every process and container, put back what the node changed on the host, removed %s", c.Dir())
		}
	}()
	out.line("  the lab is up in %s", time.Since(start).Round(100*time.Millisecond))

	out.head("Scenario")
	out.line("  node %s: a real kubelet with containerd and runc; kube-controller-manager, kube-scheduler, kube-state-metrics", lab.NodeName)
	out.line("  Deployment %s/%s: container %s leaks %s/s from %s under a %s limit (the kernel would kill it about %s in)",
		nodeNamespace, nodeLeaking, lab.ContainerName, mib(nodeLeakingRate), mib(nodeLeakingFrom), mib(nodeLeakingLimit),
		(time.Duration((nodeLeakingLimit-nodeLeakingFrom)/nodeLeakingRate) * time.Second).Round(30*time.Second))
	out.line("  Deployment %s/%s: container %s leaks %s/s under a %s limit (the kernel kills it about every %s)",
		nodeNamespace, nodeOOM, lab.ContainerName, mib(nodeOOMRate), mib(nodeOOMLimit), time.Duration(nodeOOMLimit/nodeOOMRate)*time.Second)
	out.line("  Prometheus scrapes the kubelet's /metrics/cadvisor and kube-state-metrics with kube-prometheus's labels")
	out.line("  rules: generated with lab.RealNodeParams (windows that read the working set 30 s; the trends wait until a container")
	out.line("  is 2.5 minutes old; ContainerMemoryOOMPredicted looks 5 minutes ahead), %s", c.RuleFile)
	out.line("  policy: the default, with restart (enabled, minReadyReplicas 1) after annotate for ContainerMemoryOOMPredicted,")
	out.line("  rate limit 60 per minute; deploy/'s admission policies are in force")

	out.head("Timeline (seconds since the Deployments were created)")
	w := newWatcher(c, nil, out)
	story := &nodeStory{pods: map[types.UID]*podSeen{}, kubeEvents: map[string]bool{}}
	w.node, w.isDone = story, story.done(w)
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nodeNamespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", nodeNamespace, err)
	}
	for _, d := range []*appsv1.Deployment{
		leakerDeployment(nodeLeaking, nodeLeakingLimit, "-rate", "1Mi", "-initial", "8Mi"),
		leakerDeployment(nodeOOM, nodeOOMLimit, "-rate", "4Mi"),
	} {
		if _, err := c.Admin.AppsV1().Deployments(nodeNamespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create deployment %s/%s: %w", nodeNamespace, d.Name, err)
		}
		w.event("kubernetes: Deployment %s/%s created", nodeNamespace, d.Name)
	}
	scenarioCtx, cancelScenario := context.WithTimeout(ctx, o.timeout)
	defer cancelScenario()
	if err := w.run(scenarioCtx); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		// Close removes the logs: their tails first.
		fmt.Fprintf(stderr, "demo: the lab's logs:\n%s\n", c.Logs())
		return fmt.Errorf("the scenario did not play out: %w", err)
	}
	out.line("  the scenario played out in %s", time.Since(w.t0).Round(time.Second))
	w.nodeFinalState(ctx)

	if o.exitAfter {
		return nil
	}
	out.head("The lab keeps running; Ctrl-C stops it, removes everything and puts back what the node changed")
	out.line("  Prometheus     %s   (try: ALERTS, container_memory_working_set_bytes{namespace=%q})", c.Prometheus.URL(), nodeNamespace)
	out.line("  Alertmanager   %s", c.Alertmanager.URL())
	out.line("  kubectl        kubectl --kubeconfig %s -n %s get pods,events", c.Kubeconfig, nodeNamespace)
	out.line("  logs           %s/*.log, %s/node/*.log", c.Dir(), c.Dir())
	w.follow(ctx)
	return nil
}

// nodeStory follows the real node's side of the timeline: pods created by
// the ReplicaSet controller, started and OOM-killed by the kubelet, and the
// Deployment controller's and kubelet's Events.
type nodeStory struct {
	pods map[types.UID]*podSeen
	// kubeEvents are the Events of Kubernetes' own components already
	// printed, by namespace/name and count.
	kubeEvents map[string]bool
	// firstLeaking is the leaking Deployment's first pod, which
	// leakguard's restart replaces.
	firstLeaking *podSeen
	// replacement is the leaking Deployment's pod that replaced it.
	replacement *podSeen
	// kills counts the kernel's OOM kills of the worker's container
	// that the kubelet reported.
	kills int
	// oomAlertFired: ContainerOOMKilled fired for the worker.
	oomAlertFired bool
}

// podSeen is what the timeline has said about one pod.
type podSeen struct {
	name, app string
	uid       types.UID
	running   bool
	restarts  int32
	// terminations are the container's terminations already printed,
	// by container ID and time.
	terminations map[string]bool
	deleting     bool
	gone         bool
}

// done returns the watcher's isDone for the real node's story.
func (n *nodeStory) done(w *watcher) func(context.Context) bool {
	return func(ctx context.Context) bool { return n.playedOut(ctx, w) }
}

// poll prints what changed in the pods of nodeNamespace and the Events of
// Kubernetes' components there.
func (n *nodeStory) poll(ctx context.Context, w *watcher) {
	pods, err := w.c.Admin.CoreV1().Pods(nodeNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.Before(&pods.Items[j].CreationTimestamp)
	})
	live := map[types.UID]bool{}
	for i := range pods.Items {
		p := &pods.Items[i]
		live[p.UID] = true
		n.pollPod(w, p)
	}
	var uids []types.UID
	for uid, seen := range n.pods {
		if !live[uid] && !seen.gone {
			uids = append(uids, uid)
		}
	}
	sort.Slice(uids, func(i, j int) bool { return uids[i] < uids[j] })
	for _, uid := range uids {
		seen := n.pods[uid]
		seen.gone = true
		w.event("kubernetes: pod %s/%s (uid %s) gone", nodeNamespace, seen.name, shortUID(uid))
	}
	n.pollKubeEvents(ctx, w)
}

func (n *nodeStory) pollPod(w *watcher, p *corev1.Pod) {
	seen := n.pods[p.UID]
	if seen == nil {
		seen = &podSeen{name: p.Name, app: p.Labels["app"], uid: p.UID, terminations: map[string]bool{}}
		n.pods[p.UID] = seen
		owner := "no controller"
		if ref := metav1.GetControllerOf(p); ref != nil {
			owner = ref.Kind + " " + nodeNamespace + "/" + ref.Name
		}
		w.event("replicaset-controller: pod %s/%s created (uid %s) for %s", nodeNamespace, p.Name, shortUID(p.UID), owner)
		switch {
		case seen.app == nodeLeaking && n.firstLeaking == nil:
			n.firstLeaking = seen
			w.leak = leakTarget{nodeNamespace, p.Name, lab.ContainerName}
		case seen.app == nodeLeaking && n.replacement == nil:
			n.replacement = seen
		}
	}
	if !seen.running && p.Status.Phase == corev1.PodRunning && p.Spec.NodeName != "" {
		seen.running = true
		w.event("kubelet: pod %s/%s Running on node %s", nodeNamespace, p.Name, p.Spec.NodeName)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != lab.ContainerName {
			continue
		}
		// The older termination first: the last one, then the
		// current state's, which a restart moves to the last.
		for _, term := range []*corev1.ContainerStateTerminated{cs.LastTerminationState.Terminated, cs.State.Terminated} {
			if term == nil {
				continue
			}
			key := term.ContainerID + "@" + term.FinishedAt.UTC().String()
			if seen.terminations[key] {
				continue
			}
			seen.terminations[key] = true
			why := ""
			if term.Reason == "OOMKilled" {
				why = fmt.Sprintf(" (the kernel's OOM killer, at the %s limit)", memoryLimit(p))
				if seen.app == nodeOOM {
					n.kills++
				}
			}
			w.event("kubelet: container %s of %s/%s terminated: %s, exit code %d%s", cs.Name, nodeNamespace, p.Name, term.Reason, term.ExitCode, why)
		}
		if cs.RestartCount > seen.restarts {
			seen.restarts = cs.RestartCount
			w.event("kubelet: container %s of %s/%s started again (restart %d)", cs.Name, nodeNamespace, p.Name, cs.RestartCount)
		}
	}
	if !seen.deleting && p.DeletionTimestamp != nil {
		seen.deleting = true
		w.event("kubernetes: pod %s/%s (uid %s) terminating", nodeNamespace, p.Name, shortUID(p.UID))
	}
}

// memoryLimit is p's container's memory limit, as the timeline shows it.
func memoryLimit(p *corev1.Pod) string {
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			return mib(float64(q.Value()))
		}
	}
	return "no"
}

// kubeEventReasons are the Events of Kubernetes' own components the
// timeline shows: the Deployment controller's scaling of ReplicaSets (a
// rollout) and the kubelet's stop of a container.
var kubeEventReasons = map[string]bool{"ScalingReplicaSet": true, "Killing": true}

func (n *nodeStory) pollKubeEvents(ctx context.Context, w *watcher) {
	list, err := w.c.Admin.CoreV1().Events(nodeNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	sort.Slice(list.Items, func(i, j int) bool { return eventTime(list.Items[i]).Before(eventTime(list.Items[j])) })
	for _, e := range list.Items {
		if !kubeEventReasons[e.Reason] {
			continue
		}
		key := fmt.Sprintf("%s/%s/%d", e.Namespace, e.Name, e.Count)
		if n.kubeEvents[key] {
			continue
		}
		n.kubeEvents[key] = true
		source := e.Source.Component
		if source == "" {
			source = e.ReportingController
		}
		w.event("%s: Event %s on %s %s/%s: %s", source, e.Reason, e.InvolvedObject.Kind, nodeNamespace, e.InvolvedObject.Name, e.Message)
	}
}

func eventTime(e corev1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	return e.LastTimestamp.Time
}

func shortUID(uid types.UID) string {
	s := string(uid)
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// playedOut: the kernel has killed the worker and ContainerOOMKilled
// fired for it, and leakguard annotated its Deployment; leakguard
// restarted the leaking Deployment once, the Deployment controller's
// replacement pod (a new UID) runs, the first pod is gone, and its alerts
// have resolved.
func (n *nodeStory) playedOut(ctx context.Context, w *watcher) bool {
	for k, state := range w.promState {
		if state == "firing" && strings.HasPrefix(k, rules.AlertContainerOOMKilled+"{"+nodeNamespace+"/"+nodeOOM+"-") {
			n.oomAlertFired = true
		}
	}
	if n.kills == 0 || !n.oomAlertFired || n.firstLeaking == nil || !n.firstLeaking.gone ||
		n.replacement == nil || !n.replacement.running || n.replacement.deleting {
		return false
	}
	for k, state := range w.promState {
		if state != "" && strings.Contains(k, "{"+nodeNamespace+"/"+n.firstLeaking.name+"/") {
			return false
		}
	}
	evs, err := w.leakguardEvents(ctx)
	if err != nil {
		return false
	}
	restarts, workerActed := 0, false
	for _, e := range evs {
		if e.Reason != remediate.EventReasonActed {
			continue
		}
		switch e.InvolvedObject.Name {
		case nodeLeaking:
			if strings.Contains(e.Message, restart.Name+" acted") {
				restarts++
			}
		case nodeOOM:
			workerActed = true
		}
	}
	return restarts == 1 && workerActed
}

// nodeFinalState prints the Deployments' leakguard annotations, the pods
// with their UIDs and restarts, the leaking Deployment's ReplicaSets, and
// leakguard's Events.
func (w *watcher) nodeFinalState(ctx context.Context) {
	w.out.head("Final state")
	w.showDeployments(ctx, lab.Workload{Namespace: nodeNamespace, Name: nodeLeaking}, lab.Workload{Namespace: nodeNamespace, Name: nodeOOM})
	n := w.node
	if n.firstLeaking != nil && n.replacement != nil {
		w.out.line("  pod %s/%s (uid %s) replaced by %s/%s (uid %s), created by the Deployment controller's rollout",
			nodeNamespace, n.firstLeaking.name, n.firstLeaking.uid, nodeNamespace, n.replacement.name, n.replacement.uid)
	}
	pods, err := w.c.Admin.CoreV1().Pods(nodeNamespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		w.out.line("  pods:")
		for _, p := range pods.Items {
			restarts, last := int32(0), ""
			for _, cs := range p.Status.ContainerStatuses {
				restarts = cs.RestartCount
				if t := cs.LastTerminationState.Terminated; t != nil {
					last = fmt.Sprintf(", last terminated %s (exit code %d)", t.Reason, t.ExitCode)
				}
			}
			w.out.line("      %s/%s uid %s %s, %d restarts%s", nodeNamespace, p.Name, p.UID, p.Status.Phase, restarts, last)
		}
	}
	rss, err := w.c.Admin.AppsV1().ReplicaSets(nodeNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + nodeLeaking})
	if err == nil {
		var names []string
		for _, rs := range rss.Items {
			names = append(names, fmt.Sprintf("%s (replicas: %d)", rs.Name, rs.Status.Replicas))
		}
		sort.Strings(names)
		w.out.line("  ReplicaSets of Deployment %s/%s: %s", nodeNamespace, nodeLeaking, strings.Join(names, ", "))
	}
	w.showLeakguardEvents(ctx)
}
