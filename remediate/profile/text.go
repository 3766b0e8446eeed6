package profile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/profile/summary"
)

// Bounds of the text profile writes into its outcome (hence the
// LeakguardActed Event, whose whole message the engine cuts at 1 KiB:
// remediate/events.go) and into the target's annotation.
const (
	// maxOutcomeBytes bounds profile's outcome, the stored files and the
	// summaries, leaving the rest of the Event's 1 KiB to the alert, the
	// check and the other remediators of the entry.
	maxOutcomeBytes = 640
	// maxAnnotationBytes bounds the leakguard.io/profile annotation (an
	// object's annotations may hold 256 KiB in all).
	maxAnnotationBytes = 1024
	// briefSites is how many functions a short summary names per part.
	briefSites = 3
	// briefFrames is how many frames of a goroutine stack it shows.
	briefFrames = 2
	// maxFunctionBytes cuts one function name in a short summary.
	maxFunctionBytes = 120
	// maxReasonBytes cuts the reason a part is missing.
	maxReasonBytes = 200
)

// brief is the short summary of one profile, in parts the outcome ranks.
type brief struct {
	// growth is what grew since the base (a heap profile with one).
	growth string
	// use is what the profile holds: the heap in use, the goroutines,
	// or why the summary is missing.
	use string
	// objects is the apiserver's object kinds, or why they are missing.
	objects string
	kind    string
}

// text joins the parts: the record's text and the annotation's.
func (b brief) text() string {
	var out []string
	for _, s := range []string{b.growth, b.use, b.objects} {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}

// outcomeText joins the parts of briefs, in their order, to at most max
// bytes. When they do not all fit, the most telling are kept: what grew,
// then the object kinds, the goroutines, and the heap in use last. A part
// that does not fit whole is left out, but the most telling is cut to
// fit.
func outcomeText(briefs []brief, max int) string {
	type part struct {
		text      string
		rank, pos int
	}
	if max <= len("…") {
		return ""
	}
	var parts []part
	for i, b := range briefs {
		useRank := 3
		if b.kind != "heap" {
			useRank = 2
		}
		for j, p := range []part{{b.growth, 0, 0}, {b.use, useRank, 1}, {b.objects, 1, 2}} {
			if p.text != "" {
				parts = append(parts, part{p.text, p.rank, 3*i + j})
			}
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].rank < parts[j].rank })
	var kept []part
	size := 0
	for i, p := range parts {
		switch {
		case i == 0 && len(p.text) > max:
			p.text = remediate.Truncate(p.text, max)
			kept, size = append(kept, p), max
		case size+len(p.text)+2*len(kept) <= max:
			kept, size = append(kept, p), size+len(p.text)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].pos < kept[j].pos })
	out := make([]string, len(kept))
	for i, p := range kept {
		out[i] = p.text
	}
	return strings.Join(out, "; ")
}

// briefOf is the short summary of rec: for a heap profile what grew
// since its base, then what is in use; for a goroutine profile the count
// and the heaviest stack; or why the summary is missing. Functions are
// named as pprof names them, fully qualified, and cut at
// maxFunctionBytes.
func briefOf(rec *Record, interval string) brief {
	b := brief{kind: rec.Kind, objects: objectsText(rec)}
	s := rec.Summary
	if s == nil {
		b.use = fmt.Sprintf("%s summary missing: %s", rec.Kind, remediate.Truncate(rec.Missing, maxReasonBytes))
		return b
	}
	if s.Kind == summary.KindGoroutine {
		b.kind = "goroutine"
		b.use = fmt.Sprintf("goroutines %d", s.Total)
		for _, st := range s.Stacks {
			// The runtime's frames (gopark, chanrecv) are where every
			// goroutine waits; the program's own frames say which.
			var names []string
			for _, f := range st.Frames {
				if f != "?" && !strings.HasPrefix(f, "runtime.") && len(names) < briefFrames {
					names = append(names, remediate.Truncate(f, maxFunctionBytes))
				}
			}
			if len(names) == 0 {
				continue
			}
			b.use += fmt.Sprintf(": %d (%.0f%%) in %s", st.Value, 100*st.Share, strings.Join(names, " < "))
			break
		}
		return b
	}
	top := briefSites
	if g := s.Growth; g != nil {
		b.growth = "heap growth since " + rec.Base
		if interval != "" {
			b.growth += " (" + interval + " earlier)"
		}
		if g.NoGrowth {
			b.growth += fmt.Sprintf(": none (net %s)", signedBytes(g.Net))
		} else {
			b.growth += fmt.Sprintf(": net %s; grew: %s", signedBytes(g.Net), sites(g.Grew, briefSites, true))
			// What grew is the point; of what is in use, the largest.
			top = 1
		}
	}
	b.use = fmt.Sprintf("%s in use %s", rec.Kind, summary.FormatBytes(s.Total))
	if len(s.Top) > 0 {
		b.use += ": " + sites(s.Top, top, false)
	}
	if rec.NoGrowth != "" {
		b.use += " (no growth: " + remediate.Truncate(rec.NoGrowth, maxReasonBytes) + ")"
	}
	return b
}

// objectsText is the line of the object kinds the apiserver holds most
// of, or why it is missing.
func objectsText(rec *Record) string {
	if len(rec.Objects) == 0 {
		if rec.NoObjects == "" {
			return ""
		}
		return "objects: unknown (" + remediate.Truncate(rec.NoObjects, maxReasonBytes) + ")"
	}
	out := make([]string, len(rec.Objects))
	for i, o := range rec.Objects {
		out[i] = fmt.Sprintf("%s %d", remediate.Clip(o.Resource), o.Count)
	}
	return "objects: " + strings.Join(out, ", ")
}

// sites names the first n functions with their bytes and share.
func sites(list []summary.Site, n int, signed bool) string {
	if len(list) > n {
		list = list[:n]
	}
	out := make([]string, len(list))
	for i, s := range list {
		v := summary.FormatBytes(s.Flat)
		if signed {
			v = signedBytes(s.Flat)
		}
		out[i] = fmt.Sprintf("%s %s (%.0f%%)", remediate.Truncate(s.Function, maxFunctionBytes), v, 100*s.FlatShare)
	}
	return strings.Join(out, ", ")
}

func signedBytes(v int64) string {
	if v > 0 {
		return "+" + summary.FormatBytes(v)
	}
	return summary.FormatBytes(v)
}
