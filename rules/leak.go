package rules

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// containerTrendGroup is the leak trends and their alerts. Leaks move over
// hours: the group runs every TrendInterval, over floors of the working set
// that the container group records, which is a fraction of the cost of
// running it at the rule file's interval.
func containerTrendGroup(p Params) Group {
	fast, steady, slow := p.trends()
	// Every leak trend needs its growth above LeakMinGrowthBytes, so its
	// records are gated (trend.gatedRecords). The steady growth may be the
	// slow trend's step, which needs less.
	minG := float64(p.LeakMinGrowthBytes)
	fastStep, fastGrowth := fast.gatedRecords(RecWorkingSetFloorFast, fast.share()*minG, minG)
	steadyGrowthGate := minG
	if slow.step == steady.growth {
		steadyGrowthGate = min(minG, slow.share()*minG)
	}
	floorStep, floorGrowth := steady.gatedRecords(RecWorkingSetFloor, steady.share()*minG, steadyGrowthGate)
	slowStep, slowGrowth := slow.gatedRecords(RecWorkingSetFloor, slow.share()*minG, minG)

	// A trend across a restart compares two processes, which is no trend:
	// each trend skips the runs that started within its floor's window and
	// its span. (The fall of the floor at a restart breaks every trend too;
	// this is the belt to those braces, and one look-up a container.) The
	// start times are read once, into a record of the runs that started
	// within the longest of the three.
	fastRestart := p.FastStepWindow + fast.span()
	steadyRestart := p.FloorWindow + steady.span()
	slowRestart := p.FloorWindow + slow.span()

	v := vars{
		"workingSet":     RecWorkingSet,
		"floorFast":      RecWorkingSetFloorFast,
		"floor":          RecWorkingSetFloor,
		"limit":          RecMemoryLimit,
		"leakRate":       RecLeakRate,
		"secondsToLimit": RecSecondsToLimit,
		"ksm":            sel(p.KubeStateMetricsSelector),
		"memoryRequests": sel(p.KubeStateMetricsSelector, `resource="memory"`, `unit="byte"`),
		"fastStepWindow": prom(p.FastStepWindow),
		"floorWindow":    prom(p.FloorWindow),
		"steadySpan":     prom(steady.span()),
		"startedWithin":  seconds(max(fastRestart, steadyRestart, slowRestart)),
		"oomHorizon":     seconds(p.OOMHorizon),
		"oomHorizonText": prom(p.OOMHorizon),
		"minGrowth":      fmt.Sprint(p.LeakMinGrowthBytes),
		"headroomRatio":  num(p.FastMinHeadroomRatio),
		"growthRatio":    num(p.LeakMinGrowthRatio),
		"steadyStart":    offset(RecWorkingSetFloor, time.Duration(steady.span())),
	}

	records := []Record{
		{RecWorkingSetFloorFast, expand(`min_over_time(${workingSet}[${fastStepWindow}])`, v)},
		{RecWorkingSetFloor, floorRecord(p)},
		{RecWorkingSetDeriv, expand(`deriv(${floor}[${steadySpan}])`, v)},
		fastStep, fastGrowth, floorStep, floorGrowth,
	}
	if slow.step != steady.growth {
		records = append(records, slowStep)
	}
	records = append(records, slowGrowth,
		Record{RecRecentStart, expand(`max by (namespace, pod, container) (
  kube_pod_container_state_started${ksm}
) > time() - ${startedWithin}`, v)},
		Record{RecMemoryRequest, expand(`max by (namespace, pod, container) (
  kube_pod_container_resource_requests${memoryRequests}
) > 0`, v)},
		// The leak rate is the growth of whichever trend holds, fastest
		// first, per second of its span: a steep climb against the room left
		// to the limit over the fast span, a steady one over the leak span, or a slow one
		// over half a day, whose threshold does not grow with the container.
		// Each trend filters its (gated) growth in one chain of comparisons:
		// more than the least growth, more than its share of the room left or
		// of where it started; then the steps' test. Each trend is a record
		// of its own (present only where it holds), so that the look-ups of
		// the fast and steady trends are not spread over the slow trend's
		// 12 hours: Prometheus opens every block a query's range covers for
		// every selector of the query.
		trendRate(RecLeakRateFast, fast, expand(` > ${minGrowth} > ${headroomRatio} * (${limit} - on (namespace, pod, container) group_right ${floorFast})`, v), fastRestart),
		trendRate(RecLeakRateSteady, steady, expand(` > ${minGrowth} > ${growthRatio} * ${steadyStart}`, v), steadyRestart),
		trendRate(RecLeakRateSlow, slow, expand(` > ${minGrowth}`, v), slowRestart),
	)
	// A run younger than the trends' windows: its own trend, whose rate
	// comes last in the union below.
	records = append(records, youngRecords(p, RecRecentStart)...)
	records = append(records,
		// The leak rate is the growth of whichever trend holds, fastest
		// first, per second of its span.
		Record{RecLeakRate, expand("${fast}\nor\n${steady}\nor\n${slow}\nor\n${young}", vars{
			"fast": RecLeakRateFast, "steady": RecLeakRateSteady, "slow": RecLeakRateSlow, "young": RecLeakRateYoung,
		})},
		// From the current peak, at the leak's rate: present only for a
		// container whose trend holds and that has a limit.
		Record{RecSecondsToLimit, expand(`(
  ${limit}
  - on (namespace, pod, container) group_right
  max_over_time(${workingSet}[${floorWindow}])
)
/
${leakRate}`, v)},
	)
	return Group{
		Name:     GroupContainerTrend,
		Interval: p.TrendInterval,
		Records:  records,
		Alerts: []Alert{
			{
				Name:     AlertContainerMemoryLeak,
				Severity: SeverityWarning,
				// The leak rate per hour, for the description.
				Expr:        expand(`${leakRate} * 3600`, v),
				For:         p.LeakFor,
				Summary:     "A container's working set keeps growing: a likely memory leak.",
				Description: `Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }}: its working set after garbage collection keeps rising, by about {{ $value | humanize1024 }}B an hour, without a restart.`,
				Labels:      []string{"namespace", "pod", "container", "node"},
			},
			{
				Name:        AlertContainerMemoryOOMPredicted,
				Severity:    SeverityCritical,
				Expr:        expand(`${secondsToLimit} < ${oomHorizon}`, v),
				For:         p.OOMFor,
				Summary:     "A container's growing working set will reach its memory limit within hours: an OOM kill is coming.",
				Description: expand(`Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }} grows steadily and, at this rate, reaches its memory limit in {{ $value | humanizeDuration }} (alerting within ${oomHorizonText}).`, v),
				Labels:      []string{"namespace", "pod", "container", "node"},
			},
		},
	}
}

// floorRecord is the floor over FloorWindow: the lowest of the fast floor's
// last windows, which is cheaper than another range over the working set:
// one aggregation over the windows, each labelled apart, present only where
// the fast floor is (a container gone has no floor).
func floorRecord(p Params) string {
	n := int(time.Duration(p.FloorWindow) / time.Duration(p.FastStepWindow))
	if n <= 1 {
		return RecWorkingSetFloorFast
	}
	return expand("min without (${stepLabel}) (\n  ${windows}\n)\nand\n${floorFast}", vars{
		"stepLabel": stepLabel,
		"windows":   trend{step: RecWorkingSetFloorFast, window: p.FastStepWindow, steps: n}.stepsVector(),
		"floorFast": RecWorkingSetFloorFast,
	})
}

// trendRate records a trend's leak rate as name: the growth over its span
// where the trend holds (t.expr with chain), per second of the span, for
// every container that did not restart within restartWindow.
func trendRate(name string, t trend, chain string, restartWindow model.Duration) Record {
	return Record{name, expand(`(
${trend}
  unless on (namespace, pod, container)
  (${recentStart} > time() - ${restartWindow})
) / ${span}`, vars{
		"trend":         indent(t.expr(chain)),
		"recentStart":   RecRecentStart,
		"restartWindow": seconds(restartWindow),
		"span":          seconds(t.span()),
	})}
}
