// Package summary turns a pprof heap or goroutine profile into a short,
// bounded summary a person can read without go tool pprof: the top
// allocation sites by in-use bytes (or the goroutine count), the heaviest
// stacks, and, given an earlier profile of the same process as a base, what
// grew between the two, as pprof's -base shows it.
//
// It decodes with github.com/google/pprof/profile and fails safe: a body
// over the size limit (compressed or after gunzip), a truncated body or one
// that is not a pprof profile is refused with an error that says why, and
// the caller keeps the raw profile.
package summary

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// Defaults for Options' zero fields.
const (
	// DefaultMaxBytes bounds a profile's body, before and after gunzip.
	DefaultMaxBytes = 64 << 20
	// DefaultTop is how many functions and stacks a summary lists.
	DefaultTop = 10
	// DefaultFrames is how many frames of each stack a summary keeps,
	// innermost first.
	DefaultFrames = 8
	// DefaultTextLimit bounds String's length in bytes.
	DefaultTextLimit = 4096
)

// Kinds of profile a summary describes.
const (
	KindHeap      = "heap"
	KindGoroutine = "goroutine"
)

// Errors a refused body wraps; the message says more.
var (
	// ErrTooLarge: the body, or its gunzipped content, is over MaxBytes.
	ErrTooLarge = errors.New("profile too large")
	// ErrTruncated: the body ends before the profile does.
	ErrTruncated = errors.New("profile truncated")
	// ErrNotProfile: the body is not a pprof profile.
	ErrNotProfile = errors.New("not a pprof profile")
	// ErrUnsupported: a pprof profile of a kind other than heap or
	// goroutine, or a base of a different kind.
	ErrUnsupported = errors.New("unsupported profile")
)

// Options bound a summary; a zero field takes its default.
type Options struct {
	// Top is how many functions and stacks to list (DefaultTop).
	Top int
	// Frames is how many frames of each stack to keep (DefaultFrames).
	Frames int
	// MaxBytes refuses a body, or its gunzipped content, larger than
	// this many bytes (DefaultMaxBytes).
	MaxBytes int64
}

func (o Options) withDefaults() Options {
	if o.Top <= 0 {
		o.Top = DefaultTop
	}
	if o.Frames <= 0 {
		o.Frames = DefaultFrames
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	return o
}

// Summary is what a profile shows, in JSON for GET /profiles and in text
// (String) for an Event or an annotation.
type Summary struct {
	// Kind is heap or goroutine, from the profile's sample types.
	Kind string `json:"kind"`
	// SampleType is the value summed: inuse_space (bytes) for a heap
	// profile, goroutine (count) for a goroutine profile.
	SampleType string `json:"sampleType"`
	// Unit is the sample type's unit: bytes or count.
	Unit string `json:"unit"`
	// TakenAt is when the profile was taken, if it says.
	TakenAt *time.Time `json:"takenAt,omitempty"`
	// Total is the sum of all samples: in-use bytes or goroutines.
	Total int64 `json:"total"`
	// Top are the functions with the largest flat value, largest first.
	Top []Site `json:"top"`
	// Stacks are the heaviest stacks, by function, heaviest first.
	Stacks []Stack `json:"stacks"`
	// Growth is the difference from a base profile, when one was given.
	Growth *Growth `json:"growth,omitempty"`
}

// Site is one function's share of a profile.
type Site struct {
	// Function is the function's name as the profile has it.
	Function string `json:"function"`
	// Flat is the value of samples whose innermost frame is Function.
	Flat int64 `json:"flat"`
	// FlatShare is Flat over the total (0 to 1).
	FlatShare float64 `json:"flatShare"`
	// Cum is the value of samples with Function anywhere on the stack.
	Cum int64 `json:"cum"`
	// CumShare is Cum over the total (0 to 1).
	CumShare float64 `json:"cumShare"`
}

// Stack is one call stack and the value of its samples.
type Stack struct {
	// Value is the sum of the stack's samples.
	Value int64 `json:"value"`
	// Share is Value over the total (0 to 1).
	Share float64 `json:"share"`
	// Frames are the stack's functions, innermost first, at most
	// Options.Frames of them.
	Frames []string `json:"frames"`
}

// Growth is what grew between a base profile and the profile, by function,
// as pprof -base computes it (the base's samples subtracted).
type Growth struct {
	// BaseTakenAt is when the base profile was taken, if it says.
	BaseTakenAt *time.Time `json:"baseTakenAt,omitempty"`
	// Interval is the time between the two profiles, when both say when
	// they were taken.
	Interval string `json:"interval,omitempty"`
	// Net is the profile's total minus the base's.
	Net int64 `json:"net"`
	// Grown is the sum of the positive flat differences of all functions;
	// the shares of Grew are over it.
	Grown int64 `json:"grown"`
	// NoGrowth says no function grew.
	NoGrowth bool `json:"noGrowth"`
	// Grew are the functions whose flat value grew, most first.
	Grew []Site `json:"grew"`
	// Stacks are the stacks that grew most, most first.
	Stacks []Stack `json:"stacks"`
}

// Summarize decodes data (gzipped or not) and, when base is not empty,
// base, an earlier profile of the same kind, and summarizes them. A body
// that is too large, truncated or not a pprof profile is refused with an
// error wrapping ErrTooLarge, ErrTruncated or ErrNotProfile; one of an
// unsupported kind with ErrUnsupported.
func Summarize(data, base []byte, opts Options) (*Summary, error) {
	opts = opts.withDefaults()
	p, err := decode(data, opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	var b *profile.Profile
	if len(base) > 0 {
		if b, err = decode(base, opts.MaxBytes); err != nil {
			return nil, fmt.Errorf("base: %w", err)
		}
	}
	return SummarizeProfile(p, b, opts)
}

// SummarizeProfile summarizes a decoded profile p and, if base is not nil,
// its growth since base. It does not modify p or base.
func SummarizeProfile(p, base *profile.Profile, opts Options) (*Summary, error) {
	opts = opts.withDefaults()
	kind, idx, err := kindOf(p)
	if err != nil {
		return nil, err
	}
	st := p.SampleType[idx]
	s := &Summary{Kind: kind, SampleType: st.Type, Unit: st.Unit, TakenAt: takenAt(p)}
	s.Total, s.Top, s.Stacks = aggregate(p, idx, opts)
	if base == nil {
		return s, nil
	}
	bkind, _, err := kindOf(base)
	if err != nil {
		return nil, fmt.Errorf("base: %w", err)
	}
	if bkind != kind {
		return nil, fmt.Errorf("%w: base is a %s profile, the profile a %s profile", ErrUnsupported, bkind, kind)
	}
	// As pprof -base: the base's samples negated and merged into the
	// profile's, on copies so the caller's profiles stay as they are.
	neg := base.Copy()
	neg.Scale(-1)
	diff, err := profile.Merge([]*profile.Profile{p.Copy(), neg})
	if err != nil {
		return nil, fmt.Errorf("%w: cannot subtract the base: %v", ErrUnsupported, err)
	}
	dIdx := sampleIndex(diff, st.Type)
	if dIdx < 0 {
		return nil, fmt.Errorf("%w: the difference has no %s samples", ErrUnsupported, st.Type)
	}
	g := &Growth{BaseTakenAt: takenAt(base)}
	if s.TakenAt != nil && g.BaseTakenAt != nil {
		g.Interval = s.TakenAt.Sub(*g.BaseTakenAt).Round(time.Second).String()
	}
	g.Net, g.Grown, g.Grew, g.Stacks = growth(diff, dIdx, opts)
	g.NoGrowth = len(g.Grew) == 0
	s.Growth = g
	return s, nil
}

// decode bounds, gunzips and parses one body.
func decode(data []byte, maxBytes int64) (*profile.Profile, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrNotProfile)
	}
	// Fail closed before parsing: the size of the body, then of its
	// gunzipped content, read through a limit so a small gzip bomb
	// cannot grow past it in memory.
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, len(data), maxBytes)
	}
	raw := data
	if isGzip(data) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, classify(err, "gzip header")
		}
		raw, err = io.ReadAll(io.LimitReader(zr, maxBytes+1))
		if err != nil {
			return nil, classify(err, "gzip")
		}
		if int64(len(raw)) > maxBytes {
			return nil, fmt.Errorf("%w: over the limit of %d bytes once gunzipped", ErrTooLarge, maxBytes)
		}
		// profile.ParseData gunzips once more, without a limit: refuse
		// gzip inside gzip rather than let it.
		if isGzip(raw) {
			return nil, fmt.Errorf("%w: gzip inside gzip", ErrNotProfile)
		}
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		return nil, classify(err, "pprof")
	}
	return p, nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// classify names why a body did not decode.
func classify(err error, what string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: %s data ends early: %v", ErrTruncated, what, err)
	}
	return fmt.Errorf("%w: %s: %v", ErrNotProfile, what, err)
}

// kindOf tells a heap profile (it has inuse_space) from a goroutine profile
// (one goroutine sample type) and returns the sample index to summarize.
func kindOf(p *profile.Profile) (string, int, error) {
	if i := sampleIndex(p, "inuse_space"); i >= 0 {
		return KindHeap, i, nil
	}
	if i := sampleIndex(p, "goroutine"); i >= 0 {
		return KindGoroutine, i, nil
	}
	types := make([]string, 0, len(p.SampleType))
	for _, st := range p.SampleType {
		types = append(types, st.Type)
	}
	return "", 0, fmt.Errorf("%w: sample types %v, want a heap (inuse_space) or goroutine profile", ErrUnsupported, types)
}

func sampleIndex(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}

func takenAt(p *profile.Profile) *time.Time {
	if p.TimeNanos == 0 {
		return nil
	}
	t := time.Unix(0, p.TimeNanos).UTC()
	return &t
}

// frames lists a sample's functions, innermost first, inlined frames
// included; a location without a function is named by its address.
func frames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		if len(loc.Line) == 0 {
			out = append(out, fmt.Sprintf("0x%x", loc.Address))
			continue
		}
		for _, ln := range loc.Line {
			name := "?"
			if ln.Function != nil && ln.Function.Name != "" {
				name = ln.Function.Name
			}
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		out = []string{"?"}
	}
	return out
}

// byFunction sums flat and cumulative values per function and per stack.
type byFunction struct {
	flat, cum map[string]int64
	stacks    map[string]int64
	frames    map[string][]string
}

func collect(p *profile.Profile, idx int) (byFunction, int64) {
	a := byFunction{flat: map[string]int64{}, cum: map[string]int64{}, stacks: map[string]int64{}, frames: map[string][]string{}}
	var total int64
	for _, s := range p.Sample {
		v := s.Value[idx]
		if v == 0 {
			continue
		}
		total += v
		fr := frames(s)
		a.flat[fr[0]] += v
		seen := map[string]bool{}
		for _, f := range fr {
			if !seen[f] {
				seen[f] = true
				a.cum[f] += v
			}
		}
		key := strings.Join(fr, "\x00")
		a.stacks[key] += v
		a.frames[key] = fr
	}
	return a, total
}

func share(v, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(v) / float64(total)
}

// sites lists the functions with a positive flat value, largest first
// (then by cumulative value and name, so the order is stable).
func (a byFunction) sites(total int64, top int) []Site {
	out := []Site{}
	for f, v := range a.flat {
		if v <= 0 {
			continue
		}
		out = append(out, Site{Function: f, Flat: v, Cum: a.cum[f], FlatShare: share(v, total), CumShare: share(a.cum[f], total)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Flat != out[j].Flat {
			return out[i].Flat > out[j].Flat
		}
		if out[i].Cum != out[j].Cum {
			return out[i].Cum > out[j].Cum
		}
		return out[i].Function < out[j].Function
	})
	if len(out) > top {
		out = out[:top]
	}
	return out
}

// heaviest lists the stacks with a positive value, heaviest first.
func (a byFunction) heaviest(total int64, top, maxFrames int) []Stack {
	keys := []string{}
	for k, v := range a.stacks {
		if v > 0 {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if a.stacks[keys[i]] != a.stacks[keys[j]] {
			return a.stacks[keys[i]] > a.stacks[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > top {
		keys = keys[:top]
	}
	out := []Stack{}
	for _, k := range keys {
		fr := a.frames[k]
		if len(fr) > maxFrames {
			fr = fr[:maxFrames]
		}
		out = append(out, Stack{Value: a.stacks[k], Share: share(a.stacks[k], total), Frames: append([]string(nil), fr...)})
	}
	return out
}

func aggregate(p *profile.Profile, idx int, opts Options) (int64, []Site, []Stack) {
	a, total := collect(p, idx)
	return total, a.sites(total, opts.Top), a.heaviest(total, opts.Top, opts.Frames)
}

// growth sums a difference profile: its net change, the sum of the
// positive flat differences, and the functions and stacks that grew.
func growth(diff *profile.Profile, idx int, opts Options) (net, grown int64, grew []Site, stacks []Stack) {
	a, net := collect(diff, idx)
	for _, v := range a.flat {
		if v > 0 {
			grown += v
		}
	}
	return net, grown, a.sites(grown, opts.Top), a.heaviest(grown, opts.Top, opts.Frames)
}
