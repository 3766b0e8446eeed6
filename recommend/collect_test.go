package recommend

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"
)

func TestWorkloadOf(t *testing.T) {
	pod := podKey{"shop", "api-7d9f8c5b4-x2x7q"}
	tests := []struct {
		name, kind, owner string
		want              Workload
	}{
		{"ReplicaSet of a Deployment", "ReplicaSet", "api-7d9f8c5b4", Workload{"shop", "Deployment", "api"}},
		{"ReplicaSet without a pod-template hash", "ReplicaSet", "api-v1", Workload{"shop", "ReplicaSet", "api-v1"}},
		{"ReplicaSet whose suffix has a vowel", "ReplicaSet", "api-canary", Workload{"shop", "ReplicaSet", "api-canary"}},
		{"StatefulSet", "StatefulSet", "db", Workload{"shop", "StatefulSet", "db"}},
		{"Job", "Job", "backup-29012345", Workload{"shop", "Job", "backup-29012345"}},
		{"no owner (kube-state-metrics' <none>)", "<none>", "<none>", Workload{"shop", "Pod", pod.pod}},
		{"no owner labels", "", "", Workload{"shop", "Pod", pod.pod}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, workloadOf(pod, tt.kind, tt.owner)); diff != "" {
				t.Errorf("workloadOf(%q, %q) mismatch (-want +got):\n%s", tt.kind, tt.owner, diff)
			}
		})
	}
}

func TestSanitizedSelector(t *testing.T) {
	// kube_pod_labels{label_app_kubernetes_io_name="api", label_tier="web"}
	pod := labels.Set{"app_kubernetes_io_name": "api", "tier": "web"}
	tests := []struct {
		selector string
		want     bool
	}{
		{"app.kubernetes.io/name=api", true},
		{"app.kubernetes.io/name=web", false},
		{"app.kubernetes.io/name in (api, worker),tier!=db", true},
		{"tier", true},
		{"!tier", false},
		{"release", false},
	}
	for _, tt := range tests {
		sel, err := labels.Parse(tt.selector)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sanitizedSelector(sel)
		if err != nil {
			t.Fatalf("sanitizedSelector(%q) error = %v", tt.selector, err)
		}
		if got := s.Matches(pod); got != tt.want {
			t.Errorf("sanitizedSelector(%q) = %q, matches %v = %v, want %v", tt.selector, s, pod, got, tt.want)
		}
	}
	if s, err := sanitizedSelector(labels.Everything()); s != nil || err != nil {
		t.Errorf("sanitizedSelector(everything) = %v, %v; want nil, nil", s, err)
	}
}
