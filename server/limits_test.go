package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// blockingProcessor holds each call until release is closed or its
// context is done, telling entered when a call starts.
type blockingProcessor struct {
	entered chan struct{}
	release chan struct{}
	// deadline receives, for each call, the time its context had left on
	// entry (negative if it entered late), or noDeadline.
	deadline chan time.Duration
}

const noDeadline = time.Duration(math.MaxInt64)

func (p *blockingProcessor) Process(ctx context.Context, _ *Message) (any, error) {
	if dl, ok := ctx.Deadline(); ok {
		p.deadline <- time.Until(dl)
	} else {
		p.deadline <- noDeadline
	}
	p.entered <- struct{}{}
	select {
	case <-p.release:
		return []string{"done"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestMaxInFlight fills the one delivery slot and sends another: it is
// answered 503 at once, without reaching the Processor; once the first is
// done, the next is processed.
func TestMaxInFlight(t *testing.T) {
	cfg := bearerConfig(t)
	cfg.MaxInFlight = 1
	p := &blockingProcessor{entered: make(chan struct{}, 2), release: make(chan struct{}), deadline: make(chan time.Duration, 2)}
	h := newTestHandler(t, cfg, p)
	first := make(chan int, 1)
	go func() { first <- serve(h, postAlerts([]byte(validPayload("A")))).Code }()
	select {
	case <-p.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the first delivery never reached the Processor")
	}
	second := make(chan *httptest.ResponseRecorder, 1)
	go func() { second <- serve(h, postAlerts([]byte(validPayload("B")))) }()
	var rec *httptest.ResponseRecorder
	select {
	case rec = <-second:
	case <-time.After(5 * time.Second):
		close(p.release)
		t.Fatal("the second delivery waited for the first instead of being answered 503")
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "deliveries") {
		t.Errorf("second delivery = %d %s (Retry-After %q), want 503 with Retry-After", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	close(p.release)
	select {
	case code := <-first:
		if code != 200 {
			t.Errorf("first delivery = %d, want 200", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first delivery never finished")
	}
	if rec := serve(h, postAlerts([]byte(validPayload("C")))); rec.Code != 200 {
		t.Errorf("delivery after the slot freed = %d %s, want 200", rec.Code, rec.Body)
	}
}

// TestProcessTimeout gives each delivery a deadline: a Processor that
// waits for ever is cut off at ProcessTimeout.
func TestProcessTimeout(t *testing.T) {
	cfg := bearerConfig(t)
	cfg.ProcessTimeout = 50 * time.Millisecond
	p := &blockingProcessor{entered: make(chan struct{}, 1), release: make(chan struct{}), deadline: make(chan time.Duration, 1)}
	h := newTestHandler(t, cfg, p)
	t.Cleanup(func() { close(p.release) })
	done := make(chan int, 1)
	go func() { done <- serve(h, postAlerts([]byte(validPayload("A")))).Code }()
	select {
	case code := <-done:
		if code != http.StatusInternalServerError {
			t.Errorf("timed-out delivery = %d, want 500 (the Processor's plain error)", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery was not cut off by its deadline")
	}
	// Only the upper bound: the deadline was set before the Processor was
	// entered, and a loaded machine may enter it after the deadline.
	if d := <-p.deadline; d == noDeadline || d > 50*time.Millisecond {
		t.Errorf("Processor deadline in %v, want within 50ms", d)
	}
	if err := (Config{InsecureNoAuth: true, ProcessTimeout: 3 * time.Minute}).Validate(); err == nil || !strings.Contains(err.Error(), "write timeout") {
		t.Errorf("Validate(ProcessTimeout 3m) = %v, want an error naming the write timeout", err)
	}
	if err := (Config{InsecureNoAuth: true, MaxInFlight: -1}).Validate(); err == nil {
		t.Errorf("Validate(MaxInFlight -1) = nil, want an error")
	}
}

// TestNonUTF8Body answers 400 to a body that is not UTF-8, before the
// Processor.
func TestNonUTF8Body(t *testing.T) {
	p := &recordingProcessor{}
	h := newTestHandler(t, bearerConfig(t), p)
	body := strings.Replace(validPayload("A"), `"alertname":"A"`, "\"alertname\":\"A\xff\"", 1)
	rec := serve(h, postAlerts([]byte(body)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "UTF-8") || p.callCount() != 0 {
		t.Errorf("POST non-UTF-8 = %d %s after %d calls, want 400 naming UTF-8 and no call", rec.Code, rec.Body, p.callCount())
	}
	_, err := DecodeMessage(strings.NewReader(body))
	if err == nil || !strings.Contains(err.Error(), "byte 95") {
		t.Errorf("DecodeMessage(non-UTF-8) = %v, want an error at byte 95", err)
	}
}

// TestLogValuesBounded sends a delivery whose group key, receiver and
// request id are huge: every log line stays short.
func TestLogValuesBounded(t *testing.T) {
	var logs strings.Builder
	cfg := bearerConfig(t)
	h, err := NewHandler(cfg, &recordingProcessor{err: errors.New("boom")}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 20000)
	body := strings.Replace(strings.Replace(validPayload("A"), `"groupKey":"{}:{}"`, `"groupKey":"`+long+`"`, 1), `"receiver":"leakguard"`, `"receiver":"`+long+`"`, 1)
	req := postAlerts([]byte(body))
	req.Header.Set("X-Request-Id", long)
	if rec := serve(h, req); rec.Code != http.StatusInternalServerError {
		t.Fatalf("POST = %d %s, want the Processor's 500", rec.Code, rec.Body)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 2 {
		t.Fatalf("log lines = %q, want the processing error and the request", lines)
	}
	for _, l := range lines {
		if len(l) > 2000 {
			t.Errorf("log line of %d bytes, want at most 2000: %.200s…", len(l), l)
		}
	}
}
