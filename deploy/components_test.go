package deploy

import (
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	monitoringv1alpha1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// renderWith renders deploy/leakguard with the named components; objects
// of kinds DecodeStrict does not know (cert-manager's) are kept in objs
// only.
func renderWith(t *testing.T, components ...string) rendered {
	t.Helper()
	stream, objs, err := lab.RenderLeakguard(".", components...)
	if err != nil {
		t.Fatalf("render leakguard with %v: %v", components, err)
	}
	r := rendered{stream: stream, objs: objs}
	for _, obj := range objs {
		if obj.GroupVersionKind().Group == "cert-manager.io" {
			continue
		}
		typed, err := lab.DecodeStrict(obj)
		if err != nil {
			t.Fatal(err)
		}
		r.typed = append(r.typed, typed)
	}
	return r
}

func serveContainer(t *testing.T, r rendered) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := find[*appsv1.Deployment](t, r, "leakguard-serve")
	return d, d.Spec.Template.Spec.Containers[0]
}

// TestTrialToken: the Job creates the Secret the Deployment mounts, under
// the key --bearer-token-file reads, with the serve image's tag, as an
// account that may get that one Secret and create secrets, and nothing
// more.
func TestTrialToken(t *testing.T) {
	r := renderWith(t, "trial-token")
	d, serve := serveContainer(t, r)
	var tokenSecret, tokenFile string
	for _, a := range serve.Args {
		if v, ok := strings.CutPrefix(a, "--bearer-token-file="); ok {
			tokenFile = v
		}
	}
	for _, m := range serve.VolumeMounts {
		if m.MountPath == path.Dir(tokenFile) {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					tokenSecret = v.Secret.SecretName
				}
			}
		}
	}
	if tokenSecret == "" {
		t.Fatalf("--bearer-token-file %q is not in a Secret volume", tokenFile)
	}
	job := find[*batchv1.Job](t, r, "leakguard-webhook-token")
	c := job.Spec.Template.Spec.Containers[0]
	want := []string{"token", "ensure", "--namespace=" + d.Namespace, "--secret=" + tokenSecret, "--key=" + path.Base(tokenFile), "--copy-to-namespace=monitoring"}
	if diff := cmp.Diff(want, c.Args); diff != "" {
		t.Errorf("the Job's args (-want +got):\n%s", diff)
	}
	if c.Image != serve.Image {
		t.Errorf("the Job runs %s, serve %s: want the same image and tag", c.Image, serve.Image)
	}
	if job.Namespace != d.Namespace {
		t.Errorf("the Job runs in %s, serve in %s", job.Namespace, d.Namespace)
	}
	sa := job.Spec.Template.Spec.ServiceAccountName
	if sa == d.Spec.Template.Spec.ServiceAccountName || sa == "" {
		t.Errorf("the Job runs as %q, want an account of its own", sa)
	}
	// In serve's namespace and in Alertmanager's, get on the one Secret
	// and create on secrets, bound to the Job's account.
	wantRules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{tokenSecret}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
	}
	bound := map[string]bool{}
	for _, obj := range r.typed {
		b, ok := obj.(*rbacv1.RoleBinding)
		if !ok || b.Name != "leakguard-token" {
			continue
		}
		bound[b.Namespace] = true
		if len(b.Subjects) != 1 || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != job.Namespace {
			t.Errorf("RoleBinding %s/%s subjects %+v, want the Job's account %s", b.Namespace, b.Name, b.Subjects, sa)
		}
		var role *rbacv1.Role
		for _, obj := range r.typed {
			if o, ok := obj.(*rbacv1.Role); ok && o.Name == b.RoleRef.Name && o.Namespace == b.Namespace {
				role = o
			}
		}
		if role == nil {
			t.Errorf("RoleBinding %s/%s names no Role of its namespace", b.Namespace, b.Name)
			continue
		}
		if diff := cmp.Diff(wantRules, role.Rules); diff != "" {
			t.Errorf("Role %s/%s (-want +got):\n%s", role.Namespace, role.Name, diff)
		}
	}
	receiver, err := os.ReadFile("alertmanager/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := "credentials_file: /etc/alertmanager/secrets/" + tokenSecret + "/" + path.Base(tokenFile); !strings.Contains(string(receiver), want) {
		t.Errorf("receiver.yaml does not say %q, where the copy in monitoring is mounted", want)
	}
	if diff := cmp.Diff(map[string]bool{d.Namespace: true, "monitoring": true}, bound); diff != "" {
		t.Errorf("namespaces where the Job's account is bound (-want +got):\n%s", diff)
	}
	for _, obj := range r.typed {
		switch o := obj.(type) {
		case *corev1.Secret:
			t.Errorf("the render holds Secret %s: the token must not be rendered", o.Name)
		case *rbacv1.ClusterRoleBinding:
			for _, s := range o.Subjects {
				if s.Name == sa {
					t.Errorf("ClusterRoleBinding %s binds the Job's account", o.Name)
				}
			}
		}
	}
}

// TestPlainHTTP: the plain-http component leaves serve's arguments as the
// base has them but for the two TLS flags, mounts no certificate, and
// every client of serve (the probes, the Service, the NetworkPolicy,
// Prometheus, Alertmanager) speaks http to the port named http.
func TestPlainHTTP(t *testing.T) {
	base := renderWith(t)
	_, baseServe := serveContainer(t, base)
	r := renderWith(t, "plain-http")
	d, serve := serveContainer(t, r)
	want := slices.DeleteFunc(slices.Clone(baseServe.Args), func(a string) bool {
		return strings.HasPrefix(a, "--tls-cert-file=") || strings.HasPrefix(a, "--tls-key-file=")
	})
	if len(want) != len(baseServe.Args)-2 {
		t.Fatalf("the base's args %q lack the two TLS flags", baseServe.Args)
	}
	if diff := cmp.Diff(want, serve.Args); diff != "" {
		t.Errorf("plain-http args (-base without TLS +plain-http):\n%s", diff)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "leakguard-webhook-tls" {
			t.Errorf("volume %s still mounts the serving certificate", v.Name)
		}
	}
	for _, m := range serve.VolumeMounts {
		if strings.Contains(m.MountPath, "tls") {
			t.Errorf("mount %s remains", m.MountPath)
		}
	}
	if len(serve.Ports) != 1 || serve.Ports[0].Name != "http" {
		t.Fatalf("ports %+v, want one named http", serve.Ports)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": serve.ReadinessProbe, "liveness": serve.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTP || p.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe %+v, want HTTP on port http", name, p)
		}
	}
	svc := find[*corev1.Service](t, r, "leakguard")
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "http" || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v, want http to the port http", svc.Spec.Ports)
	}
	np := find[*networkingv1.NetworkPolicy](t, r, "leakguard-serve")
	if p := np.Spec.Ingress[0].Ports[0].Port; p == nil || p.String() != "http" {
		t.Errorf("NetworkPolicy admits port %v, want http", p)
	}
	sm := find[*monitoringv1.ServiceMonitor](t, r, "leakguard-serve")
	if e := sm.Spec.Endpoints[0]; e.Port != "http" || e.Scheme == nil || *e.Scheme != "HTTP" || e.TLSConfig != nil {
		t.Errorf("ServiceMonitor endpoint %+v, want port http, scheme HTTP, no tlsConfig", e)
	}
	amc := find[*monitoringv1alpha1.AlertmanagerConfig](t, r, "leakguard")
	w := amc.Spec.Receivers[0].WebhookConfigs[0]
	if w.URL == nil || *w.URL != "http://"+svc.Name+"."+svc.Namespace+".svc:8443/api/v1/alerts" || w.HTTPConfig.TLSConfig != nil {
		t.Errorf("webhook %s (TLS %+v), want http:// to the Service, no tlsConfig", *w.URL, w.HTTPConfig.TLSConfig)
	}
	if w.HTTPConfig.Authorization == nil || w.HTTPConfig.Authorization.Credentials == nil {
		t.Error("the webhook sends no bearer token: plain HTTP keeps it")
	}
	if strings.Contains(string(r.stream), "https") || strings.Contains(string(r.stream), "HTTPS") {
		t.Errorf("the plain-http render still names https")
	}
}

// TestCertManager: the serving Certificate writes the Secret the
// Deployment mounts, for the host names Prometheus and Alertmanager
// verify, from a CA issuer whose Secret is the CA Certificate's (in the
// cluster resource namespace, where a ClusterIssuer reads it); the
// monitoring namespace gets the same CA's ca.crt.
func TestCertManager(t *testing.T) {
	r := renderWith(t, "cert-manager")
	d, _ := serveContainer(t, r)
	var tlsSecret string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "tls" && v.Secret != nil {
			tlsSecret = v.Secret.SecretName
		}
	}
	cm := map[string]*unstructured.Unstructured{}
	for _, obj := range r.objs {
		if obj.GroupVersionKind().Group == "cert-manager.io" {
			cm[lab.Describe(obj)] = obj
		}
	}
	str := func(obj *unstructured.Unstructured, fields ...string) string {
		t.Helper()
		if obj == nil {
			t.Fatalf("no object for %v", fields)
		}
		v, _, _ := unstructured.NestedString(obj.Object, fields...)
		return v
	}
	issuerOf := func(cert *unstructured.Unstructured) *unstructured.Unstructured {
		t.Helper()
		if k := str(cert, "spec", "issuerRef", "kind"); k != "ClusterIssuer" {
			t.Fatalf("%s: issuer kind %q, want ClusterIssuer", lab.Describe(cert), k)
		}
		return cm["ClusterIssuer "+str(cert, "spec", "issuerRef", "name")]
	}
	serving := cm["Certificate leakguard/leakguard-webhook"]
	if got := str(serving, "spec", "secretName"); got != tlsSecret || tlsSecret != "leakguard-webhook-tls" {
		t.Errorf("the serving Certificate writes %q, the Deployment mounts %q; want leakguard-webhook-tls", got, tlsSecret)
	}
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	sm := find[*monitoringv1.ServiceMonitor](t, r, "leakguard-serve")
	amc := find[*monitoringv1alpha1.AlertmanagerConfig](t, r, "leakguard")
	w := amc.Spec.Receivers[0].WebhookConfigs[0]
	for _, host := range []string{*sm.Spec.Endpoints[0].TLSConfig.ServerName, *w.HTTPConfig.TLSConfig.ServerName} {
		if !slices.Contains(dnsNames, host) {
			t.Errorf("the certificate's names %v lack %q, which a client verifies", dnsNames, host)
		}
	}
	if s := sm.Spec.Endpoints[0].TLSConfig.CA.Secret; s == nil || s.Name != tlsSecret || s.Key != "ca.crt" {
		t.Errorf("the ServiceMonitor trusts %+v, want ca.crt of %s", s, tlsSecret)
	}
	if s := w.HTTPConfig.TLSConfig.CA.Secret; s == nil || s.Name != tlsSecret || s.Key != "ca.crt" {
		t.Errorf("the AlertmanagerConfig trusts %+v, want ca.crt of %s", s, tlsSecret)
	}
	caIssuer := issuerOf(serving)
	caSecret := str(caIssuer, "spec", "ca", "secretName")
	caCert := cm["Certificate cert-manager/leakguard-ca"]
	if str(caCert, "spec", "secretName") != caSecret || caSecret == "" {
		t.Errorf("the CA issuer reads Secret %q, the CA Certificate writes %q", caSecret, str(caCert, "spec", "secretName"))
	}
	if isCA, _, _ := unstructured.NestedBool(caCert.Object, "spec", "isCA"); !isCA {
		t.Error("the CA Certificate is not isCA")
	}
	if _, ok, _ := unstructured.NestedMap(issuerOf(caCert).Object, "spec", "selfSigned"); !ok {
		t.Error("the CA Certificate's issuer is not selfSigned")
	}
	mon := cm["Certificate monitoring/leakguard-webhook-ca"]
	// receiver.yaml's ca_file, and an AlertmanagerConfig moved to
	// monitoring, name the Secret as serve's.
	if issuerOf(mon) != caIssuer || str(mon, "spec", "secretName") != tlsSecret {
		t.Errorf("the monitoring Certificate comes from %s into %q, want %s into %s", lab.Describe(issuerOf(mon)), str(mon, "spec", "secretName"), lab.Describe(caIssuer), tlsSecret)
	}
	receiver, err := os.ReadFile("alertmanager/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ca_file: /etc/alertmanager/secrets/" + str(mon, "spec", "secretName") + "/ca.crt"; !strings.Contains(string(receiver), want) {
		t.Errorf("receiver.yaml does not say %q", want)
	}
	if len(cm) != 5 {
		t.Errorf("cert-manager objects %v, want 5", slices.Sorted(func(yield func(string) bool) {
			for k := range cm {
				if !yield(k) {
					return
				}
			}
		}))
	}
}
