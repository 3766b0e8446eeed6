package lab

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// objectCountPoll is how often the lab's kube-apiserver counts its
// objects when Prometheus scrapes them (ChainOptions.APIServerObjects):
// a burst of objects shows in a few seconds, not in a minute.
const objectCountPoll = 2 * time.Second

// apiserverObjectsInterval is the scrape interval of the job: the
// apiserver's /metrics is large, and the counts move every
// objectCountPoll at most.
const apiserverObjectsInterval = 2 * time.Second

// prometheusAPIServerUser is Prometheus's identity towards the lab's
// kube-apiserver, a client certificate of the lab's CA.
const prometheusAPIServerUser = "leakguard-lab-prometheus-apiserver"

// apiserverObjectsJob is a scrape job of the lab's own kube-apiserver's
// /metrics, as job="apiserver" (the rules' apiServerSelector), that keeps
// only the object counts (apiserver_resource_objects, and
// apiserver_storage_objects where a version still has it): the rules'
// resource:apiserver_resource_objects:max then counts the lab's real
// objects, while the apiserver's memory stays the synthetic endpoint's
// (Node.APIServerRSSBytes). Prometheus authenticates with a client
// certificate for a user that may get /metrics and nothing else.
func (l *Lab) apiserverObjectsJob(ctx context.Context) (map[string]any, error) {
	cert, key, err := l.pki.issueClient(prometheusAPIServerUser)
	if err != nil {
		return nil, err
	}
	certFile := filepath.Join(l.dir, "prometheus-apiserver.crt")
	keyFile := filepath.Join(l.dir, "prometheus-apiserver.key")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, err
	}
	objs := []runtime.Object{
		&rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: prometheusAPIServerUser},
			Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
		},
		&rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: prometheusAPIServerUser},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: prometheusAPIServerUser},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: prometheusAPIServerUser}},
		},
	}
	if err := Create(ctx, l.Admin, objs...); err != nil {
		return nil, fmt.Errorf("lab: prometheus's right to the apiserver's /metrics: %w", err)
	}
	u, err := url.Parse(l.host)
	if err != nil {
		return nil, err
	}
	interval := promDuration(apiserverObjectsInterval)
	return map[string]any{
		"job_name":        "apiserver-objects",
		"scheme":          "https",
		"metrics_path":    "/metrics",
		"scrape_interval": interval,
		"scrape_timeout":  interval,
		"tls_config":      map[string]any{"ca_file": l.pki.caFile, "cert_file": certFile, "key_file": keyFile},
		"static_configs":  []map[string]any{{"targets": []string{u.Host}}},
		"relabel_configs": []map[string]any{{"target_label": "job", "replacement": "apiserver"}},
		"metric_relabel_configs": []map[string]any{{
			"source_labels": []string{"__name__"},
			"regex":         "apiserver_resource_objects|apiserver_storage_objects",
			"action":        "keep",
		}},
	}, nil
}
