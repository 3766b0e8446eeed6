package remediate

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

func TestResolveTarget(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		labels   map[string]string
		want     string
		wantPod  string
		wantNS   string
		examined []string
		NotFound bool
	}{
		{name: "pod to deployment", kind: TargetWorkload, labels: map[string]string{"namespace": "shop", "pod": "web-7d9-abcde"},
			want: "Deployment shop/web", wantPod: "Pod shop/web-7d9-abcde", wantNS: "shop",
			examined: []string{"Pod shop/web-7d9-abcde", "ReplicaSet shop/web-7d9", "Deployment shop/web"}},
		{name: "pod to statefulset", kind: TargetWorkload, labels: map[string]string{"namespace": "shop", "pod": "db-0"},
			want: "StatefulSet shop/db", wantPod: "Pod shop/db-0", wantNS: "shop", examined: []string{"Pod shop/db-0", "StatefulSet shop/db"}},
		{name: "bare pod is its own workload", kind: TargetWorkload, labels: map[string]string{"namespace": "shop", "pod": "lonely"},
			want: "Pod shop/lonely", wantPod: "Pod shop/lonely", wantNS: "shop", examined: []string{"Pod shop/lonely"}},
		{name: "pod target stays the pod", kind: TargetPod, labels: map[string]string{"namespace": "shop", "pod": "web-7d9-abcde"},
			want: "Pod shop/web-7d9-abcde", wantPod: "Pod shop/web-7d9-abcde", wantNS: "shop",
			examined: []string{"Pod shop/web-7d9-abcde", "ReplicaSet shop/web-7d9", "Deployment shop/web"}},
		{name: "job's cronjob is examined, the job stays the workload", kind: TargetWorkload, labels: map[string]string{"namespace": "shop", "pod": "report-2911-xyz"},
			want: "Job shop/report-2911", wantPod: "Pod shop/report-2911-xyz", wantNS: "shop",
			examined: []string{"Pod shop/report-2911-xyz", "Job shop/report-2911", "CronJob shop/report"}},
		{name: "node", kind: TargetNode, labels: map[string]string{"node": "n1"}, want: "Node n1", examined: []string{"Node n1"}},
		{name: "apiserver static pod", kind: TargetAPIServer, labels: map[string]string{"node": "cp1"},
			want: "Pod kube-system/kube-apiserver-cp1", wantPod: "Pod kube-system/kube-apiserver-cp1", wantNS: "kube-system",
			examined: []string{"Pod kube-system/kube-apiserver-cp1"}},
		{name: "apiserver without static pod is the node", kind: TargetAPIServer, labels: map[string]string{"node": "n1"},
			want: "Node n1", examined: []string{"Node n1"}},
		{name: "pod gone", kind: TargetWorkload, labels: map[string]string{"namespace": "shop", "pod": "gone"}, NotFound: true},
		{name: "no pod label", kind: TargetWorkload, labels: map[string]string{"namespace": "shop"}, NotFound: true},
		{name: "node gone", kind: TargetNode, labels: map[string]string{"node": "n9"}, NotFound: true},
		{name: "no node label", kind: TargetNode, labels: nil, NotFound: true},
		{name: "target none", kind: TargetNone, labels: nil, NotFound: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCluster(t, fixtures()...)
			got, err := ResolveTarget(context.Background(), cs, tc.kind, alert("firing", tc.labels))
			if tc.NotFound {
				if !errors.Is(err, errTargetNotFound) {
					t.Fatalf("resolveTarget() = %v, %v; want errTargetNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveTarget() error: %v", err)
			}
			if got.Object.String() != tc.want {
				t.Errorf("resolveTarget().Object = %s, want %s", got.Object, tc.want)
			}
			gotPod := ""
			if got.Pod != nil {
				gotPod = got.Pod.String()
			}
			if gotPod != tc.wantPod || got.Namespace != tc.wantNS {
				t.Errorf("resolveTarget() pod, namespace = %q, %q; want %q, %q", gotPod, got.Namespace, tc.wantPod, tc.wantNS)
			}
			var ex []string
			for _, e := range got.examined {
				ex = append(ex, e.ref.String())
			}
			if diff := cmp.Diff(tc.examined, ex); diff != "" {
				t.Errorf("examined mismatch (-want +got):\n%s", diff)
			}
			if got.ResourceVersion != "1" {
				t.Errorf("ResourceVersion = %q, want 1", got.ResourceVersion)
			}
		})
	}
}

// TestResolveTargetAPIFailure checks that an unreachable API server is a
// transient error, not a missing target.
func TestResolveTargetAPIFailure(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		MarkTransient bool
	}{
		{"unavailable", apierrors.NewServiceUnavailable("etcd down"), true},
		{"timeout", apierrors.NewTimeoutError("slow", 1), true},
		{"connection refused", errors.New("dial tcp 127.0.0.1:6443: connect: connection refused"), true},
		{"forbidden is permanent", apierrors.NewForbidden(schema.GroupResource{Resource: "replicasets"}, "web-7d9", errors.New("rbac")), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := newCluster(t, fixtures()...)
			cs.PrependReactor("get", "replicasets", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tc.err
			})
			_, err := ResolveTarget(context.Background(), cs, TargetWorkload, leakAlert())
			if err == nil || errors.Is(err, errTargetNotFound) {
				t.Fatalf("resolveTarget() error = %v, want an API error", err)
			}
			if IsTransient(err) != tc.MarkTransient {
				t.Errorf("IsTransient(%v) = %v, want %v", err, IsTransient(err), tc.MarkTransient)
			}
		})
	}
}
