package cgroups

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
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

// podsResource is the pods resource the metadata informer lists and watches.
var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

// MetadataPodSource is a PodSource backed by a metadata-only pod informer
// (k8s.io/client-go/metadata): it lists and watches the pods whose
// spec.nodeName is the node, as InformerPodSource does, but asks the API
// server for their metadata alone (PartialObjectMetadata), which carries
// everything the scanner needs (the UID and the mirror annotation). The
// agent uses it because the metadata client needs none of the typed API
// groups: the program that links it is smaller, and a smaller program is
// fewer resident pages on every node.
type MetadataPodSource struct {
	informer cache.SharedIndexInformer
}

var _ PodSource = (*MetadataPodSource)(nil)

// NewMetadataPodSource builds the metadata informer for the pods bound to
// node. It does not start it: call Run. resync 0 disables periodic
// resyncs, which this source does not need.
func NewMetadataPodSource(client metadata.Interface, node string, resync time.Duration) (*MetadataPodSource, error) {
	if node == "" {
		return nil, fmt.Errorf("pod source: empty node name")
	}
	selector := fields.OneTermEqualSelector("spec.nodeName", node).String()
	// Built here rather than with metadatainformer, whose package links
	// client-go's typed informers (every API group) for its return type.
	pods := client.Resource(podsResource).Namespace(metav1.NamespaceAll)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = selector
			return pods.Watch(ctx, o)
		},
	}
	// The client says whether it supports watch-list streaming (the
	// fake does not), as metadatainformer lets it.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, client), &metav1.PartialObjectMetadata{}, resync,
		cache.Indexers{uidIndex: indexMetadataUIDs})
	if err := inf.SetTransform(slimMetadata); err != nil {
		return nil, fmt.Errorf("pod source: %w", err)
	}
	return &MetadataPodSource{informer: inf}, nil
}

// Run runs the informer until ctx is done.
func (s *MetadataPodSource) Run(ctx context.Context) {
	s.informer.RunWithContext(ctx)
}

// WaitForSync blocks until the informer has synced or ctx is done, and
// reports which.
func (s *MetadataPodSource) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced)
}

// Synced implements PodSource.
func (s *MetadataPodSource) Synced() bool { return s.informer.HasSynced() }

// Bound implements PodSource. Metadata carries no spec, so the node is the
// field selector's: the API server applies it to metadata lists and
// watches as to full ones. Holding another node's pod here could only
// make an orphan look bound (fail closed), never the reverse.
func (s *MetadataPodSource) Bound(uid string) bool {
	objs, err := s.informer.GetIndexer().ByIndex(uidIndex, uid)
	if err != nil {
		// Fail closed: an index error must not turn a live pod's cgroup
		// into an orphan.
		return true
	}
	return len(objs) > 0
}

// indexMetadataUIDs indexes a pod's metadata by its UID and, for a mirror
// pod, by the static pod's config hash.
func indexMetadataUIDs(obj any) ([]string, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return nil, fmt.Errorf("index uid: %T is not pod metadata", obj)
	}
	keys := []string{NormalizeUID(string(m.UID))}
	if h := m.Annotations[mirrorAnnotation]; h != "" {
		keys = append(keys, NormalizeUID(h))
	}
	return keys, nil
}

// slimMetadata keeps what the source reads: namespace, name, UID,
// resource version and the mirror annotation (labels, owners and managed
// fields go).
func slimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil // a tombstone or another object: leave it to the informer
	}
	slim := &metav1.PartialObjectMetadata{
		TypeMeta: m.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       m.Namespace,
			Name:            m.Name,
			UID:             m.UID,
			ResourceVersion: m.ResourceVersion,
		},
	}
	if h := m.Annotations[mirrorAnnotation]; h != "" {
		slim.Annotations = map[string]string{mirrorAnnotation: h}
	}
	return slim, nil
}
