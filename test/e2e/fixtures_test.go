package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// world is what one test creates as the admin: a namespace with a
// Deployment, its ReplicaSet and one pod of it, on a Node of its own.
// Nothing reconciles them (there is no controller manager); the owner
// references are what the engine follows.
type world struct {
	Namespace  string
	Node       string
	Deployment string
	ReplicaSet string
	Pod        string
}

var worldSeq atomic.Int64

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// newWorld creates a world named after the test.
func newWorld(t *testing.T) world {
	t.Helper()
	l := needLab(t)
	ctx := testContext(t)
	base := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = strings.Trim(base[:40], "-")
	}
	base = fmt.Sprintf("%s-%d", base, worldSeq.Add(1))
	w := world{Namespace: base, Node: "node-" + base, Deployment: "web", ReplicaSet: "web-7d9", Pod: "web-7d9-abcde"}
	c := l.Admin

	must(t, "create namespace", func() error {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.Namespace}}, metav1.CreateOptions{})
		return err
	})
	must(t, "create the default service account", func() error { return l.EnsureDefaultServiceAccount(ctx, w.Namespace) })
	must(t, "create node", func() error {
		_, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: w.Node, Labels: map[string]string{"kubernetes.io/hostname": w.Node},
		}}, metav1.CreateOptions{})
		return err
	})

	labels := map[string]string{"app": "web"}
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.invalid/shop/web:1",
		}}},
	}
	var dep *appsv1.Deployment
	must(t, "create deployment", func() (err error) {
		dep, err = c.AppsV1().Deployments(w.Namespace).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: w.Deployment},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: template,
			},
		}, metav1.CreateOptions{})
		return err
	})
	rsLabels := map[string]string{"app": "web", "pod-template-hash": "7d9"}
	rsTemplate := *template.DeepCopy()
	rsTemplate.Labels = rsLabels
	var rs *appsv1.ReplicaSet
	must(t, "create replicaset", func() (err error) {
		rs, err = c.AppsV1().ReplicaSets(w.Namespace).Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{
				Name: w.ReplicaSet, Labels: rsLabels,
				OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", dep.Name, dep.UID)},
			},
			Spec: appsv1.ReplicaSetSpec{
				Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
				Template: rsTemplate,
			},
		}, metav1.CreateOptions{})
		return err
	})
	must(t, "create pod", func() error {
		spec := *rsTemplate.Spec.DeepCopy()
		spec.NodeName = w.Node
		_, err := c.CoreV1().Pods(w.Namespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: w.Pod, Labels: rsLabels,
				OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", rs.Name, rs.UID)},
			},
			Spec: spec,
		}, metav1.CreateOptions{})
		return err
	})
	return w
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: &yes, BlockOwnerDeletion: &yes}
}

func must(t *testing.T, what string, f func() error) {
	t.Helper()
	if err := f(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// objectVersions reads the resourceVersion and annotations of every
// object in w, as the admin.
func (w world) objectVersions(ctx context.Context, t *testing.T, c kubernetes.Interface) map[string]versioned {
	t.Helper()
	out := map[string]versioned{}
	add := func(key string, obj metav1.Object, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("read %s: %v", key, err)
		}
		out[key] = versioned{obj.GetResourceVersion(), obj.GetAnnotations()}
	}
	get := metav1.GetOptions{}
	ns, err := c.CoreV1().Namespaces().Get(ctx, w.Namespace, get)
	add("Namespace "+w.Namespace, ns, err)
	node, err := c.CoreV1().Nodes().Get(ctx, w.Node, get)
	add("Node "+w.Node, node, err)
	dep, err := c.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, get)
	add("Deployment "+w.Deployment, dep, err)
	rs, err := c.AppsV1().ReplicaSets(w.Namespace).Get(ctx, w.ReplicaSet, get)
	add("ReplicaSet "+w.ReplicaSet, rs, err)
	pod, err := c.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, get)
	add("Pod "+w.Pod, pod, err)
	return out
}

type versioned struct {
	ResourceVersion string
	Annotations     map[string]string
}

// events lists the Events in namespace about the object named name, as
// the admin.
func events(ctx context.Context, t *testing.T, c kubernetes.Interface, namespace, name string) []corev1.Event {
	t.Helper()
	list, err := c.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		t.Fatalf("list events in %s: %v", namespace, err)
	}
	return list.Items
}

// reasons counts events by reason.
func reasons(evs []corev1.Event) map[string]int {
	out := map[string]int{}
	for _, e := range evs {
		out[e.Reason]++
	}
	return out
}
