// Command demo is `make demo`: it starts the lab's whole alert chain on
// loopback, makes Deployments leak, and prints what happens as it happens,
// then leaves the lab running, with its URLs and a kubectl command, until
// Ctrl-C, and removes everything it started.
//
// Its very first line says which lab it runs, and why:
//
//   - the real node (lab.ChainOptions.RealNode) where the host can run it
//     (lab.CheckNodeHost: root, a writable memory cgroup, no other
//     containerd on its socket, no other kubelet): a kubelet with containerd
//     and runc, kube-controller-manager, kube-scheduler and
//     kube-state-metrics, Prometheus scraping the real kubelet's cAdvisor
//     and kube-state-metrics, rules generated with lab.RealNodeParams. A
//     real Deployment leaks 1 MiB/s until ContainerMemoryLeak and
//     ContainerMemoryOOMPredicted fire and leakguard restarts it; another
//     leaks 4 MiB/s under 96 MiB and the kernel OOM-kills it every half
//     minute (ContainerOOMKilled). The timeline shows the controllers'
//     pods, the kubelet's OOM kills and restarts, the alerts, each
//     replica's decision, the Deployment controller's rollout and its
//     replacement pod (a new UID), and the first pod's alerts resolving.
//     The node's binaries are built first where they are missing
//     (hack/node-binaries.sh, minutes, once), containerd and runc installed
//     by apt-get;
//   - otherwise the synthetic lab (a synthetic metrics endpoint for pods no
//     kubelet runs, rules in a time-compressed form): the leak, the alerts
//     pending and firing, each replica's decision with the check's
//     measurement and the guards, the profile and the restart of the
//     leaking Deployment (the default policy with both turned on for
//     ContainerMemoryLeak), the Events, and the objects' final state.
//
// --lab or LEAKGUARD_DEMO_LAB chooses: auto (the default, as above),
// synthetic, or node (which fails, saying why, where the host cannot run
// the real node).
//
//	go run ./test/e2e/demo [--lab auto|synthetic|node] [--exit-after-scenario] [--timeout 4m]
//
// What is missing is installed or built first: kube-apiserver and etcd by
// hack/e2e-binaries.sh (minutes, the first time), Debian's prometheus,
// prometheus-alertmanager by apt-get when run as root
// (otherwise it prints the command).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/remediate/restart"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// The demo's leaking pod serves this process's pprof, and this process
// leaks for real through lab.LeakFunction while the scenario runs
// (lab.StartProcessLeak): its heap is sampled finely enough, from the
// start, for the profile to show that function.
func init() { runtime.MemProfileRate = lab.MemProfileRate }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWith(ctx, args, stdout, stderr, func(root string) hostProbe { return realProbe{repoRoot: root} })
}

// options are the demo's flags, once parsed.
type options struct {
	exitAfter bool
	timeout   time.Duration
}

// runWith is run with the host probe that the lab choice asks (a fake in
// the tests).
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, probe func(root string) hostProbe) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	exitAfter := fs.Bool("exit-after-scenario", false, "stop the lab and exit once the scenario has played out, instead of waiting for Ctrl-C")
	timeout := fs.Duration("timeout", 0, "bound on the scenario; past it the demo fails (default 4m on the synthetic lab, 10m on the real node)")
	repo := fs.String("repo", "", "the leakguard checkout (default: found from the working directory)")
	labFlag := fs.String("lab", "", "which lab: auto (the real node where this host can run it, the synthetic lab otherwise), synthetic, or node (the real node, failing where the host cannot run it) (default: $"+labEnv+", else auto)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	labSet := false
	fs.Visit(func(f *flag.Flag) { labSet = labSet || f.Name == "lab" })
	mode, source, err := labMode(*labFlag, labSet, os.Getenv(labEnv))
	if err != nil {
		return err
	}
	root := *repo
	if root == "" {
		if root, err = moduleRoot(); err != nil {
			return err
		}
	}
	choice, err := chooseLab(mode, source, probe(root))
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, choice.headline())
	for _, l := range choice.preparation() {
		fmt.Fprintln(stdout, l)
	}
	out := &printer{w: stdout}
	o := options{exitAfter: *exitAfter, timeout: *timeout}
	if choice.Node {
		if o.timeout == 0 {
			o.timeout = 10 * time.Minute
		}
		return runNode(ctx, root, choice, o, out, stderr)
	}
	if o.timeout == 0 {
		o.timeout = 4 * time.Minute
	}
	return runSynthetic(ctx, root, o, out, stderr)
}

// runSynthetic is the demo on the synthetic lab.
func runSynthetic(ctx context.Context, root string, o options, out *printer, stderr io.Writer) error {
	out.head("Checking what the lab needs")
	if err := ensurePackages(ctx, out, nil); err != nil {
		return err
	}
	bin, err := ensureAPIServer(ctx, root, out, stderr)
	if err != nil {
		return err
	}

	out.head("Starting the lab on 127.0.0.1")
	start := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	s := lab.NewScenario()
	// The leaking Deployment's pod serves pprof (leakguard.io/pprof-port),
	// so that profile has something to fetch before restart.
	s.Leaking.PprofPort = 6060
	policy, err := demoPolicy()
	if err != nil {
		return err
	}
	c, err := lab.StartChain(startCtx, s.ChainOptions(lab.ChainOptions{RepoRoot: root, BinDir: bin, Policy: policy,
		Progress: func(step string, took time.Duration) {
			out.line("  started %-58s %6s", step, took.Round(10*time.Millisecond))
		}}))
	if err != nil {
		return fmt.Errorf("start the lab: %w", err)
	}
	defer func() {
		out.head("Stopping the lab")
		if cerr := c.Close(); cerr != nil {
			fmt.Fprintf(stderr, "demo: stop the lab: %v\n", cerr)
		} else {
			out.line("  stopped every process and removed %s", c.Dir())
		}
	}()
	out.line("  the lab is up in %s", time.Since(start).Round(100*time.Millisecond))

	if err := s.Create(startCtx, c); err != nil {
		return err
	}
	// What the Deployment controller would write once the pod is ready:
	// restart's guards read it.
	if err := c.SetRolledOut(startCtx, s.Leaking); err != nil {
		return err
	}
	out.head("Scenario")
	out.line("  nodes %s, %s, %s, %s; Deployments %s/%s (will leak), %s/%s (will leak, carries leakguard.io/ignore: \"true\"),",
		s.Worker.Name, s.OrphanNode.Name, s.ControlPlane.Name, s.AgentNode.Name, s.Leaking.Namespace, s.Leaking.Name, s.Ignored.Namespace, s.Ignored.Name)
	out.line("  %s/%s, %s/%s and %s/%s (flat); kube-apiserver on %s at 70 %% of the node's memory;", s.Outage.Namespace, s.Outage.Name, s.Flat.Namespace, s.Flat.Name, s.Live.Namespace, s.Live.Name, s.ControlPlane.Name)
	out.line("  leakguard agent on %s over a fixture cgroup tree: %d empty cgroups of pods that do not exist, and %s/%s's", s.AgentNode.Name, s.AgentOrphans, s.Live.Namespace, s.Live.Pod())
	out.line("  rules: generated with lab.LabParams (a 15-minute step is 10 s, the 2-hour steady trend 80 s), %s", c.RuleFile)
	out.line("  policy: the default, with ContainerMemoryLeak's remediators annotate, profile (%s/%s serves pprof on port %d)", s.Leaking.Namespace, s.Leaking.Pod(), s.Leaking.PprofPort)
	out.line("  and restart (enabled, minReadyReplicas 1), in that order; deploy/'s admission policies are in force")

	out.head("Timeline (seconds since the leak started)")
	if err := s.StartLeaks(c, s.Leaking, s.Ignored); err != nil {
		return err
	}
	if err := s.StartOrphans(c); err != nil {
		return err
	}
	// What the leaking pod's pprof serves leaks too, so that profile's
	// two heap profiles show what grows.
	leak, err := lab.StartProcessLeak(lab.ProcessLeakOptions{})
	if err != nil {
		return err
	}
	defer leak.Stop()
	w := newWatcher(c, s, out)
	for _, wl := range []lab.Workload{s.Leaking, s.Ignored} {
		ctr, _ := c.Metrics.Container(wl.Key())
		w.event("leak starting: %s/%s container %s grows %s/s from %s (limit %s)", wl.Namespace, wl.Pod(), lab.ContainerName,
			mib(s.LeakBytesPerSecond), mib(ctr.BaseBytes), mib(float64(wl.LimitBytes)))
	}
	w.event("node agent series of %s report 42 orphan cgroups (threshold 20)", s.OrphanNode.Name)
	scenarioCtx, cancelScenario := context.WithTimeout(ctx, o.timeout)
	defer cancelScenario()
	if err := w.run(scenarioCtx); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C
		}
		return fmt.Errorf("the scenario did not play out: %w", err)
	}
	out.line("  the scenario played out in %s", time.Since(w.t0).Round(time.Second))
	w.finalState(ctx)

	if o.exitAfter {
		return nil
	}
	out.head("The lab keeps running; Ctrl-C stops it and removes everything")
	out.line("  Prometheus     %s   (try: ALERTS, %s)", c.Prometheus.URL(), "namespace_pod_container:container_memory_working_set_bytes:deriv")
	out.line("  Alertmanager   %s", c.Alertmanager.URL())
	for _, r := range c.Serve {
		out.line("  receiver       %s/api/v1/alerts   (%s; bearer token in %s, CA %s)", r.URL(), r.Name, filepath.Join(c.Dir(), "webhook-token"), c.CAFile())
	}
	out.line("  kubectl        kubectl --kubeconfig %s get events -A --field-selector source=leakguard", c.Kubeconfig)
	out.line("  logs           %s/*.log", c.Dir())
	w.follow(ctx)
	return nil
}

// moduleRoot walks up from the working directory to leakguard's go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(data), "module github.com/leakguard/leakguard\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the leakguard checkout; run it from there or pass --repo")
		}
		dir = parent
	}
}

// ensurePackages finds Debian's prometheus and prometheus-alertmanager,
// and installs those missing, and the packages extra (the real node's
// containerd and runc, which the lab choice found missing), when run as
// root (etcd and kube-apiserver are built from source by
// hack/e2e-binaries.sh: ensureAPIServer).
func ensurePackages(ctx context.Context, out *printer, extra []string) error {
	missing := append([]string(nil), extra...)
	for _, p := range []struct{ pkg, bins string }{
		{"prometheus", "prometheus"}, {"prometheus-alertmanager", "prometheus-alertmanager alertmanager"},
	} {
		path, err := lab.FindExecutable(strings.Fields(p.bins)...)
		if err != nil {
			missing = append(missing, p.pkg)
			continue
		}
		out.line("  %-24s %s", p.pkg, path)
	}
	if len(missing) == 0 {
		return nil
	}
	cmd := "apt-get install -y --no-install-recommends " + strings.Join(missing, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("missing Debian packages %v; install them with:\n  sudo apt-get update && sudo %s", missing, cmd)
	}
	out.line("  installing %v: apt-get update && %s", missing, cmd)
	for _, args := range [][]string{{"apt-get", "update"}, append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, missing...)} {
		c := exec.CommandContext(ctx, args[0], args[1:]...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(args, " "), err)
		}
	}
	// The packages start their services; the lab starts its own (and
	// its containerd must own containerd's socket).
	for _, svc := range []string{"prometheus", "prometheus-alertmanager", "prometheus-node-exporter", "containerd"} {
		_ = exec.CommandContext(ctx, "systemctl", "stop", svc).Run()
	}
	return nil
}

// ensureAPIServer finds kube-apiserver and etcd, running
// hack/e2e-binaries.sh (which builds kube-apiserver from source the first
// time, with its progress on stderr) when they are missing.
func ensureAPIServer(ctx context.Context, root string, out *printer, stderr io.Writer) (string, error) {
	if dir, err := lab.FindBinaries(root); err == nil {
		out.line("  %-24s %s", "kube-apiserver, etcd", dir)
		return dir, nil
	}
	out.line("  kube-apiserver is not built yet: hack/e2e-binaries.sh builds it from source (about 6 minutes on 2 cores, once)")
	start := time.Now()
	c := exec.CommandContext(ctx, filepath.Join(root, "hack", "e2e-binaries.sh"))
	c.Dir = root
	c.Stderr = stderr
	dirOut, err := c.Output()
	if err != nil {
		return "", fmt.Errorf("hack/e2e-binaries.sh: %w", err)
	}
	dir := strings.TrimSpace(string(dirOut))
	out.line("  built in %s: %s", time.Since(start).Round(time.Second), dir)
	if err := os.Setenv("LEAKGUARD_E2E_BIN", dir); err != nil {
		return "", err
	}
	return lab.FindBinaries(root)
}

// demoPolicy is the default policy with profile and restart turned on for
// ContainerMemoryLeak, after annotate: the evidence first, then the
// restart (minReadyReplicas 1, as the lab's Deployments have one replica).
// profile's second heap profile comes 5 s after the first (growthAfter),
// not the default 30 s: the lab's Alertmanager (group_interval 1s) gives
// a notification 10 s, and serve would finish the delivery after it gave
// up, but the timeline would show its retry.
func demoPolicy() ([]byte, error) {
	var p map[string]any
	if err := yaml.Unmarshal(remediate.DefaultPolicyYAML(), &p); err != nil {
		return nil, err
	}
	alerts, _ := p["alerts"].(map[string]any)
	leak, _ := alerts[rules.AlertContainerMemoryLeak].(map[string]any)
	if leak == nil {
		return nil, errors.New("the default policy has no ContainerMemoryLeak entry")
	}
	leak["remediators"] = []any{
		map[string]any{"name": annotate.Name},
		map[string]any{"name": profile.Name, "args": map[string]any{"timeout": "10s", "growthAfter": "5s"}},
		map[string]any{"name": restart.Name, "enabled": true, "args": map[string]any{"minReadyReplicas": 1}},
	}
	return yaml.Marshal(p)
}

func mib(v float64) string {
	if v >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", v/(1<<20))
}

// printer writes the demo's lines.
type printer struct{ w io.Writer }

func (p *printer) head(s string) { fmt.Fprintf(p.w, "\n== %s\n", s) }

func (p *printer) line(format string, args ...any) { fmt.Fprintf(p.w, format+"\n", args...) }
