package lab

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPodNetwork: the real API server's pods/proxy reaches the handler
// attached to a pod's IP through the pod network, and a pod IP without
// one answers the network's 502; a loopback pod IP is refused by the API
// server itself.
func TestPodNetwork(t *testing.T) {
	l := New(t, Options{BinDir: binDir(t), PodNetwork: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ns = "podnet"
	if _, err := l.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.EnsureDefaultServiceAccount(ctx, ns); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "silent"} {
		if _, err := l.Admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ip, err := l.AttachPod(ctx, ns, "app", 6060, PprofHandler())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AttachPod(ctx, ns, "silent", 6060, http.NotFoundHandler()); err != nil {
		t.Fatal(err)
	}
	proxy := func(pod string, port, path string) ([]byte, error) {
		return l.Admin.CoreV1().RESTClient().Get().Namespace(ns).Resource("pods").
			Name(pod + ":" + port).SubResource("proxy").Suffix(path).DoRaw(ctx)
	}
	heap, err := proxy("app", "6060", "/debug/pprof/heap")
	if err != nil {
		t.Fatalf("heap of pod app (%s) through pods/proxy: %v", ip, err)
	}
	if !bytes.HasPrefix(heap, []byte{0x1f, 0x8b}) || len(heap) < 100 {
		t.Errorf("heap of pod app: %d bytes, not a gzipped profile", len(heap))
	}
	if _, err := proxy("app", "7070", "/debug/pprof/heap"); err == nil || !strings.Contains(err.Error(), "nothing serves") {
		t.Errorf("a port nothing serves: %v, want the pod network's 502", err)
	}
	if _, err := proxy("silent", "6060", "/debug/pprof/heap"); err == nil {
		t.Error("a pod serving 404: no error")
	}
}
