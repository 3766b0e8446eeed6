package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/resmap"

	"github.com/leakguard/leakguard/internal/render"
)

// RenderDeploy builds the kustomization at deployDir/kustomization (a
// directory relative to deployDir, "." for the base) with the kustomize
// API, as `kubectl apply -k` does (internal/render), and returns the YAML
// stream and its objects in order. It builds from an in-memory copy of
// deployDir, so that files can be written over it without writing into the
// checkout.
func RenderDeploy(deployDir, kustomization string) ([]byte, []*unstructured.Unstructured, error) {
	return RenderDeployWith(deployDir, kustomization, nil)
}

// RenderDeployWith is RenderDeploy with files (paths relative to
// deployDir) written over the copy first: a kustomization as a user edits
// it, say.
func RenderDeployWith(deployDir, kustomization string, files map[string][]byte) ([]byte, []*unstructured.Unstructured, error) {
	resMap, err := render.Build(deployDir, kustomization, files)
	if err != nil {
		return nil, nil, err
	}
	return objects(resMap)
}

// Components are the kustomize components under deploy/components, each
// the rights of one or two remediators: restart (restart), node (cordon,
// drain), profile (profile).
var Components = []string{"restart", "node", "profile"}

// OptionalComponents are the other components under deploy/components,
// which grant serve no right: how the webhook token and the serving
// certificate are provided (trial-token, cert-manager) or not needed
// (plain-http).
var OptionalComponents = []string{"trial-token", "cert-manager", "plain-http"}

// RenderLeakguard renders deployDir/leakguard with the named components of
// deployDir/components added, as an overlay of a user who enables their
// remediators does (resources: [leakguard], components: [...]).
func RenderLeakguard(deployDir string, components ...string) ([]byte, []*unstructured.Unstructured, error) {
	k, files, err := LeakguardOverlay(components...)
	if err != nil {
		return nil, nil, err
	}
	return RenderDeployWith(deployDir, k, files)
}

// LeakguardOverlay returns the kustomization (a directory relative to
// deploy/) and the files to write over deploy/ of RenderLeakguard's
// overlay: deploy/leakguard and deploy/alertmanager (the AlertmanagerConfig
// that routes to serve, in monitoring, which components such as plain-http
// patch) with the named components of deploy/components.
func LeakguardOverlay(components ...string) (string, map[string][]byte, error) {
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../leakguard\n  - ../alertmanager\n"
	if len(components) > 0 {
		k += "components:\n"
		for _, c := range components {
			if strings.ContainsAny(c, "/\\") || c == "" || c == "." || c == ".." {
				return "", nil, fmt.Errorf("component %q: want a directory name under components/", c)
			}
			k += "  - ../components/" + c + "\n"
		}
	}
	// A directory name that deploy/ does not use.
	return ".lab-leakguard", map[string][]byte{".lab-leakguard/kustomization.yaml": []byte(k)}, nil
}

// objects returns resMap's YAML stream and its objects in order.
func objects(resMap resmap.ResMap) ([]byte, []*unstructured.Unstructured, error) {
	stream, err := resMap.AsYaml()
	if err != nil {
		return nil, nil, err
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		// Through JSON, so that numbers are int64 and float64 as
		// unstructured objects expect.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return stream, objs, nil
}

// Describe names obj as "Kind namespace/name" or "Kind name".
func Describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return obj.GetKind() + " " + ns + "/" + obj.GetName()
	}
	return obj.GetKind() + " " + obj.GetName()
}

// customTypes are the Go types of the custom resources deploy/ ships: the
// Prometheus Operator's, whose CRDs the lab does not install.
var customTypes = map[string]func() any{
	"monitoring.coreos.com/v1, Kind=PrometheusRule":           func() any { return &monitoringv1.PrometheusRule{} },
	"monitoring.coreos.com/v1, Kind=ServiceMonitor":           func() any { return &monitoringv1.ServiceMonitor{} },
	"monitoring.coreos.com/v1, Kind=PodMonitor":               func() any { return &monitoringv1.PodMonitor{} },
	"monitoring.coreos.com/v1alpha1, Kind=AlertmanagerConfig": func() any { return &monitoringv1alpha1.AlertmanagerConfig{} },
}

// IsCustom reports whether obj is one of the custom resources that
// DecodeStrict knows; every other object deploy/ ships is built in.
func IsCustom(obj *unstructured.Unstructured) bool {
	_, ok := customTypes[obj.GroupVersionKind().String()]
	return ok
}

// DecodeStrict decodes obj into its Go type, rejecting any field the type
// does not have: built-in kinds through client-go's scheme, the Prometheus
// Operator's through their API types. A kind it knows neither way is an
// error.
func DecodeStrict(obj *unstructured.Unstructured) (any, error) {
	data, err := json.Marshal(obj.Object)
	if err != nil {
		return nil, err
	}
	if newType, ok := customTypes[obj.GroupVersionKind().String()]; ok {
		into := newType()
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(into); err != nil {
			return nil, fmt.Errorf("%s: %w", Describe(obj), err)
		}
		return into, nil
	}
	if !scheme.Scheme.Recognizes(obj.GroupVersionKind()) {
		return nil, fmt.Errorf("%s: kind %s is neither built in nor a known custom resource", Describe(obj), obj.GroupVersionKind())
	}
	decoder := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme.Scheme, scheme.Scheme,
		kjson.SerializerOptions{Strict: true})
	typed, _, err := decoder.Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", Describe(obj), err)
	}
	return typed, nil
}
