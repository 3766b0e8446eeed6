package node

// The scenarios of the alert chain on the real node. They use the
// remediate package's API (DefaultPolicy, Entry.Check, Check.Query and
// Evaluate, the annotation, Event and reason names) as test/e2e/chain
// does.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/node"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// nodePolicy is the policy of the chain's two replicas: the leak alert
// annotates; the OOM prediction (which fires after it, see
// lab.RealNodeParams) annotates and restarts (one replica: the rollout
// starts the new pod first); orphan cgroups cordon the node (and uncordon
// it when the alert resolves and the check agrees) and drain it; the
// apiserver's memory profiles its heap, once: the lab's Alertmanager
// (group_interval 1s) cancels a notification after 10 s, too soon for a
// second heap profile growthAfter later. The rate limit is raised so that
// the bucket refuses none of the scenarios' actions.
const nodePolicy = `
dryRun: false
cooldown: 1h
rateLimit:
  perMinute: 60
  burst: 20
disruption:
  perNamespacePerHour: 2
  nodes:
    perHour: 2
alerts:
  ContainerMemoryLeak:
    target: workload
    check:
      name: working-set-slope
      args:
        threshold: 1048576
    remediators:
      - name: annotate
  ContainerMemoryOOMPredicted:
    target: workload
    check:
      name: working-set-slope
      args:
        threshold: 1048576
    remediators:
      - name: annotate
      - name: restart
        enabled: true
        args:
          minReadyReplicas: 1
  ContainerOOMKilled:
    target: workload
    check:
      name: none
    remediators:
      - name: annotate
  ContainerMemoryLimitMissing:
    target: none
    check:
      name: none
  NodeOrphanCgroups:
    target: node
    check:
      name: orphan-cgroups
      args:
        threshold: 20
    remediators:
      - name: cordon
        enabled: true
        args:
          maxUnschedulable: 1
          maxUnschedulablePercent: 100
          uncordonOnResolve: true
      - name: drain
        enabled: true
        args:
          timeout: 2m
          backoff: 1s
          maxBackoff: 5s
  KubeAPIServerMemoryHigh:
    target: apiserver
    allowNamespaces: [kube-system]
    check:
      name: apiserver-memory
      args:
        threshold: ` + apiServerThreshold + `
    remediators:
      - name: profile
        args:
          timeout: 30s
          growthAfter: 0s
          apiserverPort: ` + lab.PolicyAPIServerPort + `
`

// The scenarios' namespace and Deployments.
const (
	shop = "shop"
	// steadyName leaks 1 MiB/s under a 400 MiB limit: the fast trend
	// sees it once the container is older than the trend's span and
	// floor (2.5 minutes with lab.RealNodeParams), the OOM prediction
	// (5 minutes ahead) at once then, and the kernel would kill it about
	// 6.5 minutes after its start, long after both alerts.
	steadyName  = "steady"
	steadyRate  = 1 << 20
	steadyLimit = "400Mi"
	// oomName leaks 4 MiB/s under a 96 MiB limit: killed every 25 s or
	// so, too young each time for any trend.
	oomName = "oom"
	// noLimitName holds 16 MiB and has no memory limit.
	noLimitName = "nolimit"
	// flatName holds 16 MiB under a 128 MiB limit: quiet, and the pod
	// that the drain evicts.
	flatName = "flat"
)

// scenarioWorld is what TestMain created for the scenarios.
type scenarioWorld struct {
	// created is when the Deployments were created; running, when
	// each one's first pod ran.
	created time.Time
	running map[string]time.Time
	// predictionSilence holds the scenarios' ContainerMemoryOOMPredicted
	// in Alertmanager, so that restart waits until TestLeakRestartedOnce
	// has seen the alerts and asked the checks, however long the tests
	// before it took.
	predictionSilence string
	// apiServerSilence holds KubeAPIServerMemoryHigh, which fires from
	// the start (nodeParams), until TestControlPlaneOnRealSeries has made
	// the objects its profile should name.
	apiServerSilence string
}

// createWorld creates the namespace and the scenarios' Deployments and
// waits until each has a running pod.
func createWorld(ctx context.Context, c *lab.Chain) (*scenarioWorld, error) {
	admin := c.Admin
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: shop}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	silence, err := c.Alertmanager.Silence(ctx, map[string]string{"alertname": rules.AlertContainerMemoryOOMPredicted, "namespace": shop}, time.Hour)
	if err != nil {
		return nil, fmt.Errorf("silence the prediction: %w", err)
	}
	apiSilence, err := c.Alertmanager.Silence(ctx, map[string]string{"alertname": rules.AlertKubeAPIServerMemoryHigh}, time.Hour)
	if err != nil {
		return nil, fmt.Errorf("silence the apiserver's memory alert: %w", err)
	}
	w := &scenarioWorld{created: time.Now(), running: map[string]time.Time{}, predictionSilence: silence, apiServerSilence: apiSilence}
	for _, d := range []*appsv1.Deployment{
		leakerDeployment(shop, steadyName, steadyLimit, "-rate", "1Mi", "-initial", "8Mi"),
		leakerDeployment(shop, oomName, "96Mi", "-rate", "4Mi"),
		leakerDeployment(shop, noLimitName, "", "-initial", "16Mi", "-flat"),
		pinned(leakerDeployment(shop, flatName, "128Mi", "-initial", "16Mi", "-flat")),
	} {
		if _, err := admin.AppsV1().Deployments(shop).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create deployment %s/%s: %w", shop, d.Name, err)
		}
	}
	err = pollUntil(ctx, 3*time.Minute, func() error {
		pods, err := admin.CoreV1().Pods(shop).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var states []string
		for i := range pods.Items {
			p := &pods.Items[i]
			app := p.Labels["app"]
			if _, seen := w.running[app]; !seen && p.Status.Phase == corev1.PodRunning {
				w.running[app] = time.Now()
			}
			states = append(states, podState(p))
		}
		if len(w.running) < 4 {
			return fmt.Errorf("running %v; pods %v", w.running, states)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the scenarios' pods: %w", err)
	}
	for app, at := range w.running {
		fmt.Fprintf(os.Stderr, "node chain: timing: %s/%s Running %s after its Deployment was created\n", shop, app, at.Sub(w.created).Round(100*time.Millisecond))
	}
	return w, nil
}

// pinned keeps d's pods on the real node (TestCordonDrain's spare node has
// no kubelet): a replacement that the cordon keeps off the real node waits,
// Pending.
func pinned(d *appsv1.Deployment) *appsv1.Deployment {
	d.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/hostname": lab.NodeName}
	return d
}

// podOf returns the one pod of app in shop that is not being deleted.
func podOf(ctx context.Context, c *lab.Chain, app string) (*corev1.Pod, error) {
	pods, err := c.Admin.CoreV1().Pods(shop).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		var states []string
		for i := range pods.Items {
			states = append(states, podState(&pods.Items[i]))
		}
		return nil, fmt.Errorf("%d live pods of %s: %v", len(live), app, states)
	}
	return &live[0], nil
}

// firing returns the labels of the alert name firing in Prometheus whose
// labels include match, or nil.
func firing(ctx context.Context, c *lab.Chain, name string, match map[string]string) (map[string]string, string, error) {
	alerts, err := c.Prometheus.Alerts(ctx)
	if err != nil {
		return nil, "", err
	}
	var seen []string
	for _, a := range alerts {
		if a.Labels["alertname"] != name {
			continue
		}
		seen = append(seen, a.State+labelString(a.Labels))
		if a.State == "firing" && matches(a.Labels, match) {
			return a.Labels, "", nil
		}
	}
	return nil, fmt.Sprintf("%s: %v", name, seen), nil
}

func matches(labels, want map[string]string) bool {
	for k, v := range want {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// eventsOf lists leakguard's Events about the object kind/name in ns.
func eventsOf(ctx context.Context, c *lab.Chain, ns, kind, name string) ([]corev1.Event, error) {
	list, err := c.Admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{
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

func describe(evs []corev1.Event) string {
	var parts []string
	for _, e := range evs {
		parts = append(parts, e.Reason+": "+e.Message)
	}
	return fmt.Sprintf("%d events %q", len(evs), parts)
}

// promAPI is the Prometheus HTTP API of the chain.
func promAPI(t *testing.T, c *lab.Chain) v1.API {
	t.Helper()
	client, err := api.NewClient(api.Config{Address: c.Prometheus.URL()})
	if err != nil {
		t.Fatal(err)
	}
	return v1.NewAPI(client)
}

// runCheck runs check's query for a at Prometheus and evaluates the
// answer; no data fails the test.
func runCheck(t *testing.T, prom v1.API, check remediate.Check, a template.Alert) remediate.Result {
	t.Helper()
	q, err := check.Query(a)
	if err != nil {
		t.Fatalf("%s.Query: %v", check.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	now := time.Now()
	answer, _, _, err := prom.Query(ctx, q, now)
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	res, err := check.Evaluate(a, answer, now)
	if errors.Is(err, remediate.ErrNoData) {
		t.Fatalf("check %s: %s answered no data on the real series (%v)", check.Name(), q, err)
	}
	if err != nil {
		t.Fatalf("check %s: %v", check.Name(), err)
	}
	return res
}

// TestLeakRestartedOnce is the first scenario: a real container leaking
// 1 MiB/s fires ContainerMemoryLeak and then ContainerMemoryOOMPredicted
// on the kubelet's real series, with the real node's name; the default
// policy's checks for both answer on them and confirm; leakguard's
// :leak_rate reads about the leaker's rate; once the prediction's silence
// is expired (TestMain silenced it), restart acts once (one
// LeakguardActed Event naming restart, one restartedAt), the real
// Deployment controller replaces the pod (a new UID, the old pod gone),
// and the alerts resolve once the old pod's series are gone, with none for
// the new pod.
func TestLeakRestartedOnce(t *testing.T) {
	c, w := need(t)
	ctx := context.Background()
	old, err := podOf(ctx, c, steadyName)
	if err != nil {
		t.Fatal(err)
	}
	match := map[string]string{"namespace": shop, "pod": old.Name, "container": steadyName}
	leakStart := w.running[steadyName]

	var leak, oom map[string]string
	leakAt := waitFor(t, 8*time.Minute, "ContainerMemoryLeak firing for "+old.Name, func(ctx context.Context) (bool, string, error) {
		l, seen, err := firing(ctx, c, rules.AlertContainerMemoryLeak, match)
		leak = l
		return l != nil, seen, err
	})
	t.Logf("timing: leak start to ContainerMemoryLeak firing: %s", leakAt.Sub(leakStart).Round(time.Second))
	oomAt := waitFor(t, 3*time.Minute, "ContainerMemoryOOMPredicted firing for "+old.Name, func(ctx context.Context) (bool, string, error) {
		l, seen, err := firing(ctx, c, rules.AlertContainerMemoryOOMPredicted, match)
		oom = l
		return l != nil, seen, err
	})
	t.Logf("timing: leak start to ContainerMemoryOOMPredicted firing: %s", oomAt.Sub(leakStart).Round(time.Second))
	for _, a := range []map[string]string{leak, oom} {
		t.Logf("alert %s", labelString(a))
		if a["node"] != lab.NodeName {
			t.Errorf("%s has node %q, want the real node %s (from the kubelet's target)", a["alertname"], a["node"], lab.NodeName)
		}
	}

	// The default policy's checks of both alerts, on the real series.
	policy, err := remediate.DefaultPolicy(builtin.Registry())
	if err != nil {
		t.Fatal(err)
	}
	prom := promAPI(t, c)
	for _, a := range []map[string]string{leak, oom} {
		name := a["alertname"]
		alert := template.Alert{Status: "firing", Labels: template.KV{}, StartsAt: time.Now().Add(-time.Minute)}
		for k, v := range a {
			alert.Labels[k] = v
		}
		res := runCheck(t, prom, policy.Entry(name).Check, alert)
		t.Logf("%s: check %s: %s", name, policy.Entry(name).Check.Name(), res.Summary)
		if !res.Confirmed {
			t.Errorf("%s: check %s = %q, not confirmed on a real leak", name, policy.Entry(name).Check.Name(), res.Summary)
		}
	}
	rate, err := c.Prometheus.QueryValues(ctx, fmt.Sprintf(`%s{namespace=%q, pod=%q, container=%q}`, rules.RecLeakRate, shop, old.Name, steadyName))
	if err != nil {
		t.Fatal(err)
	}
	// The kubelet samples every 10 to 20 s; over the fast trend's two
	// minutes that is within a fifth of the rate. A factor of 1.5 either
	// way tells a rate in bytes per second from one per hour or per
	// sample.
	if len(rate) != 1 || rate[0].Value < steadyRate/1.5 || rate[0].Value > steadyRate*1.5 {
		t.Errorf("%s = %v, want one series near the leaker's %d B/s", rules.RecLeakRate, rate, steadyRate)
	} else {
		t.Logf("%s = %.0f B/s for a leak of %d B/s", rules.RecLeakRate, rate[0].Value, steadyRate)
	}

	// restart, on the prediction, once: the real controller replaces the
	// pod. The prediction reaches leakguard now.
	if err := c.Alertmanager.Expire(ctx, w.predictionSilence); err != nil {
		t.Fatal(err)
	}
	releasedAt := time.Now()
	deps := c.Admin.AppsV1().Deployments(shop)
	waitFor(t, 2*time.Minute, "the Deployment restarted", func(ctx context.Context) (bool, string, error) {
		d, err := deps.Get(ctx, steadyName, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		evs, err := eventsOf(ctx, c, shop, "Deployment", steadyName)
		if err != nil {
			return false, "", err
		}
		return d.Spec.Template.Annotations[restart.AnnotationRestartedAt] != "" &&
				count(evs, remediate.EventReasonActed, restart.Name+" acted") >= 1,
			fmt.Sprintf("template annotations %v, %s", d.Spec.Template.Annotations, describe(evs)), nil
	})
	var replacement *corev1.Pod
	replacedAt := waitFor(t, 2*time.Minute, "a new pod Running and the old one gone", func(ctx context.Context) (bool, string, error) {
		pods, err := c.Admin.CoreV1().Pods(shop).List(ctx, metav1.ListOptions{LabelSelector: "app=" + steadyName})
		if err != nil {
			return false, "", err
		}
		var states []string
		replacement = nil
		oldThere := false
		for i := range pods.Items {
			p := &pods.Items[i]
			states = append(states, podState(p))
			if p.UID == old.UID {
				oldThere = true
			} else if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				replacement = p
			}
		}
		return replacement != nil && !oldThere, fmt.Sprintf("pods %v", states), nil
	})
	t.Logf("timing: ContainerMemoryOOMPredicted released to leakguard (its silence expired, %s after it fired) to the replacement pod %s (uid %s) Running and %s (uid %s) gone: %s",
		releasedAt.Sub(oomAt).Round(100*time.Millisecond), replacement.Name, replacement.UID, old.Name, old.UID, replacedAt.Sub(releasedAt).Round(100*time.Millisecond))

	resolvedAt := waitFor(t, 2*time.Minute, "the old pod's alerts resolved", func(ctx context.Context) (bool, string, error) {
		alerts, err := c.Prometheus.Alerts(ctx)
		if err != nil {
			return false, "", err
		}
		var left []string
		for _, a := range alerts {
			if a.Labels["pod"] == old.Name {
				left = append(left, a.State+labelString(a.Labels))
			}
		}
		return len(left) == 0, fmt.Sprintf("alerts of %s: %v", old.Name, left), nil
	})
	t.Logf("timing: replacement to the old pod's alerts resolved: %s", resolvedAt.Sub(replacedAt).Round(100*time.Millisecond))
	// The new pod leaks too, but younger than the trends' span it has no
	// alert yet (lab.RealNodeParams: 2.5 minutes).
	alerts, err := c.Prometheus.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Labels["pod"] == replacement.Name && (a.Labels["alertname"] == rules.AlertContainerMemoryLeak || a.Labels["alertname"] == rules.AlertContainerMemoryOOMPredicted) {
			t.Errorf("the replacement pod, %s old, has an alert: %s %s", time.Since(replacement.CreationTimestamp.Time).Round(time.Second), a.State, labelString(a.Labels))
		}
	}

	// Once: both replicas have had the deliveries by now, and the
	// resolved notification; one restart, one Event that says so.
	d, err := deps.Get(ctx, steadyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := eventsOf(ctx, c, shop, "Deployment", steadyName)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(evs, remediate.EventReasonActed, restart.Name+" acted"); n != 1 {
		t.Errorf("%d LeakguardActed Events naming restart, want exactly 1: %s", n, describe(evs))
	}
	if _, err := time.Parse(time.RFC3339, d.Spec.Template.Annotations[restart.AnnotationRestartedAt]); err != nil {
		t.Errorf("%s = %q: %v", restart.AnnotationRestartedAt, d.Spec.Template.Annotations[restart.AnnotationRestartedAt], err)
	}
	if d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != 1 || d.Status.ReadyReplicas != 1 {
		t.Errorf("the Deployment's rollout: generation %d, observed %d, updated %d, ready %d; want one rollout, done",
			d.Generation, d.Status.ObservedGeneration, d.Status.UpdatedReplicas, d.Status.ReadyReplicas)
	}
	rsList, err := c.Admin.AppsV1().ReplicaSets(shop).List(ctx, metav1.ListOptions{LabelSelector: "app=" + steadyName})
	if err != nil {
		t.Fatal(err)
	}
	if len(rsList.Items) != 2 {
		t.Errorf("%d ReplicaSets of %s, want 2 (the first and one rollout)", len(rsList.Items), steadyName)
	}
	t.Logf("%s", describe(evs))
}

// firstTime returns when expr first had a sample in the last 15 minutes,
// from Prometheus's record at a resolution of a second.
func firstTime(ctx context.Context, t *testing.T, c *lab.Chain, expr string) time.Time {
	t.Helper()
	got, err := c.Prometheus.QueryValues(ctx, fmt.Sprintf("min(min_over_time(timestamp(%s)[15m:1s]))", expr))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("no sample of %s in the last 15 minutes", expr)
	}
	sec, frac := math.Modf(got[0].Value)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// firstPromQL is the first line of the first promql block of a runbook.
var firstPromQL = regexp.MustCompile("(?s)```promql\\s*\\n\\s*([^\\n]+)")

// TestOOMKilled is the second scenario: the kernel kills a container at
// its limit, ContainerOOMKilled fires with that pod's and container's
// labels, and the first PromQL query of docs/runbooks/ContainerOOMKilled.md,
// filled in with them, returns the kill.
func TestOOMKilled(t *testing.T) {
	c, w := need(t)
	ctx := context.Background()
	var pod *corev1.Pod
	killedAt := waitFor(t, 3*time.Minute, "the kernel's first OOM kill of "+oomName, func(ctx context.Context) (bool, string, error) {
		p, err := podOf(ctx, c, oomName)
		if err != nil {
			return false, "", err
		}
		pod = p
		for _, cs := range p.Status.ContainerStatuses {
			if term := cs.LastTerminationState.Terminated; term != nil && term.Reason == "OOMKilled" {
				return true, "", nil
			}
		}
		return false, podState(p), nil
	})
	match := map[string]string{"namespace": shop, "pod": pod.Name, "container": oomName}
	var alert map[string]string
	firedAt := waitFor(t, 3*time.Minute, "ContainerOOMKilled firing for "+pod.Name, func(ctx context.Context) (bool, string, error) {
		a, seen, err := firing(ctx, c, rules.AlertContainerOOMKilled, match)
		alert = a
		return a != nil, seen, err
	})
	t.Logf("alert %s (seen %s after the kill was)", labelString(alert), firedAt.Sub(killedAt).Round(100*time.Millisecond))
	// The timings from Prometheus's own record, whichever test ran
	// before this one: the first restart kube-state-metrics exported,
	// and the alert's first firing sample.
	firstKill := firstTime(ctx, t, c, fmt.Sprintf(`kube_pod_container_status_restarts_total{job="kube-state-metrics", namespace=%q, pod=%q, container=%q} > 0`, shop, pod.Name, oomName))
	firstAlert := firstTime(ctx, t, c, fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", namespace=%q, pod=%q}`, rules.AlertContainerOOMKilled, shop, pod.Name))
	t.Logf("timing: pod Running to the first OOM kill in kube-state-metrics: %s; to ContainerOOMKilled firing: %s",
		firstKill.Sub(w.running[oomName]).Round(time.Second), firstAlert.Sub(w.running[oomName]).Round(time.Second))

	runbook, err := os.ReadFile(filepath.Join(repoRoot, "docs", "runbooks", rules.AlertContainerOOMKilled+".md"))
	if err != nil {
		t.Fatal(err)
	}
	m := firstPromQL.FindSubmatch(runbook)
	if m == nil {
		t.Fatalf("no promql block in the runbook of %s", rules.AlertContainerOOMKilled)
	}
	query := strings.NewReplacer("$NS", alert["namespace"], "$POD", alert["pod"], "$CONTAINER", alert["container"]).Replace(strings.TrimSpace(string(m[1])))
	got, err := c.Prometheus.QueryValues(ctx, query)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !(got[0].Value > 0) {
		t.Errorf("the runbook's first query %s = %v, want one series above 0 (the kill)", query, got)
	} else {
		t.Logf("the runbook's first query %s = %v", query, got[0].Value)
	}
	// For the record: the cAdvisor branch on an ordinary kill.
	oomEvents, err := c.Prometheus.QueryValues(ctx, fmt.Sprintf(`container_oom_events_total{job="kubelet", namespace=%q, pod=%q}`, shop, pod.Name))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range oomEvents {
		t.Logf("container_oom_events_total%s = %v", labelString(s.Labels), s.Value)
	}
}

// TestLimitMissing is the third scenario: the container without a memory
// limit fires ContainerMemoryLimitMissing; no container with a limit, and
// no pause container, has that alert, pending or firing.
func TestLimitMissing(t *testing.T) {
	c, w := need(t)
	ctx := context.Background()
	pod, err := podOf(ctx, c, noLimitName)
	if err != nil {
		t.Fatal(err)
	}
	at := waitFor(t, 3*time.Minute, "ContainerMemoryLimitMissing firing for "+pod.Name, func(ctx context.Context) (bool, string, error) {
		a, seen, err := firing(ctx, c, rules.AlertContainerMemoryLimitMissing, map[string]string{"namespace": shop, "pod": pod.Name, "container": noLimitName})
		return a != nil, seen, err
	})
	first := firstTime(ctx, t, c, fmt.Sprintf(`ALERTS{alertname=%q, alertstate="firing", namespace=%q, pod=%q}`, rules.AlertContainerMemoryLimitMissing, shop, pod.Name))
	t.Logf("timing: pod Running to ContainerMemoryLimitMissing firing: %s (seen by the test %s after)", first.Sub(w.running[noLimitName]).Round(time.Second), at.Sub(w.running[noLimitName]).Round(time.Second))
	alerts, err := c.Prometheus.Alerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts {
		if a.Labels["alertname"] == rules.AlertContainerMemoryLimitMissing && a.Labels["container"] != noLimitName {
			t.Errorf("ContainerMemoryLimitMissing %s for a container that has a limit: %s", a.State, labelString(a.Labels))
		}
	}
	// The flat container has a limit and a working set (the OOM-killed
	// one's series come and go with its restarts): the quiet answer
	// above is about a container the rules see.
	ws, err := c.Prometheus.QueryValues(ctx, fmt.Sprintf(`%s{namespace=%q, container=%q}`, rules.RecWorkingSet, shop, flatName))
	if err != nil {
		t.Fatal(err)
	}
	limit, err := c.Prometheus.QueryValues(ctx, fmt.Sprintf(`%s{namespace=%q, container=%q}`, rules.RecMemoryLimit, shop, flatName))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || len(limit) != 1 {
		t.Errorf("%s/%s: working set %v, limit %v; want one of each, or the quiet answer above proves nothing", shop, flatName, ws, limit)
	}
}

// TestCordonDrain is the fifth scenario: orphan cgroups reported for the
// real node (the agent's fixture tree) fire NodeOrphanCgroups; leakguard
// cordons the real node and drains it; the real ReplicaSet's replacement
// of the evicted pod stays Pending, unschedulable, while the node is
// cordoned; once the orphans are gone the alert resolves, leakguard
// uncordons the node (its check agrees) and the scheduler places the pod,
// which runs.
func TestCordonDrain(t *testing.T) {
	c, _ := need(t)
	// Only the flat workload's pod is left on the node to evict.
	deleteDeployments(t, c.Lab, shop, steadyName, oomName, noLimitName)
	ctx := context.Background()
	// cordon never takes the last schedulable node of a pool: a second,
	// Ready node beside the real one, on which nothing may run.
	startSpareNode(t, c)
	old, err := podOf(ctx, c, flatName)
	if err != nil {
		t.Fatal(err)
	}
	var orphans []string
	for i := 0; i < 25; i++ {
		uid := fmt.Sprintf("0a0b0c0d-0000-4000-8000-%012d", i)
		if err := c.CgroupTree.AddPod(uid, false); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, uid)
	}
	orphansAt := time.Now()
	nodes := c.Admin.CoreV1().Nodes()
	t.Cleanup(func() {
		// Whatever happened, the node schedules again for what follows.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := nodes.Get(ctx, lab.NodeName, metav1.GetOptions{})
		if err == nil && n.Spec.Unschedulable {
			n.Spec.Unschedulable = false
			_, _ = nodes.Update(ctx, n, metav1.UpdateOptions{})
		}
	})

	var pending *corev1.Pod
	drainedAt := waitFor(t, 4*time.Minute, "the node cordoned, the flat pod evicted and its replacement Pending", func(ctx context.Context) (bool, string, error) {
		n, err := nodes.Get(ctx, lab.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		pods, err := c.Admin.CoreV1().Pods(shop).List(ctx, metav1.ListOptions{LabelSelector: "app=" + flatName})
		if err != nil {
			return false, "", err
		}
		pending = nil
		oldThere := false
		var states []string
		for i := range pods.Items {
			p := &pods.Items[i]
			states = append(states, podState(p))
			if p.UID == old.UID {
				oldThere = true
			} else if unschedulable(p) {
				pending = p
			}
		}
		return n.Spec.Unschedulable && !oldThere && pending != nil,
			fmt.Sprintf("unschedulable %t, annotations %v, pods %v", n.Spec.Unschedulable, n.Annotations, states), nil
	})
	t.Logf("timing: orphans reported to the node cordoned and drained, the replacement %s Pending: %s", pending.Name, drainedAt.Sub(orphansAt).Round(100*time.Millisecond))
	n, err := nodes.Get(ctx, lab.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Annotations[node.AnnotationCordonedBy] == "" {
		t.Errorf("the node is cordoned without %s: %v", node.AnnotationCordonedBy, n.Annotations)
	}
	evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", lab.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", describe(evs))
	// Still Pending while cordoned: the drain is done, nothing else
	// changes the node until the orphans go.
	waitFor(t, 3*time.Minute, "the drain done", func(ctx context.Context) (bool, string, error) {
		evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", lab.NodeName)
		if err != nil {
			return false, "", err
		}
		return count(evs, node.EventReasonDrainDone, "") >= 1, describe(evs), nil
	})
	p, err := c.Admin.CoreV1().Pods(shop).Get(ctx, pending.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !unschedulable(p) || p.Spec.NodeName != "" {
		t.Errorf("the replacement pod on a cordoned node: %s on %q, want Pending, unschedulable", podState(p), p.Spec.NodeName)
	}

	for _, uid := range orphans {
		if err := c.CgroupTree.RemovePod(uid); err != nil {
			t.Fatal(err)
		}
	}
	removedAt := time.Now()
	runAt := waitFor(t, 4*time.Minute, "the node uncordoned by leakguard and the replacement Running", func(ctx context.Context) (bool, string, error) {
		n, err := nodes.Get(ctx, lab.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		p, err := c.Admin.CoreV1().Pods(shop).Get(ctx, pending.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return !n.Spec.Unschedulable && p.Status.Phase == corev1.PodRunning,
			fmt.Sprintf("unschedulable %t, pod %s", n.Spec.Unschedulable, podState(p)), nil
	})
	t.Logf("timing: orphans removed to the node uncordoned and the replacement Running: %s", runAt.Sub(removedAt).Round(100*time.Millisecond))
	n, err = nodes.Get(ctx, lab.NodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Annotations[node.AnnotationCordonedBy]; ok {
		t.Errorf("the uncordoned node keeps %s: %v", node.AnnotationCordonedBy, n.Annotations)
	}
	evs, err = eventsOf(ctx, c, metav1.NamespaceDefault, "Node", lab.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", describe(evs))
}

// spareNode is a Node without a kubelet that the test keeps Ready, tainted
// so that no pod runs on it.
const (
	spareNode  = "lab-spare-1"
	spareTaint = "leakguard.io/lab-spare"
)

// startSpareNode registers spareNode, Ready, and renews its Lease and its
// Ready condition every 5 s, as a kubelet would, until the test ends
// (then it deletes the Node): the real node lifecycle controller takes
// off the not-ready taint and leaves it schedulable for cordon's count,
// while spareTaint keeps every pod off it. It returns once the node
// lifecycle controller has taken the not-ready taint off.
func startSpareNode(t *testing.T, c *lab.Chain) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nodes := c.Admin.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: spareNode, Labels: map[string]string{"kubernetes.io/hostname": spareNode}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: spareTaint, Effect: corev1.TaintEffectNoSchedule}}},
	}, metav1.CreateOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cancel()
		<-done
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := nodes.Delete(ctx, spareNode, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete node %s: %v", spareNode, err)
		}
		_ = c.Admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Delete(ctx, spareNode, metav1.DeleteOptions{})
	})
	holder, duration := spareNode, int32(40)
	leases := c.Admin.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	beat := func() error {
		now := metav1.NewMicroTime(time.Now())
		l, err := leases.Get(ctx, spareNode, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: spareNode, OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: spareNode, UID: node.UID}}},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &duration, RenewTime: &now},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		l.Spec.RenewTime = &now
		if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
			return err
		}
		n, err := nodes.Get(ctx, spareNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "the test's heartbeat",
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: node.CreationTimestamp,
		}}
		_, err = nodes.UpdateStatus(ctx, n, metav1.UpdateOptions{})
		return err
	}
	if err := beat(); err != nil {
		cancel()
		t.Fatalf("heartbeat of node %s: %v", spareNode, err)
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Second):
				// A missed beat is made up by the next; the node
				// lifecycle controller waits for several.
				_ = beat()
			}
		}
	}()
	waitFor(t, 2*time.Minute, "node "+spareNode+" schedulable for cordon's count", func(ctx context.Context) (bool, string, error) {
		n, err := nodes.Get(ctx, spareNode, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
				return false, fmt.Sprintf("taints %v", n.Spec.Taints), nil
			}
		}
		return true, "", nil
	})
}

// unschedulable says whether the scheduler found no node for p.
func unschedulable(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodPending || p.Spec.NodeName != "" {
		return false
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}
