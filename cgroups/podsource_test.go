package cgroups

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
)

func podMeta(name, uid string, annotations map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), Annotations: annotations, Labels: map[string]string{"app": "x"}},
	}
}

// waitFor polls cond every 10 ms for at most 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after 5s waiting for %s", what)
}

func TestMetadataPodSource(t *testing.T) {
	const hash = "6b3f0c2a9d8e7f6a5b4c3d2e1f0a9b8c"
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := metadatafake.NewSimpleMetadataClient(scheme,
		podMeta("web", uid(1), nil),
		podMeta("kube-apiserver-node-a", uid(2), map[string]string{mirrorAnnotation: hash, "other": "dropped"}),
	)
	src, err := NewMetadataPodSource(client, "node-a", 0)
	if err != nil {
		t.Fatalf("NewMetadataPodSource() error: %v", err)
	}
	if src.Synced() {
		t.Errorf("Synced() before Run = true, want false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go src.Run(ctx)
	if !src.WaitForSync(ctx) {
		t.Fatalf("WaitForSync() = false, want true")
	}
	for _, tc := range []struct {
		uid  string
		want bool
	}{
		{uid(1), true},
		{uid(2), true},
		{hash, true},
		{uid(3), false},
	} {
		if got := src.Bound(tc.uid); got != tc.want {
			t.Errorf("Bound(%q) = %v, want %v", tc.uid, got, tc.want)
		}
	}

	// The cache holds slim metadata only.
	objs, err := src.informer.GetIndexer().ByIndex(uidIndex, hash)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ByIndex(%q) = %v, %v; want one pod", hash, objs, err)
	}
	if m := objs[0].(*metav1.PartialObjectMetadata); len(m.Labels) != 0 || len(m.Annotations) != 1 {
		t.Errorf("cached metadata keeps labels %v and annotations %v, want none and only %s", m.Labels, m.Annotations, mirrorAnnotation)
	}

	// Watch events move the set.
	pods := client.Resource(podsResource).Namespace("default").(metadatafake.MetadataClient)
	if _, err := pods.CreateFake(podMeta("new", uid(4), nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a created pod to be bound", func() bool { return src.Bound(uid(4)) })
	if err := client.Resource(podsResource).Namespace("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a deleted pod to be unbound", func() bool { return !src.Bound(uid(1)) })

	// The informer asked for this node's pods only.
	var lists, watches int
	for _, a := range client.Actions() {
		var sel string
		switch a := a.(type) {
		case k8stesting.ListAction:
			lists++
			sel = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchAction:
			watches++
			sel = a.GetWatchRestrictions().Fields.String()
		default:
			continue
		}
		if sel != "spec.nodeName=node-a" {
			t.Errorf("%s %s with field selector %q, want %q", a.GetVerb(), a.GetResource().Resource, sel, "spec.nodeName=node-a")
		}
	}
	if lists == 0 || watches == 0 {
		t.Errorf("informer made %d lists and %d watches, want at least one of each", lists, watches)
	}
}

func TestNewMetadataPodSourceEmptyNode(t *testing.T) {
	if _, err := NewMetadataPodSource(metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), "", 0); err == nil {
		t.Errorf("NewMetadataPodSource(node \"\") error = nil, want an error")
	}
}
