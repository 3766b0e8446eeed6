package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// server is one Prometheus process on a loopback port.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  *os.File
	done chan error
}

// startPrometheus starts Prometheus on 127.0.0.1 with the data directory
// and config given, and waits (at most timeout) until it is ready.
func startPrometheus(ctx context.Context, bin, config, data, logPath string, timeout time.Duration) (*server, error) {
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=30d",
		// Blocks stay 2 h long: no compaction into longer blocks starts
		// while groups are measured.
		"--storage.tsdb.min-block-duration=2h",
		"--storage.tsdb.max-block-duration=2h",
		"--web.listen-address="+addr,
		"--web.enable-lifecycle",
		"--query.timeout=30m",
		"--query.max-samples=500000000",
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{cmd: cmd, addr: addr, log: logf, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return nil, fmt.Errorf("prometheus exited before it was ready (%v); see %s", err, logPath)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("prometheus not ready after %s; see %s", timeout, logPath)
		}
	}
}

// stop ends the process (SIGTERM, then SIGKILL after 30 s) and waits for it.
func (s *server) stop() {
	if s == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
}

func (s *server) url() string { return "http://" + s.addr }

// reload makes Prometheus read its config and rule files again.
func (s *server) reload() error {
	resp, err := http.Post(s.url()+"/-/reload", "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("reload: %s: %s", resp.Status, b)
	}
	return nil
}

// metrics scrapes Prometheus's own /metrics.
func (s *server) metrics() (map[string]*dto.MetricFamily, error) {
	resp, err := http.Get(s.url() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(resp.Body)
}

// query runs an instant query and returns the values of its vector result.
func (s *server) query(q string) ([]float64, error) {
	resp, err := http.Get(s.url() + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []float64
	for _, r := range body.Data.Result {
		str, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", q, str, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// groupMetric returns the value of a per-group rule metric, or false when
// Prometheus has not exported it for the group yet.
func groupMetric(mf map[string]*dto.MetricFamily, name, group string) (float64, bool) {
	f, ok := mf[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.Metric {
		for _, l := range m.Label {
			// rule_group is "<file>;<group>".
			if l.GetName() == "rule_group" && strings.HasSuffix(l.GetValue(), ";"+group) {
				if m.Gauge != nil {
					return m.Gauge.GetValue(), true
				}
				if m.Counter != nil {
					return m.Counter.GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// gauge returns the value of an unlabelled gauge or counter.
func gauge(mf map[string]*dto.MetricFamily, name string) (float64, bool) {
	f, ok := mf[name]
	if !ok || len(f.Metric) == 0 {
		return 0, false
	}
	m := f.Metric[0]
	if m.Gauge != nil {
		return m.Gauge.GetValue(), true
	}
	if m.Counter != nil {
		return m.Counter.GetValue(), true
	}
	return 0, false
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// run runs a command with its output in logPath, bounded by ctx.
func run(ctx context.Context, logPath string, name string, args ...string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logPath)
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		return errors.Join(fmt.Errorf("%s: %w", name, err), errors.New(string(b)))
	}
	return nil
}

// ruleTime is one rule's last evaluation time.
type ruleTime struct {
	Name    string
	Seconds float64
}

// ruleTimes reads each loaded rule's last evaluation time from /api/v1/rules.
func (s *server) ruleTimes() ([]ruleTime, error) {
	resp, err := http.Get(s.url() + "/api/v1/rules")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name           string  `json:"name"`
					EvaluationTime float64 `json:"evaluationTime"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var out []ruleTime
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			out = append(out, ruleTime{r.Name, r.EvaluationTime})
		}
	}
	return out, nil
}
