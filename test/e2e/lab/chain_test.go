package lab

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/rules"
)

// TestLabParams: the time-compressed parameters pass the generator's own
// validation and promtool's check of the rule file they make.
func TestLabParams(t *testing.T) {
	p := LabParams()
	if err := p.Validate(); err != nil {
		t.Fatalf("LabParams().Validate() = %v", err)
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

func yamlMap(t *testing.T, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestReceiverConfig: only the url's host, the token and CA files and the
// group timings change; the result is a valid Alertmanager configuration.
func TestReceiverConfig(t *testing.T) {
	fragment, err := os.ReadFile("../../../deploy/alertmanager/receiver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReceiverConfig(fragment, []string{"127.0.0.1:1001", "127.0.0.1:1002"}, "/lab/token", "/lab/ca.crt", time.Second, 2*time.Second)
	if err != nil {
		t.Fatalf("ReceiverConfig: %v", err)
	}
	want := yamlMap(t, fragment)
	route := want["route"].(map[string]any)
	route["receiver"], route["group_by"] = "lab-default", []any{"alertname"}
	sub := route["routes"].([]any)[0].(map[string]any)
	sub["group_wait"], sub["group_interval"] = "1s", "2s"
	recv := want["receivers"].([]any)[0].(map[string]any)
	hook := recv["webhook_configs"].([]any)[0].(map[string]any)
	httpConfig := hook["http_config"].(map[string]any)
	httpConfig["authorization"].(map[string]any)["credentials_file"] = "/lab/token"
	httpConfig["tls_config"].(map[string]any)["ca_file"] = "/lab/ca.crt"
	var hooks []any
	for _, addr := range []string{"127.0.0.1:1001", "127.0.0.1:1002"} {
		var h map[string]any
		data, _ := json.Marshal(hook)
		_ = json.Unmarshal(data, &h)
		h["url"] = "https://" + addr + "/api/v1/alerts"
		hooks = append(hooks, h)
	}
	recv["webhook_configs"] = hooks
	want["receivers"] = append(want["receivers"].([]any), map[string]any{"name": "lab-default"})
	if diff := cmp.Diff(want, yamlMap(t, got)); diff != "" {
		t.Errorf("ReceiverConfig mismatch (-want +got):\n%s", diff)
	}

	amtool, err := exec.LookPath("amtool")
	if err != nil {
		t.Skip("no amtool on PATH")
	}
	dir := t.TempDir()
	for _, f := range []string{"token", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got, err = ReceiverConfig(fragment, []string{"127.0.0.1:1001"}, filepath.Join(dir, "token"), filepath.Join(dir, "ca.crt"), time.Second, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(path, got, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(amtool, "check-config", path).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

func TestReceiverConfigRefusesAnotherShape(t *testing.T) {
	for name, fragment := range map[string]string{
		"no tls_config": `route: {routes: [{receiver: l, group_wait: 30s, group_interval: 5m}]}
receivers: [{name: l, webhook_configs: [{url: "https://x/api/v1/alerts", http_config: {authorization: {credentials_file: /t}}}]}]`,
		"two webhooks": `route: {routes: [{receiver: l, group_wait: 30s, group_interval: 5m}]}
receivers: [{name: l, webhook_configs: [{url: a}, {url: b}]}]`,
		"no group_wait": `route: {routes: [{receiver: l, group_interval: 5m}]}
receivers: [{name: l, webhook_configs: [{url: a}]}]`,
	} {
		if _, err := ReceiverConfig([]byte(fragment), []string{"127.0.0.1:1"}, "/t", "/c", time.Second, time.Second); err == nil {
			t.Errorf("%s: ReceiverConfig succeeded, want an error", name)
		}
	}
}

// TestMetricsExposition: the synthetic endpoint's series parse and carry
// the label sets of shared/traces/README.md, the pod cgroup is the sum of
// its container and the pause container, and a leak grows the working set.
func TestMetricsExposition(t *testing.T) {
	m, err := StartMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	now := time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return now }
	m.SetNode(Node{Name: "n1", IP: "10.0.0.1", MemoryBytes: 8 << 30, ControlPlane: true, APIServerRSSBytes: 1 << 30})
	m.SetContainer(Container{Namespace: "shop", Pod: "web-1", UID: "1234-5678", Container: "app", Node: "n1", Image: "img:1",
		ContainerID: "abc", LimitBytes: 1 << 30, OwnerKind: "ReplicaSet", OwnerName: "web", Started: now.Add(-time.Hour), BaseBytes: 100 << 20})
	if err := m.StartLeak("shop/web-1/app", 1<<20); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second)

	families := func(path string) map[string][]map[string]string {
		resp, err := http.Get("http://" + m.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out := map[string][]map[string]string{}
		for name, f := range fams {
			for _, metric := range f.Metric {
				labels := map[string]string{}
				for _, l := range metric.Label {
					labels[l.GetName()] = l.GetValue()
				}
				v := metric.GetGauge().GetValue() + metric.GetCounter().GetValue() + metric.GetUntyped().GetValue()
				labels["__value__"] = model.SampleValue(v).String()
				out[name] = append(out[name], labels)
			}
		}
		return out
	}
	cad := families("/metrics/cadvisor")
	ws := cad["container_memory_working_set_bytes"]
	if len(ws) != 3 {
		t.Fatalf("%d working-set series, want the container, its pause container and the pod cgroup: %v", len(ws), ws)
	}
	// The pod cgroup and, as containerd shows it, the pause container are
	// both container=""; the pause container has the pause image.
	byContainer := map[string]map[string]string{}
	for _, s := range ws {
		key := s["container"]
		if key == "" && s["image"] != "" {
			key = "pause"
		}
		byContainer[key] = s
	}
	for _, l := range []string{"namespace", "pod", "container", "image", "id", "name", "node", "instance", "endpoint", "service"} {
		if byContainer["app"][l] == "" {
			t.Errorf("container series lacks %s: %v", l, byContainer["app"])
		}
	}
	if got, want := byContainer["app"]["__value__"], model.SampleValue(110<<20).String(); got != want {
		t.Errorf("working set after 10 s of 1 MiB/s from 100 MiB = %s, want %s", got, want)
	}
	if got, want := byContainer[""]["__value__"], model.SampleValue(110<<20+pauseBytes).String(); got != want {
		t.Errorf("pod cgroup = %s, want %s", got, want)
	}
	if p := byContainer["pause"]; p["image"] != pauseImage || p["container"] != "" || p["__value__"] != model.SampleValue(pauseBytes).String() {
		t.Errorf("pause container %v, want container=\"\" with image %s", p, pauseImage)
	}
	// A dockershim node names it POD.
	m.SetNode(Node{Name: "n1", IP: "10.0.0.1", MemoryBytes: 8 << 30, ControlPlane: true, APIServerRSSBytes: 1 << 30, Dockershim: true})
	var pods []map[string]string
	for _, s := range families("/metrics/cadvisor")["container_memory_working_set_bytes"] {
		if s["container"] == "POD" {
			pods = append(pods, s)
		}
	}
	if len(pods) != 1 || pods[0]["image"] != pauseImage {
		t.Errorf("dockershim pause containers %v, want one container=\"POD\" with image %s", pods, pauseImage)
	}
	ksm := families("/metrics/kube-state-metrics")
	for _, name := range []string{"kube_pod_container_resource_limits", "kube_pod_container_state_started", "kube_pod_info", "kube_node_info", "kube_node_role", "kube_node_status_capacity"} {
		if len(ksm[name]) == 0 {
			t.Errorf("kube-state-metrics lacks %s", name)
		}
	}
	if got := families("/metrics/apiserver")["process_resident_memory_bytes"]; len(got) != 1 || got[0]["instance"] != "10.0.0.1:6443" {
		t.Errorf("apiserver series %v, want one with instance 10.0.0.1:6443", got)
	}
	if got := families("/metrics/agent"); len(got) != 0 {
		t.Errorf("agent series %v for a node without an orphan count", got)
	}
	if err := m.SetOrphanCgroups("n1", 42); err != nil {
		t.Fatal(err)
	}
	if got := families("/metrics/agent")["leakguard_node_orphan_cgroups"]; len(got) != 1 || got[0]["__value__"] != "42" || got[0]["node"] != "n1" {
		t.Errorf("orphan series %v, want 42 on n1", got)
	}
}
