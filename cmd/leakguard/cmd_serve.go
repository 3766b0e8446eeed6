package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/leakguard/leakguard/internal/cli"
	"github.com/leakguard/leakguard/promclient"
	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/server"
	"github.com/spf13/pflag"
)

// defaultPrometheusURL is the Service the Prometheus Operator creates for
// every Prometheus (kube-prometheus and kube-prometheus-stack alike).
const defaultPrometheusURL = "http://prometheus-operated.monitoring.svc:9090"

// serveFlags are the flags of serve (and, in part, of replay).
type serveFlags struct {
	listen     string
	kubeconfig string
	// kubeContext is --context: the kubeconfig context to use instead of
	// the current one.
	kubeContext   string
	prometheusURL string
	policyFile    string
	namespace     string
	// cluster, clusterLabel and acceptMissingCluster place the receiver
	// in a fleet (remediate.Options.Cluster and the rest).
	cluster              string
	clusterLabel         string
	acceptMissingCluster bool
	dryRun               bool
	printPolicy          bool
	// output is replay's -o: "table" (also when empty) or "json".
	output   string
	logLevel string
	server   server.Config
	profiles profileFlags

	// prometheusConfigFile is --prometheus-config-file: the HTTP client
	// configuration of the Prometheus client (promclient).
	prometheusConfigFile string
}

func (f *serveFlags) registerCommon(fs *pflag.FlagSet, logLevel string) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", cli.KubeconfigHelp)
	fs.StringVar(&f.kubeContext, "context", "", cli.ContextHelp)
	fs.StringVar(&f.prometheusURL, "prometheus-url", defaultPrometheusURL, "base URL of the Prometheus HTTP API that the checks query (http or https, with a host; checked at start)")
	fs.StringVar(&f.prometheusConfigFile, promclient.FlagName, "", promConfigFileHelp+"; serve reloads it on SIGHUP")
	fs.StringVar(&f.policyFile, "policy", "", "policy `FILE` (YAML); empty means the embedded default policy (see --print-default-policy)")
	fs.StringVar(&f.logLevel, "log-level", logLevel, "log level: debug, info, warn or error (logs are JSON on stderr)")
	fs.StringVar(&f.namespace, "namespace", defaultNamespace(),
		"leakguard's own namespace: the budget Lease lives there and its "+remediate.AnnotationPause+` annotation ("true") pauses every disruptive action (default $POD_NAMESPACE, else `+remediate.DefaultNamespace+")")
	fs.StringVar(&f.cluster, "cluster", "",
		"this cluster's `NAME` in a fleet: alerts whose --cluster-label names another cluster are held (other-cluster), and every check query carries --cluster-label=\"NAME\"; empty: a single cluster, no label")
	fs.StringVar(&f.clusterLabel, "cluster-label", remediate.DefaultClusterLabel, "the label that names the cluster in alerts and series (the rules' clusterLabel)")
	fs.BoolVar(&f.acceptMissingCluster, "accept-missing-cluster", false,
		"with --cluster, decide alerts that carry no --cluster-label too (their checks still read this cluster's series only); off, they are held (other-cluster)")
}

// engineOptions sets the options of o that come from the flags.
func (f *serveFlags) engineOptions(o remediate.Options) remediate.Options {
	o.Namespace = f.namespace
	o.Cluster, o.ClusterLabel, o.AcceptMissingCluster = f.cluster, f.clusterLabel, f.acceptMissingCluster
	return o
}

// defaultNamespace is $POD_NAMESPACE (the Deployment sets it from the
// downward API), else remediate.DefaultNamespace.
func defaultNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return remediate.DefaultNamespace
}

// serveFlagSet defines serve's flags on a new flag set writing into f.
func serveFlagSet(f *serveFlags, stderr io.Writer) *pflag.FlagSet {
	fs := cli.NewFlagSet("serve", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leakguard serve [flags]

Receive Alertmanager's webhook on POST `+server.AlertsPath+`, decide per alert
whether to act (policy, target, check against Prometheus, guards) and act
through the policy's remediators. SIGHUP reloads --policy and
--prometheus-config-file; an invalid file keeps the running one.
/healthz, /readyz and /metrics are served too.

flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.listen, "listen-address", ":8443", "address to serve on (host:port)")
	f.registerCommon(fs, "info")
	fs.BoolVar(&f.dryRun, "dry-run", false, "decide and record (logs, metrics, Events) but change no object, whatever the policy says")
	fs.BoolVar(&f.printPolicy, "print-default-policy", false, "print the embedded default policy and exit")
	f.server.RegisterFlags(fs)
	f.profiles.register(fs)
	return fs
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := serveFlagSet(&f, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	// A bad URL fails now, before a policy, a cluster or a port is touched,
	// as a bad --log-level does (exit 1).
	if err := checkURLFlag("prometheus-url", f.prometheusURL); err != nil {
		return err
	}
	if f.printPolicy {
		_, err := stdout.Write(remediate.DefaultPolicyYAML())
		return err
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	// A bad --prometheus-config-file fails now too, before the policy or
	// the cluster: building the client reads it and the files it names.
	querier, err := promQuerier(f.prometheusURL, f.prometheusConfigFile)
	if err != nil {
		return err
	}
	// The policy is checked now, before the cluster is touched; it is
	// compiled again below with the registry whose profile remediator
	// has its store and client configuration.
	if _, err := loadPolicy(f.policyFile, builtin.Registry()); err != nil {
		return err
	}
	client, md, err := kubeClient(f.kubeconfig, f.kubeContext)
	if err != nil {
		return err
	}
	profiles, err := f.profiles.store()
	if err != nil {
		return err
	}
	restCfg, err := kubeRESTConfig(f.kubeconfig, f.kubeContext)
	if err != nil {
		return err
	}
	// The profile remediator asks the same Prometheus, confined to this
	// cluster as the checks are, for the apiserver's object kinds.
	reg := builtin.New(builtin.Deps{Profile: profile.Deps{Store: profiles, Config: restCfg, Querier: querier, Cluster: f.cluster, ClusterLabel: f.clusterLabel}})
	policy, err := loadPolicy(f.policyFile, reg)
	if err != nil {
		return err
	}
	engine, handler, err := buildServe(serveDeps{
		flags: f, policy: policy, client: client, metadata: md, querier: querier, logger: logger, registry: reg,
		profiles: profiles,
	})
	if err != nil {
		return err
	}
	if err := checkServeAccess(ctx, client, policy, f); err != nil {
		return err
	}
	go resumeDrains(ctx, engine, logger)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go remediate.ReloadOnSignal(ctx, hup, func() error {
		if f.policyFile == "" {
			logger.Info("no --policy file: the embedded default policy stays")
			return nil
		}
		// A policy that needs a right the token lacks is refused as an
		// invalid one is: the running policy goes on.
		return engine.ReloadPolicyFileIf(f.policyFile, reg, func(p *remediate.Policy) error {
			return checkServeAccess(ctx, client, p, f)
		})
	}, logger)
	// The Prometheus client's configuration file reloads on the same
	// SIGHUP, on its own: a bad one keeps the running client and does not
	// stop the policy's reload, nor the other way round. The files it
	// names (passwords, tokens, certificates) need no signal:
	// prometheus/common re-reads them.
	promHup := make(chan os.Signal, 1)
	signal.Notify(promHup, syscall.SIGHUP)
	defer signal.Stop(promHup)
	go querier.ReloadOnSignal(ctx, promHup, logger)
	logger.Info("serving", "address", f.listen, "policy", policyName(f.policyFile), "alerts", len(policy.AlertNames()), "namespace", f.namespace,
		"cluster", f.cluster, "cluster_label", f.clusterLabel, "accept_missing_cluster", f.acceptMissingCluster,
		"dry_run", f.dryRun || policy.DryRun, "prometheus", f.prometheusURL, "prometheus_config_file", f.prometheusConfigFile)
	return server.Serve(ctx, f.listen, f.server, handler, logger)
}

// serveDeps is what buildServe wires together; the end-to-end test builds
// it with a fake clientset and a fake Querier.
type serveDeps struct {
	flags    serveFlags
	policy   *remediate.Policy
	client   kubernetes.Interface
	metadata metadata.Interface
	querier  remediate.Querier
	logger   *slog.Logger
	registry *remediate.Registry
	// now is the engine's clock; nil means time.Now.
	now func() time.Time
	// profiles serves the stored profiles (GET /profiles); nil serves
	// none. The profile remediator gets its store through registry.
	profiles *profile.Store
}

// buildServe builds the engine and the HTTP handler of serve, with one
// metrics registry for both (plus the Go and process collectors) and the
// ready checks of Kubernetes and Prometheus.
func buildServe(d serveDeps) (*remediate.Engine, http.Handler, error) {
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	engine, err := remediate.NewEngine(d.flags.engineOptions(remediate.Options{
		Client:     d.client,
		Metadata:   d.metadata,
		Querier:    d.querier,
		Policy:     d.policy,
		DryRun:     d.flags.dryRun,
		Logger:     d.logger,
		Registerer: metrics,
		Now:        d.now,
	}))
	if err != nil {
		return nil, nil, err
	}
	cfg := d.flags.server
	cfg.Registerer = metrics
	if d.profiles != nil {
		cfg.Profiles = profileSource{d.profiles}
	}
	cfg.KnownAlertName = func(name string) bool { return engine.Policy().Entry(name) != nil }
	cfg.ReadyChecks = map[string]func(context.Context) error{
		"kubernetes": func(context.Context) error {
			_, err := d.client.Discovery().ServerVersion()
			return err
		},
		"prometheus": func(ctx context.Context) error {
			_, _, _, err := d.querier.Query(ctx, "vector(1)", time.Now())
			return err
		},
	}
	// A waiting drain (paused, dry-run, no drain in the policy) is shown,
	// not failed on: the replica must go on receiving alerts while
	// paused, and every replica would otherwise leave the Service.
	cfg.ReadyNotes = map[string]func() string{"drains": func() string { return waitingDrains(engine.WaitingDrains()) }}
	h, err := server.NewHandler(cfg, engineProcessor{engine}, d.logger)
	if err != nil {
		return nil, nil, err
	}
	return engine, h, nil
}

// waitingDrains is /readyz's note on the drains that wait: "" when none
// does.
func waitingDrains(w []string) string {
	if len(w) == 0 {
		return ""
	}
	return fmt.Sprintf("%d waiting: %s", len(w), strings.Join(w, "; "))
}

// engineProcessor adapts the engine to server.Processor.
type engineProcessor struct{ engine *remediate.Engine }

// Process decides every alert of msg. A transient failure (Kubernetes or
// Prometheus unreachable, 429, 5xx) of any alert fails the delivery,
// answered 503 so that Alertmanager retries it; the alerts already acted
// on are then held by their cooldown. A permanent failure (a missing
// label, Forbidden, an unusable Prometheus answer) is reported in its
// decision with a 200, even when every alert failed: no retry can fix it,
// and a 5xx would only make Alertmanager redeliver it.
func (p engineProcessor) Process(ctx context.Context, msg *server.Message) (any, error) {
	decisions, err := p.engine.Decide(ctx, msg.Alerts)
	if remediate.IsTransient(err) {
		return nil, err
	}
	return decisions, nil
}

func loadPolicy(path string, reg *remediate.Registry) (*remediate.Policy, error) {
	if path == "" {
		return remediate.DefaultPolicy(reg)
	}
	return remediate.LoadPolicyFile(path, reg)
}

func policyName(path string) string {
	if path == "" {
		return "embedded default"
	}
	return path
}

// kubeClient builds a clientset and a metadata client (for owners of
// kinds without a typed client) from the client configuration of
// kubeRESTConfig.
func kubeClient(kubeconfig, kubeContext string) (kubernetes.Interface, metadata.Interface, error) {
	cfg, err := kubeRESTConfig(kubeconfig, kubeContext)
	if err != nil {
		return nil, nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client: %w", err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes metadata client: %w", err)
	}
	return c, md, nil
}

// kubeRESTConfig is the client configuration of kubeClient, found as
// kubectl finds it (cli.RESTConfig: --kubeconfig, else $KUBECONFIG, else
// ~/.kube/config, kubeContext for the context, in-cluster last), with
// serve's User-Agent, rate limits and timeout.
func kubeRESTConfig(kubeconfig, kubeContext string) (*rest.Config, error) {
	cfg, err := cli.RESTConfig(kubeconfig, kubeContext)
	if err != nil {
		return nil, err
	}
	cfg.UserAgent = "leakguard/" + version
	// client-go's default of 5 requests per second would spread the 7
	// requests of each acting alert of a 100-alert notification over more
	// than two minutes, past the receiver's write timeout.
	cfg.QPS, cfg.Burst = 50, 100
	// A hung API server fails the request (503, retried) instead of
	// holding the notification.
	cfg.Timeout = 30 * time.Second
	return cfg, nil
}

// promConfigFileHelp is the help of --prometheus-config-file, shared by
// serve, replay and recommend.
const promConfigFileHelp = "HTTP client configuration `FILE` for Prometheus, in the format of promtool's --http.config.file (prometheus/common): basic_auth, authorization (bearer token), oauth2, tls_config (CA, client certificate), proxy_url, http_headers (X-Scope-OrgID for Mimir); checked at start, with the files it names, which are re-read on every request; empty: no credentials, the system's CAs"

// promQuerier builds the Prometheus HTTP API client the checks query,
// from --prometheus-url and --prometheus-config-file (file; "" none).
func promQuerier(url, file string) (*promclient.Client, error) {
	if url == "" {
		return nil, errors.New("--prometheus-url must not be empty")
	}
	if err := checkURLFlag("prometheus-url", url); err != nil {
		return nil, err
	}
	return promclient.New(url, file, "leakguard/"+version)
}

// newLogger returns a JSON slog logger on w at the named level, and routes
// client-go's own log lines (klog) through it, so that a log pipeline
// parses every line the process writes.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	logger := slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
	routeKlog(logger)
	return logger, nil
}

// routeKlog sends klog's output (client-go's warnings, throttling notes,
// reflector errors) to logger's handler instead of klog's text format on
// stderr.
func routeKlog(logger *slog.Logger) {
	klog.SetSlogLogger(logger)
}
