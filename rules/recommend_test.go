package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
)

func TestValidateRejectsRecommendParams(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Params)
		want   string
	}{
		{"zero interval", func(p *Params) { p.RecommendInterval = 0 }, "recommendInterval: must be positive, got 0s"},
		{"no history", func(p *Params) { p.RecommendMinHistory = 0 }, "recommendMinHistory: must be positive and at most recommendWindow (1w), got 0s"},
		{"history over the window", func(p *Params) { p.RecommendMinHistory = model.Duration(8 * 24 * time.Hour) }, "recommendMinHistory: must be positive and at most recommendWindow (1w), got 8d"},
		{"negative headroom", func(p *Params) { p.RecommendHeadroom = -0.1 }, "recommendHeadroom: must be a finite share >= 0, got -0.1"},
		{"zero granularity", func(p *Params) { p.RecommendGranularity = 0 }, "recommendGranularity and recommendGranularityLarge: must be at least one byte, got 0 and 268435456"},
		{"negative threshold", func(p *Params) { p.RecommendGranularityAbove = -1 }, "recommendGranularityAbove: must not be negative, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultParams()
			tt.modify(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.want)
			}
			if _, err := Files(p); err == nil {
				t.Errorf("Files() rendered invalid parameters")
			}
		})
	}
}

// The recommendation's flags reach its records and the alert that shows
// it; the group runs at its own interval.
func TestRecommendFlagsShapeTheRecords(t *testing.T) {
	p := DefaultParams()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	p.RegisterFlags(fs)
	if err := fs.Parse([]string{
		"--recommend-interval=30m", "--recommend-window=3d", "--recommend-min-history=12h", "--recommend-headroom=0.25",
		"--recommend-granularity=33554432", "--recommend-granularity-large=134217728", "--recommend-granularity-above=536870912",
	}); err != nil {
		t.Fatal(err)
	}
	recs := recordExprs(p)
	for rec, want := range map[string][]string{
		RecWorkingSetPeakStep:     {RecWorkingSet + "[30m]"},
		RecWorkingSetPeak:         {RecWorkingSetPeakStep + "[3d]", RecWorkingSetPeakStep + "[30m] offset 12h"},
		RecMemoryLimitRecommended: {RecWorkingSetPeak + " * 1.25 / 33554432), 1) * 33554432", "<= 536870912", "/ 134217728), 1) * 134217728", RecLeakRate + "[3d2h]"},
	} {
		for _, w := range want {
			if !strings.Contains(recs[rec], w) {
				t.Errorf("%s does not contain %q:\n%s", rec, w, recs[rec])
			}
		}
	}
	alert := AlertsByName(p)[AlertContainerMemoryLimitMissing]
	if !strings.Contains(alert.Expr, RecMemoryLimitRecommended+"[35m]") {
		t.Errorf("%s does not read the recommendation over an interval and a trend interval: %s", alert.Name, alert.Expr)
	}
	for _, w := range []string{"over 3d plus 25 %", "less than 12h", "in the last 3d2h"} {
		if !strings.Contains(alert.Description, w) {
			t.Errorf("%s's description does not say %q: %s", alert.Name, w, alert.Description)
		}
	}
	for _, g := range Groups(p) {
		if g.Name == GroupRecommendation && g.Interval != model.Duration(30*time.Minute) {
			t.Errorf("group %s runs every %s, want 30m", g.Name, g.Interval)
		}
	}
}
