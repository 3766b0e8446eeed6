// Command capture-alertmanager records real Alertmanager webhook payloads as
// test fixtures for server/.
//
// It runs the installed Alertmanager (the Debian package's
// prometheus-alertmanager, 0.25) on loopback with clustering off and a
// temporary storage directory, pointed at leakguard's real webhook handler
// (server.NewHandler, bearer token from a file, as in
// deploy/alertmanager/receiver.yaml) on another loopback port. It posts alerts
// shaped like leakguard's rules produce to Alertmanager's API, waits for each
// notification the scenario expects, and writes the raw request bodies that
// the handler accepted with 200 to the output directory:
//
//	go run ./tools/capture-alertmanager -out server/testdata
//
// Timestamps, and so the files, differ from run to run; fingerprints and
// group keys do not.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakguard/leakguard/server"
)

func main() {
	out := flag.String("out", "server/testdata", "directory the fixtures are written to")
	prefix := flag.String("prefix", "alertmanager-0.25", "file name prefix of the fixtures")
	binary := flag.String("alertmanager", "prometheus-alertmanager", "Alertmanager binary")
	timeout := flag.Duration("timeout", 2*time.Minute, "bound on the whole capture")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(ctx, *binary, *out, *prefix, logger); err != nil {
		fmt.Fprintln(os.Stderr, "capture-alertmanager:", err)
		os.Exit(1)
	}
}

// token is the bearer token Alertmanager sends to the capture handler.
const token = "capture-token-not-a-secret"

func run(ctx context.Context, binary, out, prefix string, logger *slog.Logger) error {
	dir, err := os.MkdirTemp("", "capture-alertmanager-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}

	// The receiving side: leakguard's handler behind a recorder of raw bodies.
	bodies := make(chan []byte, 64)
	h, err := server.NewHandler(server.Config{BearerTokenFile: tokenFile, Registerer: prometheus.NewRegistry()},
		server.ProcessorFunc(func(context.Context, *server.Message) (any, error) { return []string{}, nil }), logger)
	if err != nil {
		return err
	}
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hookSrv := &http.Server{Handler: recordAccepted(h, bodies), ReadHeaderTimeout: 5 * time.Second}
	go hookSrv.Serve(hookLn)
	defer hookSrv.Close()

	// The sending side: the real Alertmanager.
	amAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cfgFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgFile, []byte(alertmanagerConfig("http://"+hookLn.Addr().String()+server.AlertsPath, tokenFile)), 0o600); err != nil {
		return err
	}
	amLog, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	if err != nil {
		return err
	}
	defer amLog.Close()
	cmd := exec.CommandContext(ctx, binary,
		"--config.file="+cfgFile,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr,
		"--web.external-url=http://alertmanager.monitoring.svc:9093",
		"--cluster.listen-address=",
		"--log.level=info")
	cmd.Stdout, cmd.Stderr = amLog, amLog
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", binary, err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	am := "http://" + amAddr
	if err := waitReady(ctx, am+"/-/ready"); err != nil {
		return withLog(err, amLog.Name())
	}

	now := time.Now().UTC().Truncate(time.Second)
	leaks := []alert{
		containerAlert("ContainerMemoryLeak", "warning", "shop", "cart-7d9f8b6c5d-x2x9q", "cart", "worker-1", now.Add(-3*time.Hour)),
		containerAlert("ContainerMemoryLeak", "warning", "shop", "checkout-5b8c7d9f4-kq7zt", "checkout", "worker-2", now.Add(-2*time.Hour)),
		containerAlert("ContainerMemoryLeak", "warning", "shop", "search-0", "search", "worker-3", now.Add(-90*time.Minute)),
	}
	resolvedAt := func(a alert) alert { a.EndsAt = now.Add(time.Second); return a }
	var many []alert
	for i := range 100 {
		many = append(many, containerAlert("ContainerMemoryLeak", "warning", "load",
			fmt.Sprintf("worker-%02d-6f7d8c9b5-%05d", i%10, i), "worker", fmt.Sprintf("worker-%d", i%7), now.Add(-4*time.Hour)))
	}
	var nearLimit []alert
	for i := range 5 {
		nearLimit = append(nearLimit, containerAlert("ContainerMemoryNearLimit", "warning", "shop",
			fmt.Sprintf("cache-%d", i), "redis", fmt.Sprintf("worker-%d", i+1), now.Add(-20*time.Minute)))
	}
	steps := []struct {
		file  string
		post  []alert
		match func(*server.Message) bool
	}{
		{"firing", leaks, group("ContainerMemoryLeak", 3, 0)},
		{"mixed", []alert{resolvedAt(leaks[0])}, group("ContainerMemoryLeak", 2, 1)},
		{"resolved", []alert{resolvedAt(leaks[1]), resolvedAt(leaks[2])}, group("ContainerMemoryLeak", 0, 2)},
		{"node-firing", []alert{nodeAlert("worker-1", now), nodeAlert("worker-2", now)}, group("NodeOrphanCgroups", 2, 0)},
		{"apiserver-firing", []alert{apiserverAlert(now)}, group("KubeAPIServerMemoryHigh", 1, 0)},
		{"firing-100", many, group("ContainerMemoryLeak", 100, 0)},
		{"truncated", nearLimit, func(m *server.Message) bool {
			return group("ContainerMemoryNearLimit", 2, 0)(m) && m.TruncatedAlerts == 3
		}},
	}
	for _, s := range steps {
		if err := postAlerts(ctx, am, s.post); err != nil {
			return withLog(fmt.Errorf("step %s: %w", s.file, err), amLog.Name())
		}
		body, err := waitFor(ctx, bodies, s.match)
		if err != nil {
			return withLog(fmt.Errorf("step %s: %w", s.file, err), amLog.Name())
		}
		path := filepath.Join(out, prefix+"-"+s.file+".json")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	return nil
}

// alertmanagerConfig routes leakguard's alerts to the handler the way
// deploy/alertmanager/receiver.yaml does, with short timers; one route
// truncates its payloads (max_alerts) to capture truncatedAlerts.
func alertmanagerConfig(url, tokenFile string) string {
	return fmt.Sprintf(`route:
  receiver: leakguard
  group_by: [alertname, namespace]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: leakguard-truncated
      matchers: ['alertname="ContainerMemoryNearLimit"']
receivers:
  - name: leakguard
    webhook_configs:
      - url: %[1]q
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %[2]q
  - name: leakguard-truncated
    webhook_configs:
      - url: %[1]q
        send_resolved: true
        max_alerts: 2
        http_config:
          authorization:
            type: Bearer
            credentials_file: %[2]q
`, url, tokenFile)
}

// alert is one element of Alertmanager's POST /api/v2/alerts body.
type alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL"`
}

const (
	runbooks = "https://github.com/leakguard/leakguard/blob/main/docs/runbooks/"
	promURL  = "http://prometheus-k8s.monitoring.svc:9090"
)

// summaries are the static summary annotations of the container alerts.
var summaries = map[string]string{
	"ContainerMemoryLeak":      "A container's working set has grown steadily for hours.",
	"ContainerMemoryNearLimit": "A container's working set is at 90% of its memory limit or above.",
}

func containerAlert(name, severity, namespace, pod, container, node string, since time.Time) alert {
	return alert{
		Labels: map[string]string{
			"alertname": name, "severity": severity, "namespace": namespace, "pod": pod,
			"container": container, "node": node, "prometheus": "monitoring/k8s",
		},
		Annotations: map[string]string{
			"summary":     summaries[name],
			"description": fmt.Sprintf("Container %s in pod %s/%s on node %s: working set 1.2 GiB, growing by 38 MiB per hour for 3 hours.", container, namespace, pod, node),
			"runbook_url": runbooks + name + ".md",
		},
		StartsAt:     since,
		GeneratorURL: promURL + "/graph?g0.expr=leakguard%3Acontainer_memory_working_set_bytes%3Aderiv1h+%3E+0&g0.tab=1",
	}
}

func nodeAlert(node string, now time.Time) alert {
	return alert{
		Labels: map[string]string{
			"alertname": "NodeOrphanCgroups", "severity": "warning", "node": node,
			"job": "leakguard-agent", "namespace": "leakguard", "prometheus": "monitoring/k8s",
		},
		Annotations: map[string]string{
			"summary":     "A node holds pod cgroups that outlived their pods.",
			"description": fmt.Sprintf("Node %s has 37 orphan pod cgroups.", node),
			"runbook_url": runbooks + "NodeOrphanCgroups.md",
		},
		StartsAt:     now.Add(-30 * time.Minute),
		GeneratorURL: promURL + "/graph?g0.expr=leakguard_node_orphan_cgroups+%3E+20&g0.tab=1",
	}
}

func apiserverAlert(now time.Time) alert {
	return alert{
		Labels: map[string]string{
			"alertname": "KubeAPIServerMemoryHigh", "severity": "critical", "node": "master-1",
			"pod": "kube-apiserver-master-1", "namespace": "kube-system", "prometheus": "monitoring/k8s",
		},
		Annotations: map[string]string{
			"summary":     "kube-apiserver uses more than 60% of its node's memory.",
			"description": "kube-apiserver on node master-1 uses 71% of the node's memory (11.4 GiB of 16 GiB).",
			"runbook_url": runbooks + "KubeAPIServerMemoryHigh.md",
		},
		StartsAt:     now.Add(-12 * time.Minute),
		GeneratorURL: promURL + "/graph?g0.expr=process_resident_memory_bytes%7Bjob%3D%22apiserver%22%7D&g0.tab=1",
	}
}

// group matches a payload of alertname with exactly that many firing and
// resolved alerts.
func group(alertname string, firing, resolved int) func(*server.Message) bool {
	return func(m *server.Message) bool {
		return m.CommonLabels["alertname"] == alertname &&
			len(m.Alerts.Firing()) == firing && len(m.Alerts.Resolved()) == resolved
	}
}

// recordAccepted passes requests to h and sends the bodies h answered 200 to
// bodies.
func recordAccepted(h http.Handler, bodies chan<- []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status != http.StatusOK {
			fmt.Fprintf(os.Stderr, "handler answered %d to %s %s: %.300s\n", rec.status, r.Method, r.URL.Path, body)
			return
		}
		select {
		case bodies <- body:
		default:
			fmt.Fprintln(os.Stderr, "capture buffer full, dropping a payload")
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// waitFor returns the first captured body that decodes and matches, skipping
// the others (earlier notifications of other groups).
func waitFor(ctx context.Context, bodies <-chan []byte, match func(*server.Message) bool) ([]byte, error) {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var seen []string
	for {
		select {
		case body := <-bodies:
			msg, err := server.DecodeMessage(bytes.NewReader(body))
			if err != nil {
				return nil, fmt.Errorf("captured payload does not decode: %w", err)
			}
			if match(msg) {
				return body, nil
			}
			seen = append(seen, fmt.Sprintf("%s (%d firing, %d resolved)", msg.GroupKey, len(msg.Alerts.Firing()), len(msg.Alerts.Resolved())))
		case <-timeout.C:
			return nil, fmt.Errorf("no matching notification within 30s; saw %s", strings.Join(seen, ", "))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func postAlerts(ctx context.Context, am string, alerts []alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post alerts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("post alerts: %s: %s", resp.Status, b)
	}
	return nil
}

// waitReady polls url until it answers 200, for at most 30 seconds.
func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("alertmanager not ready within 30s")
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func withLog(err error, logFile string) error {
	b, _ := os.ReadFile(logFile)
	return fmt.Errorf("%w\nalertmanager log:\n%s", err, b)
}
