package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// config is one run of the harness.
type config struct {
	containers  int
	podsPerNode int
	history     time.Duration // history backfilled before the measurement
	scrape      time.Duration // scrape interval of the synthetic targets
	defInterval time.Duration // evaluation interval of groups without one
	rules       string
	prometheus  string
	promtool    string
	tmpParent   string
	keep        bool
	lead        time.Duration // how far ahead of now the backfilled data ends
	rounds      int           // rounds of the reference and every group in turn
	evals       int           // evaluations measured per group and round (after one warm-up)
	evalEvery   time.Duration // interval the measured group runs at
	// blocks is tools/tsdbblocks's binary: when set, the raw series are
	// written as TSDB blocks by it instead of as OpenMetrics text for
	// promtool, which is what makes 10,000 containers and more practical.
	blocks string
	log    io.Writer
}

// groupResult is what one group costs.
type groupResult struct {
	Name      string
	Interval  time.Duration // the group's own interval, from its file
	Durations []float64     // prometheus_rule_group_last_duration_seconds of each measured evaluation
	Median    float64       // seconds
	Samples   float64       // prometheus_rule_group_last_evaluation_samples, median
	Records   int           // recording rules' distinct names
	Series    float64       // series those recording rules write
	Rules     []ruleTime    // each rule's median evaluation time, from /api/v1/rules after each measured evaluation
	samples   []float64
	ruleTimes [][]ruleTime // each measured evaluation's rule times
}

// Amortized is the share of one core the group takes: its evaluation time
// divided by its interval.
func (g groupResult) Amortized() float64 { return g.Median / g.Interval.Seconds() }

// report is the outcome of a run.
type report struct {
	Containers int
	Series     int // raw series backfilled
	Groups     []groupResult
	Reference  groupResult
	Phases     []phase
	Lag        time.Duration // how far past the end of the data the last measurement ended
}

type phase struct {
	Name string
	Took time.Duration
}

// Amortized sums the groups' amortized costs.
func (r report) Amortized() float64 {
	var s float64
	for _, g := range r.Groups {
		s += g.Amortized()
	}
	return s
}

// Ratio is the rule file's amortized cost over the reference group's.
func (r report) Ratio() float64 { return r.Amortized() / r.Reference.Amortized() }

// RecordedSeries is the number of series the rule file's recording rules write.
func (r report) RecordedSeries() float64 {
	var s float64
	for _, g := range r.Groups {
		s += g.Series
	}
	return s
}

func (c config) logf(format string, args ...any) {
	if c.log != nil {
		fmt.Fprintf(c.log, "rulecost: "+format+"\n", args...)
	}
}

// staleAfter is how long after the end of the backfilled data a measurement
// may still end: Prometheus's lookback is 5 minutes, after which instant
// selectors over the backfilled series find nothing.
const staleAfter = 4*time.Minute + 30*time.Second

// measure runs the whole harness: backfill, backfill of the records, and
// the measurement of each group alone and of the reference.
func measure(ctx context.Context, c config) (rep report, err error) {
	rf, err := readRuleFile(c.rules)
	if err != nil {
		return rep, err
	}
	for _, g := range rf.Groups {
		if _, err := g.interval(c.defInterval); err != nil {
			return rep, err
		}
	}
	dir, err := os.MkdirTemp(c.tmpParent, "rulecost-")
	if err != nil {
		return rep, err
	}
	if c.keep {
		c.logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	data := filepath.Join(dir, "data")
	rep.Containers = c.containers
	timed := func(name string, f func() error) error {
		t0 := time.Now()
		err := f()
		rep.Phases = append(rep.Phases, phase{name, time.Since(t0).Round(time.Second)})
		c.logf("%s: %s", name, time.Since(t0).Round(time.Second))
		return err
	}

	end := time.Now().Add(c.lead).Truncate(c.scrape)
	pop := population{containers: c.containers, podsPerNode: c.podsPerNode, start: historyStart(end, c.history), end: end, scrape: c.scrape}
	c.logf("%d containers on %d nodes, %s of history at %s ending at %s (%s from now)", c.containers, pop.nodes(), c.history, c.scrape, end.Format(time.RFC3339), time.Until(end).Round(time.Second))
	if err := timed("backfill raw series", func() error {
		series := pop.build()
		rep.Series = len(series)
		if c.blocks != "" {
			return writeBlocks(ctx, c, dir, data, pop, series)
		}
		om := filepath.Join(dir, "raw.om")
		f, err := os.Create(om)
		if err != nil {
			return err
		}
		if err := pop.writeOpenMetrics(f, series); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		defer os.Remove(om)
		return run(ctx, filepath.Join(dir, "backfill-raw.log"), c.promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", om, data)
	}); err != nil {
		return rep, fmt.Errorf("backfill raw series: %w", err)
	}

	promConfig := filepath.Join(dir, "prometheus.yml")
	measured := filepath.Join(dir, "measured.yaml")
	if err := os.WriteFile(promConfig, []byte(fmt.Sprintf("global:\n  evaluation_interval: %s\nrule_files:\n  - %s\n", promDuration(c.defInterval), measured)), 0o644); err != nil {
		return rep, err
	}
	if err := writeRuleFile(measured); err != nil {
		return rep, err
	}

	if err := timed("backfill recorded series", func() error {
		return backfillRecords(ctx, c, dir, promConfig, data, pop, rf)
	}); err != nil {
		return rep, fmt.Errorf("backfill recorded series: %w", err)
	}

	srv, err := startPrometheus(ctx, c.prometheus, promConfig, data, filepath.Join(dir, "prometheus.log"), 5*time.Minute)
	if err != nil {
		return rep, err
	}
	defer srv.stop()
	if err := timed("compact overlapping blocks", func() error { return waitCompacted(ctx, srv, data, 15*time.Minute) }); err != nil {
		return rep, err
	}
	if wait := time.Until(end.Add(time.Second)); wait > 0 {
		c.logf("waiting %s for the end of the backfilled data", wait.Round(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return rep, ctx.Err()
		}
	}
	if lag := time.Since(end); lag > 90*time.Second {
		return rep, fmt.Errorf("the backfill took %s longer than -lead (%s): the data would go stale during the measurement; run again with -lead %s", lag.Round(time.Second), c.lead, (c.lead + lag + time.Minute).Round(time.Minute))
	}

	// Both ways of backfilling must give Prometheus every raw series: count
	// the working sets (three cgroups a pod, each node's root).
	if v, err := srv.query("count(container_memory_working_set_bytes)"); err != nil {
		return rep, err
	} else if want := 3*c.containers + pop.nodes(); len(v) != 1 || int(v[0]) != want {
		return rep, fmt.Errorf("backfilled data: count(container_memory_working_set_bytes) = %v, want %d", v, want)
	}

	// Rounds of the reference and each group in turn, so that a change in
	// the machine's load during the run weighs on all of them alike.
	ref := referenceGroup()
	order := append([]ruleGroup{ref}, rf.Groups...)
	results := make([]groupResult, len(order))
	for round := 0; round < c.rounds; round++ {
		for i, g := range order {
			res, err := measureGroup(ctx, c, srv, measured, g)
			if err != nil {
				return rep, fmt.Errorf("group %s: %w", g.Name, err)
			}
			lag := time.Since(end)
			c.logf("round %d, %s: %v s, %.0f series recorded; %s after the end of the data", round+1, g.Name, res.Durations, res.Series, lag.Round(time.Second))
			if lag > staleAfter {
				return rep, fmt.Errorf("group %s measured %s after the end of the backfilled data, past the lookback: use fewer -rounds or -evals, or a shorter -eval-every", g.Name, lag.Round(time.Second))
			}
			rep.Lag = lag
			r := &results[i]
			r.Name, r.Records = g.Name, res.Records
			r.ruleTimes = append(r.ruleTimes, res.ruleTimes...)
			r.Interval, _ = g.interval(c.defInterval)
			r.Durations = append(r.Durations, res.Durations...)
			r.samples = append(r.samples, res.samples...)
			r.Series = max(r.Series, res.Series)
		}
	}
	for i := range results {
		results[i].Median = median(results[i].Durations)
		results[i].Samples = median(results[i].samples)
		results[i].Rules = medianRuleTimes(results[i].ruleTimes)
	}
	rep.Reference, rep.Groups = results[0], results[1:]
	return rep, nil
}

// writeBlocks streams the raw series to tools/tsdbblocks, which writes them
// as blocks into data: no text file, and about as fast as the TSDB appends.
func writeBlocks(ctx context.Context, c config, dir, data string, pop population, series []staticSeries) error {
	logf, err := os.Create(filepath.Join(dir, "backfill-raw.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, c.blocks, "-out", data,
		"-start", fmt.Sprint(pop.start.UnixMilli()), "-step", fmt.Sprint(pop.scrape.Milliseconds()), "-steps", fmt.Sprint(pop.steps()))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.blocks, err)
	}
	werr := pop.writeSeriesStream(in, series)
	cerr := in.Close()
	if err := cmd.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "backfill-raw.log"))
		return errors.Join(fmt.Errorf("%s: %w", c.blocks, err), errors.New(string(b)))
	}
	return errors.Join(werr, cerr)
}

// blockWindow is the span of the blocks both backfills write.
const blockWindow = 2 * time.Hour

// historyStart is where history ending at end starts. When that would
// leave the first 2 h block window with less than half an hour of data,
// the history starts at that window's beginning instead (up to 2 h more):
// with a few minutes there, promtool's rule backfill wrote no block for
// some batches, and the tiny blocks it did write were never merged, so the
// run waited out its compaction timeout.
func historyStart(end time.Time, history time.Duration) time.Time {
	start := end.Add(-history)
	off := time.Duration(start.UnixMilli()%blockWindow.Milliseconds()) * time.Millisecond
	if blockWindow-off < 30*time.Minute {
		start = start.Add(-off)
	}
	return start
}

// promDuration formats d as a Prometheus duration.
func promDuration(d time.Duration) string { return fmt.Sprintf("%ds", int(d.Seconds())) }

// backfillRecords writes the recording rules' own history, in the order of
// the file, so that records of records have history too: promtool's rule
// backfill only reads what the Prometheus it queries already holds, so the
// rules are backfilled in batches in which no rule reads another of the same
// batch, and Prometheus is restarted on the grown data after each batch.
func backfillRecords(ctx context.Context, c config, dir, promConfig, data string, pop population, rf ruleFile) error {
	batches := recordBatches(rf, c.defInterval)
	for i, batch := range batches {
		file := filepath.Join(dir, fmt.Sprintf("backfill-%02d.yaml", i))
		if err := writeRuleFile(file, batch...); err != nil {
			return err
		}
		srv, err := startPrometheus(ctx, c.prometheus, promConfig, data, filepath.Join(dir, fmt.Sprintf("backfill-%02d-prometheus.log", i)), 5*time.Minute)
		if err != nil {
			return err
		}
		out := filepath.Join(dir, fmt.Sprintf("backfill-%02d", i))
		t0 := time.Now()
		err = run(ctx, filepath.Join(dir, fmt.Sprintf("backfill-%02d.log", i)), c.promtool, "tsdb", "create-blocks-from", "rules",
			"--quiet", "--url="+srv.url(),
			"--start="+fmt.Sprint(pop.start.Unix()), "--end="+fmt.Sprint(pop.end.Unix()),
			"--eval-interval="+promDuration(c.defInterval), "--output-dir="+out, file)
		srv.stop()
		if err != nil {
			return err
		}
		var names []string
		for _, g := range batch {
			names = append(names, g.records()...)
		}
		c.logf("backfilled %s in %s", strings.Join(names, ", "), time.Since(t0).Round(time.Second))
		// A batch whose rules evaluate to nothing over the history (the
		// :peak record reads a day back, further than the history goes)
		// has no block to move: promtool may then not even create the
		// output directory.
		blocks, err := os.ReadDir(out)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, b := range blocks {
			if err := os.Rename(filepath.Join(out, b.Name()), filepath.Join(data, b.Name())); err != nil {
				return err
			}
		}
		os.Remove(out)
	}
	return nil
}

// recordBatches splits the file's recording rules, in order, into batches
// in which no rule's expression names a record written in the same batch.
// Each batch is a list of groups (the rules' own groups, with their
// intervals), alerting rules left out.
func recordBatches(rf ruleFile, def time.Duration) [][]ruleGroup {
	var batches [][]ruleGroup
	var cur []ruleGroup
	inBatch := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			name, ok := r["record"].(string)
			if !ok {
				continue
			}
			expr, _ := r["expr"].(string)
			for rec := range inBatch {
				if mentions(expr, rec) {
					batches = append(batches, cur)
					cur, inBatch = nil, map[string]bool{}
					break
				}
			}
			if len(cur) == 0 || cur[len(cur)-1].Name != g.Name {
				iv := g.Interval
				if iv == "" {
					iv = promDuration(def)
				}
				cur = append(cur, ruleGroup{Name: g.Name, Interval: iv})
			}
			cur[len(cur)-1].Rules = append(cur[len(cur)-1].Rules, r)
			inBatch[name] = true
		}
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches
}

// mentions reports whether expr names the metric name, as a whole word.
func mentions(expr, name string) bool {
	word := func(b byte) bool {
		return b == '_' || b == ':' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	for i := 0; ; {
		j := strings.Index(expr[i:], name)
		if j < 0 {
			return false
		}
		j += i
		k := j + len(name)
		if (j == 0 || !word(expr[j-1])) && (k == len(expr) || !word(expr[k])) {
			return true
		}
		i = j + 1
	}
}

// waitCompacted waits until Prometheus has merged the overlapping blocks
// (the raw series' and each batch of records', over the same 2 h windows)
// into one block per window, so that no compaction runs during the
// measurement.
func waitCompacted(ctx context.Context, srv *server, data string, timeout time.Duration) error {
	want, err := blockWindows(data)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		mf, err := srv.metrics()
		if err == nil {
			if n, ok := gauge(mf, "prometheus_tsdb_blocks_loaded"); ok && int(n) == want {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("blocks not compacted to %d after %s", want, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// blockWindows counts the distinct time ranges of the blocks in data.
func blockWindows(data string) (int, error) {
	metas, err := filepath.Glob(filepath.Join(data, "*", "meta.json"))
	if err != nil {
		return 0, err
	}
	windows := map[[2]int64]bool{}
	for _, m := range metas {
		b, err := os.ReadFile(m)
		if err != nil {
			return 0, err
		}
		var meta struct {
			MinTime, MaxTime int64
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return 0, fmt.Errorf("%s: %w", m, err)
		}
		windows[[2]int64{meta.MinTime / 7200000, (meta.MaxTime - 1) / 7200000}] = true
	}
	if len(windows) == 0 {
		return 0, errors.New("no blocks backfilled")
	}
	return len(windows), nil
}

// measureGroup loads the one group (at the measuring interval) into
// Prometheus and records its duration over a warm-up evaluation and
// c.evals more.
func measureGroup(ctx context.Context, c config, srv *server, file string, g ruleGroup) (groupResult, error) {
	res := groupResult{Name: g.Name, Records: len(g.records())}
	run := g
	run.Interval = promDuration(c.evalEvery)
	if err := writeRuleFile(file, run); err != nil {
		return res, err
	}
	if err := srv.reload(); err != nil {
		return res, err
	}
	const (
		durName = "prometheus_rule_group_last_duration_seconds"
		tsName  = "prometheus_rule_group_last_evaluation_timestamp_seconds"
		smpName = "prometheus_rule_group_last_evaluation_samples"
	)
	var last float64
	if mf, err := srv.metrics(); err == nil {
		last, _ = groupMetric(mf, tsName, g.Name)
	}
	var samples []float64
	seen := 0
	deadline := time.Now().Add(time.Duration(c.evals+2)*c.evalEvery + 5*time.Minute)
	for len(res.Durations) < c.evals {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("%d of %d evaluations after %s", len(res.Durations), c.evals, time.Duration(c.evals+2)*c.evalEvery+5*time.Minute)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		mf, err := srv.metrics()
		if err != nil {
			continue
		}
		ts, ok := groupMetric(mf, tsName, g.Name)
		if !ok || ts == last || ts <= 0 {
			continue
		}
		last = ts
		seen++
		if seen == 1 {
			continue // the first evaluation creates the records' series in the head
		}
		d, _ := groupMetric(mf, durName, g.Name)
		s, _ := groupMetric(mf, smpName, g.Name)
		res.Durations = append(res.Durations, d)
		samples = append(samples, s)
		// The rules' times are those of the last evaluation, read before
		// the next one ends (it takes at least the measuring interval).
		if rules, err := srv.ruleTimes(); err == nil {
			res.ruleTimes = append(res.ruleTimes, rules)
		}
	}
	res.samples = samples
	for _, rec := range g.records() {
		v, err := srv.query(fmt.Sprintf("count({__name__=%q})", rec))
		if err != nil {
			return res, err
		}
		if len(v) == 1 {
			res.Series += v[0]
		}
	}
	return res, nil
}

// medianRuleTimes is each rule's median over the evaluations, in the
// order of the first.
func medianRuleTimes(evals [][]ruleTime) []ruleTime {
	if len(evals) == 0 {
		return nil
	}
	byName := map[string][]float64{}
	for _, e := range evals {
		for _, r := range e {
			byName[r.Name] = append(byName[r.Name], r.Seconds)
		}
	}
	var out []ruleTime
	for _, r := range evals[0] {
		if xs, ok := byName[r.Name]; ok {
			out = append(out, ruleTime{r.Name, median(xs)})
			delete(byName, r.Name)
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
