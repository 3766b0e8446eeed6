package rules

import (
	"fmt"
	"math"

	"github.com/spf13/pflag"
)

// Group names of the recommended limit and of the alert that shows it.
const (
	GroupRecommendation = "leakguard.container-memory-recommendation"
	GroupLimits         = "leakguard.container-memory-limits"
)

// recommendGroups returns the recommendation group and the group of
// ContainerMemoryLimitMissing, which shows the recommendation in its
// value. They come after the trend group, whose leak rate the
// recommendation reads, in this order.
//
// The recommendation is leakguard recommend's limit for a container
// without one (verdict no-limit), computed in the cluster: the peak
// working set over RecommendWindow plus RecommendHeadroom, rounded up to
// the same steps. A peak over a week costs a week of samples per
// container, so the group runs only every RecommendInterval (1h): it
// records the peak of each step from the working set (RecommendInterval
// of 1-minute samples), and the window's peak from those steps (one
// sample a step), for containers without a limit only. Where it departs
// from leakguard recommend (see the ContainerMemoryLimitMissing runbook):
// it sizes each pod by itself (recommend pools a workload's pods), from
// every sample of the working-set record (recommend reads one per --step),
// asks for RecommendMinHistory of the pod's life (recommend for a number
// of samples), and withholds the value of a container that the leak
// trends flagged in the window and a leak span before it (recommend
// sizes it from before the leak where it can).
func recommendGroups(p Params) (recommendation, limits Group) {
	peak := RecWorkingSetPeak
	growth := expand("${peak} * ${headroom}", vars{"peak": peak, "headroom": num(1 + p.RecommendHeadroom)})
	roundUp := func(step int64) string {
		return expand("clamp_min(ceil(${growth} / ${step}), 1) * ${step}", vars{"growth": growth, "step": fmt.Sprint(step)})
	}
	v := vars{
		"by":               "namespace, pod, container",
		"workingSet":       RecWorkingSet,
		"limit":            RecMemoryLimit,
		"peakStep":         RecWorkingSetPeakStep,
		"peak":             peak,
		"recommended":      RecMemoryLimitRecommended,
		"leakRate":         RecLeakRate,
		"interval":         prom(p.RecommendInterval),
		"window":           prom(p.RecommendWindow),
		"growth":           growth,
		"roundedUp":        roundUp(p.RecommendGranularity),
		"roundedUpLarge":   roundUp(p.RecommendGranularityLarge),
		"granularityAbove": fmt.Sprint(p.RecommendGranularityAbove),
		"leakWindow":       prom(p.RecommendWindow + p.LeakSpan()),
		"lastRecommended":  prom(p.RecommendInterval + p.TrendInterval),
		"headroomText":     percent(p.RecommendHeadroom),
		"minHistory":       prom(p.RecommendMinHistory),
	}
	// The pod had a step peak in the interval before RecommendMinHistory
	// ago: it has run at least that long. (Counting the steps would depend
	// on how often the group runs, which promtool's unit tests do not
	// honour.)
	v["history"] = expand("last_over_time(${peakStep}[${interval}] offset ${minHistory})", v)
	recommendation = Group{
		Name:     GroupRecommendation,
		Interval: p.RecommendInterval,
		Records: []Record{
			{RecWorkingSetPeakStep, expand(`max by (${by}) (
  max_over_time(${workingSet}[${interval}])
)
unless on (${by})
${limit}`, v)},
			{RecWorkingSetPeak, expand(`max_over_time(${peakStep}[${window}])
and on (${by})
${history}`, v)},
			// Deliberately no value for a container the leak trends
			// flagged in the window or a leak span before it (the leak may
			// have started that much before its first flag): its peak is
			// how far the leak got, and a limit above it only delays the
			// next OOM kill.
			{RecMemoryLimitRecommended, expand(`(
  ${roundedUp}
  and
  ${growth} <= ${granularityAbove}
  or
  ${roundedUpLarge}
)
unless on (${by})
max by (${by}) (count_over_time(${leakRate}[${leakWindow}]))
unless on (${by})
${limit}`, v)},
		},
	}
	limits = Group{
		Name:     GroupLimits,
		Interval: p.TrendInterval,
		Alerts: []Alert{{
			Name:     AlertContainerMemoryLimitMissing,
			Severity: SeverityInfo,
			// A container cAdvisor measures is running; kube-state-metrics
			// exports a limit only for containers that have one. The value
			// is the recommended limit (recorded once an interval: its last
			// value within an interval and an evaluation), or 0 without one;
			// the labels are the working set's, as before.
			Expr: expand(`(
  last_over_time(${recommended}[${lastRecommended}])
  and on (${by})
  ${workingSet}
  or on (${by})
  0 * max by (${by}) (${workingSet})
)
unless on (${by})
${limit}`, v),
			For:     p.LimitMissingFor,
			Summary: "A running container has no memory limit.",
			Description: expand(`Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} runs without a memory limit: a leak in it can take the whole node down. `+
				`{{ if gt $value 0.0 }}Recommended limit: {{ $value | humanize1024 }} (its peak working set over ${window} plus ${headroomText}, rounded up; leakguard recommend gives the request too).`+
				`{{ else }}No limit is recommended yet: its pod has run for less than ${minHistory}, or the leak trends flagged it in the last ${leakWindow} and its peak measures the leak (leakguard recommend says which).{{ end }}`, v),
			Labels: []string{"namespace", "pod", "container"},
		}},
	}
	return recommendation, limits
}

// validateRecommend reports the recommendation's unusable parameters.
func (p Params) validateRecommend() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.RecommendInterval <= 0 {
		bad("recommendInterval: must be positive, got %s", p.RecommendInterval)
	}
	if p.RecommendMinHistory <= 0 || p.RecommendMinHistory > p.RecommendWindow {
		bad("recommendMinHistory: must be positive and at most recommendWindow (%s), got %s", p.RecommendWindow, p.RecommendMinHistory)
	}
	if !(p.RecommendHeadroom >= 0) || math.IsInf(p.RecommendHeadroom, 0) {
		bad("recommendHeadroom: must be a finite share >= 0, got %g", p.RecommendHeadroom)
	}
	if p.RecommendGranularity < 1 || p.RecommendGranularityLarge < 1 {
		bad("recommendGranularity and recommendGranularityLarge: must be at least one byte, got %d and %d", p.RecommendGranularity, p.RecommendGranularityLarge)
	}
	if p.RecommendGranularityAbove < 0 {
		bad("recommendGranularityAbove: must not be negative, got %d", p.RecommendGranularityAbove)
	}
	return errs
}

// registerRecommendFlags adds the recommendation's flags to fs.
func (p *Params) registerRecommendFlags(fs *pflag.FlagSet) {
	fs.Var(&p.RecommendInterval, "recommend-interval", "how often the recommended limit of containers without one is recorded, and the step of its peaks")
	fs.Var(&p.RecommendWindow, "recommend-window", "window whose peak working set the recommended limit is sized on (leakguard recommend's --window)")
	fs.Var(&p.RecommendMinHistory, "recommend-min-history", "how long a pod must have run before its containers get a recommended limit")
	fs.Float64Var(&p.RecommendHeadroom, "recommend-headroom", p.RecommendHeadroom, "share added to the peak working set for the recommended limit (leakguard recommend's --headroom)")
	fs.Int64Var(&p.RecommendGranularity, "recommend-granularity", p.RecommendGranularity, "rounding step of the recommended limit in bytes, up to --recommend-granularity-above")
	fs.Int64Var(&p.RecommendGranularityLarge, "recommend-granularity-large", p.RecommendGranularityLarge, "rounding step of the recommended limit in bytes above --recommend-granularity-above")
	fs.Int64Var(&p.RecommendGranularityAbove, "recommend-granularity-above", p.RecommendGranularityAbove, "size in bytes above which --recommend-granularity-large applies")
}
