package test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = "../../.."

// TestDryRun renders the chart with its defaults and with otherValues and
// has the lab's real kube-apiserver dry-run (server-side apply,
// dryRun=All, strict field validation, as the admin) every built-in object
// it renders; the Prometheus Operator's objects, whose CRDs the lab does
// not install, decode strictly into their Go types instead, as
// test/e2e's TestDeployDryRun does. cert-manager's and the
// grafana-operator's objects have neither here and are only logged. The
// namespaces the objects go to are created first (a dry-run creates none).
// Without kube-apiserver and etcd (hack/e2e-binaries.sh) it skips, unless
// LEAKGUARD_E2E=1.
func TestDryRun(t *testing.T) {
	bin, err := lab.FindBinaries(repoRoot)
	if err != nil {
		if os.Getenv("LEAKGUARD_E2E") == "1" {
			t.Fatalf("the e2e lab is required (LEAKGUARD_E2E=1): %v", err)
		}
		t.Skipf("no e2e lab: %v; set LEAKGUARD_E2E=1 to make this a failure", err)
	}
	l := lab.New(t, lab.Options{BinDir: bin})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, ns := range []string{"leakguard", "monitoring", "lg", "observability"} {
		_, err := l.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	dyn, err := dynamic.NewForConfig(l.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(l.Admin.Discovery()))
	apply := func(obj *unstructured.Unstructured) error {
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return err
		}
		data, err := json.Marshal(obj.Object)
		if err != nil {
			return err
		}
		force := true
		_, err = dyn.Resource(m.Resource).Namespace(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
			DryRun:          []string{metav1.DryRunAll},
			Force:           &force,
			FieldManager:    "leakguard-chart-dry-run",
			FieldValidation: metav1.FieldValidationStrict,
		})
		return err
	}
	for _, tc := range []struct {
		name string
		vals map[string]any
		// bad is the object whose dry-run must fail (the check of the
		// check); empty: none.
		bad string
	}{
		{name: "defaults", vals: map[string]any{"namespace": map[string]any{"create": true}}},
		{name: "other values", vals: otherValues()},
		// The trial token's Job, account and Roles (built-in objects all),
		// and cert-manager's layout (logged only: no CRD).
		{name: "token.trialJob and tls.mode certManager", vals: map[string]any{"token": map[string]any{"trialJob": true}, "tls": map[string]any{"mode": "certManager"}}},
		{name: "tls.mode off", vals: map[string]any{"tls": map[string]any{"mode": "off"}}},
		{name: "a resources value the API refuses", vals: map[string]any{"serve": map[string]any{"resources": map[string]any{"limitz": map[string]any{"memory": "1Gi"}}}}, bad: "Deployment leakguard/leakguard-serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var builtIn, custom int
			refused := false
			for _, obj := range mustRender(t, tc.vals) {
				switch {
				case lab.IsCustom(obj):
					custom++
					if _, err := lab.DecodeStrict(obj); err != nil {
						t.Errorf("decode: %v", err)
					}
				case scheme.Scheme.Recognizes(obj.GroupVersionKind()):
					builtIn++
					err := apply(obj)
					switch {
					case key(obj) == tc.bad && err != nil:
						refused = true
					case key(obj) == tc.bad:
						t.Errorf("dry-run %s: no error, want one", key(obj))
					case err != nil:
						t.Errorf("dry-run %s: %v", key(obj), err)
					}
				default:
					t.Logf("%s (%s): no CRD in the lab, not checked", key(obj), obj.GetAPIVersion())
				}
			}
			if tc.bad != "" && !refused {
				t.Errorf("%s: not rendered or not refused", tc.bad)
			}
			if builtIn < 10 || custom == 0 {
				t.Errorf("%d built-in and %d custom objects, want deploy/'s", builtIn, custom)
			}
		})
	}
}
