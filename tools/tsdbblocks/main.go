// Command tsdbblocks writes TSDB blocks from a stream of series, for
// tools/rulecost's large populations, where the OpenMetrics text and
// promtool's backfill of it take too long and too much disk (84 million
// samples, 34 GB of text, half an hour at 10,000 containers).
//
// It reads, from stdin, one record per series: the series as
// name{label="value",...} (uvarint length, then the bytes), then -steps
// float64 values (little-endian), the samples at -start, -start + -step, ...
// It writes one block per 2 h window (aligned as promtool's backfill aligns
// them) into -out, with the tsdb package of the Prometheus release the
// harness runs (2.42), so that Prometheus opens them as it would promtool's.
//
// It is its own module (tools/tsdbblocks/go.mod), so that the Prometheus
// module is not a dependency of leakguard's.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/go-kit/log"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// window is the length of the blocks written, promtool's backfill's.
const window = int64(2 * 60 * 60 * 1000)

func main() {
	out := flag.String("out", "", "directory the blocks are written to (the TSDB's data directory)")
	start := flag.Int64("start", 0, "timestamp of the first sample of every series, in milliseconds")
	step := flag.Int64("step", 30000, "milliseconds between samples")
	steps := flag.Int("steps", 0, "samples per series")
	flag.Parse()
	if *out == "" || *steps < 1 || *step < 1 {
		fmt.Fprintln(os.Stderr, "usage: tsdbblocks -out DIR -start MS -step MS -steps N < series")
		os.Exit(2)
	}
	n, err := write(context.Background(), bufio.NewReaderSize(os.Stdin, 1<<20), *out, *start, *step, *steps)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tsdbblocks:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "tsdbblocks: %d series, %d samples\n", n, n*int64(*steps))
}

// windowWriter is the head of one 2 h block being written.
type windowWriter struct {
	w       *tsdb.BlockWriter
	app     storage.Appender
	pending int
}

func write(ctx context.Context, r *bufio.Reader, out string, start, step int64, steps int) (int64, error) {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, err
	}
	writers := map[int64]*windowWriter{}
	writerFor := func(t int64) (*windowWriter, error) {
		k := floorDiv(t, window)
		if ww, ok := writers[k]; ok {
			return ww, nil
		}
		// The block writer's head accepts samples no older than half its
		// chunk range before the newest it holds; series come one after
		// another, each over the whole window, so the range is twice the
		// window: every sample of the window stays appendable.
		w, err := tsdb.NewBlockWriter(log.NewNopLogger(), out, 2*window)
		if err != nil {
			return nil, err
		}
		ww := &windowWriter{w: w, app: w.Appender(ctx)}
		writers[k] = ww
		return ww, nil
	}
	var (
		series int64
		buf    []byte
		vals   = make([]byte, 8*steps)
	)
	for {
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return series, fmt.Errorf("series %d: %w", series, err)
		}
		if cap(buf) < int(size) {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			return series, fmt.Errorf("series %d: %w", series, err)
		}
		lset, err := parser.ParseMetric(string(buf))
		if err != nil {
			return series, fmt.Errorf("series %d: %q: %w", series, buf, err)
		}
		if _, err := io.ReadFull(r, vals); err != nil {
			return series, fmt.Errorf("series %d (%s): values: %w", series, lset, err)
		}
		refs := map[*windowWriter]storage.SeriesRef{}
		for i := 0; i < steps; i++ {
			t := start + int64(i)*step
			ww, err := writerFor(t)
			if err != nil {
				return series, err
			}
			v := math.Float64frombits(binary.LittleEndian.Uint64(vals[8*i:]))
			ref, err := ww.app.Append(refs[ww], lset, t, v)
			if err != nil {
				return series, fmt.Errorf("series %s at %d: %w", lset, t, err)
			}
			refs[ww] = ref
			ww.pending++
		}
		for ww := range refs {
			if ww.pending >= 1<<20 {
				if err := ww.app.Commit(); err != nil {
					return series, err
				}
				ww.app, ww.pending = ww.w.Appender(ctx), 0
			}
		}
		series++
	}
	keys := make([]int64, 0, len(writers))
	for k := range writers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		ww := writers[k]
		if err := ww.app.Commit(); err != nil {
			return series, err
		}
		if _, err := ww.w.Flush(ctx); err != nil {
			return series, fmt.Errorf("flush block of window %d: %w", k, err)
		}
		if err := ww.w.Close(); err != nil {
			return series, err
		}
	}
	return series, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
