package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/test/e2e/lab"
)

// TestDemoPlaysOut runs the demo as `make demo` would, in its bounded
// mode (--exit-after-scenario), so that the README's first command cannot
// rot: the scenario must play out, the timeline must show each stage (the
// leaking Deployment annotated, profiled and restarted once, with its
// guards), and the lab's directory must be gone afterwards. The host, as
// the lab choice sees it, cannot run the real node (a fake probe: the real
// node's demo is TestDemoOnRealNode's), so the demo falls back to the
// synthetic lab and its first line says so and why.
func TestDemoPlaysOut(t *testing.T) {
	if _, err := lab.FindBinaries("../../.."); err != nil {
		// The test must not build kube-apiserver itself (make e2e does,
		// through hack/e2e-binaries.sh).
		if os.Getenv("LEAKGUARD_E2E") == "1" {
			t.Fatalf("the demo needs the e2e binaries: %v", err)
		}
		t.Skipf("no e2e binaries: %v; set LEAKGUARD_E2E=1 to make this a failure", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	t.Setenv(labEnv, "")
	probe := fakeProbe{host: unfit("not root: the kubelet and containerd run as root", "a kubelet is running already (pid [1])")}
	err := runWith(ctx, []string{"--exit-after-scenario", "--timeout=3m", "--repo=../../.."}, &out, &errOut, func(string) hostProbe { return probe })
	if err != nil {
		t.Fatalf("demo: %v\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	first, _, _ := strings.Cut(text, "\n")
	if want := "Lab: synthetic (a synthetic metrics endpoint for pods no kubelet runs), this host cannot run the real node: not root: the kubelet and containerd run as root; a kubelet is running already (pid [1]) (LEAKGUARD_DEMO_LAB=node to insist on the real node)"; first != want {
		t.Errorf("first line:\n got %q\nwant %q", first, want)
	}
	for _, want := range []string{
		"leak starting: shop/web-5f7c9-x2x4q container app grows 3 MiB/s",
		"prometheus: alert ContainerMemoryLeak{shop/web-5f7c9-x2x4q/app} pending",
		"prometheus: alert ContainerMemoryLeak{shop/web-5f7c9-x2x4q/app} firing",
		"alertmanager: ContainerMemoryLeak{shop/web-5f7c9-x2x4q/app} active, routed to leakguard",
		"ContainerMemoryLeak → Deployment shop/web",
		"guards: namespace ok, opt-out ok, cooldown ok, pause ok",
		"guards: rate ok, disruption ok, claim ok",
		"guards: namespace ok, opt-out HELD",
		"annotate acted: annotated Deployment shop/web with ContainerMemoryLeak",
		"profile acted: profiles stored: heap shop-web-5f7c9-x2x4q_heap_",
		"restart acted: rolling restart of Deployment shop/web",
		"decision: acted",
		"decision: held (cooldown)",
		"decision: held (opt-out)",
		"kubernetes: Event LeakguardActed on Deployment shop/web",
		"== Final state",
		"leakguard.io/finding: ContainerMemoryLeak",
		"pod template kubectl.kubernetes.io/restartedAt: ",
		"1 × LeakguardActed   Deployment web",
		"stopped every process and removed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	if !regexp.MustCompile(`check working-set-slope: [0-9.]+ [KMG]iB/h > 1\.0 MiB/h`).MatchString(text) {
		t.Errorf("the timeline lacks the check's measured slope")
	}
	// The second replica's delivery is held by the cooldown: read before
	// the check when the first replica's claim is already written, or by
	// the claim itself when both deliveries race to it.
	if !regexp.MustCompile(`guards: namespace ok, opt-out ok, cooldown HELD|guards: rate ok, disruption ok, claim HELD`).MatchString(text) {
		t.Errorf("the timeline lacks the second replica's delivery held by the cooldown or its claim")
	}
	// The second heap profile's growth names the function the process
	// leaks through.
	if !strings.Contains(text, "grew: "+lab.LeakFunction+" +") {
		t.Errorf("the timeline's profile summary does not name %s as what grew", lab.LeakFunction)
	}
	// The three profiles (two heap, growthAfter apart, and goroutines),
	// stored once: by the replica that acted.
	stored := regexp.MustCompile(`profiles stored by serve-\d \(GET \S+\): (\d+)`).FindAllStringSubmatch(text, -1)
	var counts []string
	for _, m := range stored {
		counts = append(counts, m[1])
	}
	if got := strings.Join(counts, " "); got != "0 3" && got != "3 0" {
		t.Errorf("profiles stored by the replicas: %q, want 3 on one and 0 on the other", got)
	}
	dir := regexp.MustCompile(`removed (\S+)`).FindStringSubmatch(text)
	if dir == nil {
		t.Fatalf("no lab directory named in the output")
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("the lab's directory %s is still there (%v)", dir[1], err)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}

// TestDemoOnRealNode runs the demo on the lab's real node, as `make demo`
// does where the host can run it, in its bounded mode: the first line says
// so; the timeline shows the real controllers creating the pods, the
// kubelet running them and reporting the kernel's OOM kills of the worker,
// ContainerMemoryLeak and ContainerMemoryOOMPredicted for the leaking pod
// and ContainerOOMKilled for the worker from the real kubelet's and
// kube-state-metrics' series, leakguard's restart, the Deployment
// controller's rollout and its replacement pod (a new UID), the first pod
// gone and its alerts resolved; afterwards the lab's directory is gone and
// the host can run a node again (everything put back). It starts a real
// node, so it runs only with LEAKGUARD_E2E_NODE=1 (make e2e-node sets it),
// and skips, saying why, where the host cannot run one, unless
// LEAKGUARD_E2E=1 asks it to fail; about 4 minutes.
func TestDemoOnRealNode(t *testing.T) {
	if os.Getenv("LEAKGUARD_E2E_NODE") != "1" {
		t.Skip("the real node changes the host while it runs; set LEAKGUARD_E2E_NODE=1 to run the demo on it")
	}
	bin, err := lab.FindBinaries("../../..")
	if err == nil {
		err = lab.CheckNodeHost(bin)
	}
	if err != nil {
		// make e2e-node (LEAKGUARD_E2E=1) asks for the real node: there,
		// a host that cannot run it fails the run instead of skipping.
		if os.Getenv("LEAKGUARD_E2E") == "1" {
			t.Fatalf("no real node here: %v", err)
		}
		t.Skipf("no real node here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"--lab=node", "--exit-after-scenario", "--timeout=8m", "--repo=../../.."}, &out, &errOut)
	text := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s\nstderr:\n%s", err, text, errOut.String())
	}
	first, _, _ := strings.Cut(text, "\n")
	if want := "Lab: the real node (kubelet, containerd and runc, kube-controller-manager, kube-scheduler and kube-state-metrics on 127.0.0.1), as --lab=node asks"; !strings.HasPrefix(first, want) {
		t.Errorf("first line:\n got %q\nwant it to start with %q", first, want)
	}
	for _, want := range []string{
		"replicaset-controller: pod shop/web-",
		"replicaset-controller: pod shop/worker-",
		"Running on node 127.0.0.1",
		"prometheus: alert ContainerMemoryLeak{shop/web-",
		"deployment-controller: Event ScalingReplicaSet on Deployment shop/web",
		"restart acted: rolling restart of Deployment shop/web",
		"decision: acted",
		"kubernetes: Event LeakguardActed on Deployment shop/web",
		"kubernetes: Event LeakguardActed on Deployment shop/worker",
		"== Final state",
		"pod template kubectl.kubernetes.io/restartedAt: ",
		"stopped every process and container",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the timeline lacks %q", want)
		}
	}
	for _, re := range []string{
		`kubelet: container app of shop/worker-\S+ terminated: OOMKilled, exit code 137 \(the kernel's OOM killer, at the 96 MiB limit\)\n`,
		`kubelet: container app of shop/worker-\S+ started again \(restart 1\)\n`,
		`prometheus: alert ContainerMemoryLeak\{shop/web-\S+/app\} firing`,
		`prometheus: alert ContainerMemoryOOMPredicted\{shop/web-\S+/app\} firing`,
		`prometheus: alert ContainerOOMKilled\{shop/worker-\S+/app\} firing`,
		`check working-set-slope: [0-9.]+ [KMG]iB/h > 1\.0 MiB/h`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("the timeline lacks a line matching %s", re)
		}
	}
	m := regexp.MustCompile(`pod shop/(web-\S+) \(uid (\S+)\) replaced by shop/(web-\S+) \(uid (\S+)\)`).FindStringSubmatch(text)
	if m == nil {
		t.Errorf("the final state names no replacement pod")
	} else {
		if m[2] == m[4] || m[1] == m[3] {
			t.Errorf("the replacement %s (uid %s) is the first pod %s (uid %s)", m[3], m[4], m[1], m[2])
		}
		for _, want := range []string{
			"kubernetes: pod shop/" + m[1] + " (uid " + m[2][:8] + ") gone",
			"kubelet: pod shop/" + m[3] + " Running on node 127.0.0.1",
			"prometheus: alert ContainerMemoryLeak{shop/" + m[1] + "/app} resolved",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the timeline lacks %q", want)
			}
		}
	}
	dir := regexp.MustCompile(`removed (\S+)\n`).FindStringSubmatch(text)
	if dir == nil {
		t.Fatalf("no lab directory named in the output")
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("the lab's directory %s is still there (%v)", dir[1], err)
	}
	if err := lab.CheckNodeHost(bin); err != nil {
		t.Errorf("after the demo the host cannot run a node again: %v", err)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", text)
	}
}
