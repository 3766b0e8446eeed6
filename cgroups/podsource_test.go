package cgroups

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func pod(name, node, uid string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid), Annotations: annotations},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
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

func TestInformerPodSource(t *testing.T) {
	const hash = "6b3f0c2a9d8e7f6a5b4c3d2e1f0a9b8c"
	client := fake.NewClientset(
		pod("web", "node-a", uid(1), nil),
		pod("kube-apiserver-node-a", "node-a", uid(2), map[string]string{mirrorAnnotation: hash, "other": "dropped"}),
		// The fake clientset does not apply field selectors: the source must
		// not take another node's pod for its own.
		pod("elsewhere", "node-b", uid(3), nil),
	)
	src, err := NewInformerPodSource(client, "node-a", 0)
	if err != nil {
		t.Fatalf("NewInformerPodSource() error: %v", err)
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
		{uid(4), false},
	} {
		if got := src.Bound(tc.uid); got != tc.want {
			t.Errorf("Bound(%q) = %v, want %v", tc.uid, got, tc.want)
		}
	}

	// The cache holds slim pods only.
	objs, err := src.informer.GetIndexer().ByIndex(uidIndex, hash)
	if err != nil || len(objs) != 1 {
		t.Fatalf("ByIndex(%q) = %v, %v; want one pod", hash, objs, err)
	}
	if p := objs[0].(*corev1.Pod); len(p.Spec.Containers) != 0 || len(p.Annotations) != 1 {
		t.Errorf("cached pod keeps containers %v and annotations %v, want none and only %s", p.Spec.Containers, p.Annotations, mirrorAnnotation)
	}

	// Watch events move the set.
	pods := client.CoreV1().Pods("default")
	if _, err := pods.Create(ctx, pod("new", "node-a", uid(4), nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a created pod to be bound", func() bool { return src.Bound(uid(4)) })
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
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

func TestNewInformerPodSourceEmptyNode(t *testing.T) {
	if _, err := NewInformerPodSource(fake.NewClientset(), "", 0); err == nil {
		t.Errorf("NewInformerPodSource(node \"\") error = nil, want an error")
	}
}
