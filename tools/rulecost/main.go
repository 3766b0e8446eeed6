// Command rulecost measures what a Prometheus rule file costs to evaluate,
// in the real Prometheus, against a reference: kube-prometheus's own
// working-set recording rule, in the same Prometheus over the same data.
//
// It backfills a synthetic cluster (cAdvisor, kube-state-metrics,
// kube-apiserver and leakguard agent series as kube-prometheus-stack labels
// them) with promtool tsdb create-blocks-from openmetrics, backfills the
// recording rules' own series with promtool tsdb create-blocks-from rules,
// then starts Prometheus on 127.0.0.1 over that data and loads one group at
// a time, so that no other group evaluates while it is measured. Each
// group's cost is the median of prometheus_rule_group_last_duration_seconds
// over several evaluations; its amortized cost is that divided by the
// group's interval in the file. The report gives the file's amortized cost
// as a ratio to the reference group's.
//
// usage: go run ./tools/rulecost -rules deploy/prometheus/rules.yaml -containers 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

func main() {
	c := config{log: os.Stderr}
	flag.IntVar(&c.containers, "containers", 1000, "containers in the synthetic cluster (one per pod)")
	flag.IntVar(&c.podsPerNode, "pods-per-node", 40, "pods per node")
	flag.DurationVar(&c.history, "history", 3*time.Hour, "history backfilled up to the measurement")
	flag.DurationVar(&c.scrape, "scrape-interval", 30*time.Second, "scrape interval of the synthetic series")
	flag.DurationVar(&c.defInterval, "default-interval", 30*time.Second, "evaluation interval of groups that set none (kube-prometheus's)")
	flag.StringVar(&c.rules, "rules", "deploy/prometheus/rules.yaml", "rule file to measure")
	flag.StringVar(&c.prometheus, "prometheus", "prometheus", "Prometheus binary")
	flag.StringVar(&c.promtool, "promtool", "promtool", "promtool binary")
	flag.StringVar(&c.tmpParent, "tmp", "", "directory for the scratch data (default: the system's)")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch data")
	flag.StringVar(&c.blocks, "blocks", "", "tools/tsdbblocks binary: write the raw series as TSDB blocks with it instead of backfilling OpenMetrics text with promtool (10,000 containers and more)")
	flag.DurationVar(&c.lead, "lead", 0, "how far ahead of now the backfilled data ends, to cover the time the backfill takes (default: from -containers)")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds of the reference and every group in turn")
	flag.IntVar(&c.evals, "evals", 3, "evaluations measured per group and round, after one warm-up")
	flag.DurationVar(&c.evalEvery, "eval-every", 2*time.Second, "interval each group runs at while it is measured")
	timeout := flag.Duration("timeout", 3*time.Hour, "bound on the whole run")
	flag.Parse()
	if c.containers < 1 || c.podsPerNode < 1 || c.evals < 1 || c.rounds < 1 || c.history < time.Hour {
		fmt.Fprintln(os.Stderr, "rulecost: -containers, -pods-per-node, -rounds and -evals must be positive, -history at least 1h")
		os.Exit(2)
	}
	if c.lead == 0 {
		c.lead = defaultLead(c.containers, c.blocks != "")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	t0 := time.Now()
	rep, err := measure(ctx, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rulecost:", err)
		os.Exit(1)
	}
	printReport(os.Stdout, c, rep, time.Since(t0))
}

// defaultLead is a generous estimate, from runs on 2 cores, of how long the
// backfill of c containers takes: promtool's OpenMetrics backfill of the raw
// series dominates it, unless they are written as blocks.
func defaultLead(containers int, blocks bool) time.Duration {
	if blocks {
		return 3*time.Minute + time.Duration(containers)*30*time.Millisecond
	}
	return 2*time.Minute + time.Duration(containers)*120*time.Millisecond
}

func printReport(w io.Writer, c config, rep report, took time.Duration) {
	fmt.Fprintf(w, "rule file %s: %d containers, %d raw series, %s of history\n\n", c.rules, rep.Containers, rep.Series, c.history)
	fmt.Fprintln(w, "| group | interval | evaluation (median) | amortized (share of a core) | samples | recorded series | per container |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	row := func(g groupResult) {
		fmt.Fprintf(w, "| %s | %s | %.1f ms | %.5f | %.0f | %.0f | %.2f |\n", g.Name, g.Interval, g.Median*1000, g.Amortized(), g.Samples, g.Series, g.Series/float64(rep.Containers))
	}
	for _, g := range rep.Groups {
		row(g)
	}
	row(rep.Reference)
	for _, g := range rep.Groups {
		if len(g.Rules) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s, each rule's median evaluation:", g.Name)
		for _, r := range g.Rules {
			fmt.Fprintf(w, " %s %.1f ms;", r.Name, r.Seconds*1000)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nrule file amortized %.5f, reference %.5f: ratio %.2f\n", rep.Amortized(), rep.Reference.Amortized(), rep.Ratio())
	fmt.Fprintf(w, "recorded series %.0f (%.2f per container)\n", rep.RecordedSeries(), rep.RecordedSeries()/float64(rep.Containers))
	for _, p := range rep.Phases {
		fmt.Fprintf(w, "%s: %s\n", p.Name, p.Took)
	}
	fmt.Fprintf(w, "last measurement %s after the end of the data; whole run %s\n", rep.Lag.Round(time.Second), took.Round(time.Second))
}
