package summary

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// truncatedMark ends a text cut at its length limit.
const truncatedMark = "... (truncated)\n"

// String renders the summary as text, at most DefaultTextLimit bytes.
func (s *Summary) String() string { return s.Text(DefaultTextLimit) }

// Text renders the summary as text in the manner of go tool pprof -top:
// a header, the top functions (flat, flat%, sum%, cum, cum%, function),
// the heaviest stacks and, with a base, what grew. It is cut at a line
// boundary to at most maxLen bytes (no limit if maxLen <= 0), ending in
// "... (truncated)".
func (s *Summary) Text(maxLen int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s profile: %s total %s", s.Kind, s.SampleType, s.value(s.Total))
	if s.TakenAt != nil {
		fmt.Fprintf(&b, ", taken %s", s.TakenAt.Format(time.RFC3339))
	}
	b.WriteString("\n")
	if s.Growth != nil {
		s.writeGrowth(&b)
	}
	s.writeSites(&b, "top", s.Top)
	s.writeStacks(&b, "heaviest stacks", s.Stacks)
	return bound(b.String(), maxLen)
}

func (s *Summary) writeGrowth(b *strings.Builder) {
	g := s.Growth
	b.WriteString("growth since base")
	if g.BaseTakenAt != nil {
		fmt.Fprintf(b, " taken %s", g.BaseTakenAt.Format(time.RFC3339))
	}
	if g.Interval != "" {
		fmt.Fprintf(b, " (%s earlier)", g.Interval)
	}
	fmt.Fprintf(b, ": net %s", s.signed(g.Net))
	if g.NoGrowth {
		b.WriteString(", no growth\n")
		return
	}
	fmt.Fprintf(b, ", grown %s\n", s.value(g.Grown))
	s.writeSites(b, "grew", g.Grew)
	s.writeStacks(b, "stacks that grew", g.Stacks)
}

func (s *Summary) writeSites(b *strings.Builder, title string, sites []Site) {
	if len(sites) == 0 {
		return
	}
	fmt.Fprintf(b, "%s:\n%10s %6s %6s %10s %6s\n", title, "flat", "flat%", "sum%", "cum", "cum%")
	var sum float64
	for _, st := range sites {
		sum += st.FlatShare
		fmt.Fprintf(b, "%10s %5.1f%% %5.1f%% %10s %5.1f%%  %s\n",
			s.value(st.Flat), 100*st.FlatShare, 100*sum, s.value(st.Cum), 100*st.CumShare, st.Function)
	}
}

func (s *Summary) writeStacks(b *strings.Builder, title string, stacks []Stack) {
	if len(stacks) == 0 {
		return
	}
	fmt.Fprintf(b, "%s:\n", title)
	for _, st := range stacks {
		fmt.Fprintf(b, "%10s %5.1f%%  %s\n", s.value(st.Value), 100*st.Share, strings.Join(st.Frames, " < "))
	}
}

// value formats v in the sample type's unit: bytes in binary units,
// anything else as a number.
func (s *Summary) value(v int64) string {
	if s.Unit != "bytes" {
		return fmt.Sprintf("%d", v)
	}
	return FormatBytes(v)
}

func (s *Summary) signed(v int64) string {
	if v > 0 {
		return "+" + s.value(v)
	}
	return s.value(v)
}

// FormatBytes formats v in binary units with two decimals ("1.50MiB",
// "-512.00KiB", "96B"), as the summary's text does.
func FormatBytes(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%s%.2fGiB", sign, float64(v)/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%s%.2fMiB", sign, float64(v)/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%s%.2fKiB", sign, float64(v)/(1<<10))
	}
	return fmt.Sprintf("%s%dB", sign, v)
}

// bound cuts text to at most maxLen bytes at a line boundary, marking the
// cut; when no whole line fits, the first line is cut at a rune boundary.
func bound(text string, maxLen int) string {
	if maxLen <= 0 || len(text) <= maxLen {
		return text
	}
	if maxLen <= len(truncatedMark)+1 {
		return truncatedMark[:min(maxLen, len(truncatedMark))]
	}
	keep := text[:maxLen-len(truncatedMark)]
	if i := strings.LastIndexByte(keep, '\n'); i >= 0 {
		return keep[:i+1] + truncatedMark
	}
	keep = keep[:len(keep)-1]
	for len(keep) > 0 && !utf8.RuneStart(text[len(keep)]) {
		keep = keep[:len(keep)-1]
	}
	return keep + "\n" + truncatedMark
}
