package remediate

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

func TestOptOutGuard(t *testing.T) {
	tests := []struct {
		name          string
		annotate      string // kind/name to opt out
		pod           string // the alert's pod; empty means web-7d9-abcde
		value         string
		nsErr         error
		nsGone        bool
		ok            bool
		why           string
		MarkTransient bool
	}{
		{name: "nobody opted out", ok: true},
		{name: "pod", annotate: "Pod/web-7d9-abcde", value: "true", why: `Pod shop/web-7d9-abcde has leakguard.io/ignore: "true"`},
		{name: "replicaset", annotate: "ReplicaSet/web-7d9", value: "true", why: `ReplicaSet shop/web-7d9 has leakguard.io/ignore: "true"`},
		{name: "deployment", annotate: "Deployment/web", value: "true", why: `Deployment shop/web has leakguard.io/ignore: "true"`},
		{name: "cronjob of a job", pod: "report-2911-xyz", annotate: "CronJob/report", value: "true", why: `CronJob shop/report has leakguard.io/ignore: "true"`},
		{name: "namespace", annotate: "Namespace/shop", value: "true", why: `Namespace shop has leakguard.io/ignore: "true"`},
		{name: "yes is not true", annotate: "Deployment/web", value: "yes", ok: true},
		{name: "false", annotate: "Deployment/web", value: "false", ok: true},
		{name: "True in another case counts", annotate: "Deployment/web", value: "True", why: `Deployment shop/web has leakguard.io/ignore: "true"`},
		{name: "namespace TRUE with spaces counts", annotate: "Namespace/shop", value: " TRUE ", why: `Namespace shop has leakguard.io/ignore: "true"`},
		{name: "namespace unreadable fails closed", nsErr: errors.New("connection refused"), MarkTransient: true},
		{name: "namespace gone", nsGone: true, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var objs []runtime.Object
			for _, o := range fixtures() {
				m := o.(metav1.Object)
				if tc.annotate == kindOf(o)+"/"+m.GetName() {
					m.SetAnnotations(map[string]string{AnnotationIgnore: tc.value})
				}
				if _, isNS := o.(*corev1.Namespace); isNS && tc.nsGone {
					continue
				}
				objs = append(objs, o)
			}
			cs := newCluster(t, objs...)
			tg := deploymentTarget(t, cs)
			if tc.pod != "" {
				var err error
				tg, err = ResolveTarget(context.Background(), cs, TargetWorkload,
					alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": tc.pod}))
				if err != nil {
					t.Fatal(err)
				}
			}
			if tc.nsErr != nil {
				cs.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.nsErr })
			}
			ok, why, err := optOutGuard(context.Background(), cs, nil, tg)
			if ok != tc.ok || why != tc.why || IsTransient(err) != tc.MarkTransient {
				t.Errorf("optOutGuard() = %v, %q, %v; want %v, %q, transient %v", ok, why, err, tc.ok, tc.why, tc.MarkTransient)
			}
		})
	}
}
