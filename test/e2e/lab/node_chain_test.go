package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/leakguard/leakguard/rules"
)

// TestRealNodeParams: the real node's parameters pass the generator's
// validation and promtool's check of the rule file they make, and every
// window that reads the kubelet's working set is at least 30 s, longer
// than cAdvisor's longest housekeeping interval (20 s).
func TestRealNodeParams(t *testing.T) {
	p := RealNodeParams()
	if err := p.Validate(); err != nil {
		t.Fatalf("RealNodeParams().Validate() = %v", err)
	}
	for name, d := range map[string]time.Duration{
		"floorWindow": time.Duration(p.FloorWindow), "fastStepWindow": time.Duration(p.FastStepWindow),
		"leakStepWindow": time.Duration(p.LeakStepWindow), "slowStepWindow": time.Duration(p.SlowStepWindow),
	} {
		if d < 30*time.Second {
			t.Errorf("%s = %s, want at least 30s (cAdvisor refreshes every 10 to 20 s)", name, d)
		}
	}
	if p.LeakFor >= p.OOMFor {
		t.Errorf("leakFor %s >= oomFor %s: the leak alert must fire before the prediction", p.LeakFor, p.OOMFor)
	}
	files, err := rules.Files(p)
	if err != nil {
		t.Fatal(err)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("no promtool on PATH")
	}
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, files[rules.RuleFilePath], 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestRealNodeScrapeJobs: the kubelet's job carries the labels the rules'
// cAdvisor selector and joins need (job, metrics_path, node), over TLS
// with the given files; kube-state-metrics' carries job and its own pod's
// labels, which honor_labels lets the series' own override.
func TestRealNodeScrapeJobs(t *testing.T) {
	n := &RealNode{KubeletURL: "https://127.0.0.1:10250", KubeStateMetricsURL: "http://127.0.0.1:8080"}
	jobs := realNodeScrapeJobs(n, "https://127.0.0.1:6443", "/ca", "/crt", "/key")
	if len(jobs) != 3 {
		t.Fatalf("%d jobs, want 3", len(jobs))
	}
	kubelet, ksm, apiServer := jobs[0], jobs[1], jobs[2]
	want := map[string]any{
		"job_name": "kubelet-cadvisor", "scheme": "https", "metrics_path": "/metrics/cadvisor",
		"honor_labels": true, "honor_timestamps": false,
		"tls_config": map[string]any{"ca_file": "/ca", "cert_file": "/crt", "key_file": "/key"},
		"static_configs": []map[string]any{{
			"targets": []string{"127.0.0.1:10250"},
			"labels": map[string]string{
				"job": "kubelet", "metrics_path": "/metrics/cadvisor", "node": NodeName,
				"endpoint": "https-metrics", "service": "kubelet", "namespace": "kube-system",
			},
		}},
	}
	if diff := cmp.Diff(want, kubelet); diff != "" {
		t.Errorf("kubelet job (-want +got):\n%s", diff)
	}
	sc := ksm["static_configs"].([]map[string]any)[0]
	if got := sc["targets"].([]string); len(got) != 1 || got[0] != "127.0.0.1:8080" {
		t.Errorf("kube-state-metrics targets %v", got)
	}
	if l := sc["labels"].(map[string]string); l["job"] != "kube-state-metrics" || ksm["honor_labels"] != true {
		t.Errorf("kube-state-metrics job labels %v, honor_labels %v", l, ksm["honor_labels"])
	}
	// The apiserver's job: its address as the target, so that instance
	// holds the node's InternalIP, and job="apiserver" for the rules'
	// selector.
	wantAPI := map[string]any{
		"job_name": "apiserver", "scheme": "https", "metrics_path": "/metrics",
		"tls_config": map[string]any{"ca_file": "/ca", "cert_file": "/crt", "key_file": "/key"},
		"static_configs": []map[string]any{{
			"targets": []string{"127.0.0.1:6443"},
			"labels":  map[string]string{"job": "apiserver", "endpoint": "https", "service": "kubernetes", "namespace": "default"},
		}},
	}
	if diff := cmp.Diff(wantAPI, apiServer); diff != "" {
		t.Errorf("apiserver job (-want +got):\n%s", diff)
	}
	// The selector of the shipped rules matches the kubelet job's labels.
	p := rules.DefaultParams()
	if p.CadvisorSelector != `job="kubelet", metrics_path="/metrics/cadvisor"` || p.KubeStateMetricsSelector != `job="kube-state-metrics"` || p.APIServerSelector != `job="apiserver"` {
		t.Errorf("the shipped selectors changed (%s; %s; %s): align the real node's target labels", p.CadvisorSelector, p.KubeStateMetricsSelector, p.APIServerSelector)
	}
}
