// Package recommend computes memory requests and limits for a container
// from its working set, and knows about leaks.
//
// It is pure: Recommend takes one container's (or one workload's
// container's) samples and facts and returns the recommendation and its
// evidence; reading Prometheus is the caller's business (leakguard
// recommend).
//
// # Method
//
// Over the window (Params.Window, default 7 days) ending at Input.End:
//
//   - the request is the Params.Percentile (default 0.95) percentile of the
//     working-set samples, nearest rank;
//   - the limit is the peak working set plus Params.Headroom (default 15 %);
//   - after an OOM kill of a container that is not leaking, the working set
//     never showed what the container needed (the kernel killed it at the
//     limit), so the limit is at least the current limit plus
//     Params.OOMRaise (default 20 %);
//   - both are rounded up to a step people write: Params.Granularity
//     (default 64 MiB) up to Params.GranularityAbove (default 1 GiB), and
//     Params.GranularityLarge (default 256 MiB) above it; the request is
//     never above the limit.
//
// A container that the leak trends flagged in the window (Input.LeakSince)
// is not sized from its recent working set, which only measures how far
// the leak got: its recommendation comes from the working set over the
// window before the leak started, and is withheld when that window holds
// fewer than Params.MinSamples samples or begins before Input.From (the
// samples read do not reach back before the leak). The trends flag a leak only once it
// has grown for a trend's span, so the leak is taken to have started
// Params.LeakOnset (default 2 h, the steady trend's span) before it was
// first flagged. Raising the limit of a leaking
// container only delays the next OOM kill, and every tool that sizes from
// the peak follows the leak up; the verdict says so.
//
// # Verdicts
//
//	not-enough-data  fewer than MinSamples samples in the window
//	leaking          flagged by the leak trends in the window (see above)
//	no-limit         the container has no memory limit; set the recommended one
//	raise            OOM-killed in the window, or the current limit or request is
//	                 below the recommendation by more than Params.Tolerance (10 %)
//	lower            the current limit or request is above the recommendation by
//	                 more than Params.Tolerance, and nothing needs raising
//	ok               both within Params.Tolerance of the recommendation
package recommend

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/common/model"
)

// MiB and GiB are byte units.
const (
	MiB = 1 << 20
	GiB = 1 << 30
)

// Verdict says what to do with a container's memory settings.
type Verdict string

// The verdicts, in the order Recommend decides them.
const (
	NotEnoughData Verdict = "not-enough-data"
	Leaking       Verdict = "leaking"
	NoLimit       Verdict = "no-limit"
	Raise         Verdict = "raise"
	Lower         Verdict = "lower"
	OK            Verdict = "ok"
)

// Params are the method's parameters; DefaultParams documents the defaults.
type Params struct {
	// Window is how far back from Input.End the samples count.
	Window time.Duration `json:"window"`
	// Percentile (0 < p ≤ 1) of the working set that the request covers.
	Percentile float64 `json:"percentile"`
	// Headroom is the share added to the peak for the limit.
	Headroom float64 `json:"headroom"`
	// OOMRaise is the share added to the current limit after an OOM kill of
	// a container that is not leaking.
	OOMRaise float64 `json:"oomRaise"`
	// LeakOnset is how long before the leak trends first flag a leak it is
	// taken to have started.
	LeakOnset time.Duration `json:"leakOnset"`
	// MinSamples is the fewest samples a recommendation is made from.
	MinSamples int `json:"minSamples"`
	// Granularity is the rounding step (bytes) up to GranularityAbove, and
	// GranularityLarge the step above it.
	Granularity      float64 `json:"granularity"`
	GranularityLarge float64 `json:"granularityLarge"`
	GranularityAbove float64 `json:"granularityAbove"`
	// Tolerance is how far (a share of the recommendation) the current
	// request and limit may be from it and still be ok.
	Tolerance float64 `json:"tolerance"`
}

// DefaultParams returns the defaults: a 7-day window, the 95th percentile,
// 15 % headroom, +20 % after an OOM kill, a leak onset of 2 h, 288 samples
// (a day at a 5-minute step), 64 MiB steps up to 1 GiB and 256 MiB steps above, 10 % tolerance.
func DefaultParams() Params {
	return Params{
		Window:           7 * 24 * time.Hour,
		Percentile:       0.95,
		Headroom:         0.15,
		OOMRaise:         0.20,
		LeakOnset:        2 * time.Hour,
		MinSamples:       288,
		Granularity:      64 * MiB,
		GranularityLarge: 256 * MiB,
		GranularityAbove: GiB,
		Tolerance:        0.10,
	}
}

// Validate reports every parameter out of its range.
func (p Params) Validate() error {
	var errs []error
	if p.Window <= 0 {
		errs = append(errs, fmt.Errorf("window %s: must be positive", p.Window))
	}
	if !(p.Percentile > 0 && p.Percentile <= 1) {
		errs = append(errs, fmt.Errorf("percentile %v: must be in (0, 1]", p.Percentile))
	}
	if !(p.Headroom >= 0) || math.IsInf(p.Headroom, 0) {
		errs = append(errs, fmt.Errorf("headroom %v: must be a non-negative share", p.Headroom))
	}
	if !(p.OOMRaise >= 0) || math.IsInf(p.OOMRaise, 0) {
		errs = append(errs, fmt.Errorf("oom raise %v: must be a non-negative share", p.OOMRaise))
	}
	if p.LeakOnset < 0 {
		errs = append(errs, fmt.Errorf("leak onset %s: must not be negative", p.LeakOnset))
	}
	if p.MinSamples < 1 {
		errs = append(errs, fmt.Errorf("min samples %d: must be at least 1", p.MinSamples))
	}
	if !(p.Granularity >= 1) || !(p.GranularityLarge >= 1) || math.IsInf(p.Granularity, 0) || math.IsInf(p.GranularityLarge, 0) {
		errs = append(errs, fmt.Errorf("granularity %v / %v: must be at least one byte", p.Granularity, p.GranularityLarge))
	}
	if !(p.GranularityAbove >= 0) {
		errs = append(errs, fmt.Errorf("granularity threshold %v: must not be negative", p.GranularityAbove))
	}
	if !(p.Tolerance >= 0 && p.Tolerance < 1) {
		errs = append(errs, fmt.Errorf("tolerance %v: must be in [0, 1)", p.Tolerance))
	}
	return errors.Join(errs...)
}

// Sample is one working-set sample in bytes.
type Sample struct {
	T     time.Time `json:"t"`
	Bytes float64   `json:"bytes"`
}

// Input is what Recommend knows of one container.
type Input struct {
	// Samples of the working set, in any order; they may reach back before
	// the window (a leaking container's baseline comes from there).
	Samples []Sample
	// From is where the samples begin, when known: a leaking container's
	// baseline window must lie after it, else the samples before the leak
	// are too few to tell its need and the recommendation is withheld.
	From time.Time
	// End is the end of the window.
	End time.Time
	// Request and Limit are the current memory request and limit in bytes;
	// 0 means none.
	Request, Limit float64
	// OOMKills and Restarts count the container's OOM kills and restarts in
	// the window.
	OOMKills, Restarts int
	// LeakSince is when the leak trends first flagged the container in the
	// window; zero when they did not.
	LeakSince time.Time
}

// Evidence is what a recommendation was computed from.
type Evidence struct {
	// Window is the span the samples came from, ending at End (for a
	// leaking container: LeakOnset before LeakSince).
	Window model.Duration `json:"window"`
	End    time.Time      `json:"end"`
	// Samples is how many samples were used.
	Samples int `json:"samples"`
	// Peak is the highest working set and High the Percentile percentile
	// of it, over the samples used.
	Peak float64 `json:"peak"`
	High float64 `json:"high"`
	// OOMKills and Restarts are the input's.
	OOMKills int `json:"oomKills"`
	Restarts int `json:"restarts"`
	// LeakSince is the input's: when the leak trends first flagged the
	// container (zero: never).
	LeakSince time.Time `json:"leakSince,omitzero"`
}

// Recommendation is Recommend's answer. Request and Limit are 0 when no
// value is recommended (not-enough-data, or leaking with no baseline).
type Recommendation struct {
	Request  float64  `json:"request"`
	Limit    float64  `json:"limit"`
	Verdict  Verdict  `json:"verdict"`
	Reason   string   `json:"reason"`
	Evidence Evidence `json:"evidence"`
}

// Recommend computes the recommendation for in with p. It returns an error
// for invalid parameters or input (negative, NaN or infinite values, no
// End); too few samples is a verdict, not an error.
func Recommend(in Input, p Params) (Recommendation, error) {
	if err := p.Validate(); err != nil {
		return Recommendation{}, fmt.Errorf("parameters: %w", err)
	}
	if err := in.validate(); err != nil {
		return Recommendation{}, fmt.Errorf("input: %w", err)
	}
	ev := Evidence{Window: model.Duration(p.Window), End: in.End, OOMKills: in.OOMKills, Restarts: in.Restarts, LeakSince: in.LeakSince}
	window := between(in.Samples, in.End.Add(-p.Window), in.End)
	if len(window) < p.MinSamples {
		ev.Samples, ev.Peak, ev.High = stats(window, p.Percentile)
		return Recommendation{Verdict: NotEnoughData, Evidence: ev,
			Reason: fmt.Sprintf("%d samples in the window, want at least %d", len(window), p.MinSamples)}, nil
	}
	if !in.LeakSince.IsZero() {
		return leaking(in, p, ev), nil
	}
	ev.Samples, ev.Peak, ev.High = stats(window, p.Percentile)
	r := Recommendation{Evidence: ev}
	r.Limit = ev.Peak * (1 + p.Headroom)
	oomRaised := false
	if in.OOMKills > 0 && in.Limit > 0 && in.Limit*(1+p.OOMRaise) > r.Limit {
		// The working set stops at the limit when the kernel kills the
		// container: its peak under-states what it needed.
		r.Limit, oomRaised = in.Limit*(1+p.OOMRaise), true
	}
	r.Limit = p.Round(r.Limit)
	r.Request = min(p.Round(ev.High), r.Limit)
	switch {
	case in.Limit == 0:
		r.Verdict, r.Reason = NoLimit, fmt.Sprintf("no memory limit; peak %s + %.0f %% headroom", FormatBytes(ev.Peak), 100*p.Headroom)
	case in.OOMKills > 0:
		r.Verdict = Raise
		r.Reason = fmt.Sprintf("%d OOM kill(s) without a leak", in.OOMKills)
		if oomRaised {
			r.Reason += fmt.Sprintf(": limit %s + %.0f %%", FormatBytes(in.Limit), 100*p.OOMRaise)
		}
	case below(in.Limit, r.Limit, p.Tolerance) || below(in.Request, r.Request, p.Tolerance):
		r.Verdict, r.Reason = Raise, fmt.Sprintf("peak %s, %.0fth percentile %s: current settings too low", FormatBytes(ev.Peak), 100*p.Percentile, FormatBytes(ev.High))
	case above(in.Limit, r.Limit, p.Tolerance) || above(in.Request, r.Request, p.Tolerance):
		r.Verdict, r.Reason = Lower, fmt.Sprintf("peak %s, %.0fth percentile %s: current settings leave unused memory", FormatBytes(ev.Peak), 100*p.Percentile, FormatBytes(ev.High))
	default:
		r.Verdict, r.Reason = OK, fmt.Sprintf("within %.0f %% of the recommendation", 100*p.Tolerance)
	}
	return r, nil
}

// leaking sizes a flagged container from the window before LeakSince, or
// withholds the recommendation.
func leaking(in Input, p Params, ev Evidence) Recommendation {
	const delay = "raising the limit would only delay the next OOM kill; fix the leak"
	since := in.LeakSince.UTC().Format(time.RFC3339)
	onset := in.LeakSince.Add(-p.LeakOnset)
	ev.End = onset
	// The sample at the onset already belongs to the leak.
	before := between(in.Samples, onset.Add(-p.Window), onset.Add(-time.Nanosecond))
	ev.Samples, ev.Peak, ev.High = stats(before, p.Percentile)
	if !in.From.IsZero() && onset.Add(-p.Window).Before(in.From) {
		// Deliberately no value: what was read before the leak is only part
		// of a window, and may hold an earlier run of the same leak.
		return Recommendation{Verdict: Leaking, Evidence: ev, Reason: fmt.Sprintf(
			"leaking (flagged since %s); withheld: the samples read begin at %s, less than a window before the leak; %s",
			since, in.From.UTC().Format(time.RFC3339), delay)}
	}
	if len(before) < p.MinSamples {
		// Deliberately no value: the samples since the leak measure the
		// leak, not the container's need.
		return Recommendation{Verdict: Leaking, Evidence: ev, Reason: fmt.Sprintf(
			"leaking (flagged since %s); withheld: %d samples in the window before %s, want at least %d; %s",
			since, len(before), onset.UTC().Format(time.RFC3339), p.MinSamples, delay)}
	}
	limit := p.Round(ev.Peak * (1 + p.Headroom))
	return Recommendation{
		Request: min(p.Round(ev.High), limit), Limit: limit, Verdict: Leaking, Evidence: ev,
		Reason: fmt.Sprintf("leaking (flagged since %s); sized from the working set before %s; %s",
			since, onset.UTC().Format(time.RFC3339), delay),
	}
}

// below reports whether a current value cur is below the recommendation rec
// by more than tol (a missing value, 0, is always below).
func below(cur, rec, tol float64) bool { return cur < rec*(1-tol) }

// above reports whether cur is above rec by more than tol.
func above(cur, rec, tol float64) bool { return cur > rec*(1+tol) }

// Round rounds b up to p's granularity, to at least one step.
func (p Params) Round(b float64) float64 {
	step := p.Granularity
	if b > p.GranularityAbove {
		step = p.GranularityLarge
	}
	return max(math.Ceil(b/step), 1) * step
}

func (in Input) validate() error {
	var errs []error
	if in.End.IsZero() {
		errs = append(errs, errors.New("no end time"))
	}
	for _, v := range []struct {
		name string
		v    float64
	}{{"request", in.Request}, {"limit", in.Limit}} {
		if !(v.v >= 0) || math.IsInf(v.v, 0) {
			errs = append(errs, fmt.Errorf("%s %v: must be a non-negative number of bytes", v.name, v.v))
		}
	}
	if in.OOMKills < 0 || in.Restarts < 0 {
		errs = append(errs, fmt.Errorf("OOM kills %d, restarts %d: must not be negative", in.OOMKills, in.Restarts))
	}
	for _, s := range in.Samples {
		if !(s.Bytes >= 0) || math.IsInf(s.Bytes, 0) {
			errs = append(errs, fmt.Errorf("sample at %s: %v bytes", s.T.UTC().Format(time.RFC3339), s.Bytes))
			break
		}
	}
	return errors.Join(errs...)
}

// between returns the sample values with from < t ≤ to, sorted.
func between(samples []Sample, from, to time.Time) []float64 {
	var vs []float64
	for _, s := range samples {
		if s.T.After(from) && !s.T.After(to) {
			vs = append(vs, s.Bytes)
		}
	}
	slices.Sort(vs)
	return vs
}

// stats returns the count, the peak and the q percentile (nearest rank)
// of sorted values.
func stats(sorted []float64, q float64) (n int, peak, high float64) {
	if len(sorted) == 0 {
		return 0, 0, 0
	}
	return len(sorted), sorted[len(sorted)-1], Percentile(sorted, q)
}

// Percentile is the nearest-rank q percentile of sorted values (0 < q ≤ 1);
// 0 for none.
func Percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// FormatBytes writes b in MiB or GiB as people write them ("448Mi",
// "1.5Gi"); "-" for 0 (none).
func FormatBytes(b float64) string {
	switch {
	case b == 0:
		return "-"
	case b >= GiB && math.Mod(b, GiB/4) == 0:
		return fmt.Sprintf("%gGi", b/GiB)
	case b >= MiB:
		return fmt.Sprintf("%.0fMi", math.Ceil(b/MiB))
	default:
		return fmt.Sprintf("%.0f", b)
	}
}
