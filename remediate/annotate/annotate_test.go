package annotate

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate/remediatetest"

	"github.com/leakguard/leakguard/remediate"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestAnnotate(t *testing.T) {
	nodeAlert := template.Alert{Status: "firing", Labels: template.KV{"alertname": "NodeCgroupLeak", "node": "n1"},
		Annotations: template.KV{"description": strings.Repeat("é", 300)}, StartsAt: remediatetest.Now.Add(-time.Hour)}
	tests := []struct {
		name    string
		kind    string
		alert   template.Alert
		check   remediate.Result
		before  map[string]string
		want    map[string]string
		patched string
	}{
		{
			name: "workload with check value", kind: remediate.TargetWorkload, alert: remediatetest.LeakAlert(),
			check: remediate.Result{Confirmed: true, HasValue: true, Value: 1, Summary: "8.0 MiB/h > 1.0 MiB/h"},
			want: map[string]string{
				AnnotationFinding: "ContainerMemoryLeak", AnnotationSubject: "pod shop/web-7d9-abcde, container app",
				AnnotationValue: "8.0 MiB/h > 1.0 MiB/h", AnnotationSince: "2026-11-23T10:00:00Z",
				AnnotationRunbookURL: "https://example.com/runbooks/ContainerMemoryLeak.md",
			},
			patched: "deployments",
		},
		{
			name: "node, description truncated, stale runbook removed, other annotations kept", kind: remediate.TargetNode, alert: nodeAlert,
			before: map[string]string{AnnotationRunbookURL: "old", "team": "infra"},
			want: map[string]string{
				AnnotationFinding: "NodeCgroupLeak", AnnotationValue: strings.Repeat("é", 126) + "…",
				AnnotationSince: "2026-11-23T11:00:00Z", "team": "infra",
			},
			patched: "nodes",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			objs := remediatetest.Fixtures()
			for _, o := range objs {
				if remediatetest.KindOf(o) == remediate.KindNode && o.(metav1.Object).GetName() == "n1" {
					o.(metav1.Object).SetAnnotations(tc.before)
				}
			}
			cs := remediatetest.NewCluster(t, objs...)
			tg, err := remediate.ResolveTarget(context.Background(), cs, tc.kind, tc.alert)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := (Annotate{}).Plan(tg, remediate.Finding{Alert: tc.alert, Check: tc.check}, remediatetest.Now).Apply(context.Background(), remediate.Env{Client: cs, Now: remediatetest.Now}); err != nil {
				t.Fatalf("Plan().Apply() error: %v", err)
			}
			var got runtime.Object
			if tc.kind == remediate.TargetNode {
				got, _ = cs.CoreV1().Nodes().Get(context.Background(), "n1", metav1.GetOptions{})
			} else {
				got, _ = cs.AppsV1().Deployments("shop").Get(context.Background(), "web", metav1.GetOptions{})
			}
			if diff := cmp.Diff(tc.want, got.(metav1.Object).GetAnnotations()); diff != "" {
				t.Errorf("annotations mismatch (-want +got):\n%s", diff)
			}
			if ps := remediatetest.Patches(cs, tc.patched); len(ps) != 1 || string(ps[0].PatchType) != "application/merge-patch+json" {
				t.Errorf("patches on %s = %v, want one merge patch", tc.patched, ps)
			}
		})
	}
	if _, err := New([]byte(`{"prefix": "x"}`)); err == nil {
		t.Errorf("NewAnnotate(unknown arg) = nil error")
	}
}
