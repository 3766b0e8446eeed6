package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// Prometheus is Debian's prometheus on loopback, scraping the lab's
// synthetic endpoint and evaluating one rule file, with its own data
// directory that outlives a Stop, so that Start brings the same server
// back (the outage scenario).
type Prometheus struct {
	bin, dir, addr, configFile string
	timeout                    time.Duration
	p                          *process
}

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// Bin is the prometheus executable; "" finds it on PATH.
	Bin string
	// Dir holds the configuration, the data and the log.
	Dir string
	// Addr is the listen address; "" picks a free loopback port.
	Addr string
	// RuleFile is the rule file it evaluates.
	RuleFile string
	// MetricsAddr is the synthetic endpoint (Metrics.Addr).
	MetricsAddr string
	// ScrapeConfigs, when set, are the scrape jobs instead of the
	// synthetic endpoint's (MetricsAddr is then unused): the real
	// node's kubelet and kube-state-metrics.
	ScrapeConfigs []map[string]any
	// ExtraScrapeConfigs are scrape jobs added to the others (the lab's
	// own kube-apiserver's object counts, APIServerObjectsJob).
	ExtraScrapeConfigs []map[string]any
	// AgentAddrs are node agents (`leakguard agent`) scraped on /metrics
	// as job="leakguard-agent", relabelled as docs/agent.md's annotation
	// scrape does.
	AgentAddrs []string
	// AlertmanagerAddr receives the alerts; "" sends none.
	AlertmanagerAddr string
	// Interval is the scrape and evaluation interval; 0 means 1 s.
	Interval time.Duration
	// StartTimeout bounds the start until /-/ready; 0 means 60 s.
	StartTimeout time.Duration
}

// FindExecutable returns the first of names found on PATH.
func FindExecutable(names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %v on PATH", names)
}

// scrapeJobs are the jobs of the synthetic endpoint: job name, path, and
// whether the series carry a metrics_path label (cAdvisor's, as
// kube-prometheus-stack relabels it).
var scrapeJobs = []struct {
	job, path   string
	metricsPath bool
}{
	{"kubelet", "/metrics/cadvisor", true},
	{"kube-state-metrics", "/metrics/kube-state-metrics", false},
	{"apiserver", "/metrics/apiserver", false},
	{"leakguard-agent", "/metrics/agent", false},
}

// StartPrometheus writes the configuration and starts Prometheus.
func StartPrometheus(ctx context.Context, o PrometheusOptions) (*Prometheus, error) {
	if o.Bin == "" {
		bin, err := FindExecutable("prometheus")
		if err != nil {
			return nil, fmt.Errorf("prometheus (Debian: apt-get install prometheus): %w", err)
		}
		o.Bin = bin
	}
	if o.Interval == 0 {
		o.Interval = time.Second
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Addr == "" {
		o.Addr = freeAddr()
	}
	interval := promDuration(o.Interval)
	jobs := o.ScrapeConfigs
	for _, j := range scrapeJobs {
		if o.ScrapeConfigs != nil {
			break
		}
		job := map[string]any{
			"job_name":       j.job,
			"metrics_path":   j.path,
			"honor_labels":   true,
			"static_configs": []map[string]any{{"targets": []string{o.MetricsAddr}}},
		}
		if j.metricsPath {
			job["relabel_configs"] = []map[string]any{{"target_label": "metrics_path", "replacement": j.path}}
		}
		jobs = append(jobs, job)
	}
	jobs = append(jobs, o.ExtraScrapeConfigs...)
	if len(o.AgentAddrs) > 0 {
		jobs = append(jobs, map[string]any{
			"job_name":        "leakguard-agent-process",
			"static_configs":  []map[string]any{{"targets": o.AgentAddrs}},
			"relabel_configs": []map[string]any{{"target_label": "job", "replacement": "leakguard-agent"}},
		})
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     interval,
			"scrape_timeout":      interval,
			"evaluation_interval": interval,
		},
		"rule_files":     []string{o.RuleFile},
		"scrape_configs": jobs,
	}
	if o.AlertmanagerAddr != "" {
		cfg["alerting"] = map[string]any{"alertmanagers": []map[string]any{{
			"static_configs": []map[string]any{{"targets": []string{o.AlertmanagerAddr}}},
		}}}
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	p := &Prometheus{bin: o.Bin, dir: o.Dir, addr: o.Addr, configFile: filepath.Join(o.Dir, "prometheus.yml"), timeout: o.StartTimeout}
	if err := os.WriteFile(p.configFile, data, 0o600); err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// promDuration renders a duration as Prometheus writes it ("1s", "500ms").
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// Start starts Prometheus (again, after Stop) on the same address and
// data directory and waits until it is ready.
func (p *Prometheus) Start(ctx context.Context) error {
	if p.p != nil && p.p.running() == nil {
		return fmt.Errorf("prometheus is running")
	}
	proc, err := startProcess("prometheus", filepath.Join(p.dir, "prometheus.log"), nil, p.bin,
		"--config.file="+p.configFile,
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
		"--storage.tsdb.retention.time=1d",
		"--log.level=info",
	)
	if err != nil {
		return err
	}
	p.p = proc
	return waitFor(ctx, p.timeout, proc, func(ctx context.Context) error {
		return httpOK(ctx, nil, p.URL()+"/-/ready")
	})
}

// Stop stops Prometheus and keeps its data.
func (p *Prometheus) Stop() error {
	if p.p == nil {
		return nil
	}
	return p.p.stop()
}

// URL is the base URL of the HTTP API and UI.
func (p *Prometheus) URL() string { return "http://" + p.addr }

// Log is the tail of Prometheus's log.
func (p *Prometheus) Log(lines int) string {
	if p.p == nil {
		return ""
	}
	return p.p.tail(lines)
}

// PromAlert is one alert of Prometheus's /api/v1/alerts.
type PromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// Alerts returns the pending and firing alerts.
func (p *Prometheus) Alerts(ctx context.Context) ([]PromAlert, error) {
	var out struct {
		Data struct {
			Alerts []PromAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(ctx, nil, p.URL()+"/api/v1/alerts", &out); err != nil {
		return nil, err
	}
	return out.Data.Alerts, nil
}

// QueryValues runs an instant query and returns each series' labels and
// value, for a timeline or a failure message.
func (p *Prometheus) QueryValues(ctx context.Context, query string) ([]Sample, error) {
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, nil, p.URL()+"/api/v1/query?query="+url.QueryEscape(query), &out); err != nil {
		return nil, err
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, out.Error)
	}
	var samples []Sample
	for _, r := range out.Data.Result {
		s := Sample{Labels: r.Metric}
		if v, ok := r.Value[1].(string); ok {
			_, _ = fmt.Sscan(v, &s.Value)
		}
		samples = append(samples, s)
	}
	return samples, nil
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// httpOK GETs url and wants 200.
func httpOK(ctx context.Context, c *http.Client, url string) error {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func getJSON(ctx context.Context, c *http.Client, url string, v any) error {
	if c == nil {
		c = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
