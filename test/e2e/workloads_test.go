package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// space is a namespace and a Node of one test, in which it creates
// workloads as the admin.
type space struct {
	Namespace string
	Node      string
}

// newSpace creates a namespace (with the default service account, which
// pods need) and a Node named after the test.
func newSpace(t *testing.T) space {
	t.Helper()
	l := needLab(t)
	ctx := testContext(t)
	base := uniqueName(t)
	s := space{Namespace: base, Node: "node-" + base}
	must(t, "create namespace", func() error {
		_, err := l.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}, metav1.CreateOptions{})
		return err
	})
	must(t, "create the default service account", func() error { return l.EnsureDefaultServiceAccount(ctx, s.Namespace) })
	must(t, "create node", func() error {
		_, err := l.Admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.Node}}, metav1.CreateOptions{})
		return err
	})
	return s
}

// uniqueName is a DNS label from the test's name, unique in the lab.
func uniqueName(t *testing.T) string {
	base := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	return fmt.Sprintf("%s-%d", base, worldSeq.Add(1))
}

// workload is one object restart acts on and one pod of it (the pod the
// alert names). Kind is the workload's kind, or Pod for a pod without a
// controller (then Name is the pod's).
type workload struct {
	space
	Kind, Name, Pod string
	// ReplicaSet is the Deployment's ReplicaSet.
	ReplicaSet string
	replicas   int32
}

// Target is the workload as the engine names it.
func (w workload) Target() string { return w.Kind + " " + w.Namespace + "/" + w.Name }

// leak is the ContainerMemoryLeak alert about the workload's pod.
func (w workload) leak() alertOf { return alertOf{w.Namespace, w.Pod, w.Node} }

// alertOf names the pod an alert comes from.
type alertOf struct{ Namespace, Pod, Node string }

func podTemplate(app string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.invalid/shop/" + app + ":1",
		}}},
	}
}

// workload creates, as the admin, a workload of kind (Deployment with
// its ReplicaSet, StatefulSet, DaemonSet, Job, or Pod for a pod without
// a controller) named name with replicas, and one running pod of it. Its
// status says what a controller manager would after a finished rollout:
// every replica updated, ready and available.
func (s space) workload(t *testing.T, kind, name string, replicas int32) workload {
	t.Helper()
	ctx := testContext(t)
	c := needLab(t).Admin
	w := workload{space: s, Kind: kind, Name: name, Pod: name + "-0", replicas: replicas}
	tmpl := podTemplate(name)
	sel := &metav1.LabelSelector{MatchLabels: tmpl.Labels}
	var owner metav1.OwnerReference
	switch kind {
	case "Deployment":
		dep, err := c.AppsV1().Deployments(s.Namespace).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       appsv1.DeploymentSpec{Replicas: &replicas, Selector: sel, Template: tmpl},
		}, metav1.CreateOptions{})
		must(t, "create deployment", func() error { return err })
		w.ReplicaSet = name + "-5f6"
		rsTmpl := *tmpl.DeepCopy()
		rsTmpl.Labels = map[string]string{"app": name, "pod-template-hash": "5f6"}
		rs, err := c.AppsV1().ReplicaSets(s.Namespace).Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: w.ReplicaSet, Labels: rsTmpl.Labels,
				OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", dep.Name, dep.UID)}},
			Spec: appsv1.ReplicaSetSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: rsTmpl.Labels}, Template: rsTmpl},
		}, metav1.CreateOptions{})
		must(t, "create replicaset", func() error { return err })
		owner = controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)
		w.Pod = w.ReplicaSet + "-abcde"
	case "StatefulSet":
		sts, err := c.AppsV1().StatefulSets(s.Namespace).Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       appsv1.StatefulSetSpec{Replicas: &replicas, Selector: sel, Template: tmpl, ServiceName: name},
		}, metav1.CreateOptions{})
		must(t, "create statefulset", func() error { return err })
		owner = controllerRef("apps/v1", "StatefulSet", sts.Name, sts.UID)
	case "DaemonSet":
		ds, err := c.AppsV1().DaemonSets(s.Namespace).Create(ctx, &appsv1.DaemonSet{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       appsv1.DaemonSetSpec{Selector: sel, Template: tmpl},
		}, metav1.CreateOptions{})
		must(t, "create daemonset", func() error { return err })
		owner = controllerRef("apps/v1", "DaemonSet", ds.Name, ds.UID)
		w.Pod = name + "-x7k2p"
	case "Job":
		jt := *tmpl.DeepCopy()
		jt.Labels = nil // the API server labels a Job's template itself
		jt.Spec.RestartPolicy = corev1.RestartPolicyNever
		job, err := c.BatchV1().Jobs(s.Namespace).Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       batchv1.JobSpec{Template: jt},
		}, metav1.CreateOptions{})
		must(t, "create job", func() error { return err })
		owner = controllerRef("batch/v1", "Job", job.Name, job.UID)
		w.Pod = name + "-q9w8e"
	case "Pod":
		w.Pod = name
	default:
		t.Fatalf("workload: kind %s", kind)
	}
	spec := *tmpl.Spec.DeepCopy()
	spec.NodeName = s.Node
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: w.Pod, Labels: tmpl.Labels}, Spec: spec}
	if kind != "Pod" {
		pod.OwnerReferences = []metav1.OwnerReference{owner}
	}
	created, err := c.CoreV1().Pods(s.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	must(t, "create pod", func() error { return err })
	// Running and ready, as a kubelet would report it: the Eviction API
	// consults PodDisruptionBudgets only for running pods, and lets an
	// unready pod go while the budget's healthy pods suffice.
	created.Status.Phase = corev1.PodRunning
	created.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	must(t, "set the pod running", func() error {
		_, err := c.CoreV1().Pods(s.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		return err
	})
	if kind != "Pod" && kind != "Job" {
		w.setStatus(t, replicas, replicas)
	}
	return w
}

// setStatus writes, as the admin through the status subresource, the
// status a controller manager would after observing the current
// generation: updated of the replicas on the new template, every replica
// ready and available.
func (w workload) setStatus(t *testing.T, ready, updated int32) {
	t.Helper()
	ctx := testContext(t)
	c := needLab(t).Admin
	n := w.replicas
	var err error
	switch w.Kind {
	case "Deployment":
		var d *appsv1.Deployment
		if d, err = c.AppsV1().Deployments(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: updated, ReadyReplicas: ready, AvailableReplicas: ready}
			_, err = c.AppsV1().Deployments(w.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		}
	case "StatefulSet":
		var s *appsv1.StatefulSet
		if s, err = c.AppsV1().StatefulSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			rev := fmt.Sprintf("%s-%d", w.Name, s.Generation)
			s.Status = appsv1.StatefulSetStatus{ObservedGeneration: s.Generation, Replicas: n, UpdatedReplicas: updated, ReadyReplicas: ready,
				AvailableReplicas: ready, CurrentReplicas: updated, CurrentRevision: rev, UpdateRevision: rev}
			_, err = c.AppsV1().StatefulSets(w.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
		}
	case "DaemonSet":
		var d *appsv1.DaemonSet
		if d, err = c.AppsV1().DaemonSets(w.Namespace).Get(ctx, w.Name, metav1.GetOptions{}); err == nil {
			d.Status = appsv1.DaemonSetStatus{ObservedGeneration: d.Generation, DesiredNumberScheduled: n, CurrentNumberScheduled: n,
				UpdatedNumberScheduled: updated, NumberReady: ready, NumberAvailable: ready}
			_, err = c.AppsV1().DaemonSets(w.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		}
	default:
		t.Fatalf("setStatus: kind %s has no rollout status", w.Kind)
	}
	must(t, "set "+w.Target()+"'s status", func() error { return err })
}

// object reads the workload as the admin.
func (w workload) object(ctx context.Context, t *testing.T) metav1.Object {
	t.Helper()
	return getAs(ctx, t, needLab(t).Admin, w.Kind, w.Namespace, w.Name)
}

// getAs reads one object of kind.
func getAs(ctx context.Context, t *testing.T, c kubernetes.Interface, kind, ns, name string) metav1.Object {
	t.Helper()
	get := metav1.GetOptions{}
	var (
		obj metav1.Object
		err error
	)
	switch kind {
	case "Deployment":
		obj, err = c.AppsV1().Deployments(ns).Get(ctx, name, get)
	case "ReplicaSet":
		obj, err = c.AppsV1().ReplicaSets(ns).Get(ctx, name, get)
	case "StatefulSet":
		obj, err = c.AppsV1().StatefulSets(ns).Get(ctx, name, get)
	case "DaemonSet":
		obj, err = c.AppsV1().DaemonSets(ns).Get(ctx, name, get)
	case "Job":
		obj, err = c.BatchV1().Jobs(ns).Get(ctx, name, get)
	case "Pod":
		obj, err = c.CoreV1().Pods(ns).Get(ctx, name, get)
	default:
		t.Fatalf("getAs: kind %s", kind)
	}
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", kind, ns, name, err)
	}
	return obj
}

// versions returns the resourceVersion of the workload, its ReplicaSet
// (if any) and its pod.
func (w workload) versions(ctx context.Context, t *testing.T) map[string]string {
	t.Helper()
	c := needLab(t).Admin
	out := map[string]string{}
	add := func(kind, name string) {
		out[kind+" "+w.Namespace+"/"+name] = getAs(ctx, t, c, kind, w.Namespace, name).GetResourceVersion()
	}
	if w.Kind != "Pod" {
		add(w.Kind, w.Name)
	}
	if w.ReplicaSet != "" {
		add("ReplicaSet", w.ReplicaSet)
	}
	add("Pod", w.Pod)
	return out
}

// assertVersions fails unless every object has the resourceVersion of
// before.
func assertVersions(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed: resourceVersion %s -> %s", what, k, v, after[k])
		}
	}
}

// budgetNamespace creates a namespace of the test's own for the engines'
// budget Lease and pause switch, with deploy/leakguard's Role bound to
// leakguard's service account in it, as deploy/leakguard would install
// it there. Tests that spend budgets, pause or storm work in theirs, so
// that they cannot spend each other's.
func budgetNamespace(t *testing.T) string {
	t.Helper()
	l := needLab(t)
	ctx := testContext(t)
	ns := "lg-" + uniqueName(t)
	must(t, "create the budget namespace", func() error {
		_, err := l.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		return err
	})
	objs, err := lab.ReadManifests(filepath.Join(repoRoot, "deploy", "leakguard", "role.yaml"), filepath.Join(repoRoot, "deploy", "leakguard", "rolebinding.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []runtime.Object
	for _, obj := range objs {
		switch o := obj.(type) {
		case *rbacv1.Role:
			o.Namespace = ns
		case *rbacv1.RoleBinding:
			o.Namespace = ns
		default:
			t.Fatalf("budgetNamespace: unexpected %T in the Role's manifests", obj)
		}
		out = append(out, obj)
	}
	must(t, "create the Role and its binding", func() error { return lab.Create(ctx, l.Admin, out...) })
	return ns
}
