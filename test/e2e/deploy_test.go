package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// dryRunner applies objects with server-side apply and dryRun=All as the
// admin: the API server decodes, defaults, validates (unknown fields are
// errors) and admits each one, and stores nothing.
type dryRunner struct {
	t      *testing.T
	dyn    dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func newDryRunner(t *testing.T) *dryRunner {
	t.Helper()
	l := needLab(t)
	dyn, err := dynamic.NewForConfig(l.AdminConfig)
	if err != nil {
		t.Fatal(err)
	}
	return &dryRunner{t: t, dyn: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(l.Admin.Discovery()))}
}

func (d *dryRunner) apply(obj *unstructured.Unstructured) error {
	d.t.Helper()
	gvk := obj.GroupVersionKind()
	m, err := d.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return err
	}
	force := true
	_, err = d.dyn.Resource(m.Resource).Namespace(obj.GetNamespace()).Patch(testContext(d.t), obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{
		DryRun:          []string{metav1.DryRunAll},
		Force:           &force,
		FieldManager:    "leakguard-e2e-dry-run",
		FieldValidation: metav1.FieldValidationStrict,
	})
	return err
}

// TestDeployDryRun renders deploy/ and its overlay as `kubectl apply -k`
// would and has the real API server dry-run every built-in object; the
// Prometheus Operator's custom resources, whose CRDs the lab lacks, decode
// strictly into their Go types instead. The namespace monitoring, which
// kube-prometheus-stack creates and deploy/ expects, is created first.
func TestDeployDryRun(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace monitoring: %v", err)
	}
	d := newDryRunner(t)
	for _, k := range []string{".", "overlays/kube-prometheus-stack"} {
		t.Run(k, func(t *testing.T) {
			_, objs, err := lab.RenderDeploy(filepath.Join(repoRoot, "deploy"), k)
			if err != nil {
				t.Fatal(err)
			}
			var builtIn, custom int
			for _, obj := range objs {
				if _, err := lab.DecodeStrict(obj); err != nil {
					t.Errorf("decode: %v", err)
				}
				if lab.IsCustom(obj) {
					custom++
					continue
				}
				builtIn++
				if err := d.apply(obj); err != nil {
					t.Errorf("dry-run %s: %v", lab.Describe(obj), err)
				}
			}
			if builtIn == 0 || custom == 0 {
				t.Errorf("%d built-in and %d custom objects, want some of each", builtIn, custom)
			}
		})
	}
}

// TestDeployDryRunRejects checks the check: the dry-run refuses a field the
// API does not have, so a typo in deploy/ cannot pass it.
func TestDeployDryRunRejects(t *testing.T) {
	d := newDryRunner(t)
	_, objs, err := lab.RenderDeploy(filepath.Join(repoRoot, "deploy"), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		if obj.GetKind() != "Deployment" {
			continue
		}
		bad := obj.DeepCopy()
		if err := unstructured.SetNestedField(bad.Object, int64(3), "spec", "replicaz"); err != nil {
			t.Fatal(err)
		}
		err := d.apply(bad)
		if err == nil || !strings.Contains(err.Error(), "replicaz") {
			t.Errorf("dry-run of %s with spec.replicaz = %v, want an error naming the field", lab.Describe(obj), err)
		}
		return
	}
	t.Fatal("deploy/ renders no Deployment")
}
