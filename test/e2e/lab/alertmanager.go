package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// Alertmanager is Debian's prometheus-alertmanager on loopback, clustering
// off.
type Alertmanager struct {
	addr string
	p    *process
}

// AlertmanagerOptions configure StartAlertmanager.
type AlertmanagerOptions struct {
	// Bin is the executable; "" finds prometheus-alertmanager (Debian's
	// name) or alertmanager on PATH.
	Bin string
	// Dir holds the configuration, the data and the log.
	Dir string
	// Config is the alertmanager.yml.
	Config []byte
	// StartTimeout bounds the start until /-/ready; 0 means 60 s.
	StartTimeout time.Duration
}

// StartAlertmanager starts Alertmanager on a free loopback port.
func StartAlertmanager(ctx context.Context, o AlertmanagerOptions) (*Alertmanager, error) {
	if o.Bin == "" {
		bin, err := FindExecutable("prometheus-alertmanager", "alertmanager")
		if err != nil {
			return nil, fmt.Errorf("alertmanager (Debian: apt-get install prometheus-alertmanager): %w", err)
		}
		o.Bin = bin
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	configFile := filepath.Join(o.Dir, "alertmanager.yml")
	if err := os.WriteFile(configFile, o.Config, 0o600); err != nil {
		return nil, err
	}
	var last error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		a := &Alertmanager{addr: freeAddr()}
		p, err := startProcess("alertmanager", filepath.Join(o.Dir, "alertmanager.log"), nil, o.Bin,
			"--config.file="+configFile,
			"--storage.path="+filepath.Join(o.Dir, "data"),
			"--web.listen-address="+a.addr,
			// No gossip: one Alertmanager, and no port to collide on.
			"--cluster.listen-address=",
			"--log.level=debug",
		)
		if err != nil {
			return nil, err
		}
		a.p = p
		last = waitFor(ctx, o.StartTimeout, p, func(ctx context.Context) error {
			return httpOK(ctx, nil, a.URL()+"/-/ready")
		})
		if last == nil {
			return a, nil
		}
		_ = p.stop()
		if !errors.Is(last, errExited) {
			break
		}
	}
	return nil, fmt.Errorf("lab: alertmanager: %w", last)
}

// URL is the base URL of the API and UI.
func (a *Alertmanager) URL() string { return "http://" + a.addr }

// Addr is the host:port Prometheus sends alerts to.
func (a *Alertmanager) Addr() string { return a.addr }

// Stop stops Alertmanager.
func (a *Alertmanager) Stop() error { return a.p.stop() }

// Log is the tail of its log.
func (a *Alertmanager) Log(lines int) string { return a.p.tail(lines) }

// Silence silences the alerts whose labels equal matchers for d and
// returns the silence's id.
func (a *Alertmanager) Silence(ctx context.Context, matchers map[string]string, d time.Duration) (string, error) {
	var ms []map[string]any
	for k, v := range matchers {
		ms = append(ms, map[string]any{"name": k, "value": v, "isRegex": false, "isEqual": true})
	}
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{
		"matchers": ms, "startsAt": now, "endsAt": now.Add(d), "createdBy": "leakguard lab", "comment": "held back by the lab",
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.URL()+"/api/v2/silences", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		SilenceID string `json:"silenceID"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /api/v2/silences: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", err
	}
	return out.SilenceID, nil
}

// Expire ends the silence id.
func (a *Alertmanager) Expire(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, a.URL()+"/api/v2/silence/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE /api/v2/silence/%s: %s", id, resp.Status)
	}
	return nil
}

// AMAlert is one alert of Alertmanager's /api/v2/alerts.
type AMAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	Status   struct {
		State      string   `json:"state"`
		SilencedBy []string `json:"silencedBy"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

// Alerts returns the alerts Alertmanager holds.
func (a *Alertmanager) Alerts(ctx context.Context) ([]AMAlert, error) {
	var out []AMAlert
	err := getJSON(ctx, nil, a.URL()+"/api/v2/alerts", &out)
	return out, err
}

// NotificationsFailed is alertmanager_notifications_failed_total of the
// webhook integration: the deliveries a receiver refused or did not
// answer.
func (a *Alertmanager) NotificationsFailed(ctx context.Context) (float64, error) {
	return a.metric(ctx, `alertmanager_notifications_failed_total{integration="webhook"}`)
}

// metric reads one sample of Alertmanager's own /metrics by its exact
// series text.
func (a *Alertmanager) metric(ctx context.Context, seriesText string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return 0, err
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, seriesText+" "); ok {
			var f float64
			_, err := fmt.Sscan(v, &f)
			return f, err
		}
	}
	return 0, nil
}

// ReceiverConfig turns deploy/alertmanager/receiver.yaml (the fragment
// users merge into their alertmanager.yml) into a whole configuration for
// the lab. It changes only what names the cluster: each webhook's url
// (one webhook_config per replica, where a cluster has one Service in
// front of them), the token file (credentials_file), the CA (ca_file), and
// group_wait and group_interval (shortened for a lab that runs in
// minutes); each url keeps its scheme and path and gets the replica's
// host:port. It also adds the root route and its receiver that the fragment
// leaves to the user's configuration. Any other change in the fragment
// passes through as it is; a fragment without those fields is an error.
func ReceiverConfig(fragment []byte, addrs []string, tokenFile, caFile string, groupWait, groupInterval time.Duration) ([]byte, error) {
	var cfg map[string]any
	if err := yaml.Unmarshal(fragment, &cfg); err != nil {
		return nil, fmt.Errorf("receiver fragment: %w", err)
	}
	route, _ := cfg["route"].(map[string]any)
	routes, _ := route["routes"].([]any)
	receivers, _ := cfg["receivers"].([]any)
	if len(routes) != 1 || len(receivers) != 1 {
		return nil, fmt.Errorf("receiver fragment: want one route and one receiver, got %d and %d", len(routes), len(receivers))
	}
	sub, _ := routes[0].(map[string]any)
	recv, _ := receivers[0].(map[string]any)
	if sub["receiver"] == nil || sub["receiver"] != recv["name"] {
		return nil, fmt.Errorf("receiver fragment: the route's receiver %v is not the receiver %v", sub["receiver"], recv["name"])
	}
	for _, k := range []string{"group_wait", "group_interval"} {
		if _, ok := sub[k]; !ok {
			return nil, fmt.Errorf("receiver fragment: the route has no %s", k)
		}
	}
	sub["group_wait"], sub["group_interval"] = promDuration(groupWait), promDuration(groupInterval)
	hooks, _ := recv["webhook_configs"].([]any)
	if len(hooks) != 1 {
		return nil, fmt.Errorf("receiver fragment: want one webhook_config, got %d", len(hooks))
	}
	hook, _ := hooks[0].(map[string]any)
	httpConfig, _ := hook["http_config"].(map[string]any)
	auth, _ := httpConfig["authorization"].(map[string]any)
	tlsConfig, _ := httpConfig["tls_config"].(map[string]any)
	if hook["url"] == nil || auth["credentials_file"] == nil || tlsConfig["ca_file"] == nil {
		return nil, errors.New("receiver fragment: the webhook_config lacks url, http_config.authorization.credentials_file or http_config.tls_config.ca_file")
	}
	auth["credentials_file"] = tokenFile
	tlsConfig["ca_file"] = caFile
	base, err := url.Parse(fmt.Sprint(hook["url"]))
	if err != nil {
		return nil, fmt.Errorf("receiver fragment: url: %w", err)
	}
	var out []any
	for _, addr := range addrs {
		var h map[string]any
		data, _ := json.Marshal(hook)
		_ = json.Unmarshal(data, &h)
		u := *base
		u.Host = addr
		h["url"] = u.String()
		out = append(out, h)
	}
	recv["webhook_configs"] = out
	// The user's own root route and default receiver; nothing else is
	// routed in the lab.
	route["receiver"] = "lab-default"
	route["group_by"] = []string{"alertname"}
	cfg["receivers"] = append(receivers, map[string]any{"name": "lab-default"})
	return yaml.Marshal(cfg)
}
