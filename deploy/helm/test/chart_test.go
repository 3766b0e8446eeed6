// Package test renders leakguard's Helm chart (deploy/helm/leakguard, which
// `leakguard generate` writes from deploy/'s kustomize render) with the
// Helm library itself: lint, templates with default and other values,
// the default render against the kustomize render, and (with
// LEAKGUARD_E2E=1, as test/e2e) a server-side dry-run of what it renders
// against the lab's kube-apiserver. It is a module of its own, so that
// Helm's dependencies stay out of leakguard's go.mod.
package test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	release "helm.sh/helm/v4/pkg/release/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

const (
	chartDir  = "../leakguard"
	deployDir = "../.."
	// releaseNamespace is deploy/'s namespace of leakguard serve.
	releaseNamespace = "leakguard"
)

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load %s: %v", chartDir, err)
	}
	return c
}

// renderChart renders the chart as `helm template leakguard
// deploy/helm/leakguard -n leakguard` does, with vals over values.yaml.
func renderChart(c *chart.Chart, vals map[string]any) ([]*unstructured.Unstructured, string, error) {
	install := action.NewInstall(&action.Configuration{})
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = "leakguard"
	install.Namespace = releaseNamespace
	install.Replace = true
	if vals == nil {
		vals = map[string]any{}
	}
	r, err := install.Run(c, vals)
	if err != nil {
		return nil, "", err
	}
	rel, ok := r.(*release.Release)
	if !ok {
		return nil, "", fmt.Errorf("release of type %T", r)
	}
	objs, err := decodeStream([]byte(rel.Manifest))
	return objs, rel.Info.Notes, err
}

// decodeStream splits a YAML stream into objects, skipping empty
// documents.
func decodeStream(stream []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := utilyaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, fmt.Errorf("%w in\n%s", err, doc)
		}
		if len(obj.Object) == 0 {
			continue
		}
		objs = append(objs, obj)
	}
}

func mustRender(t *testing.T, vals map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, _, err := renderChart(loadChart(t), vals)
	if err != nil {
		t.Fatalf("render with %v: %v", vals, err)
	}
	return objs
}

// key names an object as "Kind namespace/name".
func key(obj *unstructured.Unstructured) string { return lab.Describe(obj) }

func byKey(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		out[key(o)] = o
	}
	return out
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
	}{
		{"defaults", nil},
		{"other values", otherValues()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = releaseNamespace
			res := lint.Run([]string{chartDir}, tc.vals)
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if len(res.Errors) > 0 || res.TotalChartsLinted != 1 {
				t.Errorf("helm lint --strict: %d charts linted, errors %v", res.TotalChartsLinted, res.Errors)
			}
		})
	}
}

// helmLabels are the labels the chart adds to every object's metadata
// (leakguard.labels in _helpers.tpl) that deploy/ does not have; the
// comparison with kustomize leaves them out.
var helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance"}

// hashedRE is the hash suffix of the policy ConfigMap's name (kustomize's
// hash of the data and the chart's, sha256, differ) and of the trial
// token's Job (the chart's only): the comparison leaves both out.
var hashedRE = regexp.MustCompile(`^(leakguard-policy|leakguard-webhook-token)-[a-z0-9]{10}$`)

// normalise makes an object comparable across the two renders: without
// helmLabels (an empty labels map removed), with the policy ConfigMap's
// name (in the ConfigMap and where the Deployment mounts it) without its
// hash suffix.
func normalise(obj *unstructured.Unstructured) *unstructured.Unstructured {
	obj = obj.DeepCopy()
	labels := obj.GetLabels()
	for _, l := range helmLabels {
		delete(labels, l)
	}
	obj.SetLabels(labels)
	if m := hashedRE.FindStringSubmatch(obj.GetName()); m != nil {
		obj.SetName(m[1])
	}
	vols, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "volumes")
	for _, v := range vols {
		cm, _, _ := unstructured.NestedMap(v.(map[string]any), "configMap")
		if name, ok := cm["name"].(string); ok {
			if m := hashedRE.FindStringSubmatch(name); m != nil {
				_ = unstructured.SetNestedField(v.(map[string]any), m[1], "configMap", "name")
			}
		}
	}
	if len(vols) > 0 {
		_ = unstructured.SetNestedSlice(obj.Object, vols, "spec", "template", "spec", "volumes")
	}
	return obj
}

func normaliseAll(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = normalise(o)
	}
	return out
}

// TestMatchesKustomize renders the chart with its defaults (and
// namespace.create, so that the Namespace object is there too) and
// deploy/overlays/kube-prometheus-stack with kustomize, which the defaults
// install: the same objects with the same specs, but for the
// normalisation of normalise (Helm's labels, the policy ConfigMap's hash).
func TestMatchesKustomize(t *testing.T) {
	_, want, err := lab.RenderDeploy(deployDir, "overlays/kube-prometheus-stack")
	if err != nil {
		t.Fatal(err)
	}
	got := mustRender(t, map[string]any{"namespace": map[string]any{"create": true}})
	if compared := compareRenders(t, want, got); compared < 20 {
		t.Errorf("compared %d objects, want deploy/'s (20 or more)", compared)
	}
	for _, o := range got {
		for _, l := range helmLabels {
			if _, ok := o.GetLabels()[l]; !ok {
				t.Errorf("%s has no label %s", key(o), l)
			}
		}
	}
}

// compareRenders reports each object that one render has and the other
// has not, and each difference of the objects both have (after
// normalise), and returns how many objects it compared.
func compareRenders(t *testing.T, want, got []*unstructured.Unstructured) int {
	t.Helper()
	wantBy, gotBy := byKey(normaliseAll(want)), byKey(normaliseAll(got))
	var keys []string
	for k := range wantBy {
		keys = append(keys, k)
	}
	for k := range gotBy {
		if _, ok := wantBy[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	compared := 0
	for _, k := range keys {
		w, g := wantBy[k], gotBy[k]
		switch {
		case w == nil:
			t.Errorf("the chart renders %s, which kustomize does not", k)
		case g == nil:
			t.Errorf("kustomize renders %s, which the chart does not", k)
		default:
			compared++
			if diff := cmp.Diff(w.Object, g.Object); diff != "" {
				t.Errorf("%s (-kustomize +chart):\n%s", k, diff)
			}
		}
	}
	return compared
}

// TestMatchesKustomizeComponents renders each chart mode that a component
// of deploy/components stands for and compares it with kustomize's render
// of overlays/kube-prometheus-stack with that component: tls.mode off and
// components/plain-http, tls.mode certManager and components/cert-manager,
// token.trialJob and components/trial-token.
func TestMatchesKustomizeComponents(t *testing.T) {
	for _, tc := range []struct {
		component string
		vals      map[string]any
	}{
		{"plain-http", map[string]any{"tls": map[string]any{"mode": "off"}}},
		{"cert-manager", map[string]any{"tls": map[string]any{"mode": "certManager"}}},
		{"trial-token", map[string]any{"token": map[string]any{"trialJob": true}}},
	} {
		t.Run(tc.component, func(t *testing.T) {
			const dir = ".chart-test-overlay"
			_, want, err := lab.RenderDeployWith(deployDir, dir, map[string][]byte{
				dir + "/kustomization.yaml": []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../overlays/kube-prometheus-stack\ncomponents:\n  - ../components/" + tc.component + "\n"),
			})
			if err != nil {
				t.Fatal(err)
			}
			vals := map[string]any{"namespace": map[string]any{"create": true}}
			for k, v := range tc.vals {
				vals[k] = v
			}
			if compared := compareRenders(t, want, mustRender(t, vals)); compared < 20 {
				t.Errorf("compared %d objects, want deploy/'s (20 or more)", compared)
			}
		})
	}
}

// TestStableRender checks what Argo CD needs to sync without a diff every
// time: two renders are equal, and no template calls a function whose
// result changes between renders or depends on the cluster.
func TestStableRender(t *testing.T) {
	c := loadChart(t)
	for _, vals := range []map[string]any{nil, otherValues()} {
		_, _, err := renderChart(c, vals)
		if err != nil {
			t.Fatal(err)
		}
		install := func() string {
			objs, _, err := renderChart(c, vals)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, o := range objs {
				data, _ := o.MarshalJSON()
				b.Write(data)
			}
			return b.String()
		}
		if first, second := install(), install(); first != second {
			t.Errorf("two renders differ:\n%s", cmp.Diff(first, second))
		}
	}
	unstable := regexp.MustCompile(`\b(lookup|rand[A-Za-z]*|uuidv4|now|date|genCA|genPrivateKey|genSelfSignedCert|genSignedCert|htpasswd)\b`)
	action := regexp.MustCompile(`\{\{.*?\}\}`)
	for _, f := range c.Templates {
		for _, a := range action.FindAllString(string(f.Data), -1) {
			if m := unstable.FindString(a); m != "" {
				t.Errorf("%s calls %s: %s", f.Name, m, a)
			}
		}
	}
}
