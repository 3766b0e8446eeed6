package remediate

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	Kind       string    `json:"kind"`
	APIVersion string    `json:"apiVersion"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid,omitempty"`
}

// String renders "Kind namespace/name" or "Kind name".
func (r ObjectRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Kinds the engine reads and annotates.
const (
	KindPod         = "Pod"
	KindReplicaSet  = "ReplicaSet"
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
	KindNode        = "Node"
	KindNamespace   = "Namespace"
)

var apiVersions = map[string]string{
	KindPod: "v1", KindNode: "v1", KindNamespace: "v1",
	KindReplicaSet: "apps/v1", KindDeployment: "apps/v1", KindStatefulSet: "apps/v1", KindDaemonSet: "apps/v1",
	KindJob: "batch/v1", KindCronJob: "batch/v1",
}

// GetObject reads one object of a supported kind.
func GetObject(ctx context.Context, c kubernetes.Interface, kind, ns, name string) (metav1.Object, error) {
	opts := metav1.GetOptions{}
	var (
		obj metav1.Object
		err error
	)
	switch kind {
	case KindPod:
		obj, err = c.CoreV1().Pods(ns).Get(ctx, name, opts)
	case KindNode:
		obj, err = c.CoreV1().Nodes().Get(ctx, name, opts)
	case KindNamespace:
		obj, err = c.CoreV1().Namespaces().Get(ctx, name, opts)
	case KindReplicaSet:
		obj, err = c.AppsV1().ReplicaSets(ns).Get(ctx, name, opts)
	case KindDeployment:
		obj, err = c.AppsV1().Deployments(ns).Get(ctx, name, opts)
	case KindStatefulSet:
		obj, err = c.AppsV1().StatefulSets(ns).Get(ctx, name, opts)
	case KindDaemonSet:
		obj, err = c.AppsV1().DaemonSets(ns).Get(ctx, name, opts)
	case KindJob:
		obj, err = c.BatchV1().Jobs(ns).Get(ctx, name, opts)
	case KindCronJob:
		obj, err = c.BatchV1().CronJobs(ns).Get(ctx, name, opts)
	default:
		return nil, fmt.Errorf("get %s %s/%s: unsupported kind", kind, ns, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ObjectRef{Kind: kind, Namespace: ns, Name: name}, ClassifyKube(err))
	}
	return obj, nil
}

// PatchObject applies a patch to the object ref names and returns the
// object's new resourceVersion.
func PatchObject(ctx context.Context, c kubernetes.Interface, ref ObjectRef, pt types.PatchType, data []byte) (string, error) {
	opts := metav1.PatchOptions{FieldManager: FieldManager}
	var (
		obj metav1.Object
		err error
	)
	ns, name := ref.Namespace, ref.Name
	switch ref.Kind {
	case KindPod:
		obj, err = c.CoreV1().Pods(ns).Patch(ctx, name, pt, data, opts)
	case KindNode:
		obj, err = c.CoreV1().Nodes().Patch(ctx, name, pt, data, opts)
	case KindReplicaSet:
		obj, err = c.AppsV1().ReplicaSets(ns).Patch(ctx, name, pt, data, opts)
	case KindDeployment:
		obj, err = c.AppsV1().Deployments(ns).Patch(ctx, name, pt, data, opts)
	case KindStatefulSet:
		obj, err = c.AppsV1().StatefulSets(ns).Patch(ctx, name, pt, data, opts)
	case KindDaemonSet:
		obj, err = c.AppsV1().DaemonSets(ns).Patch(ctx, name, pt, data, opts)
	case KindJob:
		obj, err = c.BatchV1().Jobs(ns).Patch(ctx, name, pt, data, opts)
	default:
		return "", fmt.Errorf("patch %s: unsupported kind", ref)
	}
	if err != nil {
		return "", fmt.Errorf("patch %s: %w", ref, ClassifyKube(err))
	}
	return obj.GetResourceVersion(), nil
}

// FieldManager is the name leakguard's writes carry.
const FieldManager = "leakguard"

// RefOf names obj, of kind, as an ObjectRef.
func RefOf(kind string, obj metav1.Object) ObjectRef {
	return ObjectRef{Kind: kind, APIVersion: apiVersions[kind], Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()}
}
