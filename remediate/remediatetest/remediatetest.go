// Package remediatetest holds the fakes and fixtures that the engine's
// tests and the plugins' tests share: a fake clientset that honours
// resourceVersion preconditions as the API server does, a small cluster,
// a Querier that answers from a map, and alerts. It imports nothing of
// leakguard, so that the engine's own (internal) tests can use it too.
package remediatetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// Kinds of the fixtures' objects, as the engine names them.
const (
	KindPod         = "Pod"
	KindReplicaSet  = "ReplicaSet"
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindJob         = "Job"
	KindCronJob     = "CronJob"
)

var apiVersions = map[string]string{
	KindPod: "v1", "Node": "v1", "Namespace": "v1",
	KindReplicaSet: "apps/v1", KindDeployment: "apps/v1", KindStatefulSet: "apps/v1", "DaemonSet": "apps/v1",
	KindJob: "batch/v1", KindCronJob: "batch/v1",
}

// Now is the clock of the engine's and the plugins' tests.
var Now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// OwnedBy is a controller reference to kind name, with UID "uid-"+name.
func OwnedBy(kind, name string) []metav1.OwnerReference {
	return OwnedByUID(kind, name, "uid-"+name)
}

// OwnedByUID is a controller reference to kind name with uid.
func OwnedByUID(kind, name, uid string) []metav1.OwnerReference {
	controller := true
	return []metav1.OwnerReference{{APIVersion: apiVersions[kind], Kind: kind, Name: name, UID: types.UID(uid), Controller: &controller}}
}

// Fixtures returns a cluster: namespace shop with Deployment web →
// ReplicaSet web-7d9 → Pod web-7d9-abcde on node n1; a bare pod
// shop/lonely; StatefulSet db with pod db-0; namespace kube-system with
// the static pod kube-apiserver-cp1 on node cp1; nodes n1 and cp1;
// CronJob report → Job report-2911 → Pod report-2911-xyz.
func Fixtures() []runtime.Object {
	meta := func(ns, name string, owners []metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", OwnerReferences: owners}
	}
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: meta("", "shop", nil)},
		&corev1.Namespace{ObjectMeta: meta("", "kube-system", nil)},
		&corev1.Node{ObjectMeta: meta("", "n1", nil)},
		&corev1.Node{ObjectMeta: meta("", "cp1", nil)},
		&appsv1.Deployment{ObjectMeta: meta("shop", "web", nil)},
		&appsv1.ReplicaSet{ObjectMeta: meta("shop", "web-7d9", OwnedBy(KindDeployment, "web"))},
		&corev1.Pod{ObjectMeta: meta("shop", "web-7d9-abcde", OwnedBy(KindReplicaSet, "web-7d9")), Spec: corev1.PodSpec{NodeName: "n1"}},
		&corev1.Pod{ObjectMeta: meta("shop", "lonely", nil)},
		&appsv1.StatefulSet{ObjectMeta: meta("shop", "db", nil)},
		&corev1.Pod{ObjectMeta: meta("shop", "db-0", OwnedBy(KindStatefulSet, "db"))},
		&corev1.Pod{ObjectMeta: meta("kube-system", "kube-apiserver-cp1", nil)},
		&batchv1.CronJob{ObjectMeta: meta("shop", "report", nil)},
		&batchv1.Job{ObjectMeta: meta("shop", "report-2911", OwnedBy(KindCronJob, "report"))},
		&corev1.Pod{ObjectMeta: meta("shop", "report-2911-xyz", OwnedBy(KindJob, "report-2911"))},
	}
}

// NewCluster returns a fake clientset holding objs that behaves like the
// API server on merge patches: a patch that carries
// metadata.resourceVersion applies only to that version (else Conflict),
// and every patch bumps the version.
func NewCluster(t testing.TB, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	return WithPreconditions(fake.NewClientset(objs...))
}

// WithPreconditions adds NewCluster's resourceVersion semantics to cs.
func WithPreconditions(cs *fake.Clientset) *fake.Clientset {
	tracker := cs.Tracker()
	cs.PrependReactor("patch", "*", func(action k8stesting.Action) (bool, runtime.Object, error) {
		pa := action.(k8stesting.PatchActionImpl)
		cur, err := tracker.Get(pa.GetResource(), pa.GetNamespace(), pa.GetName())
		if err != nil {
			return true, nil, err
		}
		m, err := metaOf(cur)
		if err != nil {
			return true, nil, err
		}
		var patch map[string]any
		if err := json.Unmarshal(pa.GetPatch(), &patch); err != nil {
			return true, nil, apierrors.NewBadRequest(err.Error())
		}
		md, _ := patch["metadata"].(map[string]any)
		if md == nil {
			md = map[string]any{}
			patch["metadata"] = md
		}
		if want, ok := md["resourceVersion"].(string); ok && want != m.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(pa.GetResource().GroupResource(), pa.GetName(),
				fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
		}
		n, _ := strconv.Atoi(m.GetResourceVersion())
		md["resourceVersion"] = strconv.Itoa(n + 1)
		data, _ := json.Marshal(patch)
		pa.Patch = data
		return k8stesting.ObjectReaction(tracker)(pa)
	})
	// Leases: an update carrying a resourceVersion other than the stored
	// one is a Conflict, as on the API server; every write bumps it.
	cs.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		ua := action.(k8stesting.UpdateActionImpl)
		obj := ua.GetObject().DeepCopyObject()
		m, err := metaOf(obj)
		if err != nil {
			return true, nil, err
		}
		cur, err := tracker.Get(ua.GetResource(), ua.GetNamespace(), m.GetName())
		if err != nil {
			return true, nil, err
		}
		cm, _ := metaOf(cur)
		if m.GetResourceVersion() != cm.GetResourceVersion() {
			return true, nil, apierrors.NewConflict(ua.GetResource().GroupResource(), m.GetName(), fmt.Errorf("the object has been modified"))
		}
		n, _ := strconv.Atoi(cm.GetResourceVersion())
		m.SetResourceVersion(strconv.Itoa(n + 1))
		if err := tracker.Update(ua.GetResource(), obj, ua.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	cs.PrependReactor("create", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		ca := action.(k8stesting.CreateActionImpl)
		obj := ca.GetObject().DeepCopyObject()
		m, _ := metaOf(obj)
		m.SetResourceVersion("1")
		if err := tracker.Create(ca.GetResource(), obj, ca.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	return cs
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// Patches returns the patch actions on resource, in order.
func Patches(cs *fake.Clientset, resource string) []k8stesting.PatchActionImpl {
	var out []k8stesting.PatchActionImpl
	for _, a := range cs.Actions() {
		if pa, ok := a.(k8stesting.PatchActionImpl); ok && pa.GetResource().Resource == resource {
			out = append(out, pa)
		}
	}
	return out
}

// Events lists the Events in the fake cluster, all namespaces.
func Events(t testing.TB, cs *fake.Clientset) []corev1.Event {
	t.Helper()
	list, err := cs.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	return list.Items
}

// Querier answers queries from Answers; a query it does not know gets an
// empty vector, and every query fails with Err when it is set. Queries
// lists the queries asked, in order.
type Querier struct {
	mu      sync.Mutex
	Answers map[string]model.Value
	Err     error
	Queries []string
}

// Query answers q from Answers.
func (f *Querier) Query(_ context.Context, q string, _ time.Time, _ ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Queries = append(f.Queries, q)
	if f.Err != nil {
		return nil, nil, nil, f.Err
	}
	if v, ok := f.Answers[q]; ok {
		return v, nil, nil, nil
	}
	return model.Vector{}, nil, nil, nil
}

// Vec is an instant vector of one sample of v at Now.
func Vec(v float64) model.Vector {
	return model.Vector{{Metric: model.Metric{}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(Now.UnixNano())}}
}

// Alert is an alert with labels, a runbook and a description, firing
// since two hours before Now.
func Alert(status string, labels map[string]string) template.Alert {
	kv := template.KV{}
	for k, v := range labels {
		kv[k] = v
	}
	return template.Alert{
		Status:      status,
		Labels:      kv,
		Annotations: template.KV{"runbook_url": "https://example.com/runbooks/" + labels["alertname"] + ".md", "description": "memory grows"},
		StartsAt:    Now.Add(-2 * time.Hour),
		Fingerprint: fmt.Sprintf("%016x", len(labels)*7919+len(labels["pod"])),
	}
}

// LeakAlert is ContainerMemoryLeak for container app of pod
// shop/web-7d9-abcde on node n1.
func LeakAlert() template.Alert {
	return Alert("firing", map[string]string{"alertname": "ContainerMemoryLeak", "namespace": "shop", "pod": "web-7d9-abcde", "container": "app", "node": "n1"})
}

// KindOf returns the kind of a fixture object as the engine names it
// ("Pod", "Deployment").
func KindOf(o runtime.Object) string {
	switch o.(type) {
	case *corev1.Pod:
		return KindPod
	case *corev1.Namespace:
		return "Namespace"
	case *corev1.Node:
		return "Node"
	}
	t := fmt.Sprintf("%T", o) // *v1.Deployment
	return t[strings.LastIndex(t, ".")+1:]
}

// Int32p returns a pointer to n.
func Int32p(n int32) *int32 { return &n }

// HealthyDeployment is Deployment shop/web with 3 replicas, all updated,
// available and ready, its last rollout observed.
func HealthyDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-web", ResourceVersion: "1", Generation: 4},
		Spec:       appsv1.DeploymentSpec{Replicas: Int32p(3)},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 4, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3, ReadyReplicas: 3},
	}
}

// RestartFixtures are Fixtures with healthy workloads: Deployment
// shop/web of 3 ready replicas, StatefulSet shop/db of 2, and DaemonSet
// shop/agent on 4 nodes with its pod agent-x1; edit, when not nil,
// changes them. RestartFixtures replaces the fixtures' workloads by healthy ones.
func RestartFixtures(edit func(objs []runtime.Object)) []runtime.Object {
	var objs []runtime.Object
	for _, o := range Fixtures() {
		switch w := o.(type) {
		case *appsv1.Deployment:
			o = HealthyDeployment()
		case *appsv1.StatefulSet:
			w.Generation = 2
			w.Spec.Replicas = Int32p(2)
			w.Status = appsv1.StatefulSetStatus{ObservedGeneration: 2, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, CurrentRevision: "db-1", UpdateRevision: "db-1"}
		}
		objs = append(objs, o)
	}
	objs = append(objs, &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent", UID: "uid-agent", ResourceVersion: "1", Generation: 1},
		Status:     appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4, NumberReady: 4},
	}, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "agent-x1", UID: "uid-agent-x1", ResourceVersion: "1", OwnerReferences: OwnedBy("DaemonSet", "agent")}})
	if edit != nil {
		edit(objs)
	}
	return objs
}

// DeploymentIn returns the first Deployment of objs.
func DeploymentIn(objs []runtime.Object) *appsv1.Deployment {
	for _, o := range objs {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d
		}
	}
	return nil
}

// Evictions makes cs answer every eviction request with err and returns
// the pods asked for, as namespace/name. Evictions returns the eviction requests, answering each with err.
func Evictions(cs *fake.Clientset, err error) *[]string {
	var got []string
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		got = append(got, a.GetNamespace()+"/"+a.(k8stesting.CreateAction).GetObject().(metav1.Object).GetName())
		return true, nil, err
	})
	return &got
}

// RolloutAPIVersion is the apiVersion of Argo Rollouts: a controller kind
// the engine has no typed client for, read through the metadata client.
const RolloutAPIVersion = "argoproj.io/v1alpha1"

// node returns a node in pool, schedulable unless cordoned. It carries
// the managedFields entry of the kubelet that registered it, as on the
// API server; with one there, the fake clientset tracks every later
// writer's fields as the API server does.
// Node is a node of pool, cordoned or not, with the empty labels
// given, whose pool label the kubelet wrote.
func Node(name, pool string, cordoned bool, labels ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1", Labels: map[string]string{"pool": pool},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", FieldsType: "FieldsV1",
			FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:labels":{".":{},"f:pool":{}}}}`)}}}}}
	n.Spec.Unschedulable = cordoned
	for _, l := range labels {
		n.Labels[l] = ""
	}
	return n
}

// Nodes returns n schedulable nodes node-0… in pool p.
func Nodes(n int, p string) []runtime.Object {
	var out []runtime.Object
	for i := range n {
		out = append(out, Node(fmt.Sprintf("node-%d", i), p, false))
	}
	return out
}

// Counter is the value of the counter name with labels in reg; 0 when
// it has no such series.
func Counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// AnyQuerier answers every query with one sample of its value.
type AnyQuerier float64

// Query answers with q.
func (q AnyQuerier) Query(context.Context, string, time.Time, ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	return Vec(float64(q)), nil, nil, nil
}

// CordonPolicy annotates and cordons on NodeOrphanCgroups (check
// orphan-cgroups over 20), undoing the cordon on resolve.
const CordonPolicy = `
alerts:
  NodeOrphanCgroups:
    target: node
    check:
      name: orphan-cgroups
      args:
        threshold: 20
    remediators:
      - name: annotate
      - name: cordon
        enabled: true
        args:
          uncordonOnResolve: true
`
