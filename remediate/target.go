package remediate

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/alertmanager/template"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
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
		return fmt.Errorf("%w: label %s %q: %s", errInvalidLabels, label, clip(v), problems[0])
	}
	return nil
}

// errTargetNotFound means the object an alert names does not exist (any
// more) or the alert lacks the labels that name it.
var errTargetNotFound = errors.New("target not found")

// resolveTarget finds the object of kind (a policy target kind) that alert
// is about. Objects that do not exist yield an error wrapping
// errTargetNotFound; API failures are classified by classifyKube.
func resolveTarget(ctx context.Context, c kubernetes.Interface, kind string, alert template.Alert) (*Target, error) {
	switch kind {
	case TargetPod, TargetWorkload:
		ns, name := alert.Labels["namespace"], alert.Labels["pod"]
		if ns == "" || name == "" {
			return nil, fmt.Errorf("alert has no namespace and pod labels: %w", errTargetNotFound)
		}
		if err := errors.Join(checkName("namespace", ns), checkName("pod", name)); err != nil {
			return nil, err
		}
		obj, err := getObject(ctx, c, KindPod, ns, name)
		if err != nil {
			return nil, notFound(err)
		}
		pod := refOf(KindPod, obj)
		t := &Target{Pod: &pod, Node: alert.Labels["node"], Namespace: ns}
		t.set(KindPod, obj)
		// The owners are read for a pod target too: an opt-out on the
		// Deployment (where people put it, as its pods' own annotations
		// come from the template) must hold its pods as well.
		if err := t.climbOwners(ctx, c, obj); err != nil {
			return nil, err
		}
		if kind == TargetPod {
			t.Object, t.ResourceVersion, t.Annotations = pod, obj.GetResourceVersion(), obj.GetAnnotations()
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
		obj, err := getObject(ctx, c, KindPod, systemNamespace, name)
		switch {
		case err == nil:
			pod := refOf(KindPod, obj)
			t := &Target{Pod: &pod, Node: node, Namespace: systemNamespace}
			t.set(KindPod, obj)
			return t, nil
		case errors.Is(notFound(err), errTargetNotFound):
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
	obj, err := getObject(ctx, c, KindNode, "", node)
	if err != nil {
		return nil, notFound(err)
	}
	t := &Target{Node: node}
	t.set(KindNode, obj)
	return t, nil
}

// set makes obj the target and records it as examined.
func (t *Target) set(kind string, obj metav1.Object) {
	t.Object = refOf(kind, obj)
	t.ResourceVersion = obj.GetResourceVersion()
	t.Annotations = obj.GetAnnotations()
	t.examined = append(t.examined, examined{t.Object, obj.GetAnnotations()})
}

// reread makes obj, the target read again, the target's state, and its
// annotations the ones the opt-out guard judges.
func (t *Target) reread(obj metav1.Object) {
	t.ResourceVersion = obj.GetResourceVersion()
	t.Annotations = obj.GetAnnotations()
	for i := range t.examined {
		if t.examined[i].ref.Kind == t.Object.Kind && t.examined[i].ref.Name == t.Object.Name && t.examined[i].ref.Namespace == t.Object.Namespace {
			t.examined[i].annotations = obj.GetAnnotations()
		}
	}
}

// climbOwners follows controller references from the pod: ReplicaSet →
// Deployment, StatefulSet, DaemonSet, Job. It stops at the last object it
// could read, so a pod owned by an unknown kind (a custom controller) stays
// its own target, and a ReplicaSet without a Deployment is the workload. A
// Job's CronJob is read for its opt-out only: the Job stays the workload.
func (t *Target) climbOwners(ctx context.Context, c kubernetes.Interface, obj metav1.Object) error {
	for range 3 { // pod → ReplicaSet → Deployment, pod → Job → CronJob at most
		owner := metav1.GetControllerOf(obj)
		if owner == nil {
			return nil
		}
		switch owner.Kind {
		case KindReplicaSet, KindDeployment, KindStatefulSet, KindDaemonSet, KindJob, KindCronJob:
		default:
			return nil
		}
		next, err := getObject(ctx, c, owner.Kind, obj.GetNamespace(), owner.Name)
		if errors.Is(notFound(err), errTargetNotFound) {
			// A dangling owner reference: garbage collection is behind.
			return nil
		}
		if err != nil {
			return err
		}
		if owner.Kind == KindCronJob {
			t.examined = append(t.examined, examined{refOf(KindCronJob, next), next.GetAnnotations()})
			return nil
		}
		t.set(owner.Kind, next)
		obj = next
	}
	return nil
}

// notFound turns an API not-found error into errTargetNotFound, keeping
// the message.
func notFound(err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %w", errTargetNotFound, err)
	}
	return err
}
