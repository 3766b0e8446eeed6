package chain

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// alertTimeout bounds the wait for an alert to go from the first sample
// of its leak through Prometheus (trend, for) and Alertmanager (group
// wait) to an action: about a minute with lab.LabParams; the rest is slack
// for a loaded machine.
const alertTimeout = 150 * time.Second

// eventsOf lists leakguard's Events about the object kind/name in
// namespace.
func eventsOf(ctx context.Context, c *lab.Chain, namespace, kind, name string) ([]corev1.Event, error) {
	list, err := c.Admin.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(
			fields.OneTermEqualSelector("involvedObject.name", name),
			fields.OneTermEqualSelector("involvedObject.kind", kind),
		).String(),
	})
	if err != nil {
		return nil, err
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if e.Source.Component == "leakguard" {
			out = append(out, e)
		}
	}
	return out, nil
}

func count(evs []corev1.Event, reason, contains string) int {
	n := 0
	for _, e := range evs {
		if e.Reason == reason && strings.Contains(e.Message, contains) {
			n++
		}
	}
	return n
}

// waitSilenced waits until namespace's ContainerMemoryLeak alert is in
// Alertmanager, firing and suppressed by a silence.
func waitSilenced(t *testing.T, c *lab.Chain, namespace, what string) {
	t.Helper()
	waitFor(t, alertTimeout, what, func(ctx context.Context) (bool, string, error) {
		alerts, err := c.Alertmanager.Alerts(ctx)
		if err != nil {
			return false, "", err
		}
		for _, a := range alerts {
			if a.Labels["alertname"] == rules.AlertContainerMemoryLeak && a.Labels["namespace"] == namespace {
				return a.Status.State == "suppressed", "state " + a.Status.State, nil
			}
		}
		return false, fmt.Sprintf("%d alerts, none of %s", len(alerts), namespace), nil
	})
}

func describe(evs []corev1.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, e.Reason+": "+e.Message)
	}
	return fmt.Sprintf("%d events %q", len(evs), parts)
}

// TestLeakingDeploymentAnnotatedOnce: the leaking container's
// ContainerMemoryLeak goes Prometheus → Alertmanager → both replicas; the
// Deployment is annotated once (one LeakguardActed Event), and the other
// replica's delivery is held by the cooldown claim.
func TestLeakingDeploymentAnnotatedOnce(t *testing.T) {
	c, s := need(t)
	w := s.Leaking
	deps := c.Admin.AppsV1().Deployments(w.Namespace)
	waitFor(t, alertTimeout, "the Deployment annotated and both deliveries decided", func(ctx context.Context) (bool, string, error) {
		d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
		if err != nil {
			return false, "", err
		}
		seen := fmt.Sprintf("annotations %v, %s", d.Annotations, describe(evs))
		return d.Annotations[annotate.AnnotationFinding] == rules.AlertContainerMemoryLeak &&
			count(evs, remediate.EventReasonActed, "") >= 1 &&
			count(evs, remediate.EventReasonHeld, "("+remediate.ReasonCooldown+")") >= 1, seen, nil
	})
	t.Logf("the leak was acted on %s after it started", time.Since(leaksFrom).Round(time.Second))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d.Annotations[annotate.AnnotationSubject], fmt.Sprintf("pod %s/%s, container %s", w.Namespace, w.Pod(), lab.ContainerName); got != want {
		t.Errorf("annotation %s = %q, want %q", annotate.AnnotationSubject, got, want)
	}
	if got := d.Annotations[annotate.AnnotationValue]; !strings.Contains(got, "/h > 1.0 MiB/h") {
		t.Errorf("annotation %s = %q, want the measured slope above 1.0 MiB/h", annotate.AnnotationValue, got)
	}
	if got, want := d.Annotations[annotate.AnnotationRunbookURL], rules.RunbookURL(c.Params, rules.AlertContainerMemoryLeak); got != want {
		t.Errorf("annotation %s = %q, want %q", annotate.AnnotationRunbookURL, got, want)
	}
	// The pod and ReplicaSet are not the target: untouched.
	pod, err := c.Admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pod.Annotations) != 0 {
		t.Errorf("pod annotated %v, want untouched", pod.Annotations)
	}
	// Redeliveries (a third webhook, a Prometheus resend) must not act
	// again: wait out a few group intervals and count once more.
	time.Sleep(3 * time.Second)
	evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, ""); n != 1 {
		t.Errorf("%d LeakguardActed Events, want exactly 1: %s", n, describe(evs))
	}
	if n := count(evs, remediate.EventReasonActed, rules.AlertContainerMemoryLeak+" acted"); n != 1 {
		t.Errorf("the LeakguardActed Event is not ContainerMemoryLeak's: %s", describe(evs))
	}
}

// TestIgnoredWorkloadLeftAlone: a leaking Deployment that carries
// leakguard.io/ignore: "true" gets its alert delivered (a LeakguardHeld
// Event with reason opt-out says so) and no annotation.
func TestIgnoredWorkloadLeftAlone(t *testing.T) {
	c, s := need(t)
	w := s.Ignored
	waitFor(t, alertTimeout, "the opt-out held", func(ctx context.Context) (bool, string, error) {
		evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
		if err != nil {
			return false, "", err
		}
		return count(evs, remediate.EventReasonHeld, "("+remediate.ReasonOptOut+")") >= 1, describe(evs), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := c.Admin.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k := range d.Annotations {
		if k != remediate.AnnotationIgnore {
			t.Errorf("ignored Deployment carries %s=%q, want only its opt-out", k, d.Annotations[k])
		}
	}
	evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, ""); n != 0 {
		t.Errorf("%d LeakguardActed Events on an ignored Deployment: %s", n, describe(evs))
	}
}

// TestOrphanCgroupsNodeAnnotated: the agent's orphan count above 20 fires
// NodeOrphanCgroups, and the node is annotated once.
func TestOrphanCgroupsNodeAnnotated(t *testing.T) {
	c, s := need(t)
	testNodeAnnotated(t, c, s.OrphanNode.Name, rules.AlertNodeOrphanCgroups, "42 orphan cgroups > 20 orphan cgroups")
}

// TestAgentOrphanCgroupsNodeAnnotated: the real node agent, over a
// fixture tree with 25 empty cgroups of pods that do not exist and the
// populated cgroup of one that does, counts 25 orphans (the live pod is
// not one), and the node is annotated.
func TestAgentOrphanCgroupsNodeAnnotated(t *testing.T) {
	c, s := need(t)
	testNodeAnnotated(t, c, s.AgentNode.Name, rules.AlertNodeOrphanCgroups, fmt.Sprintf("%d orphan cgroups > 20 orphan cgroups", s.AgentOrphans))
}

// TestAPIServerMemoryNodeAnnotated: kube-apiserver at 70 % of its node's
// memory fires KubeAPIServerMemoryHigh; with no static pod in the API
// server the target is the node.
func TestAPIServerMemoryNodeAnnotated(t *testing.T) {
	c, s := need(t)
	testNodeAnnotated(t, c, s.ControlPlane.Name, rules.AlertKubeAPIServerMemoryHigh, "70.0 % > 60.0 %")
}

func testNodeAnnotated(t *testing.T, c *lab.Chain, node, alert, value string) {
	t.Helper()
	waitFor(t, alertTimeout, "node "+node+" annotated", func(ctx context.Context) (bool, string, error) {
		n, err := c.Admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", node)
		if err != nil {
			return false, "", err
		}
		// Both replicas have decided once the other one is held by the
		// cooldown the first one claimed.
		return n.Annotations[annotate.AnnotationFinding] == alert && count(evs, remediate.EventReasonActed, "") >= 1 &&
				count(evs, remediate.EventReasonHeld, "("+remediate.ReasonCooldown+")") >= 1,
			fmt.Sprintf("annotations %v, %s", n.Annotations, describe(evs)), nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := c.Admin.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Annotations[annotate.AnnotationValue]; got != value {
		t.Errorf("annotation %s = %q, want %q", annotate.AnnotationValue, got, value)
	}
	if n.Spec.Unschedulable {
		t.Error("node cordoned; the annotate remediator must not cordon")
	}
	evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", node)
	if err != nil {
		t.Fatal(err)
	}
	if got := count(evs, remediate.EventReasonActed, ""); got != 1 {
		t.Errorf("%d LeakguardActed Events on node %s, want 1: %s", got, node, describe(evs))
	}
}

// TestPrometheusOutage: with Prometheus stopped, the check cannot query,
// so both replicas answer a delivery 503 and change nothing; once
// Prometheus is back, Alertmanager's retry acts once. The outage
// workload's alerts were silenced in Alertmanager from the start; the
// test waits for its alert to fire in Prometheus (silenced), stops
// Prometheus, and then expires the silence. It stops Prometheus, so it is
// the last test of the package.
func TestPrometheusOutage(t *testing.T) {
	c, s := need(t)
	w := s.Outage
	waitSilenced(t, c, w.Namespace, "the outage workload's alert held silenced in Alertmanager")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	answered503 := func() float64 {
		var sum float64
		for _, r := range c.Serve {
			n, err := r.WebhookAnswers(ctx, 503)
			if err != nil {
				t.Fatalf("%s metrics: %v", r.Name, err)
			}
			sum += n
		}
		return sum
	}
	before := answered503()

	if err := c.Prometheus.Stop(); err != nil {
		t.Fatalf("stop Prometheus: %v", err)
	}
	stopped := time.Now()
	restarted := false
	defer func() {
		if !restarted {
			if err := c.Prometheus.Start(context.Background()); err != nil {
				t.Errorf("start Prometheus again: %v", err)
			}
		}
	}()
	if err := c.Alertmanager.Expire(ctx, s.OutageSilence); err != nil {
		t.Fatalf("expire the silence: %v", err)
	}
	// Both replicas refuse while Prometheus is down, and again when
	// Alertmanager retries.
	waitFor(t, 45*time.Second, "both replicas answering 503, and Alertmanager retrying", func(ctx context.Context) (bool, string, error) {
		n := answered503()
		return n >= before+4, fmt.Sprintf("%g answers 503 (before: %g)", n, before), nil
	})
	deps := c.Admin.AppsV1().Deployments(w.Namespace)
	d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Annotations) != 0 {
		t.Errorf("Deployment annotated %v while Prometheus was down, want untouched", d.Annotations)
	}
	evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 0 {
		t.Errorf("Events while Prometheus was down (a transient failure records none): %s", describe(evs))
	}

	if err := c.Prometheus.Start(ctx); err != nil {
		t.Fatalf("start Prometheus again: %v", err)
	}
	restarted = true
	t.Logf("Prometheus was down for %s", time.Since(stopped).Round(time.Millisecond))
	waitFor(t, 60*time.Second, "the Deployment annotated after Prometheus returned", func(ctx context.Context) (bool, string, error) {
		d, err := deps.Get(ctx, w.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
		if err != nil {
			return false, "", err
		}
		return d.Annotations[annotate.AnnotationFinding] == rules.AlertContainerMemoryLeak &&
				count(evs, remediate.EventReasonActed, "") >= 1 &&
				count(evs, remediate.EventReasonHeld, "("+remediate.ReasonCooldown+")") >= 1,
			fmt.Sprintf("annotations %v, %s", d.Annotations, describe(evs)), nil
	})
	time.Sleep(3 * time.Second)
	evs, err = eventsOf(ctx, c, w.Namespace, "Deployment", w.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, ""); n != 1 {
		t.Errorf("%d LeakguardActed Events after the outage, want exactly 1: %s", n, describe(evs))
	}
}
