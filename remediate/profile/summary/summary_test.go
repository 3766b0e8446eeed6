package summary

import (
	"bytes"
	"compress/gzip"
	"errors"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"
)

// retained keeps what leakyAlloc allocated reachable, as a leak would.
var retained [][]byte

// leakyAlloc is the known allocation site the heap tests look for.
//
//go:noinline
func leakyAlloc(n int) []byte {
	return make([]byte, n)
}

// parkedHere is the known function the goroutine test's goroutines block in.
//
//go:noinline
func parkedHere(ready *sync.WaitGroup, release chan struct{}) {
	ready.Done()
	<-release
}

const leakyName = "github.com/leakguard/leakguard/remediate/profile/summary.leakyAlloc"

func heapProfile(t *testing.T) []byte {
	t.Helper()
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// leak retains n chunks of size bytes through leakyAlloc.
func leak(n, size int) {
	for range n {
		retained = append(retained, leakyAlloc(size))
	}
}

// realHeapProfiles returns two heap profiles of this process: A, then B
// after leakyAlloc retained 8 MiB more.
func realHeapProfiles(t *testing.T) (a, b []byte) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	t.Cleanup(func() { runtime.MemProfileRate = old; retained = nil })
	leak(4, 256<<10)
	a = heapProfile(t)
	leak(32, 256<<10)
	b = heapProfile(t)
	return a, b
}

func TestSummarizeRealHeapGrowth(t *testing.T) {
	a, b := realHeapProfiles(t)

	t.Run("B against A names the leaking function first", func(t *testing.T) {
		s, err := Summarize(b, a, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Kind != KindHeap || s.SampleType != "inuse_space" || s.Unit != "bytes" {
			t.Fatalf("kind %q, sample type %q %q; want heap inuse_space bytes", s.Kind, s.SampleType, s.Unit)
		}
		g := s.Growth
		if g == nil || g.NoGrowth || len(g.Grew) == 0 {
			t.Fatalf("growth = %+v, want growth", g)
		}
		if g.Grew[0].Function != leakyName {
			t.Errorf("first of what grew = %q, want %q\n%s", g.Grew[0].Function, leakyName, s.Text(0))
		}
		// 32 chunks of 256 KiB were retained between A and B.
		if want := int64(32 * 256 << 10); g.Grew[0].Flat < want {
			t.Errorf("%s grew by %d, want at least %d", leakyName, g.Grew[0].Flat, want)
		}
		if g.BaseTakenAt == nil || s.TakenAt == nil || g.Interval == "" {
			t.Errorf("times: taken %v, base %v, interval %q; want all set", s.TakenAt, g.BaseTakenAt, g.Interval)
		}
		if len(s.Top) == 0 || s.Top[0].Function != leakyName {
			t.Errorf("top = %+v, want %s first", s.Top, leakyName)
		}
		if len(s.Stacks) == 0 || s.Stacks[0].Frames[0] != leakyName {
			t.Errorf("heaviest stack = %+v, want it to start in %s", s.Stacks, leakyName)
		}
		if text := s.String(); !strings.Contains(text, "grew:") || !strings.Contains(text, leakyName) {
			t.Errorf("text does not name the growth:\n%s", text)
		}
	})

	t.Run("A against itself: no growth", func(t *testing.T) {
		s, err := Summarize(a, a, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Growth == nil || !s.Growth.NoGrowth || len(s.Growth.Grew) != 0 || s.Growth.Net != 0 {
			t.Fatalf("growth = %+v, want no growth", s.Growth)
		}
		if !strings.Contains(s.String(), "no growth") {
			t.Errorf("text does not say no growth:\n%s", s)
		}
	})

	t.Run("refused bodies", func(t *testing.T) {
		var bomb bytes.Buffer
		zw := gzip.NewWriter(&bomb)
		if _, err := zw.Write(make([]byte, 4<<20)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		var twice bytes.Buffer
		zw = gzip.NewWriter(&twice)
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			data     []byte
			base     []byte
			maxBytes int64
			want     error
			reason   string
		}{
			{name: "truncated", data: b[:len(b)/2], want: ErrTruncated, reason: "ends early"},
			{name: "truncated base", data: b, base: a[:len(a)/2], want: ErrTruncated, reason: "base: profile truncated"},
			{name: "oversized body", data: b, maxBytes: int64(len(b) - 1), want: ErrTooLarge, reason: "over the limit"},
			{name: "oversized once gunzipped", data: bomb.Bytes(), maxBytes: 1 << 20, want: ErrTooLarge, reason: "once gunzipped"},
			{name: "not pprof", data: []byte("<html>502 Bad Gateway</html>\n"), want: ErrNotProfile, reason: "not a pprof profile"},
			{name: "gzip inside gzip", data: twice.Bytes(), want: ErrNotProfile, reason: "gzip inside gzip"},
			{name: "empty", data: nil, want: ErrNotProfile, reason: "empty body"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s, err := Summarize(tt.data, tt.base, Options{MaxBytes: tt.maxBytes})
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.reason) {
					t.Errorf("err = %q, want it to say %q", err, tt.reason)
				}
				if s != nil {
					t.Errorf("summary = %+v, want none", s)
				}
			})
		}
	})
}

func TestSummarizeRealGoroutines(t *testing.T) {
	const n = 7
	var ready sync.WaitGroup
	release := make(chan struct{})
	ready.Add(n)
	var done sync.WaitGroup
	for range n {
		done.Go(func() { parkedHere(&ready, release) })
	}
	ready.Wait()
	var buf bytes.Buffer
	err := pprof.Lookup("goroutine").WriteTo(&buf, 0)
	close(release)
	done.Wait()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Summarize(buf.Bytes(), nil, Options{Top: 100, Frames: 100})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kind != KindGoroutine || s.Unit != "count" {
		t.Fatalf("kind %q unit %q, want goroutine count", s.Kind, s.Unit)
	}
	if s.Total < n+1 {
		t.Errorf("total = %d, want at least %d (the parked ones and this test)", s.Total, n+1)
	}
	var parked int64
	for _, st := range s.Stacks {
		for _, f := range st.Frames {
			if strings.HasSuffix(f, "summary.parkedHere") {
				parked += st.Value
				break
			}
		}
	}
	if parked != n {
		t.Errorf("goroutines in parkedHere = %d, want %d\n%s", parked, n, s.Text(0))
	}
}

// synthetic builds a heap profile by hand: values are inuse_space, stacks
// innermost first.
func synthetic(at time.Time, samples map[string]int64) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Period:     1,
		TimeNanos:  at.UnixNano(),
	}
	fns := map[string]*profile.Location{}
	loc := func(name string) *profile.Location {
		if l, ok := fns[name]; ok {
			return l
		}
		f := &profile.Function{ID: uint64(len(fns) + 1), Name: name}
		l := &profile.Location{ID: f.ID, Line: []profile.Line{{Function: f}}}
		p.Function = append(p.Function, f)
		p.Location = append(p.Location, l)
		fns[name] = l
		return l
	}
	// Sorted keys keep the profile's order stable.
	for _, stack := range []string{"a<c", "b<c", "c", "d<b<c"} {
		v, ok := samples[stack]
		if !ok {
			continue
		}
		s := &profile.Sample{Value: []int64{1, v}}
		for _, f := range strings.Split(stack, "<") {
			s.Location = append(s.Location, loc("main."+f))
		}
		p.Sample = append(p.Sample, s)
	}
	return p
}

func TestSummarizeSynthetic(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	t1 := t0.Add(90 * time.Second)
	p := synthetic(t1, map[string]int64{"a<c": 600, "b<c": 300, "c": 100})
	base := synthetic(t0, map[string]int64{"a<c": 200, "b<c": 300, "c": 150})

	s, err := SummarizeProfile(p, base, Options{Top: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{
		Kind: KindHeap, SampleType: "inuse_space", Unit: "bytes", TakenAt: &t1, Total: 1000,
		Top: []Site{
			{Function: "main.a", Flat: 600, FlatShare: 0.6, Cum: 600, CumShare: 0.6},
			{Function: "main.b", Flat: 300, FlatShare: 0.3, Cum: 300, CumShare: 0.3},
		},
		Stacks: []Stack{
			{Value: 600, Share: 0.6, Frames: []string{"main.a", "main.c"}},
			{Value: 300, Share: 0.3, Frames: []string{"main.b", "main.c"}},
		},
		Growth: &Growth{
			BaseTakenAt: &t0, Interval: "1m30s", Net: 350, Grown: 400,
			Grew:   []Site{{Function: "main.a", Flat: 400, FlatShare: 1, Cum: 400, CumShare: 1}},
			Stacks: []Stack{{Value: 400, Share: 1, Frames: []string{"main.a", "main.c"}}},
		},
	}
	if d := cmp.Diff(want, s); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	if p.Sample[0].Value[1] != 600 || base.Sample[0].Value[1] != 200 {
		t.Errorf("the inputs were modified")
	}

	wantText := `heap profile: inuse_space total 1000B, taken 2026-12-07T03:01:30Z
growth since base taken 2026-12-07T03:00:00Z (1m30s earlier): net +350B, grown 400B
grew:
      flat  flat%   sum%        cum   cum%
      400B 100.0% 100.0%       400B 100.0%  main.a
stacks that grew:
      400B 100.0%  main.a < main.c
top:
      flat  flat%   sum%        cum   cum%
      600B  60.0%  60.0%       600B  60.0%  main.a
      300B  30.0%  90.0%       300B  30.0%  main.b
heaviest stacks:
      600B  60.0%  main.a < main.c
      300B  30.0%  main.b < main.c
`
	if d := cmp.Diff(wantText, s.Text(0)); d != "" {
		t.Errorf("text (-want +got):\n%s", d)
	}
	if got := s.String(); got != wantText {
		t.Errorf("String() = %q, want the whole text under the default limit", got)
	}

	t.Run("cumulative through a caller", func(t *testing.T) {
		p := synthetic(t1, map[string]int64{"d<b<c": 250, "b<c": 50, "c": 200})
		s, err := SummarizeProfile(p, nil, Options{Frames: 2})
		if err != nil {
			t.Fatal(err)
		}
		wantTop := []Site{
			{Function: "main.d", Flat: 250, FlatShare: 0.5, Cum: 250, CumShare: 0.5},
			{Function: "main.c", Flat: 200, FlatShare: 0.4, Cum: 500, CumShare: 1},
			{Function: "main.b", Flat: 50, FlatShare: 0.1, Cum: 300, CumShare: 0.6},
		}
		if d := cmp.Diff(wantTop, s.Top); d != "" {
			t.Errorf("top (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"main.d", "main.b"}, s.Stacks[0].Frames); d != "" {
			t.Errorf("frames of the heaviest stack, cut to 2 (-want +got):\n%s", d)
		}
		if s.Growth != nil {
			t.Errorf("growth = %+v without a base", s.Growth)
		}
	})

	t.Run("base of another kind", func(t *testing.T) {
		g := &profile.Profile{SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}}}
		if _, err := SummarizeProfile(p, g, Options{}); !errors.Is(err, ErrUnsupported) {
			t.Errorf("err = %v, want %v", err, ErrUnsupported)
		}
	})

	t.Run("a CPU profile", func(t *testing.T) {
		c := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}}}
		_, err := SummarizeProfile(c, nil, Options{})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "[samples cpu]") {
			t.Errorf("err = %v, want %v naming the sample types", err, ErrUnsupported)
		}
	})
}

func TestTextBound(t *testing.T) {
	text := "line one\nline two\nline three\n"
	tests := []struct {
		name   string
		maxLen int
		want   string
	}{
		{name: "no limit", maxLen: 0, want: text},
		{name: "fits", maxLen: len(text), want: text},
		{name: "cut at a line", maxLen: 28, want: "line one\n" + truncatedMark},
		{name: "no whole line fits", maxLen: len(truncatedMark) + 5, want: "line\n" + truncatedMark},
		{name: "tiny", maxLen: 4, want: truncatedMark[:4]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bound(text, tt.maxLen)
			if got != tt.want {
				t.Errorf("bound(%d) = %q, want %q", tt.maxLen, got, tt.want)
			}
			if tt.maxLen > 0 && len(got) > tt.maxLen {
				t.Errorf("len = %d, over %d", len(got), tt.maxLen)
			}
		})
	}
}
