package fleet

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"testing"
)

// samples is one series of raw samples, timestamps in milliseconds, in
// order; a staleness marker is a value with staleNaN's bits.
type samples struct {
	labels map[string]string // with __name__
	ts     []int64
	vs     []float64
}

// staleNaN is Prometheus's staleness marker (value.StaleNaN).
var staleNaN = math.Float64frombits(0x7ff0000000000002)

// remoteWrite sends ss to a Prometheus remote write receiver (remote write
// 1.0: a snappy-compressed WriteRequest), failing the test unless it
// answers 2xx. Prometheus commits the samples before it answers, so they
// are queryable when this returns.
func remoteWrite(t *testing.T, url string, ss []samples) {
	t.Helper()
	if len(ss) == 0 {
		return
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(snappyLiterals(writeRequest(ss))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("remote write: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("remote write of %d series: %s: %s", len(ss), resp.Status, body)
	}
}

// writeRequest encodes prometheus.WriteRequest (prompb/remote.proto):
// timeseries = 1 {labels = 1 {name = 1, value = 2}, samples = 2 {value =
// 1 (double), timestamp = 2 (int64)}}, labels sorted by name as the
// receiver expects.
func writeRequest(ss []samples) []byte {
	var out []byte
	for _, s := range ss {
		var ts []byte
		for _, k := range sortedKeys(s.labels) {
			var l []byte
			l = appendBytesField(l, 1, []byte(k))
			l = appendBytesField(l, 2, []byte(s.labels[k]))
			ts = appendBytesField(ts, 1, l)
		}
		for i := range s.ts {
			var p []byte
			p = appendVarint(p, 1<<3|1) // field 1, fixed64
			for bits, k := math.Float64bits(s.vs[i]), 0; k < 8; k++ {
				p = append(p, byte(bits>>(8*k)))
			}
			p = appendVarint(p, 2<<3|0) // field 2, varint
			p = appendVarint(p, uint64(s.ts[i]))
			ts = appendBytesField(ts, 2, p)
		}
		out = appendBytesField(out, 1, ts)
	}
	return out
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendBytesField(b []byte, field int, p []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|2)
	b = appendVarint(b, uint64(len(p)))
	return append(b, p...)
}

// snappyLiterals encodes src in snappy's block format without compressing
// it: the length, then literal elements of at most 64 KiB. Any snappy
// decoder reads it; the bodies here are small enough not to need more.
func snappyLiterals(src []byte) []byte {
	dst := appendVarint(nil, uint64(len(src)))
	for len(src) > 0 {
		n := min(len(src), 1<<16)
		switch m := n - 1; {
		case m < 60:
			dst = append(dst, byte(m)<<2)
		case m < 1<<8:
			dst = append(dst, 60<<2, byte(m))
		default:
			dst = append(dst, 61<<2, byte(m), byte(m>>8))
		}
		dst = append(dst, src[:n]...)
		src = src[n:]
	}
	return dst
}

// The encoders against hand-made bytes: a wrong tag or length would make
// Prometheus refuse every write, and this says where.
func TestRemoteWriteEncoding(t *testing.T) {
	got := writeRequest([]samples{{labels: map[string]string{"b": "2", "__name__": "m"}, ts: []int64{300}, vs: []float64{1}}})
	label := func(k, v string) []byte {
		return append([]byte{0x0a, byte(4 + len(k) + len(v)), 0x0a, byte(len(k))}, append([]byte(k), append([]byte{0x12, byte(len(v))}, v...)...)...)
	}
	sample := []byte{0x12, 12, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xac, 0x02}
	series := append(append(label("__name__", "m"), label("b", "2")...), sample...)
	want := append([]byte{0x0a, byte(len(series))}, series...)
	if !bytes.Equal(got, want) {
		t.Errorf("writeRequest = % x\nwant           % x", got, want)
	}
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{3, []byte{3, 2 << 2}},
		{100, []byte{100, 60 << 2, 99}},
		{1000, []byte{0xe8, 0x07, 61 << 2, 0xe7, 0x03}},
		{1<<16 + 1, []byte{0x81, 0x80, 0x04, 61 << 2, 0xff, 0xff}},
	} {
		src := bytes.Repeat([]byte{'x'}, tc.n)
		enc := snappyLiterals(src)
		if !bytes.HasPrefix(enc, tc.head) {
			t.Errorf("snappyLiterals(%d bytes) starts % x, want % x", tc.n, enc[:len(tc.head)], tc.head)
		}
		if tc.n > 1<<16 {
			// The second element: one literal byte.
			if tail := enc[len(tc.head)+1<<16:]; !bytes.Equal(tail, []byte{0, 'x'}) {
				t.Errorf("snappyLiterals(%d bytes) ends % x, want 00 78", tc.n, tail)
			}
		}
	}
}

// staleAfterGaps adds a staleness marker at the step after each run of a
// series' samples that stops before end, as Prometheus's rule evaluation
// writes one when a rule's output series disappears.
func staleAfterGaps(s samples, step, end int64) samples {
	out := samples{labels: s.labels}
	for i, ts := range s.ts {
		out.ts, out.vs = append(out.ts, ts), append(out.vs, s.vs[i])
		next := ts + step
		if next <= end && (i+1 == len(s.ts) || s.ts[i+1] != next) {
			out.ts, out.vs = append(out.ts, next), append(out.vs, staleNaN)
		}
	}
	return out
}

// openMetrics renders ss as an OpenMetrics text file (timestamps in
// seconds), for promtool tsdb create-blocks-from openmetrics. Staleness
// markers cannot be written there: a series that promtool ends with
// "stale" simply stops, as with VictoriaMetrics' import.
func openMetrics(ss []samples) []byte {
	var b bytes.Buffer
	sorted := append([]samples(nil), ss...)
	// A metric's samples together, as the format wants its families.
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].labels["__name__"] < sorted[j].labels["__name__"] })
	for _, s := range sorted {
		var ls []string
		for _, k := range sortedKeys(s.labels) {
			if k != "__name__" {
				ls = append(ls, fmt.Sprintf("%s=%s", k, quoteLabel(s.labels[k])))
			}
		}
		sel := s.labels["__name__"] + "{" + join(ls) + "}"
		for i, ts := range s.ts {
			if math.Float64bits(s.vs[i]) == math.Float64bits(staleNaN) {
				continue
			}
			fmt.Fprintf(&b, "%s %v %d.%03d\n", sel, s.vs[i], ts/1000, ts%1000)
		}
	}
	b.WriteString("# EOF\n")
	return b.Bytes()
}

func join(xs []string) string {
	var b bytes.Buffer
	for i, x := range xs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

// quoteLabel quotes a label value as the text formats do: backslash, double
// quote and newline escaped.
func quoteLabel(v string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range v {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
