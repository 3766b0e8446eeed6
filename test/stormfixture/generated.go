package stormfixture

import (
	"context"
	"regexp"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	typedcoordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/leakguard/leakguard/remediate"
)

// Generated returns a Kubernetes client for load runs that stores
// nothing and records nothing: every pod, ReplicaSet, Deployment and
// Namespace that an alert of this package names is made up from its name
// when it is read (Cooldown's Deployments with a cooldown taken at now),
// Events are accepted and dropped (created, and counted up), and the
// budget Lease does not exist.
// The fake clientset records every action and keeps every object in the
// receiver's process; an API server does neither, so a load run over it
// would measure the fake's memory rather than the receiver's. Anything
// else goes to an empty fake clientset.
func Generated(now time.Time) kubernetes.Interface {
	return &generated{Clientset: fake.NewClientset(), now: now}
}

type generated struct {
	*fake.Clientset
	now time.Time
}

// podName and replicaSetName are the names this package makes.
var (
	podName        = regexp.MustCompile(`^((?:app-\d{4}|leak-\d{5})-6f7d8c9b5)-\d{5}$`)
	replicaSetName = regexp.MustCompile(`^((?:app-\d{4}|leak-\d{5}))-6f7d8c9b5$`)
	deploymentName = regexp.MustCompile(`^(?:app-\d{4}|leak-\d{5})$`)
	namespaces     = map[string]bool{"load": true, "cool": true, "kube-system": true}
)

func (g *generated) meta(ns, name string, ownerKind, owner string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), ResourceVersion: "1"}
	if owner != "" {
		ctrl := true
		m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: ownerKind, Name: owner, UID: types.UID("uid-" + ns + "-" + owner), Controller: &ctrl}}
	}
	return m
}

func notFound(resource, name string) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: resource}, name)
}

func (g *generated) CoreV1() typedcorev1.CoreV1Interface {
	return coreV1{g.Clientset.CoreV1(), g}
}

func (g *generated) AppsV1() typedappsv1.AppsV1Interface {
	return appsV1{g.Clientset.AppsV1(), g}
}

func (g *generated) CoordinationV1() typedcoordinationv1.CoordinationV1Interface {
	return coordinationV1{g.Clientset.CoordinationV1()}
}

type coreV1 struct {
	typedcorev1.CoreV1Interface
	g *generated
}

func (c coreV1) Pods(ns string) typedcorev1.PodInterface {
	return pods{c.CoreV1Interface.Pods(ns), c.g, ns}
}

func (c coreV1) Namespaces() typedcorev1.NamespaceInterface {
	return nsClient{c.CoreV1Interface.Namespaces()}
}

func (c coreV1) Events(ns string) typedcorev1.EventInterface {
	return events{c.CoreV1Interface.Events(ns)}
}

type pods struct {
	typedcorev1.PodInterface
	g  *generated
	ns string
}

func (p pods) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.Pod, error) {
	m := podName.FindStringSubmatch(name)
	if m == nil || !namespaces[p.ns] {
		return nil, notFound("pods", name)
	}
	return &corev1.Pod{ObjectMeta: p.g.meta(p.ns, name, remediate.KindReplicaSet, m[1])}, nil
}

type nsClient struct{ typedcorev1.NamespaceInterface }

func (n nsClient) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.Namespace, error) {
	if !namespaces[name] {
		return nil, notFound("namespaces", name)
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1"}}, nil
}

type events struct{ typedcorev1.EventInterface }

func (events) Create(_ context.Context, ev *corev1.Event, _ metav1.CreateOptions) (*corev1.Event, error) {
	out := *ev
	out.ResourceVersion = "1"
	return &out, nil
}

// Patch accepts the count of an aggregated Event as the API server would
// (the engine patches an Event it created), and keeps nothing.
func (e events) Patch(_ context.Context, name string, _ types.PatchType, _ []byte, _ metav1.PatchOptions, _ ...string) (*corev1.Event, error) {
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1"}}, nil
}

type appsV1 struct {
	typedappsv1.AppsV1Interface
	g *generated
}

func (a appsV1) ReplicaSets(ns string) typedappsv1.ReplicaSetInterface {
	return replicaSets{a.AppsV1Interface.ReplicaSets(ns), a.g, ns}
}

func (a appsV1) Deployments(ns string) typedappsv1.DeploymentInterface {
	return deployments{a.AppsV1Interface.Deployments(ns), a.g, ns}
}

type replicaSets struct {
	typedappsv1.ReplicaSetInterface
	g  *generated
	ns string
}

func (r replicaSets) Get(_ context.Context, name string, _ metav1.GetOptions) (*appsv1.ReplicaSet, error) {
	m := replicaSetName.FindStringSubmatch(name)
	if m == nil || !namespaces[r.ns] {
		return nil, notFound("replicasets", name)
	}
	return &appsv1.ReplicaSet{ObjectMeta: r.g.meta(r.ns, name, remediate.KindDeployment, m[1])}, nil
}

type deployments struct {
	typedappsv1.DeploymentInterface
	g  *generated
	ns string
}

func (d deployments) Get(_ context.Context, name string, _ metav1.GetOptions) (*appsv1.Deployment, error) {
	if !deploymentName.MatchString(name) || !namespaces[d.ns] {
		return nil, notFound("deployments", name)
	}
	dep := &appsv1.Deployment{ObjectMeta: d.g.meta(d.ns, name, "", "")}
	if d.ns == Cooldown.namespace() {
		dep.Annotations = map[string]string{remediate.CooldownAnnotation("annotate"): d.g.now.UTC().Format(time.RFC3339)}
	}
	return dep, nil
}

type coordinationV1 struct {
	typedcoordinationv1.CoordinationV1Interface
}

func (c coordinationV1) Leases(ns string) typedcoordinationv1.LeaseInterface {
	return leases{c.CoordinationV1Interface.Leases(ns)}
}

type leases struct {
	typedcoordinationv1.LeaseInterface
}

func (leases) Get(_ context.Context, name string, _ metav1.GetOptions) (*coordinationv1.Lease, error) {
	return nil, notFound("leases", name)
}
