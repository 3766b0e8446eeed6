// Package agentcmd is the node agent's command: its flags and the wiring
// of the scanner, the metadata-only pod informer and the agent (the
// library is package cgroups). Both "leakguard agent" (cmd/leakguard) and
// the program of the directory above, cmd/leakguard-agent, run it; the
// second is a program of the agent alone, which links none of serve's
// dependencies (client-go's typed clients, the remediation engine), so
// that it keeps fewer pages resident on every node (docs/performance.md).
package agentcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"

	"github.com/leakguard/leakguard/cgroups"
	"github.com/leakguard/leakguard/internal/cli"
)

// ErrUsage is returned for a usage error, which Run has already reported
// on stderr.
var ErrUsage = cli.ErrUsage

// Run parses the agent's flags (args, without the subcommand's name),
// builds the scanner, the pod informer and the agent, and runs them until
// ctx is done. version goes into the User-Agent. --help returns
// flag.ErrHelp.
func Run(ctx context.Context, args []string, stderr io.Writer, version string) error {
	fs := cli.NewFlagSet("agent", stderr)
	var (
		node        = fs.String("node-name", os.Getenv("NODE_NAME"), "name of this node, the node label of every metric (default $NODE_NAME)")
		cgroupRoot  = fs.String("cgroup-root", "/sys/fs/cgroup", "where the node's cgroup tree is mounted (read-only is enough)")
		procRoot    = fs.String("proc-root", "/proc", "where the node's /proc is; <proc-root>/cgroups is read on cgroup v1")
		listen      = fs.String("listen-address", ":9808", "address to serve /metrics, /orphans and /healthz on")
		interval    = fs.Duration("interval", cgroups.DefaultInterval, "time between two scans")
		grace       = fs.Duration("grace-period", cgroups.DefaultGracePeriod, "how long a cgroup must stay orphaned before it counts")
		remove      = fs.Bool("remove-empty-orphans", false, "rmdir counted orphan cgroups, on cgroup v1 in every controller hierarchy and only while none holds a process (default false: count only; needs the cgroup tree mounted read-write; see docs/agent.md)")
		kubeconfig  = fs.String("kubeconfig", "", cli.KubeconfigHelp)
		kubeContext = fs.String("context", "", cli.ContextHelp)
		syncTimeout = fs.Duration("sync-timeout", 2*time.Minute, "how long to wait for the node's pods before the first scan")
		maxListed   = fs.Int("max-listed-orphans", cgroups.DefaultMaxListedOrphans, "most orphans listed by GET /orphans")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
	)
	if err := cli.Parse(fs, args); err != nil {
		return err // cli.ErrHelp or ErrUsage, reported
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "agent: unexpected arguments %q\n", fs.Args())
		return ErrUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "agent: --log-level: %v\n", err)
		return ErrUsage
	}
	if *node == "" {
		fmt.Fprintln(stderr, "agent: --node-name is required (or set NODE_NAME)")
		return ErrUsage
	}
	if *interval <= 0 || *grace <= 0 || *syncTimeout <= 0 || *maxListed <= 0 {
		fmt.Fprintln(stderr, "agent: --interval, --grace-period, --sync-timeout and --max-listed-orphans must be positive")
		return ErrUsage
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	// client-go's own lines (the informer's reflector, say) in the same
	// JSON.
	klog.SetSlogLogger(logger)
	// The cgroup root is checked first: a wrong hostPath is the likeliest
	// mistake, and it should be the error a user sees.
	if _, err := cgroups.DetectLayout(*cgroupRoot); err != nil {
		return err
	}

	// As serve and kubectl find the cluster: --kubeconfig, $KUBECONFIG,
	// ~/.kube/config, then (in the DaemonSet's pods) in-cluster.
	restCfg, err := cli.RESTConfig(*kubeconfig, *kubeContext)
	if err != nil {
		return fmt.Errorf("kubernetes client config: %w", err)
	}
	restCfg.UserAgent = "leakguard-agent/" + version
	// Pod metadata is all the agent reads (the UID, the mirror
	// annotation): the metadata client lists and watches it alone.
	client, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return fmt.Errorf("kubernetes metadata client: %w", err)
	}
	pods, err := cgroups.NewMetadataPodSource(client, *node, 0)
	if err != nil {
		return err
	}
	scanner, err := cgroups.NewScanner(cgroups.Options{
		CgroupRoot:         *cgroupRoot,
		ProcRoot:           *procRoot,
		GracePeriod:        *grace,
		RemoveEmptyOrphans: *remove,
		Logger:             logger,
	}, pods)
	if err != nil {
		return err
	}
	agent, err := cgroups.NewAgent(cgroups.AgentOptions{
		Node:             *node,
		Interval:         *interval,
		MaxListedOrphans: *maxListed,
		Logger:           logger,
		ReturnMemory:     true,
	}, scanner)
	if err != nil {
		return err
	}
	l := scanner.Layout()
	logger.Info("starting node agent", "node", *node, "cgroup_root", l.Root, "cgroup_version", l.Version.String(),
		"hierarchy", l.Hierarchy, "interval", *interval, "grace_period", *grace, "remove_empty_orphans", *remove)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	go func() { serveErr <- agent.ListenAndServe(ctx, *listen) }()
	go pods.Run(ctx)

	syncCtx, cancelSync := context.WithTimeout(ctx, *syncTimeout)
	synced := pods.WaitForSync(syncCtx)
	cancelSync()
	if !synced && ctx.Err() == nil {
		// Scans still count live and dying cgroups; orphans wait for the
		// pods, and every scan until then is counted as failed.
		logger.Warn("pods bound to the node not synced yet; scanning without orphan detection until they are", "waited", *syncTimeout)
	}
	loopDone := make(chan struct{})
	go func() { agent.Run(ctx); close(loopDone) }()

	select {
	case err := <-serveErr:
		cancel()
		<-loopDone
		return err
	case <-ctx.Done():
	}
	<-loopDone
	if err := <-serveErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
