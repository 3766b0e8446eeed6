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

	"github.com/prometheus/client_golang/prometheus"
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

// TestDeliveryOutlivesTheClient: a delivery the Processor has entered is
// not cancelled when the client (Alertmanager, whose notification
// deadline may be shorter than the work) goes away; it keeps its own
// deadline and runs to its end.
func TestDeliveryOutlivesTheClient(t *testing.T) {
	cfg := bearerConfig(t)
	cfg.ProcessTimeout = time.Minute
	p := &blockingProcessor{entered: make(chan struct{}, 1), release: make(chan struct{}), deadline: make(chan time.Duration, 1)}
	h := newTestHandler(t, cfg, p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- serve(h, postAlerts([]byte(validPayload("A"))).WithContext(ctx)) }()
	select {
	case <-p.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery never reached the Processor")
	}
	cancel()
	select {
	case rec := <-done:
		t.Fatalf("the delivery ended (%d %s) when its client went away, before the Processor was done", rec.Code, rec.Body)
	case <-time.After(200 * time.Millisecond):
	}
	close(p.release)
	select {
	case rec := <-done:
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "done") {
			t.Errorf("delivery = %d %s, want 200 with the Processor's answer", rec.Code, rec.Body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery never finished after the Processor was released")
	}
	if d := <-p.deadline; d == noDeadline || d > time.Minute {
		t.Errorf("Processor deadline in %v, want within the process timeout (1m)", d)
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

// counterValue is the value of the counter name in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// TestQueueWait fills the one delivery slot: a delivery that finds it
// taken waits, and is processed (200) when the slot frees within
// QueueWait; one whose wait ends first is answered 503 with Retry-After
// without reaching the Processor; one whose client goes away while it
// waits is neither processed nor counted as rejected. The waits and the
// rejections are counted. Channels and counters order the steps; the
// only durations are the waits themselves.
func TestQueueWait(t *testing.T) {
	start := func(t *testing.T, wait time.Duration) (http.Handler, *blockingProcessor, *prometheus.Registry, chan int) {
		t.Helper()
		cfg := bearerConfig(t)
		cfg.MaxInFlight, cfg.QueueWait = 1, wait
		reg := prometheus.NewRegistry()
		cfg.Registerer = reg
		p := &blockingProcessor{entered: make(chan struct{}, 2), release: make(chan struct{}), deadline: make(chan time.Duration, 2)}
		h := newTestHandler(t, cfg, p)
		first := make(chan int, 1)
		go func() { first <- serve(h, postAlerts([]byte(validPayload("A")))).Code }()
		select {
		case <-p.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the first delivery never reached the Processor")
		}
		return h, p, reg, first
	}
	waitCount := func(t *testing.T, reg *prometheus.Registry, name string, want float64) {
		t.Helper()
		for range 2000 {
			if counterValue(t, reg, name) == want {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("timed out after 10s waiting for %s = %v", name, want)
	}
	receive := func(t *testing.T, what string, ch <-chan *httptest.ResponseRecorder) *httptest.ResponseRecorder {
		t.Helper()
		select {
		case rec := <-ch:
			return rec
		case <-time.After(30 * time.Second):
			t.Fatalf("%s never answered", what)
			return nil
		}
	}

	t.Run("a slot frees within the wait", func(t *testing.T) {
		// The wait is long: the slot frees once the second delivery is
		// seen waiting, far before it ends.
		h, p, reg, first := start(t, time.Minute)
		second := make(chan *httptest.ResponseRecorder, 1)
		go func() { second <- serve(h, postAlerts([]byte(validPayload("B")))) }()
		waitCount(t, reg, "leakguard_deliveries_waited_total", 1)
		select {
		case <-p.entered:
			t.Fatal("the second delivery reached the Processor while the slot was taken")
		default:
		}
		close(p.release)
		if rec := receive(t, "the second delivery", second); rec.Code != http.StatusOK {
			t.Errorf("waiting delivery = %d %s, want 200 once the slot freed", rec.Code, rec.Body)
		}
		if code := <-first; code != http.StatusOK {
			t.Errorf("first delivery = %d, want 200", code)
		}
		if got := counterValue(t, reg, "leakguard_deliveries_rejected_total"); got != 0 {
			t.Errorf("rejected = %v, want 0", got)
		}
	})

	t.Run("no slot within the wait", func(t *testing.T) {
		h, p, reg, first := start(t, 50*time.Millisecond)
		second := make(chan *httptest.ResponseRecorder, 1)
		go func() { second <- serve(h, postAlerts([]byte(validPayload("B")))) }()
		rec := receive(t, "the second delivery", second)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "within 50ms") {
			t.Errorf("second delivery = %d %s (Retry-After %q), want 503 with Retry-After after the wait", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
		}
		close(p.release)
		if code := <-first; code != http.StatusOK {
			t.Errorf("first delivery = %d, want 200", code)
		}
		if len(p.entered) != 0 {
			t.Error("the rejected delivery reached the Processor")
		}
		if w, r := counterValue(t, reg, "leakguard_deliveries_waited_total"), counterValue(t, reg, "leakguard_deliveries_rejected_total"); w != 1 || r != 1 {
			t.Errorf("waited %v, rejected %v; want 1 and 1", w, r)
		}
	})

	t.Run("the client goes away while it waits", func(t *testing.T) {
		h, p, reg, first := start(t, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan *httptest.ResponseRecorder, 1)
		go func() { second <- serve(h, postAlerts([]byte(validPayload("B"))).WithContext(ctx)) }()
		waitCount(t, reg, "leakguard_deliveries_waited_total", 1)
		cancel()
		receive(t, "the abandoned delivery", second)
		close(p.release)
		<-first
		if len(p.entered) != 0 {
			t.Error("the abandoned delivery reached the Processor")
		}
		if got := counterValue(t, reg, "leakguard_deliveries_rejected_total"); got != 0 {
			t.Errorf("rejected = %v, want 0 (gone, not rejected)", got)
		}
	})

	t.Run("no wait", func(t *testing.T) {
		h, p, reg, first := start(t, 0)
		rec := serve(h, postAlerts([]byte(validPayload("B"))))
		close(p.release)
		<-first
		if rec.Code != http.StatusServiceUnavailable {
			t.Errorf("delivery = %d, want 503 at once", rec.Code)
		}
		if w, r := counterValue(t, reg, "leakguard_deliveries_waited_total"), counterValue(t, reg, "leakguard_deliveries_rejected_total"); w != 0 || r != 1 {
			t.Errorf("waited %v, rejected %v; want 0 and 1", w, r)
		}
	})

	for _, bad := range []time.Duration{-time.Second, 3 * time.Minute} {
		if err := (Config{InsecureNoAuth: true, QueueWait: bad}).Validate(); err == nil || !strings.Contains(err.Error(), "queue wait") {
			t.Errorf("Validate(QueueWait %v) = %v, want an error naming the queue wait", bad, err)
		}
	}
}
