package remediate

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics. Every label value is from a
// bounded set: alert names outside the policy count as "other".
type metrics struct {
	decisions     *prometheus.CounterVec
	remediations  *prometheus.CounterVec
	checkDuration *prometheus.HistogramVec
	recurrences   *prometheus.CounterVec
	drains        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leakguard_decisions_total",
			Help: "Decisions taken per alert, by alert name, decision (acted, dry-run, held, resolved, error) and reason.",
		}, []string{"alertname", "decision", "reason"}),
		remediations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leakguard_remediations_total",
			Help: "Remediator runs by remediator and result (success, failure).",
		}, []string{"remediator", "result"}),
		recurrences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leakguard_restart_recurrences_total",
			Help: "Restarts held because the same alert restarted the workload too often within the recurrence window (restarting is not fixing the leak), by alert name and remediator.",
		}, []string{"alertname", "remediator"}),
		drains: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "leakguard_drains_total",
			Help: "Drains that ended, by result: done (every pod to evict evicted), incomplete (the deadline came with pods left, or the drain's replica stopped past it) or stopped (the node was uncordoned mid-drain).",
		}, []string{"result"}),
		checkDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "leakguard_check_duration_seconds",
			Help:    "Time to run a check, its Prometheus query included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"check"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.remediations, m.checkDuration, m.recurrences, m.drains} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register engine metrics: %w (one engine per registry)", err)
			}
			return nil, fmt.Errorf("register engine metrics: %w", err)
		}
	}
	return m, nil
}
