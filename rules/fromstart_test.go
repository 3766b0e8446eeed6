package rules

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
)

// The young trend's step, look-ups and the age it is judged from follow
// maxWarmUp, the trend interval and the leak alerts' `for`: a leak from the
// start fires at maxWarmUp plus two steps (55m by default), the step is a
// whole number of trend intervals, and the record of the steps keeps to at
// most youngStepsMax + 1 look-ups whatever the trend interval.
func TestYoungTrendFollowsItsParameters(t *testing.T) {
	m := func(d time.Duration) model.Duration { return model.Duration(d) }
	tests := []struct {
		name       string
		modify     func(*Params)
		step       model.Duration
		steps      int
		judgedFrom model.Duration
	}{
		{"defaults", func(*Params) {}, m(5 * time.Minute), 10, m(40 * time.Minute)},
		{"trend interval 1m (the fleet's)", func(p *Params) { p.TrendInterval = m(time.Minute) }, m(5 * time.Minute), 10, m(40 * time.Minute)},
		{"trend interval 3m", func(p *Params) { p.TrendInterval = m(3 * time.Minute) }, m(6 * time.Minute), 9, m(42 * time.Minute)},
		{"trend interval 15s (Thanos's)", func(p *Params) { p.Interval, p.TrendInterval = 0, m(15*time.Second) }, m(5 * time.Minute), 10, m(40 * time.Minute)},
		{"maxWarmUp 30m", func(p *Params) { p.MaxWarmUp = m(30 * time.Minute) }, m(5 * time.Minute), 7, m(25 * time.Minute)},
		{"maxWarmUp 2h", func(p *Params) { p.MaxWarmUp = m(2 * time.Hour) }, m(15 * time.Minute), 9, m(135 * time.Minute)},
		{"the shorter for counts", func(p *Params) { p.OOMFor = m(5 * time.Minute) }, m(5 * time.Minute), 10, m(50 * time.Minute)},
		{"never before the first step", func(p *Params) { p.LeakFor, p.OOMFor = m(time.Hour), m(time.Hour) }, m(5 * time.Minute), 10, m(15 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.modify(&p)
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := p.youngStep(); got != tt.step {
				t.Errorf("youngStep() = %s, want %s", got, tt.step)
			}
			if p.youngStep()%p.TrendInterval != 0 {
				t.Errorf("youngStep() = %s is not a multiple of the trend interval %s", p.youngStep(), p.TrendInterval)
			}
			if got := p.youngSteps(); got != tt.steps {
				t.Errorf("youngSteps() = %d, want %d", got, tt.steps)
			}
			if got := p.youngJudgedFrom(); got != tt.judgedFrom {
				t.Errorf("youngJudgedFrom() = %s, want %s", got, tt.judgedFrom)
			}
			recs := recordExprs(p)
			if got := strings.Count(recs[RecWorkingSetFloorYoungSteps], RecWorkingSetFloorYoungStep); got != tt.steps {
				t.Errorf("%s reads %d steps, want %d:\n%s", RecWorkingSetFloorYoungSteps, got, tt.steps, recs[RecWorkingSetFloorYoungSteps])
			}
			if want := "<= time() - " + seconds(tt.judgedFrom) + ")"; !strings.Contains(recs[RecLeakRateYoung], want) {
				t.Errorf("%s does not judge runs from %s (%q):\n%s", RecLeakRateYoung, tt.judgedFrom, want, recs[RecLeakRateYoung])
			}
		})
	}
}

// The default records, as promtool reads them in
// rules/testdata/leak-from-start.test.yaml: the floor of runs between their
// second step and the steady trend's window, each step k back gated to the
// current run (k+3 steps old), and the rate per second of the steps.
func TestYoungRecordsDefaults(t *testing.T) {
	recs := recordExprs(DefaultParams())
	for name, want := range map[string][]string{
		RecWorkingSetFloorYoung: {
			"min_over_time(" + RecWorkingSet + "[5m])",
			RecRecentStart + " <= time() - 600 > time() - 9000)",
		},
		RecWorkingSetFloorYoungStep: {RecWorkingSetFloorYoung + " - " + RecWorkingSetFloorYoung + " offset 5m"},
		RecWorkingSetFloorYoungSteps: {
			`label_replace(` + RecWorkingSetFloorYoungStep + ` offset 5m, "step", "1", "", "")`,
			RecRecentStart + " <= time() - 1200)",
			`label_replace(` + RecWorkingSetFloorYoungStep + ` offset 45m, "step", "9", "", "")`,
			RecRecentStart + " <= time() - 3600)",
		},
		RecLeakRateYoung: {
			"> 33554432 > 0.05 * (" + RecWorkingSetFloorYoung,
			"> 33554432 > 0.1 * (" + RecMemoryLimit,
			"min without (step) (" + RecWorkingSetFloorYoungSteps + ") > 0.25 * sum without (step)",
			RecRecentStart + " <= time() - 2400)",
			"/ 300",
		},
	} {
		for _, w := range want {
			if !strings.Contains(recs[name], w) {
				t.Errorf("%s does not contain %q:\n%s", name, w, recs[name])
			}
		}
	}
	if strings.Contains(recs[RecWorkingSetFloorYoungSteps], "offset 50m") {
		t.Errorf("%s looks back further than maxWarmUp and one step:\n%s", RecWorkingSetFloorYoungSteps, recs[RecWorkingSetFloorYoungSteps])
	}
}

// --max-warm-up and maxWarmUp in a parameter file reach the young trend.
func TestMaxWarmUpFlagAndFile(t *testing.T) {
	p := DefaultParams()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	p.RegisterFlags(fs)
	if err := fs.Parse([]string{"--max-warm-up=30m"}); err != nil {
		t.Fatal(err)
	}
	if got := recordExprs(p)[RecLeakRateYoung]; !strings.Contains(got, "<= time() - 1500)") {
		t.Errorf("--max-warm-up=30m: %s is not judged from 25m:\n%s", RecLeakRateYoung, got)
	}
	if err := fs.Parse([]string{"--max-warm-up=soon"}); err == nil {
		t.Error("--max-warm-up=soon was accepted")
	}

	q := DefaultParams()
	path := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(path, []byte("maxWarmUp: 1h\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := LoadParamsFile(path, &q); err != nil {
		t.Fatal(err)
	}
	if q.MaxWarmUp != model.Duration(time.Hour) {
		t.Errorf("maxWarmUp from the file = %s, want 1h", q.MaxWarmUp)
	}
}
