// Package stormfixture generates Alertmanager webhook payloads of many distinct
// alerts and the fake cluster and Prometheus that answer for them, for the
// receiver's load generator (tools/loadgen) and its storm test. Everything
// is a pure function of its arguments, so that a load generator and the
// server it drives (another process) agree on the pods without talking.
package stormfixture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
)

// Kind is what the default policy does with an alert of the payload.
type Kind string

// Kinds of alerts. The first three are held before any action: NoPolicy
// at once (no policy entry), OutOfScope on its namespace label (kube-system,
// excluded) before anything is read, Cooldown after reading the target
// (the workload's cooldown annotation is recent) and before the check. Leak is a leak alert on a
// workload of its own that every guard lets through (dry-run: would act).
const (
	NoPolicy   Kind = "no-policy"
	OutOfScope Kind = "out-of-scope"
	Cooldown   Kind = "cooldown"
	Leak       Kind = "leak"
)

// Kinds lists every kind.
var Kinds = []Kind{NoPolicy, OutOfScope, Cooldown, Leak}

// PodsPerWorkload is how many alerts' pods share one Deployment.
const PodsPerWorkload = 10

func (k Kind) namespace() string {
	switch k {
	case OutOfScope:
		return "kube-system"
	case Cooldown:
		return "cool"
	default:
		return "load"
	}
}

func workload(i int) string { return fmt.Sprintf("app-%04d", i/PodsPerWorkload) }

func replicaSet(i int) string { return workload(i) + "-6f7d8c9b5" }

func pod(i int) string { return fmt.Sprintf("%s-%05d", replicaSet(i), i) }

// Alert returns alert i of kind k, firing, with a fingerprint of its own.
func Alert(k Kind, i int) map[string]any {
	name := "ContainerMemoryLeak"
	if k == NoPolicy {
		name = "SomeoneElsesAlert"
	}
	ns, p := k.namespace(), pod(i)
	if k == Leak {
		// One workload per leak alert: distinct targets, so that the
		// budgets, not the cooldown, are what holds them.
		p = fmt.Sprintf("leak-%05d-6f7d8c9b5-%05d", i, i)
	}
	return map[string]any{
		"status": "firing",
		"labels": map[string]string{
			"alertname": name, "namespace": ns, "pod": p, "container": "worker", "node": fmt.Sprintf("node-%02d", i%50),
			"prometheus": "monitoring/k8s", "severity": "warning", "cluster": "load",
		},
		"annotations": map[string]string{
			"summary":     "A container's working set has grown steadily for hours.",
			"description": fmt.Sprintf("Container worker in pod %s/%s: working set 1.2 GiB, growing by 38 MiB per hour for 3 hours.", ns, p),
			"runbook_url": "https://github.com/leakguard/leakguard/blob/main/docs/runbooks/ContainerMemoryLeak.md",
		},
		"startsAt":     "2026-11-23T10:56:03Z",
		"endsAt":       "0001-01-01T00:00:00Z",
		"generatorURL": "http://prometheus-k8s.monitoring.svc:9090/graph?g0.expr=leakguard%3Acontainer_memory_working_set_bytes%3Aderiv1h+%3E+0&g0.tab=1",
		"fingerprint":  fmt.Sprintf("%s%08x", strings.ReplaceAll(string(k), "-", "")[:4], i),
	}
}

// Payload returns an Alertmanager 0.25 webhook payload (version 4) of the
// n alerts of kind k from first on.
func Payload(k Kind, first, n int) []byte {
	alerts := make([]map[string]any, 0, n)
	for i := first; i < first+n; i++ {
		alerts = append(alerts, Alert(k, i))
	}
	name := alerts[0]["labels"].(map[string]string)["alertname"]
	body, err := json.Marshal(map[string]any{
		"receiver": "leakguard", "status": "firing", "alerts": alerts,
		"groupLabels":       map[string]string{"alertname": name, "namespace": k.namespace()},
		"commonLabels":      map[string]string{"alertname": name, "namespace": k.namespace(), "container": "worker"},
		"commonAnnotations": map[string]string{"summary": "A container's working set has grown steadily for hours."},
		"externalURL":       "http://alertmanager.monitoring.svc:9093",
		"version":           "4",
		"groupKey":          fmt.Sprintf("{}:{alertname=%q, namespace=%q}", name, k.namespace()),
		"truncatedAlerts":   0,
	})
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return body
}

// Objects returns the cluster the first n alerts of kind k name: their
// namespace, and for each pod its ReplicaSet and Deployment (Cooldown's
// Deployments carry an annotate cooldown taken at now). NoPolicy needs
// none.
func Objects(k Kind, n int, now time.Time) []runtime.Object {
	if k == NoPolicy {
		return nil
	}
	ns := k.namespace()
	meta := func(name string, owner *metav1.OwnerReference) metav1.ObjectMeta {
		m := metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), ResourceVersion: "1"}
		if owner != nil {
			m.OwnerReferences = []metav1.OwnerReference{*owner}
		}
		return m
	}
	owner := func(kind, name string) *metav1.OwnerReference {
		ctrl := true
		api := "apps/v1"
		return &metav1.OwnerReference{APIVersion: api, Kind: kind, Name: name, UID: types.UID("uid-" + ns + "-" + name), Controller: &ctrl}
	}
	objs := []runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, UID: types.UID("uid-" + ns), ResourceVersion: "1"}}}
	for i := range n {
		dep, rs, p := workload(i), replicaSet(i), pod(i)
		if k == Leak {
			dep = fmt.Sprintf("leak-%05d", i)
			rs = dep + "-6f7d8c9b5"
			p = fmt.Sprintf("%s-%05d", rs, i)
		} else if i%PodsPerWorkload != 0 {
			objs = append(objs, &corev1.Pod{ObjectMeta: meta(p, owner(remediate.KindReplicaSet, rs))})
			continue
		}
		d := &appsv1.Deployment{ObjectMeta: meta(dep, nil)}
		if k == Cooldown {
			d.Annotations = map[string]string{remediate.CooldownAnnotation("annotate"): now.UTC().Format(time.RFC3339)}
		}
		objs = append(objs, d,
			&appsv1.ReplicaSet{ObjectMeta: meta(rs, owner(remediate.KindDeployment, dep))},
			&corev1.Pod{ObjectMeta: meta(p, owner(remediate.KindReplicaSet, rs))})
	}
	return objs
}

// Client returns a fake clientset holding objs that accepts every Event
// and keeps none (an API server stores the Events, not the receiver, so
// that a storm's Events do not count as the receiver's memory), and that
// refuses, as the API server does, a Lease update whose resourceVersion is
// not the stored one (Conflict); every Lease write bumps it. The plain
// fake ignores resourceVersions, so that concurrent budget takes would
// all succeed. Its reactors run under the fake's lock, one at a time.
func Client(objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	tracker := c.Tracker()
	c.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, a.(k8stesting.CreateAction).GetObject(), nil
	})
	c.PrependReactor("create", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.CreateAction).GetObject().DeepCopyObject().(*coordinationv1.Lease)
		l.ResourceVersion = "1"
		if err := tracker.Create(a.GetResource(), l, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, l, nil
	})
	c.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.UpdateAction).GetObject().DeepCopyObject().(*coordinationv1.Lease)
		cur, err := tracker.Get(a.GetResource(), a.GetNamespace(), l.Name)
		if err != nil {
			return true, nil, err
		}
		rv := cur.(*coordinationv1.Lease).ResourceVersion
		if l.ResourceVersion != rv {
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), l.Name, errors.New("the object has been modified"))
		}
		n, _ := strconv.Atoi(rv)
		l.ResourceVersion = strconv.Itoa(n + 1)
		if err := tracker.Update(a.GetResource(), l, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, l, nil
	})
	return c
}

// Querier answers every check of the default policy with a value that
// confirms it, at once.
type Querier struct{}

var _ remediate.Querier = Querier{}

// Query implements remediate.Querier.
func (Querier) Query(_ context.Context, q string, ts time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	v := 1.0
	switch {
	case strings.Contains(q, rules.RecWorkingSetDeriv):
		v = 1e7 // bytes per hour: well over the 1 MiB/h threshold
	case strings.Contains(q, rules.RecNodeOrphanCgroups):
		v = 50
	case strings.Contains(q, rules.RecAPIServerMemoryRatio):
		v = 0.9
	}
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil, nil, nil
}
