package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// compatModule is the directory of the separate module that renders with
// the kustomize kubectl 1.32 bundles (v5.5.0: sigs.k8s.io/kustomize/api
// v0.18.0); the main module pins a newer one.
const compatModule = "../test/kustomize-v5.5"

// optionalComponents are the components of deploy/components that are not
// a remediator's rights (lab.Components).
var optionalComponents = lab.OptionalComponents

// namespaced says, for every kind deploy/ renders, whether the API server
// keeps it in a namespace. A kind missing here fails the test: classify it
// (kubectl api-resources) when deploy/ starts shipping one.
var namespaced = map[string]bool{
	"Namespace": false, "ClusterRole": false, "ClusterRoleBinding": false, "PriorityClass": false,
	"ValidatingAdmissionPolicy": false, "ValidatingAdmissionPolicyBinding": false,
	"ClusterIssuer":  false,
	"ServiceAccount": true, "Role": true, "RoleBinding": true, "ConfigMap": true, "Secret": true,
	"Deployment": true, "DaemonSet": true, "Job": true, "Service": true, "PodDisruptionBudget": true,
	"NetworkPolicy": true, "ServiceMonitor": true, "PodMonitor": true, "PrometheusRule": true,
	"AlertmanagerConfig": true, "GrafanaDashboard": true, "Issuer": true, "Certificate": true,
}

// build is one render that TestKustomizeVersions runs with both versions.
type build struct {
	name          string
	kustomization string
	files         map[string][]byte
}

// builds are every kustomization a user may apply, deploy/leakguard with
// each component, and the kube-prometheus-stack overlay's example.
func builds(t *testing.T) []build {
	t.Helper()
	var out []build
	for _, k := range kustomizations {
		out = append(out, build{name: k, kustomization: k})
	}
	for _, c := range slices.Concat(lab.Components, optionalComponents) {
		k, files, err := lab.LeakguardOverlay(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, build{name: "leakguard+components/" + c, kustomization: k, files: files})
	}
	out = append(out, build{name: "overlays/kube-prometheus-stack example", kustomization: "overlays/kube-prometheus-stack", files: overlayExample(t)})
	return out
}

// TestComponentsListed: every directory of deploy/components is rendered
// by TestKustomizeVersions (and dry-run by test/e2e's TestDeployDryRun).
func TestComponentsListed(t *testing.T) {
	entries, err := os.ReadDir("components")
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, e.Name())
		}
	}
	listed := slices.Concat(lab.Components, optionalComponents)
	sort.Strings(listed)
	if diff := cmp.Diff(dirs, listed); diff != "" {
		t.Errorf("deploy/components (-directories +listed in lab.Components and optionalComponents):\n%s", diff)
	}
}

// TestKustomizeVersions renders every build with the kustomize that
// kubectl 1.32 bundles (v5.5, through the module in test/kustomize-v5.5)
// and with the main module's: both give the same objects, and no
// cluster-scoped object has a namespace (v5.5 does not know
// ValidatingAdmissionPolicy to be cluster-scoped, and sets the namespace of
// a kustomization's namespace: on it).
func TestKustomizeVersions(t *testing.T) {
	bs := builds(t)
	old := renderV55(t, bs)
	for i, b := range bs {
		t.Run(b.name, func(t *testing.T) {
			_, objs, err := lab.RenderDeployWith(".", b.kustomization, b.files)
			if err != nil {
				t.Fatalf("render with the main module's kustomize: %v", err)
			}
			if old[i].Error != "" {
				t.Fatalf("render with kustomize v5.5: %s", old[i].Error)
			}
			oldObjs, err := parseStream([]byte(old[i].YAML))
			if err != nil {
				t.Fatalf("kustomize v5.5's output: %v", err)
			}
			if len(objs) == 0 {
				t.Fatal("the render holds no object")
			}
			if diff := cmp.Diff(byName(objs), byName(oldObjs)); diff != "" {
				t.Errorf("renders differ (-current +v5.5):\n%s", diff)
			}
			for _, set := range [][]*unstructured.Unstructured{objs, oldObjs} {
				for _, obj := range set {
					ns, known := namespaced[obj.GetKind()]
					switch {
					case !known:
						t.Errorf("%s: kind %s is not in namespaced; classify it", lab.Describe(obj), obj.GetKind())
					case ns && obj.GetNamespace() == "":
						t.Errorf("%s is namespaced and names no namespace", lab.Describe(obj))
					case !ns && obj.GetNamespace() != "":
						t.Errorf("%s is cluster-scoped and has namespace %q", lab.Describe(obj), obj.GetNamespace())
					}
				}
			}
		})
	}
}

// byName indexes objs by lab.Describe, with their apiVersion.
func byName(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, obj := range objs {
		out[obj.GetAPIVersion()+" "+lab.Describe(obj)] = obj.Object
	}
	return out
}

// v55Result is one render of test/kustomize-v5.5 (its Result).
type v55Result struct {
	YAML  string `json:"yaml"`
	Error string `json:"error"`
}

// renderV55 builds and runs test/kustomize-v5.5 once for every build, on
// this directory.
func renderV55(t *testing.T, bs []build) []v55Result {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	type buildReq struct {
		Kustomization string            `json:"kustomization"`
		Files         map[string]string `json:"files,omitempty"`
	}
	req := struct {
		Dir    string     `json:"dir"`
		Builds []buildReq `json:"builds"`
	}{Dir: dir}
	for _, b := range bs {
		files := map[string]string{}
		for name, data := range b.files {
			files[name] = string(data)
		}
		req.Builds = append(req.Builds, buildReq{Kustomization: b.kustomization, Files: files})
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kustomize-v5.5")
	// go test puts its own go first in PATH.
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = compatModule
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s (.ci/run downloads its modules): %v\n%s", compatModule, err, out)
	}
	var stdout, stderr bytes.Buffer
	cmd = exec.Command(bin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(in), &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, stderr.String())
	}
	var results []v55Result
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("%s's output: %v", bin, err)
	}
	if len(results) != len(bs) {
		t.Fatalf("%s answered %d results for %d builds", bin, len(results), len(bs))
	}
	return results
}

// parseStream splits a YAML stream into its objects.
func parseStream(stream []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		// Through JSON, so that numbers are int64 and float64 as
		// unstructured objects expect (and as lab's render gives them).
		data, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
}
