package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/annotate"
	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/server"
)

// alertmanagerBinary is Debian's name for Alertmanager; the upstream
// tarball calls it alertmanager.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("prometheus-alertmanager is not installed (Debian: apt-get install prometheus-alertmanager; .ci/run installs it); " +
			"skipped outside CI only")
	}
	t.Fatal("prometheus-alertmanager is not installed, and CI is set: the end-to-end test must run")
	return ""
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncBuffer is a bytes.Buffer safe for a process's output and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// capturingHandler keeps the bodies of the webhook requests that h
// answered 200, and writes them to dir when dir is set (to refresh the
// fixtures of remediate/testdata/alertmanager).
type capturingHandler struct {
	h      http.Handler
	dir    string
	mu     sync.Mutex
	bodies [][]byte
}

func (c *capturingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != server.AlertsPath {
		c.h.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.h.ServeHTTP(w, r)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bodies = append(c.bodies, body)
	if c.dir != "" {
		_ = os.WriteFile(filepath.Join(c.dir, fmt.Sprintf("alertmanager-0.25-e2e-%d.json", len(c.bodies))), body, 0o644)
	}
}

// TestServeWithAlertmanager runs the real Alertmanager with a webhook
// receiver pointing at serve's handler on loopback (bearer auth), fires
// alerts through Alertmanager's API and waits for the annotations and
// Events to appear in the (fake) cluster.
func TestServeWithAlertmanager(t *testing.T) {
	bin := alertmanagerBinary(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()

	// serve, wired as runServe wires it.
	cs := leakingCluster()
	q := &testQuerier{answers: map[string]float64{slopeQueryWeb: 5 << 20 / 3600.0, orphansQueryN1: 42}}
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	_, h := newServeHandler(t, cs, q, "e2e-token", logger)
	capture := &capturingHandler{h: h, dir: os.Getenv("LEAKGUARD_CAPTURE_DIR")}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- server.ServeListener(ctx, ln, server.Config{InsecureNoAuth: true}, capture, logger) }()
	defer func() {
		cancel()
		select {
		case <-served:
		case <-time.After(15 * time.Second):
			t.Error("serve did not shut down")
		}
	}()

	// Alertmanager, routing everything to serve.
	tokenFile := filepath.Join(dir, "am-token")
	if err := os.WriteFile(tokenFile, []byte("e2e-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`route:
  receiver: leakguard
  group_by: [alertname, namespace, node]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: leakguard
    webhook_configs:
      - url: http://%s%s
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
`, ln.Addr(), server.AlertsPath, tokenFile)
	configFile := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	amAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	var amOut syncBuffer
	am := exec.Command(bin, "--config.file="+configFile, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=debug")
	am.Stdout, am.Stderr = &amOut, &amOut
	if err := am.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	defer func() {
		_ = am.Process.Kill()
		_ = am.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s\nleakguard logs:\n%s", amOut.String(), logs.String())
		}
	}()
	base := "http://" + amAddr
	waitFor(t, 20*time.Second, "Alertmanager ready", func() (bool, error) {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})

	// Fire: a confirmed leak, orphan cgroups on n1 and an OOM kill in
	// kube-system (held by the namespace guard on its label: nothing is
	// read or written there, not even an Event).
	startsAt := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	alerts := []map[string]any{
		{"labels": leakLabels, "annotations": map[string]string{"runbook_url": rules.DefaultRunbookBaseURL + "ContainerMemoryLeak.md"}, "startsAt": startsAt},
		{"labels": orphanLabels, "annotations": map[string]string{"runbook_url": rules.DefaultRunbookBaseURL + "NodeOrphanCgroups.md"}, "startsAt": startsAt},
		{"labels": map[string]string{"alertname": rules.AlertContainerOOMKilled, "namespace": "kube-system", "pod": "coredns-1", "container": "coredns"}, "startsAt": startsAt},
	}
	body, _ := json.Marshal(alerts)
	resp, err := http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("post alerts to Alertmanager: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v2/alerts = %d, want 200", resp.StatusCode)
	}

	waitFor(t, 30*time.Second, "annotations and Events", func() (bool, error) {
		d, err := cs.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		reasons := eventReasons(t, cs)
		return d.Annotations[annotate.AnnotationFinding] == rules.AlertContainerMemoryLeak &&
			n.Annotations[annotate.AnnotationFinding] == rules.AlertNodeOrphanCgroups &&
			reasons["Deployment/web/"+remediate.EventReasonActed] == 1 &&
			reasons["Node/n1/"+remediate.EventReasonActed] == 1, nil
	})
	for key := range eventReasons(t, cs) {
		if strings.HasPrefix(key, "Pod/coredns-1/") {
			t.Errorf("Event %s on the kube-system pod, want none (its namespace is excluded)", key)
		}
	}
	d, _ := cs.AppsV1().Deployments("shop").Get(ctx, "web", metav1.GetOptions{})
	for key, want := range map[string]string{
		annotate.AnnotationValue:      "5.0 MiB/h > 1.0 MiB/h",
		annotate.AnnotationRunbookURL: rules.DefaultRunbookBaseURL + "ContainerMemoryLeak.md",
		annotate.AnnotationSince:      startsAt,
		annotate.AnnotationSubject:    "pod shop/web-7d9-abcde, container app",
	} {
		if got := d.Annotations[key]; got != want {
			t.Errorf("Deployment annotation %s = %q, want %q", key, got, want)
		}
	}
	p, _ := cs.CoreV1().Pods("kube-system").Get(ctx, "coredns-1", metav1.GetOptions{})
	if len(p.Annotations) != 0 {
		t.Errorf("kube-system pod annotated %v, want untouched", p.Annotations)
	}

	// Resolve the leak: Alertmanager sends it resolved (send_resolved),
	// serve records it and changes nothing.
	writes := countWrites(cs)
	resolved, _ := json.Marshal([]map[string]any{{"labels": leakLabels, "startsAt": startsAt, "endsAt": time.Now().UTC().Format(time.RFC3339)}})
	resp, err = http.Post(base+"/api/v2/alerts", "application/json", bytes.NewReader(resolved))
	if err != nil {
		t.Fatalf("post resolved alert to Alertmanager: %v", err)
	}
	resp.Body.Close()
	waitFor(t, 30*time.Second, "the resolved notification", func() (bool, error) {
		capture.mu.Lock()
		defer capture.mu.Unlock()
		for _, b := range capture.bodies {
			if bytes.Contains(b, []byte(`"status":"resolved"`)) {
				return true, nil
			}
		}
		return false, nil
	})
	if got := countWrites(cs); got != writes {
		t.Errorf("a resolved alert made %d writes, want none", got-writes)
	}
	if !strings.Contains(logs.String(), `"fingerprint"`) {
		t.Errorf("decision logs carry no fingerprint:\n%s", logs.String())
	}
}

// eventReasons counts the cluster's Events by "Kind/name/reason".
func eventReasons(t *testing.T, cs kubernetes.Interface) map[string]int {
	t.Helper()
	list, err := cs.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	out := map[string]int{}
	for _, ev := range list.Items {
		out[ev.InvolvedObject.Kind+"/"+ev.InvolvedObject.Name+"/"+ev.Reason]++
	}
	return out
}

// countWrites counts the patches, updates and creates the cluster saw.
func countWrites(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		switch a.GetVerb() {
		case "patch", "update", "create":
			n++
		}
	}
	return n
}

// waitFor polls cond every 100 ms until it is true, failing the test
// after timeout or on an error.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
