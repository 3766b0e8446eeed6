package remediate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/alertmanager/template"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
)

// Target is the object an alert is about, as the engine resolved it.
type Target struct {
	// Object is what remediators act on; cooldown annotations and Events
	// go on it.
	Object ObjectRef `json:"object"`
	// ResourceVersion is Object's resourceVersion when it was read.
	ResourceVersion string `json:"-"`
	// Annotations are Object's annotations when it was read.
	Annotations map[string]string `json:"-"`
	// Pod is the alert's pod when the target was resolved from one.
	Pod *ObjectRef `json:"pod,omitempty"`
	// Node is the alert's node, if any.
	Node string `json:"node,omitempty"`
	// Namespace is the namespace the scope guards judge, empty for a
	// cluster-scoped target.
	Namespace string `json:"namespace,omitempty"`
	// examined holds every object read on the way (the pod, its owners,
	// the target), whose opt-out annotation counts.
	examined []examined
	// obj is Object as read (a *appsv1.Deployment, say), for the plans
	// that judge its status.
	obj metav1.Object
}

// Resolved returns Object as it was read (a *appsv1.Deployment, say),
// for the plans that judge its status; nil when the target was not read.
func (t *Target) Resolved() metav1.Object { return t.obj }

// OwnerReader reads the owners of pods, typed or through the metadata
// client, remembering what it read; for the opt-out of a pod that a
// remediator acts on beyond the alert's target (a drain's pods).
type OwnerReader struct{ rs resolver }

// NewOwnerReader returns an OwnerReader through c and md; a nil md makes
// an owner of a kind without a typed client fail closed (an error).
func NewOwnerReader(c kubernetes.Interface, md metadata.Interface) *OwnerReader {
	return &OwnerReader{rs: resolver{c: c, md: md, memo: newReads()}}
}

// OptedOutOwner climbs pod's owners and returns the first of the objects
// it examined (the pod, its owners) that opts out (OptedOut), and
// whether there is one. An owner that cannot be read is an error.
func (o *OwnerReader) OptedOutOwner(ctx context.Context, pod metav1.Object) (ObjectRef, bool, error) {
	t := &Target{}
	if err := t.climbOwners(ctx, o.rs, pod); err != nil {
		return ObjectRef{}, false, err
	}
	for _, ex := range t.examined {
		if OptedOut(ex.annotations) {
			return ex.ref, true, nil
		}
	}
	return ObjectRef{}, false, nil
}

// ExaminedAnnotations returns the annotations, as read, of the object
// kind namespace/name that the resolution examined on its way (the pod,
// its owners, the target); nil when it examined no such object.
func (t *Target) ExaminedAnnotations(kind, namespace, name string) map[string]string {
	var ann map[string]string
	for _, ex := range t.examined {
		if ex.ref.Kind == kind && ex.ref.Namespace == namespace && ex.ref.Name == name {
			ann = ex.annotations
		}
	}
	return ann
}

type examined struct {
	ref         ObjectRef
	annotations map[string]string
}

// errInvalidLabels means the alert's labels cannot name a Kubernetes
// object: longer than Kubernetes allows, or with characters it forbids.
// No retry can fix it, and the API server is not asked.
var errInvalidLabels = errors.New("labels cannot name a Kubernetes object")

// checkName reports errInvalidLabels unless v is a valid value of the
// label that names an object: a namespace is a DNS-1123 label, pod and
// node names DNS-1123 subdomains.
func checkName(label, v string) error {
	var problems []string
	if label == "namespace" {
		problems = validation.IsDNS1123Label(v)
	} else {
		problems = validation.IsDNS1123Subdomain(v)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: label %s %q: %s", errInvalidLabels, label, Clip(v), problems[0])
	}
	return nil
}

// errTargetNotFound means the object an alert names does not exist (any
// more) or the alert lacks the labels that name it.
var errTargetNotFound = errors.New("target not found")

// ResolveTarget finds the object of kind (a policy target kind) that alert
// is about, without a metadata client (owners of kinds the engine does not
// know then fail closed). See resolver.resolve.
func ResolveTarget(ctx context.Context, c kubernetes.Interface, kind string, alert template.Alert) (*Target, error) {
	return resolver{c: c}.resolve(ctx, kind, alert)
}

// resolver reads what a target resolution needs: typed objects through
// the clientset, owners of other kinds (Argo Rollouts, operators' custom
// resources) through the metadata client.
type resolver struct {
	c  kubernetes.Interface
	md metadata.Interface
	// memo, when not nil, is what the delivery has read already.
	memo *reads
}

// get reads one typed object, through the delivery's memo if any.
func (rs resolver) get(ctx context.Context, kind, ns, name string) (metav1.Object, error) {
	return rs.memo.get(ctx, rs.c, kind, ns, name)
}

// resolve finds the object of kind (a policy target kind) that alert is
// about. Objects that do not exist yield an error wrapping
// errTargetNotFound, labels that cannot name one errInvalidLabels; API
// failures are classified by classifyKube.
func (rs resolver) resolve(ctx context.Context, kind string, alert template.Alert) (*Target, error) {
	c := rs.c
	switch kind {
	case TargetPod, TargetWorkload:
		ns, name := alert.Labels["namespace"], alert.Labels["pod"]
		if ns == "" || name == "" {
			return nil, fmt.Errorf("alert has no namespace and pod labels: %w", errTargetNotFound)
		}
		if err := errors.Join(rs.memo.checkNamespace(ns), checkName("pod", name)); err != nil {
			return nil, err
		}
		obj, err := rs.get(ctx, KindPod, ns, name)
		if err != nil {
			return nil, NotFound(err)
		}
		pod := RefOf(KindPod, obj)
		// Room for the pod, a ReplicaSet and a Deployment without growing.
		t := &Target{Pod: &pod, Node: alert.Labels["node"], Namespace: ns, examined: make([]examined, 0, 3)}
		t.set(KindPod, obj)
		// The owners are read for a pod target too: an opt-out on the
		// Deployment (where people put it, as its pods' own annotations
		// come from the template) must hold its pods as well.
		if err := t.climbOwners(ctx, rs, obj); err != nil {
			return nil, err
		}
		if kind == TargetPod {
			t.Object, t.ResourceVersion, t.Annotations, t.obj = pod, obj.GetResourceVersion(), obj.GetAnnotations(), obj
		}
		return t, nil
	case TargetNode:
		return resolveNode(ctx, c, alert)
	case TargetAPIServer:
		node := alert.Labels["node"]
		if node == "" {
			return nil, fmt.Errorf("alert has no node label: %w", errTargetNotFound)
		}
		name := alert.Labels["pod"]
		if name == "" {
			name = "kube-apiserver-" + node
		}
		if err := errors.Join(checkName("node", node), checkName("pod", name)); err != nil {
			return nil, err
		}
		obj, err := GetObject(ctx, c, KindPod, SystemNamespace, name)
		switch {
		case err == nil:
			pod := RefOf(KindPod, obj)
			t := &Target{Pod: &pod, Node: node, Namespace: SystemNamespace}
			t.set(KindPod, obj)
			return t, nil
		case errors.Is(NotFound(err), errTargetNotFound):
			// No static pod (a managed control plane, or the apiserver runs
			// outside Kubernetes): the node is the next best thing.
			return resolveNode(ctx, c, alert)
		default:
			return nil, err
		}
	default:
		return nil, fmt.Errorf("target kind %q has no object: %w", kind, errTargetNotFound)
	}
}

func resolveNode(ctx context.Context, c kubernetes.Interface, alert template.Alert) (*Target, error) {
	node := alert.Labels["node"]
	if node == "" {
		return nil, fmt.Errorf("alert has no node label: %w", errTargetNotFound)
	}
	if err := checkName("node", node); err != nil {
		return nil, err
	}
	obj, err := GetObject(ctx, c, KindNode, "", node)
	if err != nil {
		return nil, NotFound(err)
	}
	t := &Target{Node: node}
	t.set(KindNode, obj)
	return t, nil
}

// set makes obj the target and records it as examined.
func (t *Target) set(kind string, obj metav1.Object) {
	t.obj = obj
	t.Object = RefOf(kind, obj)
	t.ResourceVersion = obj.GetResourceVersion()
	t.Annotations = obj.GetAnnotations()
	t.examined = append(t.examined, examined{t.Object, obj.GetAnnotations()})
}

// reread makes obj, the target read again, the target's state, and its
// annotations the ones the opt-out guard judges.
func (t *Target) reread(obj metav1.Object) {
	t.obj = obj
	t.ResourceVersion = obj.GetResourceVersion()
	t.Annotations = obj.GetAnnotations()
	for i := range t.examined {
		if t.examined[i].ref.Kind == t.Object.Kind && t.examined[i].ref.Name == t.Object.Name && t.examined[i].ref.Namespace == t.Object.Namespace {
			t.examined[i].annotations = obj.GetAnnotations()
		}
	}
}

// climbOwners follows controller references from the pod: ReplicaSet →
// Deployment, StatefulSet, DaemonSet, Job. The last object of those kinds
// is the workload; a ReplicaSet without a Deployment is the workload. A
// Job's CronJob, and an owner of a kind the engine does not know (read
// through the metadata client), are read for their opt-out only: the
// workload stays what it was. An owner reference whose UID does not match
// the object of that name is not followed (the owner was replaced; this
// object is not its), nor is a dangling one; a controller owner that
// cannot be read fails closed with the error.
func (t *Target) climbOwners(ctx context.Context, rs resolver, obj metav1.Object) error {
	workloadFixed := false
	for range 4 { // pod → ReplicaSet → Deployment → a foreign owner at most
		owner := metav1.GetControllerOfNoCopy(obj) // read only
		if owner == nil {
			return nil
		}
		var next metav1.Object
		var err error
		known := TypedOwner(owner)
		if known {
			next, err = rs.get(ctx, owner.Kind, obj.GetNamespace(), owner.Name)
		} else {
			next, err = rs.getMetadata(ctx, owner, obj.GetNamespace())
		}
		if err != nil && errors.Is(NotFound(err), errTargetNotFound) {
			// A dangling owner reference: garbage collection is behind.
			return nil
		}
		if err != nil {
			return fmt.Errorf("controller owner %s %s/%s: %w", owner.Kind, obj.GetNamespace(), owner.Name, err)
		}
		if owner.UID != "" && next.GetUID() != owner.UID {
			// Another object of that name: the owner was deleted and
			// replaced. Not followed, and its opt-out is not ours.
			return nil
		}
		ref := ObjectRef{Kind: owner.Kind, APIVersion: owner.APIVersion, Namespace: next.GetNamespace(), Name: next.GetName(), UID: next.GetUID()}
		if !known || owner.Kind == KindCronJob || workloadFixed {
			t.examined = append(t.examined, examined{ref, next.GetAnnotations()})
			workloadFixed = true
		} else {
			t.set(owner.Kind, next)
		}
		obj = next
	}
	return nil
}

// TypedOwner reports whether owner is of a kind the resolver reads
// through the clientset and follows as a workload (or a Job's CronJob);
// an owner of any other kind or apiVersion is read for its opt-out only.
func TypedOwner(owner *metav1.OwnerReference) bool {
	switch owner.Kind {
	case KindReplicaSet, KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindCronJob:
		return owner.APIVersion == "" || owner.APIVersion == apiVersions[owner.Kind]
	}
	return false
}

// getMetadata reads the metadata of an owner of a kind the engine has no
// typed client for. Without a metadata client it fails closed.
func (rs resolver) getMetadata(ctx context.Context, owner *metav1.OwnerReference, ns string) (metav1.Object, error) {
	if rs.md == nil {
		return nil, errors.New("the owner's kind is not one the engine reads, and it has no metadata client")
	}
	gv, err := schema.ParseGroupVersion(owner.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("owner apiVersion %q: %w", owner.APIVersion, err)
	}
	list, err := rs.c.Discovery().ServerResourcesForGroupVersion(owner.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", owner.APIVersion, ClassifyKube(err))
	}
	resource := ""
	for _, r := range list.APIResources {
		if r.Kind == owner.Kind && !strings.Contains(r.Name, "/") {
			resource = r.Name
			break
		}
	}
	if resource == "" {
		// The API no longer serves the kind (its CRD went): the owner
		// cannot exist any more.
		return nil, apierrors.NewNotFound(gv.WithResource(strings.ToLower(owner.Kind)).GroupResource(), owner.Name)
	}
	m, err := rs.md.Resource(gv.WithResource(resource)).Namespace(ns).Get(ctx, owner.Name, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, err
		}
		return nil, ClassifyKube(err)
	}
	return m, nil
}

// NotFound turns an API not-found error into errTargetNotFound, keeping
// the message.
func NotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %w", errTargetNotFound, err)
	}
	return err
}
