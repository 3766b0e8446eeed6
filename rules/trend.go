package rules

import (
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// trendRecords records the two series a steady-growth test reads: step, the
// rise of metric over the last step, and growth, its rise over all steps.
// Recording them once keeps the test to a few look-ups back in time.
func trendRecords(metric, step, growth string, window model.Duration, steps int) (stepRecord, growthRecord Record) {
	w := time.Duration(window)
	return Record{step, rise(metric, w)}, Record{growth, rise(metric, w*time.Duration(steps))}
}

// rise is the rise of metric over d.
func rise(metric string, d time.Duration) string {
	return metric + " - " + offset(metric, d)
}

// trend is a test of steady growth over steps of a recorded metric: step is
// the record of its rise over one step, growth over all steps.
type trend struct {
	step, growth string
	window       model.Duration
	steps        int
	// minRising is how many steps must rise; the others may be flat (a
	// climb in steps), but none may fall. minRising == steps: every step.
	minRising int
	// minShare is how much a step must rise to count, as a share of the
	// average step; a step that falls by as much fails the trend.
	minShare float64
}

// span is how far back the trend looks.
func (t trend) span() model.Duration {
	return model.Duration(time.Duration(t.window) * time.Duration(t.steps))
}

// share is how much a step must rise to count, as a share of the growth.
func (t trend) share() float64 { return t.minShare / float64(t.steps) }

// gatedRecords records the trend's step and growth only where they can
// matter, when the trend also needs the growth to pass minGrowth: where
// every step must rise, a step that rose by less than share × minGrowth
// cannot count, and a growth of less than minGrowth fails the trend. Many
// containers' floors do not move that much, so the records, and every
// vector the test builds from them, hold part of the containers instead of
// all. stepGate and growthGate are those bounds (the growth record may
// serve as another trend's step, with a lower bound). Where falls are
// tested too the step is recorded whole: a filter on both signs would
// compute it twice, which costs more than it saves.
func (t trend) gatedRecords(metric string, stepGate, growthGate float64) (stepRecord, growthRecord Record) {
	step := rise(metric, time.Duration(t.window))
	if t.minRising >= t.steps {
		step += " > " + bytesNum(stepGate)
	}
	return Record{t.step, step}, Record{t.growth, rise(metric, time.Duration(t.span())) + " > " + bytesNum(growthGate)}
}

// stepLabel is the label that tells the steps of a trend apart while they
// are compared as one vector; no input series carries it.
const stepLabel = "step"

// stepsVector is every step of the trend as one vector: the last step as it
// is, each earlier one with stepLabel set to its index. An aggregation
// without stepLabel then takes the steps of each container in one pass,
// where a comparison per step would read the growth once per step.
func (t trend) stepsVector() string {
	w := time.Duration(t.window)
	parts := []string{t.step}
	for i := 1; i < t.steps; i++ {
		parts = append(parts, expand(`label_replace(${step}, "${stepLabel}", "${index}", "", "")`, vars{
			"step":      offset(t.step, w*time.Duration(i)),
			"stepLabel": stepLabel,
			"index":     fmt.Sprint(i),
		}))
	}
	return strings.Join(parts, "\n  or\n  ")
}

// expr is the growth over all steps, present only where the trend holds: it
// grew, and at least minRising steps rose by the share of the growth while
// none fell by as much. A sawtooth, noise or a single step up (a warm-up)
// followed by flat jitter does not pass. chain is more filters on the growth
// (" > 33554432"); without, the growth must be positive.
//
// Each step scores 1 when it rose by the share, 0 when it moved less or is
// absent (the gated records leave out steps that moved less), and -steps
// when it fell by as much: ceil((step/growth - share) / (2 share)), times
// steps, clamped to [-steps, 1]. The scores must add up to minRising, which
// a single fall prevents.
func (t trend) expr(chain string) string {
	if chain == "" {
		chain = " > 0"
	}
	share := t.share()
	return expand(`${growth}${chain}
and
sum without (${stepLabel}) (
  clamp(
    ${steps} * ceil(
      ((
        ${stepsVector}
      ) / ignoring (${stepLabel}) group_left ${growth} - ${share}) / ${twoShares}
    ),
    -${steps}, 1
  )
) >= ${minRising}`, vars{
		"growth":      t.growth,
		"chain":       chain,
		"stepLabel":   stepLabel,
		"steps":       fmt.Sprint(t.steps),
		"stepsVector": strings.ReplaceAll(t.stepsVector(), "\n  ", "\n        "),
		"share":       num(share),
		"twoShares":   num(2 * share),
		"minRising":   fmt.Sprint(t.minRising),
	})
}

// trends are the three speeds of the container leak test: fast (a steep
// climb over the fast floor), steady (the floor over the leak steps, which
// may climb in steps) and slow (the floor over half a day).
func (p Params) trends() (fast, steady, slow trend) {
	fast = trend{
		step: RecWorkingSetFloorFastStep, growth: RecWorkingSetFloorFastGrowth,
		window: p.FastStepWindow, steps: p.FastSteps, minRising: p.FastSteps, minShare: p.LeakMinStepShare,
	}
	steady = trend{
		step: RecWorkingSetFloorStep, growth: RecWorkingSetFloorGrowth,
		window: p.LeakStepWindow, steps: p.LeakSteps, minRising: p.LeakMinRisingSteps, minShare: p.LeakMinStepShare,
	}
	slow = trend{
		step: RecWorkingSetFloorSlowStep, growth: RecWorkingSetFloorSlowGrowth,
		window: p.SlowStepWindow, steps: p.SlowSteps, minRising: p.SlowSteps, minShare: p.LeakMinStepShare,
	}
	if slow.window == steady.span() {
		// The slow step is the steady trend's growth: record it once.
		slow.step = steady.growth
	}
	return fast, steady, slow
}
