package e2e

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
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

// TestDeployDryRun renders every kustomization of deploy/ (each directory
// with a kustomization.yaml, but components/) and deploy/leakguard with
// each component, as `kubectl apply -k` would, and has the real API server
// dry-run every built-in object. The Prometheus Operator's custom
// resources, whose CRDs the lab lacks, decode strictly into their Go types
// instead. cert-manager's are dry-run against minimal CRDs that the test
// installs (certManagerCRDs: the kinds, versions and scopes are checked,
// their fields are not). The namespaces monitoring (kube-prometheus-stack
// creates it) and cert-manager (cert-manager's) are created first.
func TestDeployDryRun(t *testing.T) {
	ctx := testContext(t)
	admin := needLab(t).Admin
	for _, ns := range []string{"monitoring", "cert-manager"} {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create namespace %s: %v", ns, err)
		}
	}
	d := newDryRunner(t)
	installCertManagerCRDs(t, d)

	deployDir := filepath.Join(repoRoot, "deploy")
	type build struct {
		name, kustomization string
		files               map[string][]byte
	}
	var builds []build
	err := filepath.WalkDir(deployDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(deployDir, path)
		if e.IsDir() && rel == "components" {
			return filepath.SkipDir
		}
		if !e.IsDir() && e.Name() == "kustomization.yaml" {
			// A component (deploy/monitoring-namespace) does not build on
			// its own; the kustomizations that use it are built here.
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if regexp.MustCompile(`(?m)^kind: Component$`).Match(data) {
				return nil
			}
			builds = append(builds, build{name: filepath.Dir(rel), kustomization: filepath.Dir(rel)})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(slices.Clone(lab.Components), lab.OptionalComponents...) {
		k, files, err := lab.LeakguardOverlay(c)
		if err != nil {
			t.Fatal(err)
		}
		builds = append(builds, build{name: "leakguard+components/" + c, kustomization: k, files: files})
	}
	for _, b := range builds {
		t.Run(b.name, func(t *testing.T) {
			_, objs, err := lab.RenderDeployWith(deployDir, b.kustomization, b.files)
			if err != nil {
				t.Fatal(err)
			}
			var builtIn, certManager int
			for _, obj := range objs {
				if obj.GroupVersionKind().Group == "cert-manager.io" {
					certManager++
					if err := d.apply(obj); err != nil {
						t.Errorf("dry-run %s: %v", lab.Describe(obj), err)
					}
					continue
				}
				if _, err := lab.DecodeStrict(obj); err != nil {
					t.Errorf("decode: %v", err)
				}
				if lab.IsCustom(obj) {
					continue
				}
				builtIn++
				if err := d.apply(obj); err != nil {
					t.Errorf("dry-run %s: %v", lab.Describe(obj), err)
				}
			}
			// kubernetes/ and alertmanager/ hold custom resources only
			// (decoded strictly above); every other kustomization holds a
			// built-in object.
			if builtIn == 0 && b.name != "kubernetes" && b.name != "alertmanager" {
				t.Errorf("%d built-in objects, want some", builtIn)
			}
			wantCM := 0
			if b.name == "leakguard+components/cert-manager" {
				wantCM = len(certManagerCRDs) + 2 // two Certificates and two ClusterIssuers more
			}
			if certManager != wantCM {
				t.Errorf("%d cert-manager objects, want %d", certManager, wantCM)
			}
		})
	}
	if len(builds) < 6+len(lab.Components)+len(lab.OptionalComponents) {
		t.Errorf("builds %v, want deploy/'s six kustomizations and every component", builds)
	}
}

// certManagerCRDs are minimal CustomResourceDefinitions of cert-manager's
// Issuer, ClusterIssuer and Certificate (cert-manager.io/v1, their real
// names and scopes), with a permissive schema: spec is any object. They
// let the API server dry-run deploy/components/cert-manager's objects
// (kinds, versions, scopes, namespaces, names); their fields are checked
// by deploy/'s TestCertManager against each other, not against
// cert-manager's API, whose Go module this repository does not carry.
var certManagerCRDs = []struct{ kind, plural, scope string }{
	{"Issuer", "issuers", "Namespaced"},
	{"ClusterIssuer", "clusterissuers", "Cluster"},
	{"Certificate", "certificates", "Namespaced"},
}

// installCertManagerCRDs creates certManagerCRDs, waits (bounded) until
// the API server serves them, and refreshes d's discovery.
func installCertManagerCRDs(t *testing.T, d *dryRunner) {
	t.Helper()
	ctx := testContext(t)
	crds := d.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	for _, c := range certManagerCRDs {
		name := c.plural + ".cert-manager.io"
		crd := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1",
			"kind":       "CustomResourceDefinition",
			"metadata":   map[string]any{"name": name},
			"spec": map[string]any{
				"group": "cert-manager.io",
				"scope": c.scope,
				"names": map[string]any{"kind": c.kind, "listKind": c.kind + "List", "plural": c.plural, "singular": strings.ToLower(c.kind)},
				"versions": []any{map[string]any{
					"name": "v1", "served": true, "storage": true,
					"schema": map[string]any{"openAPIV3Schema": map[string]any{
						"type":     "object",
						"required": []any{"spec"},
						"properties": map[string]any{
							"spec":   map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
							"status": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true},
						},
					}},
				}},
			},
		}}
		if _, err := crds.Create(ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("create CRD %s: %v", name, err)
		}
		t.Cleanup(func() { _ = crds.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d.mapper.Reset()
		var missing []string
		for _, c := range certManagerCRDs {
			if _, err := d.mapper.RESTMapping(schema.GroupKind{Group: "cert-manager.io", Kind: c.kind}, "v1"); err != nil {
				missing = append(missing, c.kind)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cert-manager CRDs %v not served after 30s", missing)
		}
		time.Sleep(200 * time.Millisecond)
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
