package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// The trend of a young run: a container that leaks from its own start.
//
// The fast, steady and slow trends skip a container run that started within
// their window (a trend across a restart compares two processes), so a run
// younger than the fast trend's window (75 minutes by default) is judged by
// none of them, and a container that leaks from its start and reaches its
// limit within that time got no warning. A warm-up climbs just like such a
// leak until it bends; shared/ALERTS.md promises what can be told apart: a
// growth from the start that lasts longer than MaxWarmUp is a leak, and
// OOMPredicted fires before the limit whenever the limit is at least
// MaxWarmUp + 15m after the start.
//
// The young trend follows a short floor (the lowest working set over one
// young step, youngStep: the trend interval, or a multiple of it so that
// maxWarmUp is at most nine steps) of runs younger than the steady trend's
// window, leaving out the run's first step (start-up). It holds where every
// step of the run so far, up to the last youngSteps, rose by more than
// LeakMinStepShare of the average step, the last one included, by at least
// LeakMinGrowthBytes in all and either LeakMinGrowthRatio of where the steps
// started (the steady trend's test) or FastMinHeadroomRatio of the room left
// to the limit (the fast trend's), and the run is at least youngJudgedFrom
// old. A warm-up that bends at b ≤ MaxWarmUp has a flat last step from
// b + 2 youngStep on (the floor's window and the step), so youngJudgedFrom
// is MaxWarmUp + 2 youngStep less the shorter `for` of the two leak alerts:
// the alerts are pending from then on and fire only if the climb goes on
// past MaxWarmUp. A leak from the start therefore fires both alerts at
// MaxWarmUp + 2 youngStep (55m by default), within an evaluation of it.

// youngStepsMax is how many young steps maxWarmUp spans at most: the step
// is lengthened (in whole trend intervals) beyond that, which keeps the
// record of the steps to a few look-ups whatever the trend interval.
const youngStepsMax = 9

// youngStep is the young trend's step and the window of its floor: the
// trend interval, or the least multiple of it that divides maxWarmUp into
// at most youngStepsMax steps.
func (p Params) youngStep() model.Duration {
	ti := p.TrendInterval
	if ti <= 0 {
		ti = dur(time.Minute)
	}
	n := (p.MaxWarmUp + ti*youngStepsMax - 1) / (ti * youngStepsMax)
	if n < 1 {
		n = 1
	}
	return ti * n
}

// youngSteps is how many of the last steps the young trend compares:
// enough to cover maxWarmUp and one step more.
func (p Params) youngSteps() int {
	y := p.youngStep()
	return int((p.MaxWarmUp+y-1)/y) + 1
}

// youngWindow is how long after its start a run is judged by the young
// trend: until the steady trend, the last of the fast and steady trends
// to take a new run into account, may judge it.
func (p Params) youngWindow() model.Duration { return p.FloorWindow + p.LeakSpan() }

// youngJudgedFrom is the age from which the young trend may hold:
// maxWarmUp plus the floor's window and one step (a warm-up that bent at
// maxWarmUp shows a flat step by then), less the shorter `for` of the two
// leak alerts, which the alerts spend pending. Never before the run's
// first step.
func (p Params) youngJudgedFrom() model.Duration {
	y := p.youngStep()
	a := p.MaxWarmUp + 2*y - min(p.LeakFor, p.OOMFor)
	return max(a, 3*y)
}

// youngRecords are the records of the young trend, in order: the floor of
// each young run, its rise over the last step, the last youngSteps steps
// of the current run labelled apart, and the leak rate where the trend
// holds (RecLeakRateYoung). started is the record of recent starts.
func youngRecords(p Params, started string) []Record {
	y := p.youngStep()
	ys := time.Duration(y)
	// The run's first step is start-up: the first floor is over the
	// second step, and a floor's whole window lies in the current run, so
	// that no step spans a restart.
	floor := Record{RecWorkingSetFloorYoung, expand(`min_over_time(${workingSet}[${step}])
and on (namespace, pod, container)
(${started} <= time() - ${twoSteps} > time() - ${youngWindow})`, vars{
		"workingSet":  RecWorkingSet,
		"step":        prom(y),
		"started":     started,
		"twoSteps":    seconds(2 * y),
		"youngWindow": seconds(p.youngWindow()),
	})}
	step := Record{RecWorkingSetFloorYoungStep, rise(RecWorkingSetFloorYoung, ys)}
	// The step k steps back belongs to the current run when the run is at
	// least k+3 steps old (its earlier floor then lies in the run too);
	// older steps are a previous run's, which rose or fell for reasons of
	// its own.
	parts := []string{RecWorkingSetFloorYoungStep}
	for k := 1; k < p.youngSteps(); k++ {
		parts = append(parts, expand(`label_replace(${step}, "${stepLabel}", "${index}", "", "")
  and on (namespace, pod, container)
  (${started} <= time() - ${minAge})`, vars{
			"step":      offset(RecWorkingSetFloorYoungStep, ys*time.Duration(k)),
			"stepLabel": stepLabel,
			"index":     fmt.Sprint(k),
			"started":   started,
			"minAge":    seconds(model.Duration(ys * time.Duration(k+3))),
		}))
	}
	steps := Record{RecWorkingSetFloorYoungSteps, strings.Join(parts, "\nor\n")}
	v := vars{
		"steps":         RecWorkingSetFloorYoungSteps,
		"stepLabel":     stepLabel,
		"floor":         RecWorkingSetFloorYoung,
		"limit":         RecMemoryLimit,
		"started":       started,
		"minGrowth":     fmt.Sprint(p.LeakMinGrowthBytes),
		"growthRatio":   num(p.LeakMinGrowthRatio),
		"headroomRatio": num(p.FastMinHeadroomRatio),
		"stepShare":     num(p.LeakMinStepShare),
		"judgedFrom":    seconds(p.youngJudgedFrom()),
		"stepSeconds":   seconds(y),
	}
	v["growth"] = expand("sum without (${stepLabel}) (${steps})", v)
	v["count"] = expand("count without (${stepLabel}) (${steps})", v)
	rate := Record{RecLeakRateYoung, expand(`(
  (
    ${growth} > ${minGrowth} > ${growthRatio} * (${floor} - ${growth})
    or
    ${growth} > ${minGrowth} > ${headroomRatio} * (${limit} - on (namespace, pod, container) group_right ${floor})
  )
  and
  min without (${stepLabel}) (${steps}) > ${stepShare} * ${growth} / ${count}
  and on (namespace, pod, container)
  (${started} <= time() - ${judgedFrom})
)
/ ${count} / ${stepSeconds}`, v)}
	return []Record{floor, step, steps, rate}
}
