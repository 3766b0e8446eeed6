package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/alertmanager/template"
)

// maxSeedBytes bounds the size of a fuzz seed.
const maxSeedBytes = 16 << 10

// seedPayloads are the real Alertmanager payloads plus hand-made broken ones.
func seedPayloads(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, p := range fixturePaths(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		// The 100-alert payload (80 KB) would make every mutation slow and
		// its minimization take most of a short run; the tests and
		// benchmarks cover it.
		if len(b) > maxSeedBytes {
			continue
		}
		seeds = append(seeds, b)
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"version":"4"}`, `{"version":"4","status":"firing","alerts":[]}`,
		`{"version":"4","status":"firing","alerts":[null]}`,
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`,
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"}}]} {}`,
		`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-13-45T99:00:00Z"}]}`,
		`{"version":"4","truncatedAlerts":-1}`, `{"version":"4","truncatedAlerts":1e400}`,
		"{\"version\":\"4\",\"status\":\"firing\",\"alerts\":[{\"status\":\"firing\",\"labels\":{\"alertname\":\"\xff\xfe\"}}]}",
		validPayload("A", "B", "C"),
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// checkMessage reports a broken promise of DecodeMessage about msg.
func checkMessage(t *testing.T, msg *Message) {
	t.Helper()
	if msg == nil || msg.Data == nil {
		t.Fatalf("DecodeMessage() = %+v, nil; want a message with data", msg)
	}
	if msg.Version != SupportedVersion || !validStatus(msg.Status) || len(msg.Alerts) == 0 {
		t.Fatalf("DecodeMessage() accepted version %q status %q with %d alerts", msg.Version, msg.Status, len(msg.Alerts))
	}
	for i, a := range msg.Alerts {
		if a.Labels["alertname"] == "" || !validStatus(a.Status) {
			t.Fatalf("DecodeMessage() accepted alert %d with alertname %q status %q", i, a.Labels["alertname"], a.Status)
		}
	}
}

// FuzzDecodeMessage checks that DecodeMessage never panics, that what it
// accepts keeps its promises, and that an accepted message survives a JSON
// round trip unchanged.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range seedPayloads(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		msg, err := DecodeMessage(bytes.NewReader(in))
		if err != nil {
			if msg != nil {
				t.Fatalf("DecodeMessage() = %+v, %v; want nil with an error", msg, err)
			}
			return
		}
		checkMessage(t, msg)
		out, err := json.Marshal(msg)
		if err != nil {
			return // for example a year past 9999, which time.Time cannot marshal
		}
		again, err := DecodeMessage(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("DecodeMessage(Marshal(%s)) = %v, want the message back", out, err)
		}
		if diff := cmp.Diff(msg, again, cmpopts.IgnoreUnexported(template.Data{})); diff != "" {
			t.Fatalf("JSON round trip changed the message (-first +second):\n%s", diff)
		}
	})
}

// FuzzHandler runs the whole router, with bearer auth and a recording
// Processor, on fuzzed requests: it must never panic, always answer JSON with
// a known status, call the Processor exactly for the valid, authenticated
// payloads, and agree with DecodeMessage about which payloads are valid.
func FuzzHandler(f *testing.F) {
	const limit = 64 << 10
	methods := []string{http.MethodPost, http.MethodGet, http.MethodPut, http.MethodDelete}
	paths := []string{AlertsPath, "/healthz", "/readyz", AlertsPath + "/", "/API/v1/alerts", "/", "/nope"}
	for _, s := range seedPayloads(f) {
		f.Add(s, "application/json", "Bearer "+testToken, uint8(0), uint8(0))
	}
	f.Add([]byte(validPayload("A")), "application/json; charset=utf-8", "bearer "+testToken, uint8(0), uint8(0))
	f.Add([]byte(validPayload("A")), "text/plain", "Bearer "+testToken, uint8(0), uint8(0))
	f.Add([]byte(validPayload("A")), "application/json", "Bearer wrong", uint8(0), uint8(0))
	f.Add([]byte(validPayload("A")), "application/json", "Basic YTpi", uint8(0), uint8(0))
	f.Add([]byte(validPayload("A")), "application/json", "", uint8(1), uint8(1))
	f.Add([]byte(nil), "", "", uint8(1), uint8(6))

	cfg := bearerConfig(f)
	cfg.MaxBodyBytes = limit
	p := &recordingProcessor{decisions: []string{"noop"}}
	h := newTestHandler(f, cfg, p)
	allowed := map[int]bool{200: true, 400: true, 401: true, 404: true, 405: true, 413: true, 415: true}

	f.Fuzz(func(t *testing.T, body []byte, contentType, authorization string, method, path uint8) {
		req := httptest.NewRequest(methods[int(method)%len(methods)], "/", bytes.NewReader(body))
		req.URL.Path = paths[int(path)%len(paths)]
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", authorization)
		before := p.callCount()
		rec := serve(h, req)
		calls := p.callCount() - before

		if !allowed[rec.Code] {
			t.Fatalf("%s %s = %d %s, want one of %v", req.Method, req.URL.Path, rec.Code, rec.Body, allowed)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s = %d with a body that is not JSON: %q", req.Method, req.URL.Path, rec.Code, rec.Body)
		}
		isAlerts := req.Method == http.MethodPost && req.URL.Path == AlertsPath
		switch {
		case rec.Code == 200 && isAlerts:
			if calls != 1 {
				t.Fatalf("200 answer after %d Processor calls, want 1", calls)
			}
			checkMessage(t, p.calls[len(p.calls)-1])
		case calls != 0:
			t.Fatalf("%s %s = %d after %d Processor calls, want none", req.Method, req.URL.Path, rec.Code, calls)
		}
		// Authenticated JSON within the limit: the answer follows DecodeMessage.
		if isAlerts && rec.Code != 401 && rec.Code != 415 && len(body) <= limit {
			_, err := DecodeMessage(bytes.NewReader(body))
			if (err == nil) != (rec.Code == 200) {
				t.Fatalf("POST %s = %d %s, but DecodeMessage() = %v", AlertsPath, rec.Code, rec.Body, err)
			}
		}
		// Keep the recorded messages from piling up over a long run.
		p.mu.Lock()
		p.calls = p.calls[:0]
		p.mu.Unlock()
	})
}
