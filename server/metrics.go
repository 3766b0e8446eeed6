package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's own metrics.
type metrics struct {
	// alertsReceived counts the alerts of payloads that decoded and
	// validated, before they are processed.
	alertsReceived *prometheus.CounterVec
	// requestDuration observes every request, rejected ones included.
	requestDuration *prometheus.HistogramVec
	// deliveriesWaited counts the deliveries that found every slot busy
	// and waited for one; deliveriesRejected those answered 503 because
	// no slot freed (at once with no queue wait).
	deliveriesWaited, deliveriesRejected prometheus.Counter
}

// newMetrics registers the server's metrics with reg. Metrics that an earlier
// handler registered with reg are reused, so two handlers on one registry
// share them.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	alerts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "leakguard_alerts_received_total",
		Help: "Alerts received in valid Alertmanager webhook payloads, by alert name (the policy's names; any other is \"other\") and status (firing or resolved).",
	}, []string{"alertname", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "leakguard_http_request_duration_seconds",
		Help:    "Duration of HTTP requests to the webhook receiver, by route, method and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"handler", "method", "code"})
	waited := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakguard_deliveries_waited_total",
		Help: "Webhook deliveries that found --max-in-flight deliveries in flight and waited (up to --queue-wait) for a slot.",
	})
	rejected := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "leakguard_deliveries_rejected_total",
		Help: "Webhook deliveries answered 503 because no slot of --max-in-flight freed within --queue-wait.",
	})
	var err error
	if alerts, err = register(reg, alerts); err != nil {
		return nil, err
	}
	if duration, err = register(reg, duration); err != nil {
		return nil, err
	}
	if waited, err = register(reg, waited); err != nil {
		return nil, err
	}
	if rejected, err = register(reg, rejected); err != nil {
		return nil, err
	}
	return &metrics{alertsReceived: alerts, requestDuration: duration, deliveriesWaited: waited, deliveriesRejected: rejected}, nil
}

// register registers c, or returns the identical collector already
// registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &already):
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metric: %w", err)
}

// methodLabel bounds the method label to the methods HTTP defines: a client
// must not be able to create series at will.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	default:
		return "OTHER"
	}
}
