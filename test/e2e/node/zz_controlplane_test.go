package node

// This file's name puts its scenario last: go test runs a package's files
// in the order of their names, and this one must not delay the leak
// scenario's timings (scenarios_test.go) nor run before the cordon, which
// refuses a node labelled control-plane.

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// The control-plane rules' thresholds on the real node. The lab's
// kube-apiserver holds a few hundred MiB of a host of many GiB, far below
// the shipped 60 %: the waterlines are lowered so that the alerts fire on
// the real series (what is under test is that the series exist with the
// labels the rules join on, not the host's size). apiServerThreshold is
// the apiserver-memory check's, the same as the rule's.
const (
	apiServerRatio      = 0.002
	apiServerThreshold  = "0.002"
	controlPlaneRatio   = 0.01
	surgeConfigMaps     = 600
	surgeNamespace      = "surge"
	labelControlPlane   = "node-role.kubernetes.io/control-plane"
	controlPlaneTimeout = 4 * time.Minute
)

// nodeParams are lab.RealNodeParams with the control-plane alerts
// reachable on the real node: the waterlines above, their `for` short,
// and an object surge of a few hundred objects within 3 minutes.
func nodeParams() *rules.Params {
	s := func(d time.Duration) model.Duration { return model.Duration(d) }
	p := lab.RealNodeParams()
	p.ControlPlaneWaterline = controlPlaneRatio
	p.ControlPlaneFor = s(10 * time.Second)
	p.APIServerMemoryRatio = apiServerRatio
	p.APIServerMemoryFor = s(10 * time.Second)
	p.ObjectSurgeWindow = s(3 * time.Minute)
	p.ObjectSurgeMinObjects = 200
	p.ObjectSurgeFor = s(10 * time.Second)
	return &p
}

// TestControlPlaneOnRealSeries runs the control-plane rules on the real
// node's series: the kubelet's cAdvisor (the root cgroup and
// machine_memory_bytes), kube-state-metrics (kube_node_info's
// internal_ip, kube_node_role) and the lab's kube-apiserver scraped as
// job="apiserver" at the node's InternalIP, as on a control-plane node
// whose apiserver is not a static pod.
//
// The recording rules join the apiserver's resident memory to its node
// by address and divide by the node's memory; the node labelled
// control-plane fires ControlPlaneMemoryAboveWaterline; a burst of
// ConfigMaps fires KubeAPIServerObjectSurge for configmaps; then, with
// Alertmanager's silence of KubeAPIServerMemoryHigh expired, leakguard
// profiles the apiserver's heap and the Node's Event names configmaps
// beside the heap's top sites.
func TestControlPlaneOnRealSeries(t *testing.T) {
	c, w := need(t)
	ctx := context.Background()
	node := map[string]string{"node": lab.NodeName}

	// The node's memory, as cAdvisor reads it, is the host's MemTotal.
	memTotal := hostMemTotal(t)
	var machine float64
	waitFor(t, time.Minute, "machine_memory_bytes of the real node", func(ctx context.Context) (bool, string, error) {
		s, err := c.Prometheus.QueryValues(ctx, `machine_memory_bytes{job="kubelet", node="`+lab.NodeName+`"}`)
		if err != nil || len(s) != 1 {
			return false, fmt.Sprintf("%v", s), err
		}
		machine = s[0].Value
		return true, "", nil
	})
	if math.Abs(machine-memTotal) > 0.01*memTotal {
		t.Errorf("machine_memory_bytes %.0f, /proc/meminfo's MemTotal %.0f", machine, memTotal)
	}

	// The apiserver's ratio: its own resident memory over the node's,
	// joined by the node's InternalIP to node 127.0.0.1.
	waitFor(t, time.Minute, rules.RecAPIServerMemoryRatio+" of the real node", func(ctx context.Context) (bool, string, error) {
		ratio, err := c.Prometheus.QueryValues(ctx, rules.RecAPIServerMemoryRatio)
		if err != nil {
			return false, "", err
		}
		rss, err := c.Prometheus.QueryValues(ctx, `max(process_resident_memory_bytes{job="apiserver"})`)
		if err != nil {
			return false, "", err
		}
		seen := fmt.Sprintf("ratio %v, rss %v", ratio, rss)
		if len(ratio) != 1 || len(rss) != 1 || ratio[0].Labels["node"] != lab.NodeName {
			return false, seen, nil
		}
		// Both were read at one instant from the same samples, up to a
		// scrape between the two queries: within 10 %.
		want := rss[0].Value / machine
		if math.Abs(ratio[0].Value-want) > 0.1*want {
			return false, seen + fmt.Sprintf(", want %.5f", want), nil
		}
		t.Logf("kube-apiserver: %.0f MiB resident, %.3f %% of the node", rss[0].Value/(1<<20), ratio[0].Value*100)
		return true, "", nil
	})
	waitFor(t, controlPlaneTimeout, rules.AlertKubeAPIServerMemoryHigh+" firing for node "+lab.NodeName, func(ctx context.Context) (bool, string, error) {
		l, seen, err := firing(ctx, c, rules.AlertKubeAPIServerMemoryHigh, node)
		return l != nil, seen, err
	})

	// The node's own waterline, once it is a control-plane node.
	setNodeLabel(t, c, labelControlPlane, "")
	labelled := time.Now()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		patch := `{"metadata":{"labels":{"` + labelControlPlane + `":null}}}`
		if _, err := c.Admin.CoreV1().Nodes().Patch(ctx, lab.NodeName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Errorf("take the control-plane label off %s: %v", lab.NodeName, err)
		}
	})
	at := waitFor(t, controlPlaneTimeout, rules.AlertControlPlaneMemoryAboveWaterline+" firing for node "+lab.NodeName, func(ctx context.Context) (bool, string, error) {
		l, seen, err := firing(ctx, c, rules.AlertControlPlaneMemoryAboveWaterline, node)
		return l != nil, seen, err
	})
	t.Logf("timing: node labelled control-plane to %s firing: %s", rules.AlertControlPlaneMemoryAboveWaterline, at.Sub(labelled).Round(100*time.Millisecond))
	if s, err := c.Prometheus.QueryValues(ctx, rules.RecNodeMemoryRatio); err == nil && len(s) > 0 {
		t.Logf("%s: %v", rules.RecNodeMemoryRatio, s)
	}

	// A burst of ConfigMaps: the apiserver's object count for
	// configmaps surges.
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: surgeNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = c.Admin.CoreV1().Namespaces().Delete(ctx, surgeNamespace, metav1.DeleteOptions{})
	})
	burst := time.Now()
	for i := 0; i < surgeConfigMaps; i++ {
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "burst-" + strconv.Itoa(i)},
			Data:       map[string]string{"payload": strings.Repeat("x", 4096)},
		}
		if _, err := c.Admin.CoreV1().ConfigMaps(surgeNamespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create configmap %d: %v", i, err)
		}
	}
	at = waitFor(t, controlPlaneTimeout, rules.AlertKubeAPIServerObjectSurge+" firing for configmaps", func(ctx context.Context) (bool, string, error) {
		l, seen, err := firing(ctx, c, rules.AlertKubeAPIServerObjectSurge, map[string]string{"resource": "configmaps"})
		return l != nil, seen, err
	})
	t.Logf("timing: %d ConfigMaps created to %s firing: %s", surgeConfigMaps, rules.AlertKubeAPIServerObjectSurge, at.Sub(burst).Round(100*time.Millisecond))

	// leakguard profiles the apiserver once Alertmanager lets the alert
	// through: one profile Event on the Node, naming configmaps as the
	// objects that dominate.
	if err := c.Alertmanager.Expire(ctx, w.apiServerSilence); err != nil {
		t.Fatal(err)
	}
	expired := time.Now()
	var msg string
	at = waitFor(t, controlPlaneTimeout, "the apiserver's heap profiled and its summary in the Node's Event", func(ctx context.Context) (bool, string, error) {
		evs, err := eventsOf(ctx, c, metav1.NamespaceDefault, "Node", lab.NodeName)
		if err != nil {
			return false, "", err
		}
		for _, e := range evs {
			if e.Reason == remediate.EventReasonActed && strings.Contains(e.Message, profile.Name+" acted") {
				msg = e.Message
				return true, "", nil
			}
		}
		return false, describe(evs), nil
	})
	t.Logf("timing: silence expired to the apiserver profiled: %s", at.Sub(expired).Round(100*time.Millisecond))
	t.Logf("the Node's Event: %s", msg)
	if !strings.Contains(msg, "configmaps") {
		t.Errorf("the profile Event does not name configmaps among the apiserver's objects: %s", msg)
	}
	if !strings.Contains(msg, "k8s.io/") {
		t.Errorf("the profile Event names none of the apiserver's functions: %s", msg)
	}
}

// setNodeLabel sets a label on the real node.
func setNodeLabel(t *testing.T, c *lab.Chain, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, key, value)
	if _, err := c.Admin.CoreV1().Nodes().Patch(ctx, lab.NodeName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("label %s %s=%q: %v", lab.NodeName, key, value, err)
	}
}

// hostMemTotal reads MemTotal of /proc/meminfo, in bytes.
func hostMemTotal(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no MemTotal in /proc/meminfo")
	return 0
}
