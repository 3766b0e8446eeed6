package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// TestLeakguardIdentity checks that the tests' leakguard client is the
// service account the ClusterRoleBinding names, authenticated by its token
// and nothing else.
func TestLeakguardIdentity(t *testing.T) {
	c := leakguardClient(t)
	ctx := testContext(t)
	r, err := c.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectReview: %v", err)
	}
	if got, want := r.Status.UserInfo.Username, "system:serviceaccount:"+strings.Replace(serviceAccount, "/", ":", 1); got != want {
		t.Errorf("leakguard's client is %q, want %q", got, want)
	}
}

// TestLeakguardRoleAllows: every read and write that the annotate
// remediator and its engine make is allowed by the ClusterRole as it
// ships. TestAnnotateWithLeakguardRole exercises them through the engine;
// this names each one, so that a rule dropped from the role fails here by
// name.
func TestLeakguardRoleAllows(t *testing.T) {
	w := newWorld(t)
	c := leakguardClient(t)
	ctx := testContext(t)
	get := metav1.GetOptions{}
	// leakguard.io/*: the admission policy lets the account write its own
	// annotations only.
	annotation := []byte(`{"metadata":{"annotations":{"leakguard.io/e2e-probe":"x"}}}`)
	allowed := []struct {
		name string
		do   func() error
	}{
		{"get pods", func() error { _, err := c.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, get); return err }},
		{"patch pods", func() error {
			_, err := c.CoreV1().Pods(w.Namespace).Patch(ctx, w.Pod, types.MergePatchType, annotation, metav1.PatchOptions{})
			return err
		}},
		{"get nodes", func() error { _, err := c.CoreV1().Nodes().Get(ctx, w.Node, get); return err }},
		{"patch nodes", func() error {
			_, err := c.CoreV1().Nodes().Patch(ctx, w.Node, types.MergePatchType, annotation, metav1.PatchOptions{})
			return err
		}},
		{"get namespaces", func() error { _, err := c.CoreV1().Namespaces().Get(ctx, w.Namespace, get); return err }},
		{"get replicasets", func() error { _, err := c.AppsV1().ReplicaSets(w.Namespace).Get(ctx, w.ReplicaSet, get); return err }},
		{"patch replicasets", func() error {
			_, err := c.AppsV1().ReplicaSets(w.Namespace).Patch(ctx, w.ReplicaSet, types.MergePatchType, annotation, metav1.PatchOptions{})
			return err
		}},
		{"get deployments", func() error { _, err := c.AppsV1().Deployments(w.Namespace).Get(ctx, w.Deployment, get); return err }},
		{"patch deployments", func() error {
			_, err := c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.MergePatchType, annotation, metav1.PatchOptions{})
			return err
		}},
		// The kinds below have no object in the world: NotFound shows
		// that the request got past authorization.
		{"get statefulsets", notFound(func() error { _, err := c.AppsV1().StatefulSets(w.Namespace).Get(ctx, "none", get); return err })},
		{"get daemonsets", notFound(func() error { _, err := c.AppsV1().DaemonSets(w.Namespace).Get(ctx, "none", get); return err })},
		{"get jobs", notFound(func() error { _, err := c.BatchV1().Jobs(w.Namespace).Get(ctx, "none", get); return err })},
		{"get cronjobs", notFound(func() error { _, err := c.BatchV1().CronJobs(w.Namespace).Get(ctx, "none", get); return err })},
		// The restart remediator evicts a pod without a controller; a pod
		// that does not exist answers NotFound once authorized.
		{"evict pods", notFound(func() error {
			return c.CoreV1().Pods(w.Namespace).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: "none", Namespace: w.Namespace}})
		})},
		{"get events", notFound(func() error { _, err := c.CoreV1().Events(w.Namespace).Get(ctx, "none", get); return err })},
		{"patch events", notFound(func() error {
			_, err := c.CoreV1().Events(w.Namespace).Patch(ctx, "none", types.MergePatchType, []byte(`{"count":2}`), metav1.PatchOptions{})
			return err
		})},
		// The budget Lease, in leakguard's own namespace only.
		{"get leases", notFound(func() error {
			_, err := c.CoordinationV1().Leases(leakguardNamespace).Get(ctx, "none", get)
			return err
		})},
		{"create events", func() error {
			_, err := c.CoreV1().Events(w.Namespace).Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "probe." + w.Namespace},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: w.Namespace, Name: w.Pod},
				Reason:         "Probe", Message: "RBAC probe", Type: corev1.EventTypeNormal,
			}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, tc := range allowed {
		if err := tc.do(); err != nil {
			t.Errorf("%s as %s: %v, want allowed", tc.name, serviceAccount, err)
		}
	}
}

// notFound turns a NotFound answer into success.
func notFound(f func() error) func() error {
	return func() error {
		if err := f(); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		return nil
	}
}

// TestLeakguardRoleRefuses: what leakguard never needs, the API server
// refuses it with 403 Forbidden. The role grants patch on pods (for the
// annotations), and RBAC cannot tell an annotation from a change to a
// pod's spec; that field-level limit needs a ValidatingAdmissionPolicy and
// comes with the disruptive remediators. What RBAC can refuse is checked
// here.
func TestLeakguardRoleRefuses(t *testing.T) {
	w := newWorld(t)
	c := leakguardClient(t)
	ctx := testContext(t)
	refused := []struct {
		name string
		do   func(ctx context.Context, c kubernetes.Interface) error
	}{
		{"delete nodes", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Nodes().Delete(ctx, w.Node, metav1.DeleteOptions{})
		}},
		{"update nodes", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Nodes().Update(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: w.Node}}, metav1.UpdateOptions{})
			return err
		}},
		{"watch nodes", func(ctx context.Context, c kubernetes.Interface) error {
			w, err := c.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"get secrets", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(w.Namespace).Get(ctx, "any", metav1.GetOptions{})
			return err
		}},
		{"list secrets", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(w.Namespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list secrets in all namespaces", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"get configmaps", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps(w.Namespace).Get(ctx, "any", metav1.GetOptions{})
			return err
		}},
		{"watch pods", func(ctx context.Context, c kubernetes.Interface) error {
			w, err := c.CoreV1().Pods(w.Namespace).Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"create pods", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(w.Namespace).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c"}}},
			}, metav1.CreateOptions{})
			return err
		}},
		{"update pods", func(ctx context.Context, c kubernetes.Interface) error {
			p, err := needLab(t).Admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("admin get pod: %v", err)
			}
			_, err = c.CoreV1().Pods(w.Namespace).Update(ctx, p, metav1.UpdateOptions{})
			return err
		}},
		{"delete pods", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Pods(w.Namespace).Delete(ctx, w.Pod, metav1.DeleteOptions{})
		}},
		{"get leases of another namespace", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoordinationV1().Leases("kube-node-lease").Get(ctx, "any", metav1.GetOptions{})
			return err
		}},
		{"delete the budget lease", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoordinationV1().Leases(leakguardNamespace).Delete(ctx, "leakguard-budget", metav1.DeleteOptions{})
		}},
		{"patch pods/status", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods(w.Namespace).Patch(ctx, w.Pod, types.MergePatchType, []byte(`{"status":{"phase":"Failed"}}`), metav1.PatchOptions{}, "status")
			return err
		}},
		{"delete deployments", func(ctx context.Context, c kubernetes.Interface) error {
			return c.AppsV1().Deployments(w.Namespace).Delete(ctx, w.Deployment, metav1.DeleteOptions{})
		}},
		{"patch deployments/scale", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}, "scale")
			return err
		}},
		{"create deployments", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.AppsV1().Deployments(w.Namespace).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{})
			return err
		}},
		{"patch namespaces", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Namespaces().Patch(ctx, w.Namespace, types.MergePatchType, []byte(`{"metadata":{"annotations":{"leakguard.io/ignore":"false"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"patch cronjobs", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.BatchV1().CronJobs(w.Namespace).Patch(ctx, "any", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
			return err
		}},
		{"update events", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Events(w.Namespace).Update(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "any", Namespace: w.Namespace}}, metav1.UpdateOptions{})
			return err
		}},
		{"delete events", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Events(w.Namespace).Delete(ctx, "any", metav1.DeleteOptions{})
		}},
		{"create service account tokens", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().ServiceAccounts(w.Namespace).CreateToken(ctx, "default", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			return err
		}},
		{"create clusterrolebindings", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "intruder"},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, tc := range refused {
		err := tc.do(ctx, c)
		if !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: error %v, want Forbidden", tc.name, serviceAccount, err)
		}
	}
	// Nothing above reached the objects.
	if _, err := needLab(t).Admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{}); err != nil {
		t.Errorf("the pod is gone after the refused requests: %v", err)
	}
	if _, err := needLab(t).Admin.CoreV1().Nodes().Get(ctx, w.Node, metav1.GetOptions{}); err != nil {
		t.Errorf("the node is gone after the refused requests: %v", err)
	}
}

// account is a service account installed from deploy/ with the base and
// some components only, beside the shared one (lab.InstallLeakguardAs).
type account struct {
	ns, name string
	cfg      *rest.Config
	client   kubernetes.Interface
}

var (
	accountsMu sync.Mutex
	accounts   = map[string]*account{}
)

// componentAccount returns the account with deploy/leakguard's base and
// the named components of deploy/components bound, the admission policies
// in force, installed once per package run under the namespace "lg-"+key.
func componentAccount(t *testing.T, key string, components ...string) *account {
	t.Helper()
	l := needLab(t)
	accountsMu.Lock()
	defer accountsMu.Unlock()
	if a := accounts[key]; a != nil {
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns, name, err := lab.InstallLeakguardAs(ctx, l, repoRoot, "lg-"+key, components...)
	if err != nil {
		t.Fatalf("install deploy/leakguard with %v as lg-%s: %v", components, key, err)
	}
	cfg, err := l.ServiceAccountConfig(ctx, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := &account{ns: ns, name: name, cfg: cfg, client: c}
	accounts[key] = a
	return a
}

// componentProbes are what each component lets serve do that the base
// alone does not, each a request as its remediator makes it (dry runs
// where the request would change what other tests use): the error the
// API server answers.
func componentProbes(ctx context.Context, w world) map[string]map[string]func(c kubernetes.Interface) error {
	dryRun := []string{metav1.DryRunAll}
	stamp := time.Now().UTC().Format(time.RFC3339)
	evict := func(c kubernetes.Interface) error {
		return c.CoreV1().Pods(w.Namespace).EvictV1(ctx, &policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: w.Pod, Namespace: w.Namespace},
			DeleteOptions: &metav1.DeleteOptions{DryRun: dryRun},
		})
	}
	return map[string]map[string]func(c kubernetes.Interface) error{
		"restart": {
			"restart the Deployment": func(c kubernetes.Interface) error {
				_, err := c.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.StrategicMergePatchType,
					[]byte(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"`+stamp+`"}}}}}`), metav1.PatchOptions{DryRun: dryRun})
				return err
			},
			"evict the pod": evict,
		},
		"node": {
			"cordon the node": func(c kubernetes.Interface) error {
				_, err := c.CoreV1().Nodes().Patch(ctx, w.Node, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{DryRun: dryRun})
				return err
			},
			"list every pod": func(c kubernetes.Interface) error {
				_, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + w.Node})
				return err
			},
			"evict the pod": evict,
		},
		"profile": {
			// Nothing serves pprof on the pod: once authorized, the proxy
			// answers an error of its own, not Forbidden.
			"proxy to the pod": func(c kubernetes.Interface) error {
				_, err := c.CoreV1().RESTClient().Get().Namespace(w.Namespace).Resource("pods").Name(w.Pod+":6060").
					SubResource("proxy").Suffix("debug", "pprof", "heap").DoRaw(ctx)
				return err
			},
			// The lab's apiserver runs without --profiling: NotFound once
			// authorized.
			"get /debug/pprof/heap": func(c kubernetes.Interface) error {
				_, err := c.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/heap").DoRaw(ctx)
				return err
			},
		},
	}
}

// TestBaseAloneRefuses: the account with deploy/leakguard's base alone,
// as `kubectl apply -k deploy/` installs it, cannot restart a workload,
// cordon a node, evict or list every pod, proxy to a pod or read the
// apiserver's profiles: 403 Forbidden, from RBAC or from the admission
// policy (which names the component), and the objects keep their
// resourceVersions. It still annotates (the shipped policy's remediator).
func TestBaseAloneRefuses(t *testing.T) {
	w := newWorld(t)
	base := componentAccount(t, "base")
	ctx := testContext(t)
	admin := needLab(t).Admin
	before := w.objectVersions(ctx, t, admin)
	for component, probes := range componentProbes(ctx, w) {
		for what, probe := range probes {
			err := probe(base.client)
			if !apierrors.IsForbidden(err) {
				t.Errorf("%s as the base alone: %v, want Forbidden (a right of deploy/components/%s)", what, err, component)
				continue
			}
			// The admission policy's refusals name the component.
			if strings.Contains(err.Error(), "ValidatingAdmissionPolicy") && !strings.Contains(err.Error(), "deploy/components/"+component) {
				t.Errorf("%s as the base alone: %v, want the message to name deploy/components/%s", what, err, component)
			}
		}
	}
	// Real writes too, not dry runs: a cordon and a restart.
	if _, err := base.client.CoreV1().Nodes().Patch(ctx, w.Node, types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("cordon as the base alone: %v, want Forbidden", err)
	}
	if _, err := base.client.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01T00:00:00Z"}}}}}`), metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("restart as the base alone: %v, want Forbidden", err)
	}
	if diff := cmp.Diff(before, w.objectVersions(ctx, t, admin)); diff != "" {
		t.Errorf("objects changed by the refused requests (-before +after):\n%s", diff)
	}
	if _, err := admin.CoreV1().Pods(w.Namespace).Get(ctx, w.Pod, metav1.GetOptions{}); err != nil {
		t.Errorf("the pod after the refused eviction: %v", err)
	}
	// annotate's writes go through.
	annotation := []byte(`{"metadata":{"annotations":{"leakguard.io/e2e-probe":"base"}}}`)
	if _, err := base.client.CoreV1().Nodes().Patch(ctx, w.Node, types.MergePatchType, annotation, metav1.PatchOptions{}); err != nil {
		t.Errorf("annotate the node as the base alone: %v", err)
	}
	if _, err := base.client.AppsV1().Deployments(w.Namespace).Patch(ctx, w.Deployment, types.MergePatchType, annotation, metav1.PatchOptions{}); err != nil {
		t.Errorf("annotate the Deployment as the base alone: %v", err)
	}
}

// TestComponentsGrant: each component, added to the base, lets its
// remediators' requests through (past RBAC and the admission policy) and
// no other component's.
func TestComponentsGrant(t *testing.T) {
	for _, component := range lab.Components {
		t.Run(component, func(t *testing.T) {
			w := newWorld(t)
			a := componentAccount(t, component, component)
			ctx := testContext(t)
			for other, probes := range componentProbes(ctx, w) {
				for what, probe := range probes {
					err := probe(a.client)
					// An eviction is both restart's and the node
					// component's.
					granted := other == component || what == "evict the pod" && component != "profile"
					switch {
					case granted && apierrors.IsForbidden(err):
						t.Errorf("%s with deploy/components/%s: %v, want allowed", what, component, err)
					case !granted && !apierrors.IsForbidden(err):
						t.Errorf("%s with deploy/components/%s only: %v, want Forbidden (deploy/components/%s's)", what, component, err, other)
					}
				}
			}
		})
	}
}
