package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// discardLogger drops every record.
func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// replaceFile swaps path's content the way a Kubernetes volume does: a new
// file renamed over the old one.
func replaceFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// fixturePaths returns the captured Alertmanager payloads, sorted.
func fixturePaths(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "alertmanager-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no fixtures in testdata/")
	}
	sort.Strings(paths)
	return paths
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// transientError is an error with a Transient method.
type transientError struct {
	transient bool
}

func (e transientError) Error() string   { return "kubernetes API unreachable" }
func (e transientError) Transient() bool { return e.transient }

// recordingProcessor records the messages it is given and answers with its
// fields.
type recordingProcessor struct {
	decisions any
	err       error
	panicWith any

	mu    sync.Mutex
	calls []*Message
}

func (p *recordingProcessor) Process(_ context.Context, msg *Message) (any, error) {
	p.mu.Lock()
	p.calls = append(p.calls, msg)
	p.mu.Unlock()
	if p.panicWith != nil {
		panic(p.panicWith)
	}
	return p.decisions, p.err
}

func (p *recordingProcessor) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// testToken is the bearer token of bearerConfig.
const testToken = "s3cr3t-token"

// bearerConfig is a Config with a bearer token file (holding testToken and a
// newline) in a fresh directory and a private registry.
func bearerConfig(t testing.TB) Config {
	t.Helper()
	reg := prometheus.NewRegistry()
	return Config{
		BearerTokenFile: writeFile(t, t.TempDir(), "token", testToken+"\n"),
		Registerer:      reg,
		Gatherer:        reg,
	}
}

func newTestHandler(t testing.TB, cfg Config, p Processor) http.Handler {
	t.Helper()
	h, err := NewHandler(cfg, p, discardLogger())
	if err != nil {
		t.Fatalf("NewHandler() = %v", err)
	}
	return h
}

// postAlerts builds an authenticated webhook request.
func postAlerts(body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, AlertsPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	return req
}

// serve runs one request through h and returns the answer.
func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// validPayload is a minimal valid webhook payload with the given alerts.
func validPayload(alertnames ...string) string {
	var alerts []string
	for _, n := range alertnames {
		alerts = append(alerts, `{"status":"firing","labels":{"alertname":"`+n+`","namespace":"shop","pod":"cart-0"},"annotations":{},"startsAt":"2026-01-02T03:04:05Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"0123456789abcdef"}`)
	}
	return `{"receiver":"leakguard","status":"firing","alerts":[` + strings.Join(alerts, ",") + `],"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","version":"4","groupKey":"{}:{}","truncatedAlerts":0}`
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

var _ io.Reader = errReader{}
