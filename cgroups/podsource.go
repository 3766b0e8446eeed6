package cgroups

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// PodSource tells the scanner which pods are bound to the node.
type PodSource interface {
	// Synced reports whether the source has its first complete view of the
	// node's pods. Until it has, no cgroup is judged an orphan.
	Synced() bool
	// Bound reports whether uid, in the form NormalizeUID returns, is the
	// UID of a pod bound to the node or the config hash of a static pod
	// whose mirror pod is bound to it.
	Bound(uid string) bool
}

// mirrorAnnotation holds, on a static pod's mirror pod, the config hash that
// the kubelet uses as the static pod's UID, and so as its cgroup's name.
const mirrorAnnotation = "kubernetes.io/config.mirror"

// uidIndex is the informer index from a normalised UID (and mirror hash) to
// the pods that carry it.
const uidIndex = "uid"

// InformerPodSource is a PodSource backed by a pod informer that lists and
// watches only the pods whose spec.nodeName is the node: one watch per
// agent, no polling, whatever the size of the cluster.
type InformerPodSource struct {
	node     string
	informer cache.SharedIndexInformer
}

var _ PodSource = (*InformerPodSource)(nil)

// NewInformerPodSource builds the informer for the pods bound to node. It
// does not start it: call Run. resync 0 disables periodic resyncs, which
// this source does not need.
func NewInformerPodSource(client kubernetes.Interface, node string, resync time.Duration) (*InformerPodSource, error) {
	if node == "" {
		return nil, fmt.Errorf("pod source: empty node name")
	}
	selector := fields.OneTermEqualSelector("spec.nodeName", node).String()
	inf := coreinformers.NewFilteredPodInformer(client, metav1.NamespaceAll, resync,
		cache.Indexers{uidIndex: indexUIDs},
		func(o *metav1.ListOptions) { o.FieldSelector = selector })
	// Keep only what the index needs: a node's pods are few, but their
	// specs and statuses are most of an agent's memory otherwise.
	if err := inf.SetTransform(slimPod); err != nil {
		return nil, fmt.Errorf("pod source: %w", err)
	}
	return &InformerPodSource{node: node, informer: inf}, nil
}

// Run runs the informer until ctx is done.
func (s *InformerPodSource) Run(ctx context.Context) {
	s.informer.RunWithContext(ctx)
}

// WaitForSync blocks until the informer has synced or ctx is done, and
// reports which.
func (s *InformerPodSource) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced)
}

// Synced implements PodSource.
func (s *InformerPodSource) Synced() bool { return s.informer.HasSynced() }

// Bound implements PodSource. The node name is checked again because the
// field selector is the API server's promise, not this process's.
func (s *InformerPodSource) Bound(uid string) bool {
	objs, err := s.informer.GetIndexer().ByIndex(uidIndex, uid)
	if err != nil {
		// Fail closed: an index error must not turn a live pod's cgroup
		// into an orphan.
		return true
	}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok && p.Spec.NodeName == s.node {
			return true
		}
	}
	return false
}

// indexUIDs indexes a pod by its UID and, for a mirror pod, by the static
// pod's config hash.
func indexUIDs(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("index uid: %T is not a pod", obj)
	}
	keys := []string{NormalizeUID(string(p.UID))}
	if h := p.Annotations[mirrorAnnotation]; h != "" {
		keys = append(keys, NormalizeUID(h))
	}
	return keys, nil
}

// slimPod keeps the fields of a pod that the source reads: namespace, name,
// UID, resource version, the mirror annotation and the node name.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone or another object: leave it to the informer
	}
	slim := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       p.Namespace,
			Name:            p.Name,
			UID:             p.UID,
			ResourceVersion: p.ResourceVersion,
		},
		Spec: corev1.PodSpec{NodeName: p.Spec.NodeName},
	}
	if h := p.Annotations[mirrorAnnotation]; h != "" {
		slim.Annotations = map[string]string{mirrorAnnotation: h}
	}
	return slim, nil
}
