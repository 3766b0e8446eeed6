// Command benchrecommend compares leakguard's memory recommendation
// (package recommend) with KRR's simple and simple-oom strategies and the
// VPA recommender's memory logic, each reimplemented here from its
// documented formula, on a synthetic population with known ground truth:
//
//	go run ./tools/benchrecommend            # make bench-recommend
//
// Every container has a true memory demand over six 7-day windows, at a
// 5-minute step: steady, a GC sawtooth, bursts, a warm-up after each start,
// a plateau (a cache that fills over a day), OOM-killed without a leak (its
// limit below its need), and slow and fast leakers (flat, then leaking from
// a point in window 1 on, again after every restart). Each container is
// redeployed once a window. The working set a tool sees is the demand run
// under the container's limit: where the demand reaches the limit, the
// container is OOM-killed and restarts (the working set never shows more
// than the limit, and the samples miss the moment of the kill).
//
// In rounds 1 to 4, each tool recommends a limit from window k (and what
// lay before it) and the limit is applied to window k+1; a recommendation
// withheld keeps the current limit. It prints, per tool: the share of
// non-leaking containers OOM-killed in the window after a recommendation,
// per kind; the slack (recommended limit over that window's true peak
// demand); and for the leakers, the recommended limit over the rounds as a
// multiple of the container's true peak before the leak, with its OOM
// kills. The population is drawn from a fixed seed: the output is the same
// on every run.
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/leakguard/leakguard/recommend"
)

const (
	mib     = recommend.MiB
	gib     = recommend.GiB
	step    = 5 * time.Minute
	window  = 7 * 24 * time.Hour
	perWin  = int(window / step)
	windows = 6
	rounds  = 4
)

// kind is a container's behaviour.
type kind string

const (
	steady    kind = "steady"
	sawtooth  kind = "GC sawtooth"
	bursts    kind = "bursts"
	warmUp    kind = "warm-up"
	plateau   kind = "plateau"
	oomNoLeak kind = "OOM-killed, no leak"
	slowLeak  kind = "slow leak"
	fastLeak  kind = "fast leak"
)

var kinds = []kind{steady, sawtooth, bursts, warmUp, plateau, oomNoLeak, slowLeak, fastLeak}

func (k kind) leaks() bool { return k == slowLeak || k == fastLeak }

// container is one synthetic container: its true demand as a function of
// the sample index and of the index its current run started at.
type container struct {
	id        int
	kind      kind
	base      float64 // steady level
	amp       float64 // sawtooth rise, plateau growth, burst factor
	period    int     // sawtooth period in samples
	noiseSeed uint64
	bursts    map[int]float64 // sample index → demand factor
	rollouts  map[int]bool    // sample indexes of a redeploy
	leakStart int             // sample index the leak starts at
	rate      float64         // leak rate, bytes per sample
	flagDelay int             // samples of growth before the trends flag it
	limit0    float64         // limit at the start; 0: none
	needPeak  float64         // for oomNoLeak: the true need
}

// noise is a deterministic pseudo-random value in [0, 1) per sample.
func (c *container) noise(i int) float64 {
	x := c.noiseSeed + uint64(i)*0x9e3779b97f4a7c15
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / float64(1<<53)
}

// demand is the container's true demand at sample i of a run started at
// sample rs.
func (c *container) demand(i, rs int) float64 {
	n := 1 + 0.03*(c.noise(i)-0.5)
	age := i - rs
	switch c.kind {
	case sawtooth:
		return (c.base + c.amp*float64(age%c.period)/float64(c.period)) * n
	case bursts:
		if f, ok := c.bursts[i]; ok {
			return c.base * f * n
		}
	case warmUp:
		if warm := int(30 * time.Minute / step); age < warm {
			return c.base * (0.4 + 0.6*float64(age)/float64(warm)) * n
		}
	case plateau:
		return (c.base + c.amp*min(float64(age)/float64(24*time.Hour/step), 1)) * n
	case oomNoLeak:
		return (0.7*c.needPeak + 0.3*c.needPeak*float64(age%c.period)/float64(c.period)) * min(n, 1)
	case slowLeak, fastLeak:
		if i >= c.leakStart {
			return (c.base + c.rate*float64(i-max(c.leakStart, rs))) * n
		}
	}
	return c.base * n
}

// flagged says whether the leak trends flag the container at sample i of
// a run started at rs: it leaks and has grown for flagDelay in this run.
func (c *container) flagged(i, rs int) bool {
	return c.kind.leaks() && i >= c.leakStart && i-max(c.leakStart, rs) >= c.flagDelay
}

func population(perKind int, rng *rand.Rand) []*container {
	u := func(lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }
	var cs []*container
	for _, k := range kinds {
		for range perKind {
			c := &container{id: len(cs), kind: k, noiseSeed: rng.Uint64(), rollouts: map[int]bool{},
				base: u(100*mib, 2*gib), period: int(u(2, 12))}
			for w := range windows {
				c.rollouts[w*perWin+rng.IntN(perWin)] = true
			}
			switch k {
			case sawtooth:
				c.amp = c.base * u(0.3, 0.8)
			case bursts:
				c.bursts = map[int]float64{}
				for w := range windows {
					for range rng.IntN(5) {
						at, f, d := w*perWin+rng.IntN(perWin), u(1.3, 2.5), 1+rng.IntN(3)
						for j := range d {
							c.bursts[at+j] = f
						}
					}
				}
			case plateau:
				c.amp = c.base * u(0.2, 1)
			case oomNoLeak:
				c.needPeak = c.base * 1.5
			case slowLeak:
				c.base = u(gib, 3*gib)
				c.rate = u(4, 15) * mib / float64(time.Hour/step)
				c.flagDelay = int(12 * time.Hour / step)
			case fastLeak:
				c.base = u(200*mib, 800*mib)
				c.rate = u(150, 500) * mib / float64(time.Hour/step)
				c.flagDelay = int(time.Hour / step)
			}
			if k.leaks() {
				c.leakStart = perWin + int(u(1, 5)*float64(24*time.Hour/step))
			}
			// The limit at the start: below the need for oomNoLeak, 1.5 to
			// 2.5 times the base for a leaker, 1.2 to 3 times the peak for
			// the others, one in five without one.
			switch {
			case k == oomNoLeak:
				c.limit0 = c.needPeak * u(0.75, 0.9)
			case k.leaks():
				c.limit0 = c.base * u(1.5, 2.5)
			case rng.IntN(5) == 0:
				c.limit0 = 0
			default:
				peak := 0.0
				for i := range perWin {
					peak = max(peak, c.demand(i, 0))
				}
				c.limit0 = peak * u(1.2, 3)
			}
			cs = append(cs, c)
		}
	}
	return cs
}

// observed is what Prometheus holds of one window of a container under a
// limit.
type observed struct {
	ws        []float64 // working set per sample
	flag      []bool    // leak trends flagged at the sample
	kills     int
	restarts  int
	killLimit float64 // the limit at the last OOM kill
	truePeak  float64 // the highest true demand
	killDays  []bool  // per day: an OOM kill that day
}

// run simulates window w of c under limit (0: none), from run start *rs.
func run(c *container, w int, limit float64, rs *int) observed {
	o := observed{ws: make([]float64, perWin), flag: make([]bool, perWin), killDays: make([]bool, 7)}
	for j := range perWin {
		i := w*perWin + j
		if c.rollouts[i] {
			*rs = i
			o.restarts++
		}
		d := c.demand(i, *rs)
		o.truePeak = max(o.truePeak, d)
		if limit > 0 && d >= limit {
			// The OOM kill: the demand reached the limit and the
			// container restarts. The scrape before it is the working
			// set Prometheus holds: it never sees the moment of the kill.
			o.ws[j] = 0
			if i > *rs {
				o.ws[j] = min(c.demand(i-1, *rs), limit)
			}
			o.kills++
			o.restarts++
			o.killLimit = limit
			o.killDays[j/int(24*time.Hour/step)] = true
			*rs = i + 1
			continue
		}
		o.ws[j] = d
		o.flag[j] = c.flagged(i, *rs)
	}
	return o
}

// tool recommends a limit from the history of windows (the last one just
// observed) and the current limit; ok false keeps the current limit.
type tool struct {
	name string
	rec  func(hist []observed, limit float64) (float64, bool)
}

func peakOf(o observed) float64 { return slices.Max(o.ws) }

// krrSimple: the peak working set over the window plus 15 %.
func krrSimple(hist []observed, _ float64) (float64, bool) {
	return peakOf(hist[len(hist)-1]) * 1.15, true
}

// krrSimpleOOM: the larger of the peak and the limit at the last OOM kill
// in the window, plus 15 %.
func krrSimpleOOM(hist []observed, _ float64) (float64, bool) {
	o := hist[len(hist)-1]
	return max(peakOf(o), o.killLimit) * 1.15, true
}

// vpa: the 90th percentile of daily peaks, weighted by a decay with a
// 24-hour half-life, plus a 15 % margin; a day with an OOM kill counts a
// peak of the memory at the kill plus 20 %, at least 100 MiB more; at least
// 250 MiB (the recommender's pod minimum).
func vpa(hist []observed, _ float64) (float64, bool) {
	o := hist[len(hist)-1]
	day := int(24 * time.Hour / step)
	type wv struct{ v, w float64 }
	var peaks []wv
	for d := range 7 {
		p := slices.Max(o.ws[d*day : (d+1)*day])
		if o.killDays[d] {
			p = max(p, o.killLimit*1.2, o.killLimit+100*mib)
		}
		peaks = append(peaks, wv{p, math.Pow(0.5, float64(6-d))})
	}
	sort.Slice(peaks, func(i, j int) bool { return peaks[i].v < peaks[j].v })
	total := 0.0
	for _, p := range peaks {
		total += p.w
	}
	acc, v := 0.0, peaks[len(peaks)-1].v
	for _, p := range peaks {
		acc += p.w
		if acc >= 0.9*total {
			v = p.v
			break
		}
	}
	return max(v*1.15, 250*mib), true
}

// leakguard: recommend.Recommend with its defaults over what the command
// reads: twice the window plus the leak onset, the leak since the first
// flag in that span.
func leakguard(hist []observed, limit float64) (float64, bool) {
	p := recommend.DefaultParams()
	end := time.Unix(0, 0).Add(time.Duration(len(hist)) * window)
	first := end.Add(-2*window - p.LeakOnset)
	in := recommend.Input{From: first, End: end, Limit: limit}
	var since time.Time
	for w, o := range hist {
		for j := range perWin {
			t := time.Unix(0, 0).Add(time.Duration(w)*window + time.Duration(j+1)*step)
			if !t.After(first) {
				continue
			}
			in.Samples = append(in.Samples, recommend.Sample{T: t, Bytes: o.ws[j]})
			if o.flag[j] {
				if since.IsZero() {
					since = t
				}
			}
		}
	}
	last := hist[len(hist)-1]
	in.OOMKills, in.Restarts = last.kills, last.restarts
	in.LeakSince = since
	r, err := recommend.Recommend(in, p)
	if err != nil {
		panic(err)
	}
	return r.Limit, r.Limit > 0
}

var tools = []tool{{"leakguard", leakguard}, {"KRR simple", krrSimple}, {"KRR simple-oom", krrSimpleOOM}, {"VPA", vpa}}

// result is one tool's run over one container.
type result struct {
	c *container
	// recs[k] is the limit applied to window k+1 (recommended from window
	// k), for rounds 1..rounds; kills[k] the OOM kills in window k;
	// peaks[k] the true peak demand of window k.
	recs, kills, peaks []float64
	preLeakPeak        float64
}

func simulate(c *container, t tool) result {
	r := result{c: c, recs: make([]float64, windows), kills: make([]float64, windows), peaks: make([]float64, windows)}
	limit, rs := c.limit0, 0
	var hist []observed
	for w := range windows {
		o := run(c, w, limit, &rs)
		hist = append(hist, o)
		r.kills[w], r.peaks[w] = float64(o.kills), o.truePeak
		if w >= 1 && w <= rounds {
			if v, ok := t.rec(hist, limit); ok {
				limit = v
			}
			r.recs[w] = limit
		}
	}
	for i := range perWin {
		r.preLeakPeak = max(r.preLeakPeak, c.demand(i, 0))
	}
	return r
}

func quantile(vs []float64, q float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	return recommend.Percentile(s, q)
}

func main() {
	perKind := flag.Int("per-kind", 50, "containers of each kind")
	seed := flag.Uint64("seed", 22, "seed of the population")
	flag.Parse()
	cs := population(*perKind, rand.New(rand.NewPCG(*seed, *seed)))
	res := map[string][]result{}
	for _, t := range tools {
		for _, c := range cs {
			res[t.name] = append(res[t.name], simulate(c, t))
		}
	}
	w := os.Stdout
	fmt.Fprintf(w, "%d containers (%d of each kind), %d rounds of a 7-day window at a 5-minute step, seed %d.\n\n", len(cs), *perKind, rounds, *seed)

	fmt.Fprintln(w, "Non-leaking containers: OOM-killed in the window after a recommendation (share of container-rounds), and slack (recommended limit / true peak of that window):")
	fmt.Fprintln(w)
	head := "| tool | all |"
	sep := "|---|---:|"
	for _, k := range kinds[:6] {
		head += " " + string(k) + " |"
		sep += "---:|"
	}
	fmt.Fprintln(w, head+" slack median | slack p90 |")
	fmt.Fprintln(w, sep+"---:|---:|")
	for _, t := range tools {
		killed, n := map[kind]int{}, map[kind]int{}
		var slack []float64
		for _, r := range res[t.name] {
			if r.c.kind.leaks() {
				continue
			}
			for k := 1; k <= rounds; k++ {
				n[r.c.kind]++
				if r.kills[k+1] > 0 {
					killed[r.c.kind]++
				}
				slack = append(slack, r.recs[k]/r.peaks[k+1])
			}
		}
		tk, tn := 0, 0
		row := ""
		for _, k := range kinds[:6] {
			tk, tn = tk+killed[k], tn+n[k]
			row += fmt.Sprintf(" %.1f %% |", 100*float64(killed[k])/float64(n[k]))
		}
		fmt.Fprintf(w, "| %s | %.1f %% |%s %.2f | %.2f |\n", t.name, 100*float64(tk)/float64(tn), row, quantile(slack, 0.5), quantile(slack, 0.9))
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "Leakers: the limit recommended after each window, as a multiple of the true peak before the leak (median), and the OOM kills in the window it applies to (median per container):")
	fmt.Fprintln(w)
	for _, k := range []kind{slowLeak, fastLeak} {
		fmt.Fprintf(w, "| %s | after window 1 | after window 2 | after window 3 | after window 4 |\n|---|---:|---:|---:|---:|\n", k)
		for _, t := range tools {
			cells := make([]string, 0, rounds)
			for r := 1; r <= rounds; r++ {
				var mult, kills []float64
				for _, x := range res[t.name] {
					if x.c.kind == k {
						mult = append(mult, x.recs[r]/x.preLeakPeak)
						kills = append(kills, x.kills[r+1])
					}
				}
				cells = append(cells, fmt.Sprintf("×%.2f, %.0f kills", quantile(mult, 0.5), quantile(kills, 0.5)))
			}
			fmt.Fprintf(w, "| %s | %s |\n", t.name, strings.Join(cells, " | "))
		}
		fmt.Fprintln(w)
	}
}
