package chart

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// copyDeploy copies ../../deploy (without the chart) into a temporary
// directory, with change applied to the files it names.
func copyDeploy(t *testing.T, change map[string]func(string) string) string {
	t.Helper()
	dst := t.TempDir()
	src := "../../deploy"
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "helm" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if f, ok := change[filepath.ToSlash(rel)]; ok {
			data = []byte(f(string(data)))
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestFiles checks the chart's files from deploy/ as it is: every object
// a template, the defaults read from the render.
func TestFiles(t *testing.T) {
	files, err := Files("../../deploy", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Chart.yaml", "values.yaml", "files/policy.yaml", "templates/_helpers.tpl", "templates/NOTES.txt", "templates/deployment-leakguard-serve.yaml", "templates/configmap-leakguard-policy.yaml", "templates/clusterrole-leakguard-serve-restart.yaml", "templates/grafanadashboard-leakguard-overview.yaml", "templates/certificate-leakguard-webhook.yaml", "templates/certificate-leakguard-webhook-ca.yaml", "templates/job-leakguard-webhook-token.yaml", "templates/role-monitoring-leakguard-token.yaml", "values.schema.json"} {
		if _, ok := files[Dir+"/"+want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	values := string(files[Dir+"/values.yaml"])
	for _, want := range []string{"  replicas: 2\n", "  url: http://prometheus-operated.monitoring.svc:9090\n", "  repository: ghcr.io/leakguard/leakguard\n", "    release: kube-prometheus-stack\n", "  existingSecret: leakguard-webhook-token\n"} {
		if !strings.Contains(values, want) {
			t.Errorf("values.yaml lacks %q", want)
		}
	}
	if got := string(files[Dir+"/Chart.yaml"]); !strings.Contains(got, "appVersion: v0.1.0\n") || !strings.Contains(got, "version: 0.1.0\n") {
		t.Errorf("Chart.yaml:\n%s", got)
	}
	// components/cert-manager's CA in cert-manager's namespace, a value;
	// the trial token's Job under its value.
	if got := string(files[Dir+"/templates/certificate-leakguard-ca.yaml"]); !strings.Contains(got, "  namespace: {{ .Values.tls.certManager.clusterResourceNamespace }}\n") {
		t.Errorf("certificate-leakguard-ca.yaml does not take its namespace from tls.certManager.clusterResourceNamespace:\n%s", got)
	}
	if got := string(files[Dir+"/templates/job-leakguard-webhook-token.yaml"]); !strings.Contains(got, "{{- if .Values.token.trialJob }}\n") {
		t.Errorf("job-leakguard-webhook-token.yaml is not under token.trialJob:\n%s", got)
	}
	rule := string(files[Dir+"/templates/prometheusrule-leakguard.yaml"])
	if strings.Contains(rule, "{{ $labels") || !strings.Contains(rule, `{{ "{{" }} $labels.node {{ "}}" }}`) {
		t.Errorf("the PrometheusRule's own templates are not escaped for Helm")
	}
}

// TestFilesFollowsDeploy checks that a value's default follows deploy/:
// a change of the base changes values.yaml.
func TestFilesFollowsDeploy(t *testing.T) {
	dir := copyDeploy(t, map[string]func(string) string{
		"leakguard/deployment.yaml": func(s string) string { return strings.Replace(s, "replicas: 2", "replicas: 4", 1) },
	})
	files, err := Files(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(files[Dir+"/values.yaml"]), "  replicas: 4\n") {
		t.Errorf("values.yaml does not follow deploy/'s replicas")
	}
}

// TestFilesRefuses checks that a change of deploy/ the generator cannot
// express fails with an error naming what, rather than a chart that
// silently drops a value.
func TestFilesRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change map[string]func(string) string
		want   string
	}{
		{"a templated field gone", map[string]func(string) string{
			"leakguard/deployment.yaml": func(s string) string { return strings.Replace(s, "            - --log-level=info\n", "", 1) },
		}, "Deployment leakguard-serve: spec.template.spec.containers.[name=serve].args.[=--log-level=*]: no such field"},
		{"two image tags", map[string]func(string) string{
			"agent/kustomization.yaml": func(s string) string { return strings.Replace(s, "newTag: v0.1.0", "newTag: v0.2.0", 1) },
		}, "the images have tags"},
		{"a component that patches the base", map[string]func(string) string{
			"components/profile/kustomization.yaml": func(s string) string {
				return s + "patches:\n  - target:\n      kind: Deployment\n      name: leakguard-serve\n    patch: |-\n      - op: replace\n        path: /spec/replicas\n        value: 1\n"
			},
		}, "component profile changes Deployment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := Files(copyDeploy(t, tc.change), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Files: %d files, error %v; want one containing %q", len(files), err, tc.want)
			}
		})
	}
}

// TestEdits checks each kind of edit on a small object.
func TestEdits(t *testing.T) {
	const doc = `apiVersion: v1
kind: Pod
metadata:
  name: x
  namespace: leakguard
  annotations:
    note: "{{ not a template }}"
spec:
  containers:
  - name: c
    args:
    - a
    - --b=1
    resources:
      limits:
        memory: 1Mi
  volumes:
  - name: v
    emptyDir: {}
  data: |
    text
`
	edits := []edit{
		{path: p("spec.containers.[name=c].args.[=--b=*]"), op: opValue, expr: `printf "--b=%d" .Values.b`, capture: "b", trim: "--b="},
		{path: p("spec.containers.[name=c].args"), op: opAppend, raw: []string{"{{- with .Values.more }}", "{{- toYaml . | nindent NINDENT }}", "{{- end }}"}},
		{path: p("spec.containers.[name=c].resources"), op: opBlock, expr: ".Values.resources", capture: "resources"},
		{path: p("spec.volumes.[name=v]"), op: opIf, expr: ".Values.v"},
		{path: p("spec.data"), op: opText, expr: ".Values.text"},
		{path: p("spec"), op: opWith, key: "priorityClassName", expr: ".Values.pc", scalar: true},
		{path: p("metadata.annotations"), op: opMerge, raw: []string{"{{- include \"x\" . | nindent NINDENT }}"}},
	}
	rn, err := kyaml.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	root := rn.YNode()
	tp := newTemplate()
	namespaces(tp, root)
	g := &generator{captured: map[string]any{}}
	for _, e := range edits {
		if err := g.apply(tp, root, e); err != nil {
			t.Fatalf("%s: %v", e.path, err)
		}
	}
	out, err := marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.expand(out)
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: v1
kind: Pod
metadata:
  name: x
  namespace: {{ include "leakguard.namespace" . }}
  annotations:
    note: "{{ "{{" }} not a template {{ "}}" }}"
    {{- include "x" . | nindent 4 }}
spec:
  containers:
  - name: c
    args:
    - a
    - {{ printf "--b=%d" .Values.b }}
    {{- with .Values.more }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    resources: {{- toYaml .Values.resources | nindent 6 }}
  volumes:
  {{- if .Values.v }}
  - name: v
    emptyDir: {}
  {{- end }}
  data: |
    {{- .Values.text | nindent 4 }}
  {{- with .Values.pc }}
  priorityClassName: {{ . | quote }}
  {{- end }}
`
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("template (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"b": "1", "resources": map[string]any{"limits": map[string]any{"memory": "1Mi"}}}, g.captured); diff != "" {
		t.Errorf("captured defaults (-want +got):\n%s", diff)
	}
}
