package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAlertsStatusCodes covers every answer of POST /api/v1/alerts and that
// bad input never reaches the Processor.
func TestAlertsStatusCodes(t *testing.T) {
	firing := readFixture(t, "alertmanager-0.25-firing.json")
	basic := func(user, password string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, password) }
	}
	setHeader := func(k, v string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set(k, v) }
	}
	tests := []struct {
		name      string
		basicAuth bool // basic auth instead of the bearer token
		maxBody   int64
		processor *recordingProcessor
		body      []byte
		modify    func(*http.Request)
		// chunked sends the body without a Content-Length.
		chunked   bool
		wantCode  int
		wantError string // substring of the JSON error; "" for 200
		wantCalls int
		wantBody  string // exact body of a 200 answer
	}{
		{
			name: "valid payload", processor: &recordingProcessor{decisions: []map[string]string{{"alert": "ContainerMemoryLeak", "action": "annotate"}}},
			body: firing, wantCode: 200, wantCalls: 1,
			wantBody: `{"status":"ok","decisions":[{"action":"annotate","alert":"ContainerMemoryLeak"}]}` + "\n",
		},
		{
			name: "content type with charset", processor: &recordingProcessor{decisions: []string{}},
			body: firing, modify: setHeader("Content-Type", "application/json; charset=UTF-8"), wantCode: 200, wantCalls: 1,
			wantBody: `{"status":"ok","decisions":[]}` + "\n",
		},
		{
			name: "nil decisions", processor: &recordingProcessor{}, body: firing, wantCode: 200, wantCalls: 1,
			wantBody: `{"status":"ok","decisions":null}` + "\n",
		},
		{
			name: "lower-case bearer scheme", processor: &recordingProcessor{}, body: firing,
			modify: setHeader("Authorization", "bearer "+testToken), wantCode: 200, wantCalls: 1,
			wantBody: `{"status":"ok","decisions":null}` + "\n",
		},
		{
			name: "valid basic auth", basicAuth: true, processor: &recordingProcessor{}, body: firing,
			modify: basic("alertmanager", "pa55word"), wantCode: 200, wantCalls: 1,
			wantBody: `{"status":"ok","decisions":null}` + "\n",
		},
		{name: "missing bearer token", processor: &recordingProcessor{}, body: firing, modify: func(r *http.Request) { r.Header.Del("Authorization") }, wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "wrong bearer token", processor: &recordingProcessor{}, body: firing, modify: setHeader("Authorization", "Bearer wrong"), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "token prefix", processor: &recordingProcessor{}, body: firing, modify: setHeader("Authorization", "Bearer "+testToken[:5]), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "token as basic auth", processor: &recordingProcessor{}, body: firing, modify: basic("x", testToken), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "bearer without token", processor: &recordingProcessor{}, body: firing, modify: setHeader("Authorization", "Bearer"), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "wrong basic password", basicAuth: true, processor: &recordingProcessor{}, body: firing, modify: basic("alertmanager", "wrong"), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "wrong basic user", basicAuth: true, processor: &recordingProcessor{}, body: firing, modify: basic("admin", "pa55word"), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "missing basic auth", basicAuth: true, processor: &recordingProcessor{}, body: firing, wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "unauthenticated bad body is 401, not 400", processor: &recordingProcessor{}, body: []byte("{"), modify: setHeader("Authorization", "Bearer wrong"), wantCode: 401, wantError: "missing or invalid credentials"},
		{name: "declared length over the limit", maxBody: 100, processor: &recordingProcessor{}, body: firing, wantCode: 413, wantError: "exceeds the limit of 100 bytes"},
		{name: "chunked body over the limit", maxBody: 100, chunked: true, processor: &recordingProcessor{}, body: firing, wantCode: 413, wantError: "exceeds the limit of 100 bytes"},
		{name: "over the default limit of 4 MiB", processor: &recordingProcessor{}, chunked: true, body: bytes.Repeat([]byte(" "), DefaultMaxBodyBytes+1), wantCode: 413, wantError: "exceeds the limit of 4194304 bytes"},
		{name: "text/plain", processor: &recordingProcessor{}, body: firing, modify: setHeader("Content-Type", "text/plain"), wantCode: 415, wantError: `content type "text/plain" is not supported`},
		{name: "no content type", processor: &recordingProcessor{}, body: firing, modify: func(r *http.Request) { r.Header.Del("Content-Type") }, wantCode: 415, wantError: "not supported"},
		{name: "form", processor: &recordingProcessor{}, body: firing, modify: setHeader("Content-Type", "application/x-www-form-urlencoded"), wantCode: 415, wantError: "not supported"},
		{name: "latin-1 JSON", processor: &recordingProcessor{}, body: firing, modify: setHeader("Content-Type", "application/json; charset=iso-8859-1"), wantCode: 415, wantError: "not supported"},
		{name: "unparsable content type", processor: &recordingProcessor{}, body: firing, modify: setHeader("Content-Type", "application/json; ;"), wantCode: 415, wantError: "not supported"},
		{name: "malformed JSON", processor: &recordingProcessor{}, body: []byte(`{"version":"4",`), wantCode: 400, wantError: "truncated JSON"},
		{name: "empty body", processor: &recordingProcessor{}, body: nil, wantCode: 400, wantError: "empty body"},
		{name: "wrong version", processor: &recordingProcessor{}, body: bytes.Replace(firing, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), wantCode: 400, wantError: `unsupported payload version "3"`},
		{name: "missing alertname", processor: &recordingProcessor{}, body: []byte(strings.Replace(validPayload("A", "B"), `"alertname":"B"`, `"team":"B"`, 1)), wantCode: 400, wantError: "alert 1: labels.alertname is missing or empty"},
		{name: "transient processor error", processor: &recordingProcessor{err: fmt.Errorf("query prometheus: %w", transientError{transient: true})}, body: firing, wantCode: 503, wantError: "query prometheus: kubernetes API unreachable", wantCalls: 1},
		{name: "error with Transient false", processor: &recordingProcessor{err: transientError{transient: false}}, body: firing, wantCode: 500, wantError: "kubernetes API unreachable", wantCalls: 1},
		{name: "other processor error", processor: &recordingProcessor{err: errors.New("policy bug")}, body: firing, wantCode: 500, wantError: "policy bug", wantCalls: 1},
		{name: "decisions that do not encode", processor: &recordingProcessor{decisions: map[string]any{"f": func() {}}}, body: firing, wantCode: 500, wantError: "decisions do not encode as JSON", wantCalls: 1},
		{name: "processor panics", processor: &recordingProcessor{panicWith: "boom"}, body: firing, wantCode: 500, wantError: "internal error", wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bearerConfig(t)
			if tt.basicAuth {
				cfg.BearerTokenFile = ""
				cfg.BasicAuthUsername = "alertmanager"
				cfg.BasicAuthPasswordFile = writeFile(t, t.TempDir(), "password", "pa55word")
			}
			cfg.MaxBodyBytes = tt.maxBody
			h := newTestHandler(t, cfg, tt.processor)
			var body io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length from httptest
			}
			req := httptest.NewRequest(http.MethodPost, AlertsPath, body)
			req.Header.Set("Content-Type", "application/json")
			if tt.basicAuth {
				req.Header.Del("Authorization")
			} else {
				req.Header.Set("Authorization", "Bearer "+testToken)
			}
			if tt.modify != nil {
				tt.modify(req)
			}
			if tt.chunked && req.ContentLength != -1 {
				t.Fatalf("chunked request has ContentLength %d, want -1", req.ContentLength)
			}
			rec := serve(h, req)
			if rec.Code != tt.wantCode {
				t.Errorf("POST %s (%s) = %d %s, want %d", AlertsPath, tt.name, rec.Code, rec.Body, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("POST %s (%s) Content-Type = %q, want application/json; charset=utf-8", AlertsPath, tt.name, ct)
			}
			if tt.wantError != "" {
				var got ErrorResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("POST %s (%s) body %q is not JSON: %v", AlertsPath, tt.name, rec.Body, err)
				}
				if !strings.Contains(got.Error, tt.wantError) {
					t.Errorf("POST %s (%s) error = %q, want it to contain %q", AlertsPath, tt.name, got.Error, tt.wantError)
				}
			} else if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("POST %s (%s) body = %s, want %s", AlertsPath, tt.name, got, tt.wantBody)
			}
			if got := tt.processor.callCount(); got != tt.wantCalls {
				t.Errorf("POST %s (%s) reached the Processor %d times, want %d", AlertsPath, tt.name, got, tt.wantCalls)
			}
			if tt.wantCode == 401 {
				if got := rec.Header().Get("WWW-Authenticate"); got == "" {
					t.Errorf("POST %s (%s) WWW-Authenticate is empty, want a challenge", AlertsPath, tt.name)
				}
			}
		})
	}
}

// TestAlertsProcessorGetsPayload checks that the Processor gets the decoded
// payload.
func TestAlertsProcessorGetsPayload(t *testing.T) {
	p := &recordingProcessor{}
	h := newTestHandler(t, bearerConfig(t), p)
	rec := serve(h, postAlerts(readFixture(t, "alertmanager-0.25-mixed.json")))
	if rec.Code != http.StatusOK || p.callCount() != 1 {
		t.Fatalf("POST mixed fixture = %d %s with %d Processor calls, want 200 and 1 call", rec.Code, rec.Body, p.callCount())
	}
	msg := p.calls[0]
	var got []string
	for _, a := range msg.Alerts {
		got = append(got, a.Status+" "+a.Labels["pod"])
	}
	want := []string{"resolved cart-7d9f8b6c5d-x2x9q", "firing checkout-5b8c7d9f4-kq7zt", "firing search-0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Processor got alerts (-want +got):\n%s", diff)
	}
	if msg.Version != "4" || !strings.Contains(msg.GroupKey, `alertname="ContainerMemoryLeak"`) {
		t.Errorf("Processor got version %q group key %q, want 4 and the ContainerMemoryLeak group", msg.Version, msg.GroupKey)
	}
}

func TestInsecureNoAuth(t *testing.T) {
	p := &recordingProcessor{}
	h := newTestHandler(t, Config{InsecureNoAuth: true}, p)
	req := httptest.NewRequest(http.MethodPost, AlertsPath, strings.NewReader(validPayload("A")))
	req.Header.Set("Content-Type", "application/json")
	if rec := serve(h, req); rec.Code != http.StatusOK || p.callCount() != 1 {
		t.Errorf("POST without credentials and InsecureNoAuth = %d %s, %d calls; want 200, 1 call", rec.Code, rec.Body, p.callCount())
	}
}

func TestOtherRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		wantCode     int
		wantBody     string
	}{
		{http.MethodGet, "/healthz", 200, `{"status":"ok"}` + "\n"},
		{http.MethodGet, "/nope", 404, `{"error":"no route for /nope"}` + "\n"},
		{http.MethodGet, AlertsPath, 405, `{"error":"method GET not allowed on /api/v1/alerts"}` + "\n"},
		{http.MethodPost, "/healthz", 405, `{"error":"method POST not allowed on /healthz"}` + "\n"},
	}
	h := newTestHandler(t, bearerConfig(t), &recordingProcessor{})
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := serve(h, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
				t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, rec.Code, rec.Body, tt.wantCode, tt.wantBody)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Errorf("%s %s has no X-Request-Id header", tt.method, tt.path)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("connection refused") }
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	ignoreCtx := func(context.Context) error { time.Sleep(5 * time.Second); return nil }
	boom := func(context.Context) error { panic("bad check") }
	waiting := func() string { return "1 waiting" }
	silent := func() string { return "" }
	tests := []struct {
		name   string
		checks map[string]func(context.Context) error
		notes  map[string]func() string
		// timeout is the ready timeout; 0 is 10 s, for checks that must
		// answer before it even on a loaded machine.
		timeout    time.Duration
		wantCode   int
		wantError  string
		wantChecks map[string]string
	}{
		{name: "no checks", wantCode: 200},
		{name: "all pass", checks: map[string]func(context.Context) error{"kubernetes": ok, "prometheus": ok}, wantCode: 200,
			wantChecks: map[string]string{"kubernetes": "ok", "prometheus": "ok"}},
		{name: "prometheus down", checks: map[string]func(context.Context) error{"kubernetes": ok, "prometheus": down}, wantCode: 503,
			wantError: "not ready: prometheus: connection refused", wantChecks: map[string]string{"kubernetes": "ok", "prometheus": "connection refused"}},
		{name: "both down", checks: map[string]func(context.Context) error{"kubernetes": down, "prometheus": down}, wantCode: 503,
			wantError: "not ready: kubernetes: connection refused; prometheus: connection refused", wantChecks: map[string]string{"kubernetes": "connection refused", "prometheus": "connection refused"}},
		{name: "check honouring the timeout", checks: map[string]func(context.Context) error{"kubernetes": hang, "prometheus": ok}, timeout: 500 * time.Millisecond, wantCode: 503,
			wantError: "not ready: kubernetes: timed out after 500ms", wantChecks: map[string]string{"kubernetes": "timed out after 500ms", "prometheus": "ok"}},
		{name: "check ignoring the timeout", checks: map[string]func(context.Context) error{"kubernetes": ignoreCtx}, timeout: 500 * time.Millisecond, wantCode: 503,
			wantError: "not ready: kubernetes: timed out after 500ms", wantChecks: map[string]string{"kubernetes": "timed out after 500ms"}},
		{name: "check panics", checks: map[string]func(context.Context) error{"kubernetes": boom}, wantCode: 503,
			wantError: "not ready: kubernetes: check panicked: bad check", wantChecks: map[string]string{"kubernetes": "check panicked: bad check"}},
		// A note is shown and decides nothing, ready or not.
		{name: "note shown, ready", checks: map[string]func(context.Context) error{"kubernetes": ok}, notes: map[string]func() string{"drains": waiting, "quiet": silent}, wantCode: 200,
			wantChecks: map[string]string{"kubernetes": "ok", "drains": "1 waiting", "quiet": "ok"}},
		{name: "note shown, not ready", checks: map[string]func(context.Context) error{"kubernetes": down}, notes: map[string]func() string{"drains": waiting}, wantCode: 503,
			wantError: "not ready: kubernetes: connection refused", wantChecks: map[string]string{"kubernetes": "connection refused", "drains": "1 waiting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bearerConfig(t)
			cfg.ReadyChecks = tt.checks
			cfg.ReadyNotes = tt.notes
			cfg.ReadyTimeout = tt.timeout
			if cfg.ReadyTimeout == 0 {
				cfg.ReadyTimeout = 10 * time.Second
			}
			h := newTestHandler(t, cfg, &recordingProcessor{})
			rec := serve(h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != tt.wantCode {
				t.Errorf("GET /readyz = %d %s, want %d", rec.Code, rec.Body, tt.wantCode)
			}
			var got struct {
				Status string            `json:"status"`
				Error  string            `json:"error"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("GET /readyz body %q is not JSON: %v", rec.Body, err)
			}
			if got.Error != tt.wantError {
				t.Errorf("GET /readyz error = %q, want %q", got.Error, tt.wantError)
			}
			if diff := cmp.Diff(tt.wantChecks, got.Checks); diff != "" {
				t.Errorf("GET /readyz checks (-want +got):\n%s", diff)
			}
			if tt.wantCode == 200 && got.Status != "ready" {
				t.Errorf("GET /readyz status = %q, want ready", got.Status)
			}
		})
	}
}

// TestMetrics checks /metrics: the alerts counter per alert of valid
// payloads only, the request duration histogram, and the caller's metrics.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	own := prometheus.NewCounter(prometheus.CounterOpts{Name: "leakguard_test_caller_metric_total", Help: "A metric of the caller."})
	reg.MustRegister(own)
	cfg := bearerConfig(t)
	cfg.Registerer, cfg.Gatherer = reg, reg
	cfg.KnownAlertName = func(n string) bool { return n == "ContainerMemoryLeak" }
	h := newTestHandler(t, cfg, &recordingProcessor{})
	for _, f := range []string{"alertmanager-0.25-mixed.json", "alertmanager-0.25-node-firing.json"} {
		if rec := serve(h, postAlerts(readFixture(t, f))); rec.Code != 200 {
			t.Fatalf("POST %s = %d %s, want 200", f, rec.Code, rec.Body)
		}
	}
	// A name the policy does not cover, however long, is "other".
	if rec := serve(h, postAlerts([]byte(validPayload(strings.Repeat("X", 5000))))); rec.Code != 200 {
		t.Fatalf("POST long alert name = %d %s, want 200", rec.Code, rec.Body)
	}
	// Rejected payloads are not counted as received alerts.
	bad := postAlerts([]byte(validPayload("Rejected")))
	bad.Header.Set("Authorization", "Bearer wrong")
	serve(h, bad)
	serve(h, postAlerts([]byte(strings.Replace(validPayload("AlsoRejected"), `"4"`, `"3"`, 1))))

	rec := serve(h, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d, want 200", rec.Code)
	}
	body := rec.Body.String()
	for _, want := range []string{
		`leakguard_alerts_received_total{alertname="ContainerMemoryLeak",status="firing"} 2`,
		`leakguard_alerts_received_total{alertname="ContainerMemoryLeak",status="resolved"} 1`,
		`leakguard_alerts_received_total{alertname="other",status="firing"} 3`,
		`leakguard_http_request_duration_seconds_count{code="200",handler="/api/v1/alerts",method="POST"} 3`,
		`leakguard_http_request_duration_seconds_count{code="401",handler="/api/v1/alerts",method="POST"} 1`,
		`leakguard_http_request_duration_seconds_count{code="400",handler="/api/v1/alerts",method="POST"} 1`,
		`leakguard_test_caller_metric_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /metrics lacks %q; got:\n%s", want, body)
		}
	}
	for _, unwanted := range []string{"Rejected", "NodeOrphanCgroups", "XXXX"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("GET /metrics contains %q, want rejected payloads uncounted", unwanted)
		}
	}

	// Unknown paths and methods share one series each.
	serve(h, httptest.NewRequest("BREW", "/coffee/1", nil))
	serve(h, httptest.NewRequest("BREW", "/coffee/2", nil))
	body = serve(h, httptest.NewRequest(http.MethodGet, "/metrics", nil)).Body.String()
	if want := `leakguard_http_request_duration_seconds_count{code="405",handler="unmatched",method="OTHER"} 2`; !strings.Contains(body, want) {
		t.Errorf("GET /metrics lacks %q after two unknown requests", want)
	}
}

// TestMetricsPrivateRegistry checks the registry defaults: none given means a
// private one, a Gatherer alone is served next to it.
func TestMetricsPrivateRegistry(t *testing.T) {
	callerReg := prometheus.NewRegistry()
	callerReg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "caller_total", Help: "h"}))
	tests := []struct {
		name     string
		gatherer prometheus.Gatherer
		want     []string
	}{
		{"nothing given", nil, []string{"leakguard_alerts_received_total"}},
		{"gatherer only", callerReg, []string{"leakguard_alerts_received_total", "caller_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := bearerConfig(t)
			cfg.Registerer, cfg.Gatherer = nil, tt.gatherer
			h := newTestHandler(t, cfg, &recordingProcessor{})
			serve(h, postAlerts([]byte(validPayload("A"))))
			body := serve(h, httptest.NewRequest(http.MethodGet, "/metrics", nil)).Body.String()
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET /metrics lacks %q; got:\n%s", w, body)
				}
			}
		})
	}
}

// TestTwoHandlersOneRegistry checks that a second handler on the same
// registry shares the metrics instead of failing.
func TestTwoHandlersOneRegistry(t *testing.T) {
	cfg := bearerConfig(t)
	for i := range 2 {
		if _, err := NewHandler(cfg, &recordingProcessor{}, discardLogger()); err != nil {
			t.Fatalf("NewHandler() #%d = %v, want nil", i+1, err)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		p       Processor
		wantErr string
	}{
		{"nil processor", Config{InsecureNoAuth: true}, nil, "nil Processor"},
		{"invalid config", Config{}, &recordingProcessor{}, "no credentials configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHandler(tt.cfg, tt.p, discardLogger())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewHandler(%s) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

// TestCredentialRotation rotates the credentials files under a running
// handler, as a Secret update does.
func TestCredentialRotation(t *testing.T) {
	type step struct {
		do       func(t *testing.T, path string)
		accepted []string // secrets that must now work
		rejected []string // secrets that must now fail
	}
	rename := func(content string) func(*testing.T, string) {
		return func(t *testing.T, path string) { replaceFile(t, path, content) }
	}
	inPlace := func(content string) func(*testing.T, string) {
		return func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(t *testing.T, path string) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	steps := []step{
		{nil, []string{"first-secret"}, []string{"second-secret", ""}},
		{rename("second-secret\n"), []string{"second-secret"}, []string{"first-secret"}},
		// Same length, rewritten in place within the file system's timestamp
		// granularity: caught because the loaded version is racily recent.
		{inPlace("third--secret"), []string{"third--secret"}, []string{"second-secret"}},
		// A broken rotation keeps the last good secret.
		{inPlace("  \n"), []string{"third--secret"}, []string{""}},
		{remove, []string{"third--secret"}, []string{"first-secret"}},
		{rename("fourth-secret"), []string{"fourth-secret"}, []string{"third--secret"}},
	}
	for _, kind := range []string{"bearer", "basic"} {
		t.Run(kind, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			path := writeFile(t, t.TempDir(), "secret", "first-secret\n")
			cfg := Config{Registerer: reg}
			if kind == "bearer" {
				cfg.BearerTokenFile = path
			} else {
				cfg.BasicAuthUsername, cfg.BasicAuthPasswordFile = "am", path
			}
			h := newTestHandler(t, cfg, &recordingProcessor{})
			code := func(secret string) int {
				req := postAlerts([]byte(validPayload("A")))
				if kind == "bearer" {
					req.Header.Set("Authorization", "Bearer "+secret)
				} else {
					req.Header.Del("Authorization")
					req.SetBasicAuth("am", secret)
				}
				return serve(h, req).Code
			}
			for i, s := range steps {
				if s.do != nil {
					s.do(t, path)
				}
				for _, secret := range s.accepted {
					if got := code(secret); got != 200 {
						t.Errorf("step %d: POST with %q = %d, want 200", i, secret, got)
					}
				}
				for _, secret := range s.rejected {
					if got := code(secret); got != 401 {
						t.Errorf("step %d: POST with %q = %d, want 401", i, secret, got)
					}
				}
			}
		})
	}
}
