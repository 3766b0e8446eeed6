package chart

import (
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
)

// This file is the map from deploy/'s objects to the chart's values: which
// field of which object a value sets, and which value's condition an
// object is written under. To make another field a value: add an edit to
// the object's rule in objectRules (its path, what the template writes
// there, and the value name whose default the render gives), add the
// value with its comment to static/values.yaml.gotmpl, and assert it in
// deploy/helm/test (TestTemplateValues).

// op is what an edit does at the nodes its path names.
type op int

const (
	// opValue replaces a scalar with {{ expr }}.
	opValue op = iota
	// opBlock replaces a mapping or list with {{ toYaml expr }}.
	opBlock
	// opText replaces a string with a literal block of expr's text.
	opText
	// opIf writes the node (a mapping's field or a list item) only when
	// expr holds.
	opIf
	// opWith adds the optional field key to a mapping, set to expr when
	// expr is not empty.
	opWith
	// opAppend adds the lines raw after a list's items.
	opAppend
	// opMerge adds the lines raw to a mapping.
	opMerge
	// opDelete removes a mapping's field.
	opDelete
)

// edit is one change of an object.
type edit struct {
	path path
	op   op
	expr string
	// key is the field opWith adds; scalar writes its value quoted rather
	// than as a block.
	key    string
	scalar bool
	// raw is opAppend's and opMerge's template text, one line each;
	// NINDENT in it is replaced by the indentation of the place.
	raw []string
	// capture names the value whose default (in values.yaml) is the
	// rendered node, with the prefix trim removed from a scalar.
	capture string
	trim    string
	// optional lets the path match nothing.
	optional bool
}

// rule selects objects by kind and name (empty: any; the name in the
// kustomization, before a hash suffix) or by a label they carry, writes
// them under cond (empty: always) and applies edits.
type rule struct {
	kind, name, label string
	cond              string
	edits             []edit
}

func (r rule) matches(res *resource.Resource) bool {
	if r.kind != "" && r.kind != res.GetKind() {
		return false
	}
	if r.name != "" && r.name != origName(res) {
		return false
	}
	if r.label != "" {
		if _, ok := res.GetLabels()[r.label]; !ok {
			return false
		}
	}
	return true
}

// Template expressions the rules share; the named templates are in
// static/templates/_helpers.tpl.
const (
	exprNamespace   = `include "leakguard.namespace" .`
	exprMonitoring  = `.Values.monitoring.namespace`
	exprTLSOn       = `ne (include "leakguard.tlsMode" .) "off"`
	exprPortName    = `include "leakguard.portName" .`
	exprScheme      = `include "leakguard.scheme" .`
	exprTokenSecret = `include "leakguard.tokenSecret" . | quote`
	exprTLSSecret   = `include "leakguard.tlsSecret" . | quote`
)

// namespaceExprs replace a namespace field (metadata.namespace, a
// subject's) that names one of deploy/'s two namespaces, in every object.
var namespaceExprs = map[string]string{
	"leakguard":  exprNamespace,
	"monitoring": exprMonitoring,
	// components/cert-manager's CA Certificate lives in cert-manager's
	// cluster resource namespace (a ClusterIssuer's Secrets are read there).
	"cert-manager": ".Values.tls.certManager.clusterResourceNamespace",
}

// substitutions replace text within every string of every object: old,
// then its replacement as literal text and expressions in turn.
var substitutions = []struct {
	old   string
	parts []string
}{
	// The Service's URL and TLS server name (the AlertmanagerConfig, the
	// ServiceMonitor); its scheme follows tls.mode.
	{"https://leakguard.", []string{"", `include "leakguard.urlScheme" .`, "://leakguard."}},
	{".leakguard.svc", []string{".", exprNamespace, ".svc"}},
	// The admission policies' matchConditions name serve's account.
	{"system:serviceaccount:leakguard:", []string{"system:serviceaccount:", exprNamespace, ":"}},
}

// hashedNames are the objects kustomize generates with a hash of their
// data in the name (configMapGenerator), and the expression of the
// chart's hash, of the data as the chart renders it: a change of the
// policy rolls the Deployment, as with kustomize.
var hashedNames = map[string]string{
	"leakguard-policy": `include "leakguard.policy" . | sha256sum | trunc 10`,
}

// componentValues are deploy/components that only add objects: each
// component's objects are written under its value (the remediators'
// rights, the trial token's Job, cert-manager's certificates).
// components/plain-http patches the base's objects instead: tls.mode off
// is the rules' conditions (exprTLSOn), and deploy/helm/test compares it
// with kustomize's render of that component.
var componentValues = map[string]string{
	"restart":      ".Values.remediators.restart.enabled",
	"node":         ".Values.remediators.node.enabled",
	"profile":      ".Values.remediators.profile.enabled",
	"trial-token":  ".Values.token.trialJob",
	"cert-manager": `eq (include "leakguard.tlsMode" .) "certManager"`,
}

// exprOwnCA holds when the chart makes the CA of components/cert-manager
// (no issuer of the user's).
const exprOwnCA = "not .Values.tls.certManager.issuerRef"

// exprIssuer is the issuer of serve's certificate and of the CA's copy in
// the monitoring namespace: the user's, else components/cert-manager's
// ClusterIssuer leakguard-ca.
const exprIssuer = `(.Values.tls.certManager.issuerRef | default (dict "group" "cert-manager.io" "kind" "ClusterIssuer" "name" "leakguard-ca"))`

// The grafana-operator's GrafanaDashboard objects, which deploy/ does not
// include, and their value.
const (
	grafanaOperatorFile  = "grafana/grafanadashboards.yaml"
	grafanaOperatorValue = ".Values.dashboards.grafanaOperator.enabled"
)

// p splits a path written with dots; a segment with a dot of its own
// (a label key) is written in braces: p("metadata.labels.{app.kubernetes.io/name}").
func p(s string) path {
	var out path
	for s != "" {
		if strings.HasPrefix(s, "{") {
			end := strings.Index(s, "}")
			out = append(out, s[1:end])
			s = strings.TrimPrefix(s[end+1:], ".")
			continue
		}
		seg, rest, _ := strings.Cut(s, ".")
		// A list selector's value may hold dots ([=--tls-cert-file=/a.crt]).
		if strings.HasPrefix(seg, "[") && !strings.HasSuffix(seg, "]") {
			end := strings.Index(s, "]")
			seg, rest = s[:end+1], strings.TrimPrefix(s[end+1:], ".")
		}
		out = append(out, seg)
		s = rest
	}
	return out
}

// objectRules are applied in order; an object may match several.
var objectRules = []rule{
	{kind: "Namespace", name: "leakguard", cond: ".Values.namespace.create", edits: []edit{
		{path: p("metadata.name"), op: opValue, expr: exprNamespace},
	}},
	{kind: "Deployment", name: "leakguard-serve", edits: serveEdits()},
	{kind: "Service", name: "leakguard", edits: []edit{
		{path: p("spec.ports.[name=https].targetPort"), op: opValue, expr: exprPortName},
		{path: p("spec.ports.[name=https].name"), op: opValue, expr: exprPortName},
	}},
	{kind: "PodDisruptionBudget", name: "leakguard-serve", cond: ".Values.serve.podDisruptionBudget.enabled"},
	{kind: "NetworkPolicy", name: "leakguard-serve", cond: ".Values.networkPolicy.enabled", edits: []edit{
		{path: p("spec.ingress.*.from.*.namespaceSelector.matchLabels.{kubernetes.io/metadata.name}"), op: opValue, expr: exprMonitoring},
		{path: p("spec.ingress.*.ports.[port=https].port"), op: opValue, expr: exprPortName},
	}},
	{kind: "ClusterRole", name: "leakguard-serve", edits: []edit{
		{path: p("rules"), op: opAppend, raw: []string{
			"{{- with .Values.rbac.extraOwnerRules }}",
			"{{- toYaml . | nindent NINDENT }}",
			"{{- end }}",
		}},
	}},
	{kind: "ValidatingAdmissionPolicy", cond: ".Values.admissionPolicies.enabled"},
	{kind: "ValidatingAdmissionPolicyBinding", cond: ".Values.admissionPolicies.enabled"},
	{kind: "ConfigMap", name: "leakguard-policy", edits: []edit{
		{path: p("data.{policy.yaml}"), op: opText, expr: `include "leakguard.policy" .`, capture: "policy"},
	}},
	// The objects kube-prometheus-stack's Prometheus selects by label
	// (release: <its release>): their own release label becomes the
	// value monitoring.labels.
	{kind: "PrometheusRule", cond: ".Values.prometheusRule.enabled", edits: []edit{
		{path: p("metadata.labels.release"), op: opDelete, capture: "monitoring.labels.release"},
	}},
	{kind: "PrometheusRule", edits: monitoringLabels()},
	{kind: "ServiceMonitor", cond: ".Values.serviceMonitor.enabled", edits: append(monitoringLabels(),
		edit{path: p("spec.endpoints.[port=https].scheme"), op: opValue, expr: exprScheme},
		edit{path: p("spec.endpoints.[port=https].tlsConfig.ca.secret.name"), op: opValue, expr: exprTLSSecret},
		edit{path: p("spec.endpoints.[port=https].tlsConfig"), op: opIf, expr: exprTLSOn},
		// Last: the edits above find the endpoint by its port.
		edit{path: p("spec.endpoints.[port=https].port"), op: opValue, expr: exprPortName},
	)},
	{kind: "PodMonitor", cond: ".Values.podMonitor.enabled", edits: monitoringLabels()},
	{kind: "AlertmanagerConfig", cond: ".Values.alertmanagerConfig.enabled", edits: []edit{
		{path: p("metadata.labels"), op: opMerge, raw: []string{
			"{{- with .Values.alertmanagerConfig.labels }}",
			"{{- toYaml . | nindent NINDENT }}",
			"{{- end }}",
		}},
		{path: p("spec.receivers.[name=leakguard].webhookConfigs.*.httpConfig.authorization.credentials.name"), op: opValue, expr: exprTokenSecret},
		{path: p("spec.receivers.[name=leakguard].webhookConfigs.*.httpConfig.authorization.credentials.key"), op: opValue, expr: ".Values.token.key | quote"},
		{path: p("spec.receivers.[name=leakguard].webhookConfigs.*.httpConfig.tlsConfig.ca.secret.name"), op: opValue, expr: exprTLSSecret},
		{path: p("spec.receivers.[name=leakguard].webhookConfigs.*.httpConfig.tlsConfig"), op: opIf, expr: exprTLSOn},
	}},
	{kind: "ConfigMap", label: "grafana_dashboard", cond: ".Values.dashboards.sidecar.enabled"},
	{kind: "GrafanaDashboard", edits: []edit{
		{path: p("spec.instanceSelector"), op: opBlock, expr: ".Values.dashboards.grafanaOperator.instanceSelector", capture: "dashboards.grafanaOperator.instanceSelector"},
	}},
	// components/cert-manager: the self-signed ClusterIssuer, the CA and
	// the CA's ClusterIssuer only without an issuer of the user's; the two
	// Certificates (serve's, and the CA's copy in the monitoring
	// namespace) from whichever issuer.
	{kind: "ClusterIssuer", cond: exprOwnCA},
	{kind: "Certificate", name: "leakguard-ca", cond: exprOwnCA, edits: []edit{
		{path: p("spec.duration"), op: opValue, expr: ".Values.tls.certManager.caDuration", capture: "tls.certManager.caDuration"},
	}},
	{kind: "Certificate", name: "leakguard-webhook", edits: certificateEdits()},
	{kind: "Certificate", name: "leakguard-webhook-ca", edits: certificateEdits()},
	// components/trial-token: the Job that makes the token Secret in both
	// namespaces. A Job's pod template cannot change: its name carries a
	// hash of what the template takes from the values, so that an upgrade
	// (a new image) replaces the Job, whose re-run changes nothing.
	{kind: "Job", name: "leakguard-webhook-token", edits: trialJobEdits()},
	// The node agent, whatever the kind.
	{name: "leakguard-agent", cond: ".Values.agent.enabled"},
	{kind: "DaemonSet", name: "leakguard-agent", edits: agentEdits()},
}

// monitoringLabels adds monitoring.labels to the labels of an object that
// Prometheus selects.
func monitoringLabels() []edit {
	return []edit{
		{path: p("metadata.labels"), op: opMerge, raw: []string{
			"{{- with .Values.monitoring.labels }}",
			"{{- toYaml . | nindent NINDENT }}",
			"{{- end }}",
		}},
	}
}

func serveEdits() []edit {
	const pod = "spec.template.spec."
	const c = pod + "containers.[name=serve]."
	return []edit{
		{path: p("spec.replicas"), op: opValue, expr: ".Values.serve.replicas", capture: "serve.replicas"},
		{path: p(c + "image"), op: opValue, expr: `include "leakguard.image" (list .Values.image .Chart.AppVersion) | quote`, capture: "image"},
		{path: p(c), op: opWith, key: "imagePullPolicy", expr: ".Values.image.pullPolicy", scalar: true},
		{path: p(c + "args.[=--prometheus-url=*]"), op: opValue, expr: `printf "--prometheus-url=%s" .Values.prometheus.url | quote`, capture: "prometheus.url", trim: "--prometheus-url="},
		{path: p(c + "args.[=--log-level=*]"), op: opValue, expr: `printf "--log-level=%s" .Values.serve.logLevel | quote`, capture: "serve.logLevel", trim: "--log-level="},
		{path: p(c + "args.[=--bearer-token-file=*]"), op: opValue, expr: `printf "--bearer-token-file=/etc/leakguard/token/%s" .Values.token.key | quote`, capture: "token.key", trim: "--bearer-token-file=/etc/leakguard/token/"},
		{path: p(c + "args.[=--tls-cert-file=*]"), op: opIf, expr: exprTLSOn},
		{path: p(c + "args.[=--tls-key-file=*]"), op: opIf, expr: exprTLSOn},
		{path: p(c + "args"), op: opAppend, raw: []string{
			"{{- if .Values.dryRun }}",
			"- --dry-run",
			"{{- end }}",
			"{{- if .Values.prometheus.clientConfig }}",
			"- --prometheus-config-file=/etc/leakguard/prometheus/config.yaml",
			"{{- end }}",
			"{{- with .Values.serve.extraArgs }}",
			"{{- toYaml . | nindent NINDENT }}",
			"{{- end }}",
		}},
		{path: p(c + "ports.[name=https].name"), op: opValue, expr: exprPortName},
		{path: p(c + "readinessProbe.httpGet.port"), op: opValue, expr: exprPortName},
		{path: p(c + "readinessProbe.httpGet.scheme"), op: opValue, expr: exprScheme},
		{path: p(c + "livenessProbe.httpGet.port"), op: opValue, expr: exprPortName},
		{path: p(c + "livenessProbe.httpGet.scheme"), op: opValue, expr: exprScheme},
		{path: p(c + "resources"), op: opBlock, expr: ".Values.serve.resources", capture: "serve.resources"},
		{path: p(c + "volumeMounts.[name=tls]"), op: opIf, expr: exprTLSOn},
		{path: p(c + "volumeMounts"), op: opAppend, raw: []string{
			"{{- if .Values.prometheus.clientConfig }}",
			"- name: prometheus-config",
			"  mountPath: /etc/leakguard/prometheus",
			"  readOnly: true",
			"{{- end }}",
		}},
		{path: p(pod + "volumes.[name=token].secret.secretName"), op: opValue, expr: exprTokenSecret, capture: "token.existingSecret"},
		{path: p(pod + "volumes.[name=tls].secret.secretName"), op: opValue, expr: exprTLSSecret, capture: "tls.existingSecret"},
		{path: p(pod + "volumes.[name=tls]"), op: opIf, expr: exprTLSOn},
		{path: p(pod + "volumes"), op: opAppend, raw: []string{
			"{{- if .Values.prometheus.clientConfig }}",
			"- name: prometheus-config",
			"  secret:",
			"    secretName: leakguard-prometheus-config",
			"{{- end }}",
		}},
		{path: p(pod + "topologySpreadConstraints"), op: opBlock, expr: ".Values.serve.topologySpreadConstraints", capture: "serve.topologySpreadConstraints"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "affinity", expr: ".Values.serve.affinity"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "nodeSelector", expr: ".Values.serve.nodeSelector"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "tolerations", expr: ".Values.serve.tolerations"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "priorityClassName", expr: ".Values.serve.priorityClassName", scalar: true},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "imagePullSecrets", expr: ".Values.imagePullSecrets"},
	}
}

func certificateEdits() []edit {
	return []edit{
		{path: p("spec.issuerRef"), op: opBlock, expr: exprIssuer},
		{path: p("spec.duration"), op: opValue, expr: ".Values.tls.certManager.duration", capture: "tls.certManager.duration"},
		{path: p("spec.renewBefore"), op: opValue, expr: ".Values.tls.certManager.renewBefore", capture: "tls.certManager.renewBefore"},
	}
}

func trialJobEdits() []edit {
	const pod = "spec.template.spec."
	const c = pod + "containers.[name=token]."
	return []edit{
		{path: p("metadata.name"), op: opValue, expr: `printf "leakguard-webhook-token-%s" (include "leakguard.trialJobHash" .)`},
		{path: p(c + "image"), op: opValue, expr: `include "leakguard.image" (list .Values.image .Chart.AppVersion) | quote`, capture: "image"},
		{path: p(c), op: opWith, key: "imagePullPolicy", expr: ".Values.image.pullPolicy", scalar: true},
		{path: p(c + "args.[=--namespace=*]"), op: opValue, expr: `printf "--namespace=%s" (include "leakguard.namespace" .) | quote`},
		{path: p(c + "args.[=--key=*]"), op: opValue, expr: `printf "--key=%s" .Values.token.key | quote`, capture: "token.key", trim: "--key="},
		{path: p(c + "args.[=--copy-to-namespace=*]"), op: opValue, expr: `printf "--copy-to-namespace=%s" .Values.monitoring.namespace | quote`},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "imagePullSecrets", expr: ".Values.imagePullSecrets"},
	}
}

func agentEdits() []edit {
	const pod = "spec.template.spec."
	const c = pod + "containers.[name=agent]."
	return []edit{
		{path: p(c + "image"), op: opValue, expr: `include "leakguard.image" (list .Values.agent.image .Chart.AppVersion) | quote`, capture: "agent.image"},
		{path: p(c), op: opWith, key: "imagePullPolicy", expr: ".Values.agent.image.pullPolicy", scalar: true},
		{path: p(c + "resources"), op: opBlock, expr: ".Values.agent.resources", capture: "agent.resources"},
		{path: p(pod + "tolerations"), op: opBlock, expr: ".Values.agent.tolerations", capture: "agent.tolerations"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "affinity", expr: ".Values.agent.affinity"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "nodeSelector", expr: ".Values.agent.nodeSelector"},
		{path: p(pod[:len(pod)-1]), op: opWith, key: "imagePullSecrets", expr: ".Values.imagePullSecrets"},
	}
}
