package remediate

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/leakguard/leakguard/remediate/remediatetest"
)

// The engine's tests use the shared fakes and fixtures of remediatetest
// under the short names they had when they lived here.

// testNow is the engine's clock in tests.
var testNow = remediatetest.Now

func ptrTrue() *bool { b := true; return &b }

func ownedBy(kind, name string) []metav1.OwnerReference { return remediatetest.OwnedBy(kind, name) }

func ownedByUID(kind, name, uid string) []metav1.OwnerReference {
	return remediatetest.OwnedByUID(kind, name, uid)
}

func fixtures() []runtime.Object { return remediatetest.Fixtures() }

func newCluster(t testing.TB, objs ...runtime.Object) *fake.Clientset {
	t.Helper()
	return remediatetest.NewCluster(t, objs...)
}

func withPreconditions(cs *fake.Clientset) *fake.Clientset {
	return remediatetest.WithPreconditions(cs)
}

func patches(cs *fake.Clientset, resource string) []k8stesting.PatchActionImpl {
	return remediatetest.Patches(cs, resource)
}

func events(t testing.TB, cs *fake.Clientset) []corev1.Event {
	t.Helper()
	return remediatetest.Events(t, cs)
}

var gvrDeployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

type fakeQuerier = remediatetest.Querier

func vec(v float64) model.Vector { return remediatetest.Vec(v) }

func alert(status string, labels map[string]string) template.Alert {
	return remediatetest.Alert(status, labels)
}

func leakAlert() template.Alert { return remediatetest.LeakAlert() }

// k8sClient is what the tests hand to the package's functions.
type k8sClient = *fake.Clientset

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return m, nil
}

// noneCheck asks nothing and confirms every alert, as check none
// (remediate/check) does: the engine's tests build on it without
// importing the checks.
type noneCheck struct{}

func (noneCheck) Name() string { return CheckNone }

func (noneCheck) Query(template.Alert) (string, error) { return "", nil }

func (noneCheck) Evaluate(template.Alert, model.Value, time.Time) (Result, error) {
	return Result{Confirmed: true, Summary: "no check: the alert is the finding"}, nil
}

// Names of checks that leakguard ships (remediate/check), which the
// engine's tests find in the policies they load.
const (
	CheckWorkingSetSlope = "working-set-slope"
	CheckAPIServerMemory = "apiserver-memory"
)

// Annotations that the annotate remediator (remediate/annotate) writes,
// which the engine's tests look for.
const (
	AnnotationFinding    = "leakguard.io/finding"
	AnnotationSubject    = "leakguard.io/subject"
	AnnotationValue      = "leakguard.io/value"
	AnnotationSince      = "leakguard.io/since"
	AnnotationRunbookURL = "leakguard.io/runbook-url"
)

func int32p(n int32) *int32 { return remediatetest.Int32p(n) }

func healthyDeployment() *appsv1.Deployment { return remediatetest.HealthyDeployment() }

func restartFixtures(edit func(objs []runtime.Object)) []runtime.Object {
	return remediatetest.RestartFixtures(edit)
}

func deploymentIn(objs []runtime.Object) *appsv1.Deployment { return remediatetest.DeploymentIn(objs) }

func evictions(cs *fake.Clientset, err error) *[]string { return remediatetest.Evictions(cs, err) }

// Names of the restart remediator (remediate/restart) that the engine's
// tests meet in the policies they load and the objects it writes.
const (
	RemediatorRestart     = "restart"
	ReasonPDB             = "pdb"
	AnnotationRestartedAt = "kubectl.kubernetes.io/restartedAt"
)

func node(name, pool string, cordoned bool, labels ...string) *corev1.Node {
	return remediatetest.Node(name, pool, cordoned, labels...)
}

func nodes(n int, p string) []runtime.Object { return remediatetest.Nodes(n, p) }

// Names of cordon and drain (remediate/node) that the engine's tests
// meet.
const RemediatorDrain = "drain"

type anyQuerier = remediatetest.AnyQuerier

// cordonPolicy annotates and cordons on NodeOrphanCgroups, undoing the
// cordon on resolve (as remediate/node's tests do).
const cordonPolicy = remediatetest.CordonPolicy
