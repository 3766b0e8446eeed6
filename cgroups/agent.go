package cgroups

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults of the agent.
const (
	// DefaultInterval is the time between two scans.
	DefaultInterval = 60 * time.Second
	// DefaultMaxListedOrphans bounds the /orphans answer.
	DefaultMaxListedOrphans = 500
)

// Metric names: the contract of shared/ALERTS.md.
const (
	metricOrphans      = "leakguard_node_orphan_cgroups"
	metricCgroups      = "leakguard_node_cgroups"
	metricDying        = "leakguard_node_dying_cgroups"
	metricScanDuration = "leakguard_node_cgroup_scan_duration_seconds"
	metricScanErrors   = "leakguard_node_cgroup_scan_errors_total"
)

// scanner is what the agent needs of a Scanner.
type scanner interface {
	Scan() Result
}

// AgentOptions configures an Agent. Zero values take the defaults noted.
type AgentOptions struct {
	// Node is the node's name, the node label of every metric. Required.
	Node string
	// Interval is DefaultInterval when zero.
	Interval time.Duration
	// MaxListedOrphans is DefaultMaxListedOrphans when zero.
	MaxListedOrphans int
	// Now is time.Now when nil.
	Now func() time.Time
	// Logger is slog.Default() when nil.
	Logger *slog.Logger
	// ReturnMemory hands the scan's garbage back to the kernel after every
	// scan (a forced collection, debug.FreeOSMemory). Scans are a minute
	// apart and the heap is small, so the collection is cheap, and the
	// agent's resident memory stays near its live heap between scans.
	ReturnMemory bool
}

// Agent runs scans on an interval and serves their latest result. Scrapes
// and /orphans read a snapshot of the last completed scan and never wait for
// a running one.
type Agent struct {
	opts    AgentOptions
	scanner scanner
	log     *slog.Logger
	reg     *prometheus.Registry

	duration prometheus.Histogram
	errors   prometheus.Counter

	mu           sync.RWMutex
	last         *Result
	progress     time.Time // start, then the end of every scan
	removedTotal int
}

// NewAgent builds an agent around a scanner and registers its metrics in a
// registry of its own, with the Go runtime and process collectors.
func NewAgent(opts AgentOptions, s scanner) (*Agent, error) {
	if opts.Node == "" {
		return nil, errors.New("new agent: empty node name (set --node-name or NODE_NAME)")
	}
	if s == nil {
		return nil, errors.New("new agent: nil scanner")
	}
	if opts.Interval < 0 || opts.MaxListedOrphans < 0 {
		return nil, fmt.Errorf("new agent: negative interval %s or orphan list bound %d", opts.Interval, opts.MaxListedOrphans)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.MaxListedOrphans == 0 {
		opts.MaxListedOrphans = DefaultMaxListedOrphans
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	node := prometheus.Labels{"node": opts.Node}
	a := &Agent{
		opts:    opts,
		scanner: s,
		log:     opts.Logger.With("node", opts.Node),
		reg:     prometheus.NewRegistry(),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        metricScanDuration,
			Help:        "Time of one scan of the node's cgroup tree.",
			ConstLabels: node,
			Buckets:     []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        metricScanErrors,
			Help:        "Scans of the node's cgroup tree that failed in whole or in part.",
			ConstLabels: node,
		}),
		progress: opts.Now(),
	}
	err := errors.Join(
		a.reg.Register(a.duration),
		a.reg.Register(a.errors),
		a.reg.Register(newResultCollector(a, node)),
		a.reg.Register(collectors.NewGoCollector()),
		a.reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
	if err != nil {
		return nil, fmt.Errorf("new agent: register metrics: %w", err)
	}
	return a, nil
}

// Registry returns the agent's metric registry.
func (a *Agent) Registry() *prometheus.Registry { return a.reg }

// ScanOnce runs one scan and publishes its result.
func (a *Agent) ScanOnce() Result {
	r := a.scanner.Scan()
	a.duration.Observe(r.Duration.Seconds())
	if r.Err != nil {
		a.errors.Inc()
		a.log.Warn("cgroup scan failed", "err", r.Err, "duration", r.Duration)
	}
	a.mu.Lock()
	prev := a.last
	a.last = &r
	a.progress = a.opts.Now()
	a.removedTotal += r.Removed
	a.mu.Unlock()
	if r.OrphansKnown && (prev == nil || !prev.OrphansKnown || len(prev.Orphans) != len(r.Orphans)) {
		a.log.Info("orphan cgroups", "count", len(r.Orphans), "pending", r.Pending, "driver", r.Driver)
	}
	if a.opts.ReturnMemory {
		debug.FreeOSMemory()
	}
	a.log.Debug("cgroup scan done", "duration", r.Duration, "orphans", len(r.Orphans), "pending", r.Pending,
		"cgroups", r.Cgroups, "dying", r.Dying, "removed", r.Removed)
	return r
}

// Run scans at once, then every interval, until ctx is done. A scan that
// overruns the interval delays the next one; scans never overlap.
func (a *Agent) Run(ctx context.Context) {
	a.ScanOnce()
	t := time.NewTicker(a.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.ScanOnce()
		}
	}
}

// Handler serves GET /metrics, /orphans and /healthz.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(a.log.Handler(), slog.LevelError),
		Timeout:       10 * time.Second,
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /orphans", a.serveOrphans)
	mux.HandleFunc("GET /healthz", a.serveHealth)
	return mux
}

// OrphanList is the body of GET /orphans.
type OrphanList struct {
	// Node is the agent's node.
	Node string `json:"node"`
	// ScannedAt is the start of the scan listed; absent before the first.
	ScannedAt *time.Time `json:"scannedAt,omitempty"`
	// Known is false when the last scan could not judge orphans.
	Known bool `json:"known"`
	// Total is the number of orphans counted; Orphans lists at most the
	// agent's bound of them, and Truncated says when it lists fewer.
	Total     int      `json:"total"`
	Truncated bool     `json:"truncated"`
	Orphans   []Orphan `json:"orphans"`
	// Pending counts cgroups seen orphaned but still in the grace period.
	Pending int `json:"pending"`
	// RemovedTotal counts the directories removed since the agent started.
	RemovedTotal int `json:"removedTotal"`
	// Error is the last scan's error, if any.
	Error string `json:"error,omitempty"`
}

func (a *Agent) serveOrphans(w http.ResponseWriter, _ *http.Request) {
	a.mu.RLock()
	body := OrphanList{Node: a.opts.Node, Orphans: []Orphan{}, RemovedTotal: a.removedTotal}
	if r := a.last; r != nil {
		start := r.Start
		body.ScannedAt = &start
		body.Known = r.OrphansKnown
		body.Total = len(r.Orphans)
		body.Pending = r.Pending
		n := min(len(r.Orphans), a.opts.MaxListedOrphans)
		body.Orphans = append(body.Orphans, r.Orphans[:n]...)
		body.Truncated = n < len(r.Orphans)
		if r.Err != nil {
			body.Error = r.Err.Error()
		}
	}
	a.mu.RUnlock()
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(body); err != nil {
		a.log.Debug("write /orphans", "err", err)
	}
}

// serveHealth answers 503 when no scan has finished for three intervals: the
// scan loop is stuck (a hung read of the cgroup tree, say) and a restart may
// help. A scan that fails still counts as progress; its error is a metric.
func (a *Agent) serveHealth(w http.ResponseWriter, _ *http.Request) {
	a.mu.RLock()
	since := a.opts.Now().Sub(a.progress)
	a.mu.RUnlock()
	if limit := 3 * a.opts.Interval; since > limit {
		http.Error(w, fmt.Sprintf("no scan finished for %s (limit %s)", since.Round(time.Second), limit), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// ListenAndServe serves Handler on addr until ctx is done, then shuts the
// server down gracefully.
func (a *Agent) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return a.Serve(ctx, ln)
}

// Serve serves Handler on ln until ctx is done.
func (a *Agent) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down server: %w", err)
	}
	return nil
}

// resultCollector exports the gauges of the last scan. It reads a snapshot
// under a read lock, so a scrape never waits for a scan.
type resultCollector struct {
	a       *Agent
	orphans *prometheus.Desc
	cgroups *prometheus.Desc
	dying   *prometheus.Desc
}

func newResultCollector(a *Agent, node prometheus.Labels) *resultCollector {
	return &resultCollector{
		a: a,
		orphans: prometheus.NewDesc(metricOrphans,
			"Pod-level cgroups under kubepods whose pod UID is not a pod bound to this node and which hold no process, seen so for at least the grace period.",
			nil, node),
		cgroups: prometheus.NewDesc(metricCgroups,
			"Live cgroups per controller: num_cgroups of /proc/cgroups on cgroup v1, the number of cgroup directories on v2 (controller=\"unified\").",
			[]string{"controller"}, node),
		dying: prometheus.NewDesc(metricDying,
			"Removed cgroups the kernel has not freed yet: nr_dying_descendants of the root cgroup on v2; on v1 the memory controller's num_cgroups minus its live cgroup directories.",
			nil, node),
	}
}

// Describe implements prometheus.Collector.
func (c *resultCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.orphans
	ch <- c.cgroups
	ch <- c.dying
}

// Collect implements prometheus.Collector. A value the last scan could not
// measure is left out rather than reported as zero.
func (c *resultCollector) Collect(ch chan<- prometheus.Metric) {
	c.a.mu.RLock()
	r := c.a.last
	c.a.mu.RUnlock()
	if r == nil {
		return
	}
	// r is never written after it is published; reading it unlocked is safe.
	if r.OrphansKnown {
		ch <- prometheus.MustNewConstMetric(c.orphans, prometheus.GaugeValue, float64(len(r.Orphans)))
	}
	for controller, n := range r.Cgroups {
		ch <- prometheus.MustNewConstMetric(c.cgroups, prometheus.GaugeValue, float64(n), controller)
	}
	if r.DyingKnown {
		ch <- prometheus.MustNewConstMetric(c.dying, prometheus.GaugeValue, float64(r.Dying))
	}
}
