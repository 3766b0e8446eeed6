package recommend

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

var end = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

// series returns n samples, a step apart, ending at last, with values f(i).
func series(last time.Time, step time.Duration, n int, f func(i int) float64) []Sample {
	s := make([]Sample, n)
	for i := range n {
		s[i] = Sample{T: last.Add(-time.Duration(n-1-i) * step), Bytes: f(i)}
	}
	return s
}

// testParams are the defaults with a one-hour window, 10 samples and a
// leak taken to start when it is flagged.
func testParams() Params {
	p := DefaultParams()
	p.Window, p.MinSamples, p.LeakOnset = time.Hour, 10, 0
	return p
}

func TestRecommend(t *testing.T) {
	// 60 samples a minute apart: 99 % at 200 MiB, one peak of 300 MiB.
	steady := series(end, time.Minute, 60, func(i int) float64 {
		if i == 30 {
			return 300 * MiB
		}
		return 200 * MiB
	})
	// Two hours: the first flat at 200 MiB, the second leaking from 200 MiB
	// up by 10 MiB a minute.
	leak := series(end, time.Minute, 120, func(i int) float64 {
		if i < 60 {
			return 200 * MiB
		}
		return float64(200+10*(i-59)) * MiB
	})
	leakStart := end.Add(-59 * time.Minute)
	tests := []struct {
		name string
		in   Input
		p    func(*Params)
		want Recommendation
	}{{
		name: "ok",
		in:   Input{Samples: steady, End: end, Request: 256 * MiB, Limit: 384 * MiB},
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: OK},
	}, {
		name: "ok within tolerance",
		in:   Input{Samples: steady, End: end, Request: 240 * MiB, Limit: 400 * MiB},
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: OK},
	}, {
		name: "raise a limit below the peak plus headroom",
		in:   Input{Samples: steady, End: end, Request: 256 * MiB, Limit: 320 * MiB},
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: Raise},
	}, {
		name: "raise a missing request",
		in:   Input{Samples: steady, End: end, Limit: 384 * MiB},
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: Raise},
	}, {
		name: "lower",
		in:   Input{Samples: steady, End: end, Request: GiB, Limit: 2 * GiB},
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: Lower},
	}, {
		name: "no-limit",
		in:   Input{Samples: steady, End: end, Request: 256 * MiB},
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: NoLimit},
	}, {
		name: "OOM kill without a leak raises the limit by OOMRaise",
		in: Input{Samples: series(end, time.Minute, 60, func(int) float64 { return 500 * MiB }),
			End: end, Request: 256 * MiB, Limit: 512 * MiB, OOMKills: 2, Restarts: 2},
		// the peak (500 MiB) + 15 % is 575 MiB; the limit + 20 % is 614.4 MiB.
		want: Recommendation{Request: 512 * MiB, Limit: 640 * MiB, Verdict: Raise},
	}, {
		name: "OOM kill where the peak plus headroom is the higher",
		in:   Input{Samples: steady, End: end, Request: 256 * MiB, Limit: 256 * MiB, OOMKills: 1, Restarts: 1},
		// the peak (300 MiB) + 15 % is 345 MiB, above 256 MiB + 20 %.
		want: Recommendation{Request: 256 * MiB, Limit: 384 * MiB, Verdict: Raise},
	}, {
		name: "leaking: sized from the working set before the leak",
		in:   Input{Samples: leak, End: end, Request: 256 * MiB, Limit: GiB, OOMKills: 3, Restarts: 3, LeakSince: leakStart},
		want: Recommendation{Request: 256 * MiB, Limit: 256 * MiB, Verdict: Leaking},
	}, {
		name: "leaking: the onset before the flag is left out of the baseline",
		// flagged 20 minutes into the leak, at 400 MiB: with a 30-minute
		// onset the baseline is the flat 200 MiB.
		in:   Input{Samples: leak, End: end, Limit: GiB, LeakSince: leakStart.Add(20 * time.Minute)},
		p:    func(p *Params) { p.LeakOnset = 30 * time.Minute },
		want: Recommendation{Request: 256 * MiB, Limit: 256 * MiB, Verdict: Leaking},
	}, {
		name: "leaking: without the onset, the baseline holds the leak's first 20 minutes",
		in:   Input{Samples: leak, End: end, Limit: GiB, LeakSince: leakStart.Add(20 * time.Minute)},
		// 390 MiB + 15 %, and its 95th percentile 380 MiB
		want: Recommendation{Request: 384 * MiB, Limit: 512 * MiB, Verdict: Leaking},
	}, {
		name: "leaking: withheld when the samples read begin less than a window before the leak",
		in:   Input{Samples: leak, From: leakStart.Add(-50 * time.Minute), End: end, Limit: GiB, LeakSince: leakStart},
		want: Recommendation{Verdict: Leaking},
	}, {
		name: "leaking: a whole window read before the leak",
		in:   Input{Samples: leak, From: leakStart.Add(-time.Hour), End: end, Limit: GiB, LeakSince: leakStart},
		want: Recommendation{Request: 256 * MiB, Limit: 256 * MiB, Verdict: Leaking},
	}, {
		name: "leaking without a limit is leaking, not no-limit",
		in:   Input{Samples: leak, End: end, LeakSince: leakStart},
		want: Recommendation{Request: 256 * MiB, Limit: 256 * MiB, Verdict: Leaking},
	}, {
		name: "leaking: withheld without enough samples before the leak",
		in:   Input{Samples: leak[60:], End: end, Limit: GiB, LeakSince: leakStart},
		want: Recommendation{Verdict: Leaking},
	}, {
		name: "not-enough-data",
		in:   Input{Samples: steady[:9], End: end, Limit: GiB},
		want: Recommendation{Verdict: NotEnoughData},
	}, {
		name: "not-enough-data: samples outside the window do not count",
		in:   Input{Samples: series(end.Add(-2*time.Hour), time.Minute, 60, func(int) float64 { return MiB }), End: end, Limit: GiB},
		want: Recommendation{Verdict: NotEnoughData},
	}, {
		name: "not-enough-data comes before leaking",
		in:   Input{End: end, Limit: GiB, LeakSince: leakStart},
		want: Recommendation{Verdict: NotEnoughData},
	}, {
		name: "large values round to 256 MiB",
		in:   Input{Samples: series(end, time.Minute, 60, func(int) float64 { return 3 * GiB }), End: end, Request: 3 * GiB, Limit: 3.75 * GiB},
		// 3 GiB + 15 % = 3.45 GiB, rounded up to 3.5 GiB.
		want: Recommendation{Request: 3 * GiB, Limit: 3.5 * GiB, Verdict: OK},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testParams()
			if tt.p != nil {
				tt.p(&p)
			}
			got, err := Recommend(tt.in, p)
			if err != nil {
				t.Fatalf("Recommend() error = %v", err)
			}
			if got.Reason == "" {
				t.Errorf("Recommend() reason is empty")
			}
			if got.Verdict == Leaking && !strings.Contains(got.Reason, "only delay the next OOM kill") {
				t.Errorf("Recommend() reason = %q, want it to say raising the limit only delays the next OOM kill", got.Reason)
			}
			got.Reason, got.Evidence = "", Evidence{}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Recommend() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecommendEvidence(t *testing.T) {
	samples := series(end, time.Minute, 100, func(i int) float64 { return float64(i+1) * MiB })
	got, err := Recommend(Input{Samples: samples, End: end, Limit: GiB, OOMKills: 0, Restarts: 4}, testParams())
	if err != nil {
		t.Fatal(err)
	}
	// The window is (end-1h, end]: the last 60 samples, 41..100 MiB; the
	// 95th percentile by nearest rank is the 57th of them, 97 MiB.
	want := Evidence{Window: model.Duration(time.Hour), End: end, Samples: 60, Peak: 100 * MiB, High: 97 * MiB, Restarts: 4}
	if diff := cmp.Diff(want, got.Evidence); diff != "" {
		t.Errorf("Recommend() evidence mismatch (-want +got):\n%s", diff)
	}

	// A leaking container's evidence is the window before the leak, the
	// flagged sample at LeakSince left out: 11..69 MiB.
	since := end.Add(-30 * time.Minute)
	got, err = Recommend(Input{Samples: samples, End: end, LeakSince: since}, testParams())
	if err != nil {
		t.Fatal(err)
	}
	want = Evidence{Window: model.Duration(time.Hour), End: since, Samples: 59, Peak: 69 * MiB, High: 67 * MiB, LeakSince: since}
	if diff := cmp.Diff(want, got.Evidence); diff != "" {
		t.Errorf("Recommend(leaking) evidence mismatch (-want +got):\n%s", diff)
	}
}

func TestRecommendBadInput(t *testing.T) {
	ok := series(end, time.Minute, 60, func(int) float64 { return MiB })
	tests := []struct {
		name    string
		in      Input
		p       func(*Params)
		wantErr string
	}{
		{"no end", Input{Samples: ok}, nil, "no end time"},
		{"negative limit", Input{Samples: ok, End: end, Limit: -1}, nil, "limit -1"},
		{"NaN request", Input{Samples: ok, End: end, Request: math.NaN()}, nil, "request NaN"},
		{"infinite limit", Input{Samples: ok, End: end, Limit: math.Inf(1)}, nil, "limit +Inf"},
		{"NaN sample", Input{Samples: append([]Sample{{T: end, Bytes: math.NaN()}}, ok...), End: end}, nil, "NaN bytes"},
		{"negative sample", Input{Samples: []Sample{{T: end, Bytes: -5}}, End: end}, nil, "-5 bytes"},
		{"negative OOM kills", Input{Samples: ok, End: end, OOMKills: -1}, nil, "OOM kills -1"},
		{"zero window", Input{Samples: ok, End: end}, func(p *Params) { p.Window = 0 }, "window 0s"},
		{"percentile above 1", Input{Samples: ok, End: end}, func(p *Params) { p.Percentile = 1.5 }, "percentile 1.5"},
		{"percentile 0", Input{Samples: ok, End: end}, func(p *Params) { p.Percentile = 0 }, "percentile 0"},
		{"negative headroom", Input{Samples: ok, End: end}, func(p *Params) { p.Headroom = -0.1 }, "headroom -0.1"},
		{"NaN OOM raise", Input{Samples: ok, End: end}, func(p *Params) { p.OOMRaise = math.NaN() }, "oom raise NaN"},
		{"negative onset", Input{Samples: ok, End: end}, func(p *Params) { p.LeakOnset = -time.Minute }, "leak onset -1m0s"},
		{"no samples wanted", Input{Samples: ok, End: end}, func(p *Params) { p.MinSamples = 0 }, "min samples 0"},
		{"zero granularity", Input{Samples: ok, End: end}, func(p *Params) { p.Granularity = 0 }, "granularity 0"},
		{"tolerance 1", Input{Samples: ok, End: end}, func(p *Params) { p.Tolerance = 1 }, "tolerance 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testParams()
			if tt.p != nil {
				tt.p(&p)
			}
			got, err := Recommend(tt.in, p)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Recommend() = %+v, %v; want an error containing %q", got, err, tt.wantErr)
			}
			if diff := cmp.Diff(Recommendation{}, got); diff != "" {
				t.Errorf("Recommend() returned a recommendation with its error (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRound(t *testing.T) {
	p := DefaultParams()
	tests := []struct{ in, want float64 }{
		{0, 64 * MiB},
		{1, 64 * MiB},
		{64 * MiB, 64 * MiB},
		{64*MiB + 1, 128 * MiB},
		{GiB, GiB},
		{GiB + 1, 1.25 * GiB},
		{3.45 * GiB, 3.5 * GiB},
	}
	for _, tt := range tests {
		if got := p.Round(tt.in); got != tt.want {
			t.Errorf("Round(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{{0, "-"}, {448 * MiB, "448Mi"}, {GiB, "1Gi"}, {1.5 * GiB, "1.5Gi"}, {1.1 * GiB, "1127Mi"}, {1000, "1000"}}
	for _, tt := range tests {
		if got := FormatBytes(tt.in); got != tt.want {
			t.Errorf("FormatBytes(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// The rules' recommended limit (ContainerMemoryLimitMissing's value) uses
// the same method: their defaults must not drift apart.
func TestRulesShareTheDefaults(t *testing.T) {
	p, r := DefaultParams(), rules.DefaultParams()
	type shared struct {
		Window                                          time.Duration
		Headroom                                        float64
		Granularity, GranularityLarge, GranularityAbove float64
	}
	want := shared{p.Window, p.Headroom, p.Granularity, p.GranularityLarge, p.GranularityAbove}
	got := shared{time.Duration(r.RecommendWindow), r.RecommendHeadroom, float64(r.RecommendGranularity), float64(r.RecommendGranularityLarge), float64(r.RecommendGranularityAbove)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules.DefaultParams() differ from recommend's (-recommend +rules):\n%s", diff)
	}
	// A day of samples at recommend's 5-minute step is the rules' least history.
	if got, want := time.Duration(r.RecommendMinHistory), time.Duration(p.MinSamples)*5*time.Minute; got != want {
		t.Errorf("rules' RecommendMinHistory = %s, want %s (%d samples at 5m)", got, want, p.MinSamples)
	}
}
