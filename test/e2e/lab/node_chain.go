package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/leakguard/leakguard/rules"
)

// RealNodeParams are LabParams with the windows that read the working set
// widened to what the real kubelet's cAdvisor can feed: it refreshes a
// container's stats every 10 to 20 s (its housekeeping interval, 10 s,
// jittered by up to as much again), so that a window of 10 s, LabParams'
// fast step, often holds no new sample and a real leak's step reads flat.
// With steps and floors of 30 s every window holds at least one fresh
// sample. The rest is divided as in LabParams; the horizon of
// ContainerMemoryOOMPredicted is 5 minutes (the lab's leak reaches its
// limit about 6 minutes after it starts), ContainerMemoryLeak's `for` is
// shorter than ContainerMemoryOOMPredicted's, so that of one leak the leak
// alert fires first, and ContainerOOMKilled looks back a minute, so that it
// stays up between the kills of a container in CrashLoopBackOff.
func RealNodeParams() rules.Params {
	s := func(d time.Duration) model.Duration { return model.Duration(d) }
	p := LabParams()
	p.FloorWindow = s(30 * time.Second)
	p.FastStepWindow = s(30 * time.Second)
	p.LeakStepWindow = s(30 * time.Second)
	p.SlowStepWindow = s(2 * time.Minute)
	p.TrendInterval = s(5 * time.Second)
	p.LeakFor = s(10 * time.Second)
	p.OOMHorizon = s(5 * time.Minute)
	p.OOMFor = s(20 * time.Second)
	p.OOMKilledWindow = s(time.Minute)
	return p
}

// The static targets' labels: what kube-prometheus's ServiceMonitors give
// the kubelet's and kube-state-metrics' series through kubernetes_sd
// (Debian's Prometheus 2.42 has none here), so that the rules see the label
// sets they see in a cluster.
const (
	// kubeletNamespace and kubeletService name the Service the
	// Prometheus Operator makes for the kubelets.
	kubeletNamespace, kubeletService = "kube-system", "kubelet"
	// ksmNamespace, ksmPod and ksmService name kube-state-metrics' pod
	// and Service in kube-prometheus.
	ksmNamespace, ksmPod, ksmService = "monitoring", "kube-state-metrics-6d9b8c7f5-lab01", "kube-state-metrics"
)

// realNodeScrapeJobs are Prometheus's jobs for the real node: the kubelet's
// /metrics/cadvisor over HTTPS with a client certificate, as job="kubelet"
// with metrics_path, node, endpoint, service and namespace target labels
// (honor_labels, and honor_timestamps off, as kube-prometheus scrapes
// cAdvisor), and kube-state-metrics as job="kube-state-metrics" with its
// own pod's labels (honor_labels: its series' namespace, pod and container
// win), and the lab's kube-apiserver at apiServer (its address, which is
// the node's InternalIP as on a control-plane node) as job="apiserver",
// over HTTPS with the same client certificate, with the target labels of
// kube-prometheus's apiserver ServiceMonitor: the control-plane rules
// join its instance to the node's InternalIP.
func realNodeScrapeJobs(n *RealNode, apiServer, caFile, certFile, keyFile string) []map[string]any {
	kubelet := strings.TrimPrefix(n.KubeletURL, "https://")
	ksm := strings.TrimPrefix(n.KubeStateMetricsURL, "http://")
	tls := map[string]any{"ca_file": caFile, "cert_file": certFile, "key_file": keyFile}
	return []map[string]any{
		{
			"job_name":         "kubelet-cadvisor",
			"scheme":           "https",
			"metrics_path":     "/metrics/cadvisor",
			"honor_labels":     true,
			"honor_timestamps": false,
			"tls_config":       tls,
			"static_configs": []map[string]any{{
				"targets": []string{kubelet},
				"labels": map[string]string{
					"job": "kubelet", "metrics_path": "/metrics/cadvisor", "node": NodeName,
					"endpoint": "https-metrics", "service": kubeletService, "namespace": kubeletNamespace,
				},
			}},
		},
		{
			"job_name":     "kube-state-metrics",
			"metrics_path": "/metrics",
			"honor_labels": true,
			"static_configs": []map[string]any{{
				"targets": []string{ksm},
				"labels": map[string]string{
					"job": "kube-state-metrics", "endpoint": "http-metrics", "service": ksmService,
					"namespace": ksmNamespace, "pod": ksmPod, "container": "kube-state-metrics",
				},
			}},
		},
		{
			"job_name":     "apiserver",
			"scheme":       "https",
			"metrics_path": "/metrics",
			"tls_config":   tls,
			"static_configs": []map[string]any{{
				"targets": []string{strings.TrimPrefix(apiServer, "https://")},
				"labels": map[string]string{
					"job": "apiserver", "endpoint": "https", "service": "kubernetes", "namespace": "default",
				},
			}},
		},
	}
}

// prometheusKubeletClient gives Prometheus its identity towards the
// kubelet and the kube-apiserver, as kube-prometheus does: a client
// certificate for the user leakguard-lab-prometheus, in no group, and a
// ClusterRole that grants it nodes/metrics (the kubelet asks the API
// server, its authorization mode being Webhook) and the apiserver's own
// /metrics. It returns the certificate's and key's files.
func (l *Lab) prometheusKubeletClient(ctx context.Context) (certFile, keyFile string, err error) {
	const user = "leakguard-lab-prometheus"
	cert, key, err := l.pki.issueClient(user)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(l.dir, "prometheus-client.crt"), filepath.Join(l.dir, "prometheus-client.key")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return "", "", err
	}
	objs := []runtime.Object{
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: user},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}},
				{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}},
			},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: user},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		},
	}
	if err := Create(ctx, l.Admin, objs...); err != nil {
		return "", "", fmt.Errorf("lab: prometheus's rights on the kubelet: %w", err)
	}
	return certFile, keyFile, nil
}

// RemovePod removes the pod cgroup of uid that AddPod made.
func (t *CgroupTree) RemovePod(uid string) error {
	dir := "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
	return os.RemoveAll(filepath.Join(t.Root, dir))
}
