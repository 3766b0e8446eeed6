// Package recommend tests leakguard recommend and the rules' recommended
// limit against a real Prometheus: the lab's synthetic metrics endpoint
// serves a steady container without a limit, a leaking one with a limit
// and a leaking one without, and Prometheus (Debian's 2.42) scrapes it and
// evaluates the generated rules with lab.LabParams (windows of seconds).
// No kube-apiserver: recommend reads Prometheus only. Without prometheus
// on PATH the test skips, unless LEAKGUARD_E2E=1 (make e2e sets it), when
// it fails.
package recommend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// repoRoot is the module, seen from this package's directory.
const repoRoot = "../../.."

const mib = 1 << 20

// row is the part of a line of recommend -o json the test reads.
type row struct {
	Workload struct {
		Namespace, Kind, Name string
	} `json:"workload"`
	Container      string `json:"container"`
	Recommendation struct {
		Request float64 `json:"request"`
		Limit   float64 `json:"limit"`
		Verdict string  `json:"verdict"`
		Reason  string  `json:"reason"`
	} `json:"recommendation"`
}

// recommendArgs read the last two minutes at a one-second step: 30
// samples make a recommendation, and a leak is taken to have started one
// steady trend's span (80 s in the lab) before it was flagged.
func recommendArgs(url string) []string {
	return []string{"recommend", "--prometheus-url", url, "-n", "shop", "-o", "json",
		"--window", "2m", "--step", "1s", "--min-samples", "30", "--leak-onset", "80s", "--timeout", "30s"}
}

// run runs the binary and returns its stdout, stderr and exit code.
func run(t *testing.T, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	default:
		t.Fatalf("run %s: %v", bin, err)
		return "", "", -1
	}
}

func TestRecommendAgainstPrometheus(t *testing.T) {
	prom, err := lab.FindExecutable("prometheus")
	if err != nil {
		if os.Getenv("LEAKGUARD_E2E") == "1" {
			t.Fatalf("prometheus is required: %v", err)
		}
		t.Skipf("%v; set LEAKGUARD_E2E=1 to make this a failure", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := lab.BuildLeakguard(ctx, repoRoot, dir)
	if err != nil {
		t.Fatal(err)
	}

	// Unreachable first: a clear error, exit code 1, nothing printed as a
	// recommendation.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	stdout, stderr, code := run(t, bin, recommendArgs(closed)...)
	if code != 1 || !strings.Contains(stderr, "read Prometheus at "+closed) || !strings.Contains(stderr, "connection refused") || stdout != "" {
		t.Errorf("recommend against a closed port: exit %d, stdout %q, stderr %q; want exit 1, nothing on stdout, and the address and connection refused on stderr", code, stdout, stderr)
	}

	p := lab.LabParams()
	files, err := rules.Files(p)
	if err != nil {
		t.Fatal(err)
	}
	ruleFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(ruleFile, files[rules.RuleFilePath], 0o600); err != nil {
		t.Fatal(err)
	}
	metrics, err := lab.StartMetrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = metrics.Close() })
	now := time.Now()
	metrics.SetNode(lab.Node{Name: "lab-worker-1", IP: "10.0.0.11", MemoryBytes: 16 << 30})
	// Every run started a day ago: the leak trends skip a container that
	// started within their windows.
	container := func(name, hash string, limit int64, base float64) lab.Container {
		return lab.Container{Namespace: "shop", Pod: name + "-" + hash + "-x7k2p", UID: "uid-" + name, Container: "app", Node: "lab-worker-1",
			Image: "registry.example/" + name + ":1", ContainerID: "cid-" + name, LimitBytes: limit, RequestBytes: limit,
			OwnerKind: "ReplicaSet", OwnerName: name + "-" + hash, Started: now.Add(-24 * time.Hour), BaseBytes: base}
	}
	steady := container("cache", "7d9f5b6c4d", 0, 300*mib)
	web := container("web", "5c4f8d7b9c", 2<<30, 256*mib)
	web.LeakBytesPerSecond, web.LeakStart = 3*mib, now
	queue := container("queue", "6b7c9d8f5b", 0, 200*mib)
	queue.LeakBytesPerSecond, queue.LeakStart = 3*mib, now
	for _, c := range []lab.Container{steady, web, queue} {
		metrics.SetContainer(c)
	}
	prometheus, err := lab.StartPrometheus(ctx, lab.PrometheusOptions{Bin: prom, Dir: filepath.Join(dir, "prometheus"), RuleFile: ruleFile, MetricsAddr: metrics.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("prometheus log:\n%s", prometheus.Log(40))
		}
		_ = prometheus.Stop()
	})

	// leakguard recommend: web leaking (flagged by the fast trend within
	// about a minute), cache sized on its 300 MiB: 345 MiB, 384 MiB rounded.
	var rows map[string]row
	waitFor(t, 4*time.Minute, "recommend: web leaking, cache no-limit", func() (bool, string) {
		stdout, stderr, code := run(t, bin, recommendArgs(prometheus.URL())...)
		if code != 0 {
			return false, fmt.Sprintf("exit %d: %s", code, stderr)
		}
		var out []row
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			return false, fmt.Sprintf("%v: %s", err, stdout)
		}
		rows = map[string]row{}
		for _, r := range out {
			rows[r.Workload.Name] = r
		}
		return rows["web"].Recommendation.Verdict == "leaking" && rows["cache"].Recommendation.Verdict == "no-limit", stdout
	})
	if r := rows["web"]; !strings.Contains(r.Recommendation.Reason, "raising the limit would only delay the next OOM kill") || r.Workload.Kind != "Deployment" {
		t.Errorf("web: %+v, want a Deployment whose reason says raising the limit only delays the next OOM kill", r)
	}
	cache := rows["cache"]
	if cache.Workload.Kind != "Deployment" || cache.Recommendation.Limit != 384*mib || cache.Recommendation.Request != 320*mib {
		t.Errorf("cache: %+v, want deployment/cache with limit 384Mi and request 320Mi", cache)
	}

	// In the cluster: the same limit for cache, none for the leaking
	// queue (without a limit) nor for web (it has one); the alert shows it.
	recorded := rules.RecMemoryLimitRecommended
	waitFor(t, 4*time.Minute, "the recorded recommendation and ContainerMemoryLimitMissing's descriptions", func() (bool, string) {
		samples, err := prometheus.QueryValues(ctx, recorded)
		if err != nil {
			return false, err.Error()
		}
		flagged, err := prometheus.QueryValues(ctx, rules.RecLeakRate+`{pod="`+queue.Pod+`"}`)
		if err != nil {
			return false, err.Error()
		}
		alerts, err := prometheus.Alerts(ctx)
		if err != nil {
			return false, err.Error()
		}
		desc := map[string]string{}
		for _, a := range alerts {
			if a.Labels["alertname"] == rules.AlertContainerMemoryLimitMissing && a.State == "firing" {
				desc[a.Labels["pod"]] = a.Annotations["description"]
			}
		}
		seen := fmt.Sprintf("%s: %v; queue flagged: %d; descriptions: %q", recorded, samples, len(flagged), desc)
		ok := len(samples) == 1 && samples[0].Labels["pod"] == steady.Pod && samples[0].Value == cache.Recommendation.Limit &&
			len(flagged) == 1 &&
			strings.Contains(desc[steady.Pod], "Recommended limit: 384Mi") &&
			strings.Contains(desc[queue.Pod], "No limit is recommended yet") && len(desc) == 2
		return ok, seen
	})
}

// waitFor polls cond every 500 ms until it holds, failing the test after
// timeout with cond's last word on what it saw.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	start := time.Now()
	last := ""
	for {
		ok, seen := cond()
		last = seen
		if ok {
			t.Logf("%s after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
