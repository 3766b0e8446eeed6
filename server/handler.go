package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	clipto "github.com/leakguard/leakguard/internal/clip"
	"github.com/leakguard/leakguard/internal/transient"
)

// AlertsPath is the route Alertmanager's webhook_configs url points at.
const AlertsPath = "/api/v1/alerts"

// Processor decides and acts on the alerts of one decoded message and
// returns the per-alert decisions (rendered as JSON in the 200 answer). An
// error that unwraps (errors.As) to an interface{ Transient() bool } reporting
// true is answered 503 so that Alertmanager retries; any other error 500.
//
// Alertmanager retries every 5xx answer, 500 included, so a Processor should
// return an error only when the whole payload could not be handled; a
// decision not to act, or an action that failed for one alert, belongs in the
// decisions.
type Processor interface {
	Process(ctx context.Context, msg *Message) (any, error)
}

// ProcessorFunc adapts a function to a Processor.
type ProcessorFunc func(ctx context.Context, msg *Message) (any, error)

// Process calls f.
func (f ProcessorFunc) Process(ctx context.Context, msg *Message) (any, error) {
	return f(ctx, msg)
}

// IsTransient reports whether err, or an error it wraps, has a Transient
// method that reports true: a failure whose retry is safe and may succeed.
func IsTransient(err error) bool { return transient.Is(err) }

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Checks is set by /readyz: each check's name and "ok" or its error.
	Checks map[string]string `json:"checks,omitempty"`
}

// AlertsResponse is the body of a 200 answer to POST /api/v1/alerts.
type AlertsResponse struct {
	Status    string `json:"status"`
	Decisions any    `json:"decisions"`
}

// StatusResponse is the body of a 200 answer to /healthz and /readyz.
type StatusResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

// handler holds what the routes share.
type handler struct {
	cfg       Config
	processor Processor
	logger    *slog.Logger
	metrics   *metrics
	// inFlight holds one token per delivery being processed.
	inFlight chan struct{}
}

// NewHandler builds the whole chi router in one function:
//
//	POST /api/v1/alerts  the webhook: authenticate (401), bound the body
//	                     (413), require JSON (415), bound the deliveries in
//	                     flight (a bounded wait for a slot, then 503),
//	                     decode and validate (400), then the
//	                     Processor under a deadline (200, 500, or 503 when
//	                     transient)
//	GET  /healthz        200 while the process serves
//	GET  /readyz         200 when every ready check passes, else 503 naming them;
//	                     the ready notes shown beside them, never failing it
//	GET  /metrics        the Prometheus metrics of cfg.Gatherer
//
// Every answer but /metrics is JSON, errors as {"error": "..."}. A panic in a
// handler is logged and answered 500. cfg must pass Validate.
func NewHandler(cfg Config, p Processor, logger *slog.Logger) (http.Handler, error) {
	if p == nil {
		return nil, errors.New("new handler: nil Processor")
	}
	if logger == nil {
		return nil, errors.New("new handler: nil logger")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new handler: invalid config: %w", err)
	}
	reg, gatherer := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		private := prometheus.NewRegistry()
		reg = private
		if gatherer == nil {
			gatherer = private
		} else {
			gatherer = prometheus.Gatherers{gatherer, private}
		}
	}
	if gatherer == nil {
		gatherer = reg.(prometheus.Gatherer) // checked by Validate
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new handler: %w", err)
	}
	auth, err := newAuthenticator(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("new handler: %w", err)
	}
	if auth == nil {
		logger.Warn("webhook authentication is off (--insecure-no-auth): anyone who reaches the port can send alerts")
	}
	h := &handler{cfg: cfg, processor: p, logger: logger, metrics: m, inFlight: make(chan struct{}, cfg.maxInFlight())}

	r := chi.NewRouter()
	r.Use(middleware.RequestID, h.observe, h.recoverer)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s", r.URL.Path))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	})
	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}))
	r.Group(func(r chi.Router) {
		if auth != nil {
			r.Use(requireAuth(auth))
		}
		r.Use(limitBody(cfg.maxBodyBytes()), requireJSON)
		r.Post(AlertsPath, h.receiveAlerts)
	})
	h.mountProfiles(r, auth)
	return r, nil
}

// receiveAlerts decodes one webhook payload and hands it to the Processor.
// Nothing reaches the Processor unless the payload is valid.
func (h *handler) receiveAlerts(w http.ResponseWriter, r *http.Request) {
	if !h.takeSlot(r.Context()) {
		if r.Context().Err() != nil {
			return // the client went away while it waited: no one to answer
		}
		msg := fmt.Sprintf("%d deliveries are being processed, the most at once; retry later", cap(h.inFlight))
		if h.cfg.QueueWait > 0 {
			msg = fmt.Sprintf("%d deliveries are being processed, the most at once, and none finished within %v; retry later", cap(h.inFlight), h.cfg.QueueWait)
		}
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, msg)
		return
	}
	defer func() { <-h.inFlight }()
	msg, err := DecodeMessage(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", tooLarge.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h.countAlerts(msg.Alerts)
	// The delivery's logger is built when it has something to say: With
	// formats its attributes at once, and most deliveries log nothing
	// here (the request line is observe's).
	logger := func() *slog.Logger {
		return h.logger.With("request_id", clip(middleware.GetReqID(r.Context())),
			"receiver", clip(msg.Receiver), "group_key", clip(msg.GroupKey), "status", msg.Status, "alerts", len(msg.Alerts))
	}
	if msg.TruncatedAlerts > 0 {
		logger().Warn("Alertmanager truncated the payload (max_alerts): those alerts are not seen", "truncated_alerts", msg.TruncatedAlerts)
	}
	// Once accepted, a delivery runs to its end or its own deadline, not
	// to Alertmanager's: Alertmanager cancels a notification after the
	// route's group_interval (at least 10 s) and retries it, and work cut
	// off there could take its claims (so that the retry is held by the
	// cooldown) and never reach the remediators after the one it was in,
	// such as a restart after profile's second heap profile.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.cfg.processTimeout())
	defer cancel()
	decisions, err := h.processor.Process(ctx, msg)
	if err != nil {
		if IsTransient(err) {
			logger().Warn("processing failed transiently, answering 503 so that Alertmanager retries", "error", err)
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		logger().Error("processing failed", "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	body, err := encodeJSON(AlertsResponse{Status: "ok", Decisions: decisions})
	if err != nil {
		// The alerts have been processed; the answer alone is lost.
		logger().Error("encode decisions", "error", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("alerts processed, but the decisions do not encode as JSON: %v", err))
		return
	}
	writeJSONBytes(w, http.StatusOK, body)
}

// takeSlot takes one of the in-flight slots, waiting up to QueueWait (and
// as long as ctx lasts) when all are taken, and reports whether it got
// one. The wait is bounded, and short next to the time Alertmanager gives
// a notification, so a burst (a restart, a flush of many groups) is absorbed
// while a sustained overload is answered 503, which Alertmanager retries
// with its backoff; the body is not read before a slot is taken, so a
// waiting delivery holds its connection only.
func (h *handler) takeSlot(ctx context.Context) bool {
	select {
	case h.inFlight <- struct{}{}:
		return true
	default:
	}
	if h.cfg.QueueWait <= 0 {
		h.metrics.deliveriesRejected.Inc()
		return false
	}
	h.metrics.deliveriesWaited.Inc()
	timer := time.NewTimer(h.cfg.QueueWait)
	defer timer.Stop()
	select {
	case h.inFlight <- struct{}{}:
		return true
	case <-timer.C:
		h.metrics.deliveriesRejected.Inc()
		return false
	case <-ctx.Done():
		return false // gone, not answered: not a rejection
	}
}

// countAlerts counts the delivery's alerts by name and status: one
// increment per name and status, as Alertmanager's groups mostly hold one
// name, not one per alert.
func (h *handler) countAlerts(alerts []template.Alert) {
	type key struct{ name, status string }
	var keys []key
	var counts []int
	for _, a := range alerts {
		name := a.Labels["alertname"]
		if h.cfg.KnownAlertName == nil || !h.cfg.KnownAlertName(name) {
			name = "other"
		}
		k := key{name, a.Status}
		i := slices.Index(keys, k)
		if i < 0 {
			i = len(keys)
			keys, counts = append(keys, k), append(counts, 0)
		}
		counts[i]++
	}
	for i, k := range keys {
		h.metrics.alertsReceived.WithLabelValues(k.name, k.status).Add(float64(counts[i]))
	}
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, StatusResponse{Status: "ok"})
}

// readyz runs every ready check concurrently within the ready timeout and
// answers 503 naming the checks that failed. The ready notes are shown in
// the checks and decide nothing.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.readyTimeout())
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(h.cfg.ReadyChecks)) // buffered: a late check never blocks
	for name, check := range h.cfg.ReadyChecks {
		go func() {
			defer func() {
				if rec := recover(); rec != nil {
					results <- result{name, fmt.Errorf("check panicked: %v", rec)}
				}
			}()
			results <- result{name, check(ctx)}
		}()
	}
	checks := make(map[string]string, len(h.cfg.ReadyChecks))
	for name := range h.cfg.ReadyChecks {
		checks[name] = "timed out after " + h.cfg.readyTimeout().String()
	}
	var failed []string
	for range h.cfg.ReadyChecks {
		select {
		case res := <-results:
			switch {
			case res.err == nil:
				checks[res.name] = "ok"
			case ctx.Err() != nil && errors.Is(res.err, ctx.Err()):
				// Keeps "timed out", whichever of the check and the
				// deadline this loop saw first.
			default:
				checks[res.name] = res.err.Error()
			}
		case <-ctx.Done():
			// The remaining checks keep their "timed out".
		}
		if ctx.Err() != nil {
			break
		}
	}
	var notes []string
	for _, name := range sortedKeys(h.cfg.ReadyNotes) {
		// Notes are shown, never failed on.
		checks[name] = "ok"
		if note := h.cfg.ReadyNotes[name](); note != "" {
			checks[name] = note
			notes = append(notes, name+": "+note)
		}
	}
	for _, name := range sortedKeys(h.cfg.ReadyChecks) {
		if checks[name] != "ok" {
			failed = append(failed, name+": "+checks[name])
		}
	}
	if len(failed) > 0 {
		h.logger.Warn("not ready", "checks", checks, "notes", notes)
		writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: "not ready: " + strings.Join(failed, "; "), Checks: checks})
		return
	}
	writeJSON(w, http.StatusOK, StatusResponse{Status: "ready", Checks: checks})
}

// observe logs every request and records its duration, by route pattern (so
// that unknown paths do not create series).
func (h *handler) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		if id := middleware.GetReqID(r.Context()); id != "" {
			ww.Header().Set(middleware.RequestIDHeader, id)
		}
		next.ServeHTTP(ww, r)
		elapsed := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK // nothing written: net/http answers 200
		}
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		h.metrics.requestDuration.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(status)).Observe(elapsed.Seconds())
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelWarn
		case route != AlertsPath:
			level = slog.LevelDebug // probes and scrapes
		}
		h.logger.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", clip(middleware.GetReqID(r.Context()))),
			slog.String("method", methodLabel(r.Method)),
			slog.String("path", clip(r.URL.Path)),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", elapsed),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

// recoverer turns a panic into a logged 500 JSON answer (if nothing has been
// written yet), so that no input can take the process down.
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			rec := recover()
			if rec == nil {
				return
			}
			if rec == http.ErrAbortHandler {
				panic(rec) // net/http's way to abort a response; it does not log it
			}
			h.logger.Error("panic while serving a request",
				"request_id", clip(middleware.GetReqID(r.Context())), "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			if ww, ok := w.(middleware.WrapResponseWriter); ok && ww.Status() != 0 {
				return // the answer has begun; the client sees it cut short
			}
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody answers 413 to a request whose declared length exceeds limit and
// makes reading more than limit bytes fail with *http.MaxBytesError (which
// receiveAlerts answers 413).
func limitBody(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, limit))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
}

// requireJSON answers 415 unless the request's content type is
// application/json, with no charset or charset=utf-8 (JSON is UTF-8).
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ct := r.Header.Get("Content-Type")
		if ct == "application/json" {
			// What Alertmanager sends: no parameters to parse.
			next.ServeHTTP(w, r)
			return
		}
		mediaType, params, err := mime.ParseMediaType(ct)
		charset, hasCharset := params["charset"]
		if err != nil || mediaType != "application/json" || (hasCharset && !strings.EqualFold(charset, "utf-8")) {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not supported, want application/json", ct))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxLogValueLen bounds a value that a client controls (a request id, a
// path, a group key with its label values) in a log line.
const maxLogValueLen = 256

// clip cuts s to maxLogValueLen bytes on a rune boundary, marking the cut.
func clip(s string) string { return clipto.To(s, maxLogValueLen) }

// writeError answers {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

// writeJSON answers v as JSON with status. v is one of this package's
// response types, which always encode.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := encodeJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal error: cannot encode the answer"}` + "\n")
	}
	writeJSONBytes(w, status, body)
}

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body) // a client that went away cannot be answered
}
