package fleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

// fleetConfig is the central Alertmanager's routing of deploy/alertmanager.
var fleetConfig = filepath.Join(repoRoot, "deploy", "alertmanager", "fleet.yaml")

// amRoute is the part of Alertmanager's route the test reads.
type amRoute struct {
	Receiver string     `json:"receiver"`
	GroupBy  []string   `json:"group_by"`
	Matchers []string   `json:"matchers"`
	Continue bool       `json:"continue"`
	Routes   []*amRoute `json:"routes"`
}

// The shipped fleet routing sends each cluster's alerts to that
// cluster's receiver alone (and keeps routing them on), groups by cluster,
// and sends an alert of an unlisted cluster, or one without the label, to no
// leakguard.
func TestFleetAlertmanagerRouting(t *testing.T) {
	// Whether Alertmanager accepts the file is TestFleetAlertmanagerLoads'
	// question; alertmanager's config package would answer it in process, at
	// the price of more modules in go.mod than the test is worth.
	data, err := os.ReadFile(fleetConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Route *amRoute `json:"route"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v", fleetConfig, err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{"alertname": "ContainerMemoryLeak", "cluster": "prod-a", "namespace": "shop"}, []string{"leakguard-prod-a"}},
		{map[string]string{"alertname": "NodeOrphanCgroups", "cluster": "prod-b", "node": "worker-1"}, []string{"leakguard-prod-b"}},
		{map[string]string{"alertname": "NodeOrphanCgroups", "cluster": "prod-c", "node": "worker-1"}, []string{"leakguard-none"}},
		{map[string]string{"alertname": "NodeOrphanCgroups", "node": "worker-1"}, []string{"leakguard-none"}},
		{map[string]string{"alertname": "Watchdog", "cluster": "prod-a"}, []string{"default"}},
	} {
		var got []string
		for _, m := range route(cfg.Route, "", nil, tc.labels) {
			got = append(got, m.receiver)
			if strings.HasPrefix(m.receiver, "leakguard-") && !contains(m.groupBy, "cluster") {
				t.Errorf("route to %s does not group by cluster: %v", m.receiver, m.groupBy)
			}
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("receivers of %v = %v, want %v", tc.labels, got, tc.want)
		}
	}
}

// routed is where Alertmanager's routing tree sends an alert.
type routed struct {
	receiver string
	groupBy  []string
}

// route walks the routing tree as Alertmanager's dispatcher does (a child
// inherits its parent's receiver and grouping; the first matching child
// takes the alert unless it says continue; without a matching child the
// route itself does). Matchers are read as name="v" or name=~"re", the
// forms the file uses.
func route(r *amRoute, receiver string, groupBy []string, ls map[string]string) []routed {
	for _, m := range r.Matchers {
		ms, err := parseMatchers(m)
		if err != nil {
			panic(fmt.Sprintf("matcher %q: %v", m, err))
		}
		if !matchAll(ms, ls) {
			return nil
		}
	}
	if r.Receiver != "" {
		receiver = r.Receiver
	}
	if len(r.GroupBy) > 0 {
		groupBy = r.GroupBy
	}
	var out []routed
	for _, c := range r.Routes {
		got := route(c, receiver, groupBy, ls)
		out = append(out, got...)
		if len(got) > 0 && !c.Continue {
			return out
		}
	}
	if len(out) == 0 {
		return []routed{{receiver, groupBy}}
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// The real Alertmanager accepts the shipped fleet routing: it refuses to
// start on an invalid configuration. The CA files it names do not exist
// here, so the check runs on the file with its tls_config removed (as the
// engine tests do); everything else is the file as shipped.
func TestFleetAlertmanagerLoads(t *testing.T) {
	base := fleetAlertmanager(t, map[string]string{"prod-a": "http://127.0.0.1:1", "prod-b": "http://127.0.0.1:1"})
	resp, err := http.Get(base + "/api/v2/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Config struct {
			Original string `json:"original"`
		} `json:"config"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"leakguard-prod-a", "leakguard-prod-b", "cluster=\"prod-a\""} {
		if !strings.Contains(st.Config.Original, want) {
			t.Errorf("Alertmanager's loaded configuration lacks %s:\n%s", want, st.Config.Original)
		}
	}
}

// fleetAlertmanager starts the real Alertmanager on the shipped fleet
// routing, with each cluster's receiver URL pointing at urls[cluster], its
// token in a file, no TLS (the receivers are plain loopback servers), and
// short group timings so that the test does not wait half a minute.
func fleetAlertmanager(t *testing.T, urls map[string]string) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	data, err := os.ReadFile(fleetConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	dir := t.TempDir()
	for cluster, u := range urls {
		old := "https://leakguard." + cluster + ".example.com:8443"
		if !strings.Contains(cfg, old) {
			t.Fatalf("%s has no receiver for cluster %s", fleetConfig, cluster)
		}
		cfg = strings.ReplaceAll(cfg, old, u)
		token := filepath.Join(dir, cluster+".token")
		if err := os.WriteFile(token, []byte("token-"+cluster), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg = strings.ReplaceAll(cfg, "/etc/alertmanager/secrets/leakguard-"+cluster+"/token", token)
		cfg = strings.ReplaceAll(cfg, "          tls_config:\n            ca_file: /etc/alertmanager/secrets/leakguard-"+cluster+"/ca.crt\n", "")
	}
	for old, repl := range map[string]string{"group_wait: 30s": "group_wait: 1s", "group_interval: 5m": "group_interval: 2s"} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("%s has no %q", fleetConfig, old)
		}
		cfg = strings.ReplaceAll(cfg, old, repl)
	}
	file := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var base string
	startReady(t, "alertmanager", bin, func() ([]string, string) {
		addr := loopback(t)
		base = "http://" + addr
		return []string{"--config.file=" + file, "--storage.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=" + addr, "--cluster.listen-address=", "--log.level=debug"}, base + "/-/ready"
	})
	return base
}

// receiver is one cluster's webhook receiver: it checks the token, answers
// 503 to its first failures requests (that cluster's outage), and keeps the
// alerts of the requests it answered 200.
//
// With a cluster's serve set (relayTo), it relays every request it does
// not refuse itself to that `leakguard serve`, answers with serve's status,
// and keeps the alerts only when serve answered 200, with serve's
// decisions.
type receiver struct {
	token    string
	failures int
	serve    *lab.Serve

	mu        sync.Mutex
	requests  int
	refused   int
	alerts    map[string]map[string]string // firing, by label string
	resolved  int
	decisions []remediate.Decision
	lastBody  []byte // of the last delivery answered 200
}

// relayTo makes r relay to s, before Alertmanager sends anything.
func (r *receiver) relayTo(s *lab.Serve) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serve = s
}

// relay posts body to serve as Alertmanager would, returning its status
// and decisions.
func (r *receiver) relay(body []byte) (int, []remediate.Decision, error) {
	req, err := http.NewRequest(http.MethodPost, r.serve.URL()+"/api/v1/alerts", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.serve.Client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var answer struct {
		Decisions []remediate.Decision `json:"decisions"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
			return 0, nil, fmt.Errorf("serve's answer: %w", err)
		}
	}
	return resp.StatusCode, answer.Decisions, nil
}

func newReceiver(t *testing.T, cluster string, failures int) (*receiver, string) {
	r := &receiver{token: "token-" + cluster, failures: failures, alerts: map[string]map[string]string{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if req.URL.Path != "/api/v1/alerts" || req.Header.Get("Authorization") != "Bearer "+r.token {
		http.Error(w, "wrong path or token", http.StatusUnauthorized)
		return
	}
	if r.refused < r.failures {
		r.refused++
		http.Error(w, "cluster API unreachable", http.StatusServiceUnavailable)
		return
	}
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	body, _ := io.ReadAll(req.Body)
	if err := json.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if r.serve != nil {
		r.mu.Unlock() // serve takes its time; the test reads r meanwhile
		code, ds, err := r.relay(body)
		r.mu.Lock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if code != http.StatusOK {
			http.Error(w, "serve answered "+http.StatusText(code), code)
			return
		}
		r.decisions = append(r.decisions, ds...)
	}
	r.lastBody = body
	for _, a := range msg.Alerts {
		if a.Status == "firing" {
			r.alerts[labelString(a.Labels)] = a.Labels
		} else {
			r.resolved++
		}
	}
	w.WriteHeader(http.StatusOK)
}

// firing lists the firing alerts received, as label strings, sorted.
func (r *receiver) firing() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.alerts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// waitDelivered waits until every receiver holds at least its expected
// alerts, then a little longer (two group intervals) for any unexpected
// one to arrive too.
func waitDelivered(t *testing.T, timeout time.Duration, rs map[string]*receiver, want map[string][]string, exited ...*process) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			for _, c := range []string{"prod-a", "prod-b"} {
				r := rs[c]
				r.mu.Lock()
				n := r.requests
				r.mu.Unlock()
				t.Logf("%s's receiver got %d requests, firing: %s", c, n, strings.Join(r.firing(), ", "))
			}
		}
	})
	waitFor(t, timeout, "the expected alerts at each cluster's receiver", func() (bool, error) {
		for c, r := range rs {
			got := map[string]bool{}
			for _, a := range alertKeys(r) {
				got[a] = true
			}
			for _, w := range want[c] {
				if !got[w] {
					return false, nil
				}
			}
		}
		return true, nil
	}, exited...)
	time.Sleep(5 * time.Second)
}
