package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/internal/cli"
	"github.com/leakguard/leakguard/promclient"
	"github.com/leakguard/leakguard/recommend"
	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/rules"
	"github.com/spf13/pflag"
)

// recommendFlags are recommend's flags.
type recommendFlags struct {
	prometheusURL string
	namespace     string
	allNamespaces bool
	selector      string
	workload      string
	output        string
	end           string
	window        model.Duration
	step          model.Duration
	onset         model.Duration
	timeout       time.Duration
	granularity   quantityFlag
	large         quantityFlag
	above         quantityFlag
	params        recommend.Params
	scope         recommend.Scope

	// prometheusConfigFile is --prometheus-config-file, as serve's.
	prometheusConfigFile string
}

// quantityFlag is a byte count given as a Kubernetes quantity (64Mi).
type quantityFlag struct{ v *float64 }

func (q quantityFlag) String() string {
	if q.v == nil {
		return ""
	}
	return resource.NewQuantity(int64(*q.v), resource.BinarySI).String()
}

// Type names the value in help.
func (q quantityFlag) Type() string { return "quantity" }

func (q quantityFlag) Set(s string) error {
	v, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("want a quantity such as 64Mi: %w", err)
	}
	*q.v = v.AsApproximateFloat64()
	return nil
}

// recommendFlagSet defines recommend's flags on a new flag set writing
// into f, with f's defaults set.
func recommendFlagSet(f *recommendFlags, stderr io.Writer) *pflag.FlagSet {
	p := rules.DefaultParams()
	f.params = recommend.DefaultParams()
	f.window, f.step = model.Duration(f.params.Window), model.Duration(5*time.Minute)
	f.onset = model.Duration(f.params.LeakOnset)
	f.granularity = quantityFlag{&f.params.Granularity}
	f.large = quantityFlag{&f.params.GranularityLarge}
	f.above = quantityFlag{&f.params.GranularityAbove}
	fs := cli.NewFlagSet("recommend", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leakguard recommend [flags]

Read the working set, requests, limits, restarts, OOM kills and the leak
trends of each container from Prometheus and print, per workload and
container, a recommended memory request and limit and a verdict: ok, raise,
lower, no-limit, leaking (flagged by the leak trends in the window: sized
from the working set before the leak, or withheld; raising its limit would
only delay the next OOM kill) or not-enough-data. Nothing is written to the
cluster: -o patch prints strategic-merge patches to apply with
kubectl patch --patch-file, or to list under a kustomization's patches.

The request is the --percentile of the working set over --window, the limit
its peak plus --headroom (after an OOM kill without a leak, at least the
limit plus --oom-raise), both rounded up to --granularity (--granularity-large
above --granularity-above); a leaking container's come from the --window
before the leak (--leak-onset before it was first flagged). Scope like kubectl: -n NAMESPACE (default
"default"), -A, -l SELECTOR on pod labels (those kube-state-metrics exports
in kube_pod_labels), --workload [KIND/]NAME.

flags:
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.prometheusURL, "prometheus-url", defaultPrometheusURL, "base URL of the Prometheus HTTP API to read (http or https, with a host; checked at start)")
	fs.StringVar(&f.prometheusConfigFile, promclient.FlagName, "", promConfigFileHelp)
	fs.StringVarP(&f.namespace, "namespace", "n", "", `namespace to read (default "default" unless -A)`)
	fs.BoolVarP(&f.allNamespaces, "all-namespaces", "A", false, "read every namespace")
	fs.StringVarP(&f.selector, "selector", "l", "", "label `SELECTOR` on pod labels, as kube-state-metrics exports them in kube_pod_labels (only the labels in its --metric-labels-allowlist)")
	fs.StringVar(&f.workload, "workload", "", "one workload, `[KIND/]NAME` (deployment/api, api)")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table, json or patch")
	fs.StringVar(&f.end, "end", "", "end of the window, RFC 3339 (default now)")
	fs.Var(&f.window, "window", "how far back the working set counts (Prometheus duration, e.g. 7d)")
	fs.Var(&f.step, "step", "resolution of the range queries")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "time limit for all the queries")
	fs.Var(&f.onset, "leak-onset", "how long before the leak trends flag a leak it is taken to have started: a leaking container is sized from the --window before that")
	fs.Float64Var(&f.params.Percentile, "percentile", f.params.Percentile, "percentile of the working set the request covers, in (0, 1]")
	fs.Float64Var(&f.params.Headroom, "headroom", f.params.Headroom, "share added to the peak working set for the limit")
	fs.Float64Var(&f.params.OOMRaise, "oom-raise", f.params.OOMRaise, "share added to the current limit after an OOM kill without a leak")
	fs.IntVar(&f.params.MinSamples, "min-samples", f.params.MinSamples, "fewest working-set samples (one per --step) to recommend from")
	fs.Float64Var(&f.params.Tolerance, "tolerance", f.params.Tolerance, "share by which the current request and limit may differ from the recommendation and be ok")
	fs.Var(f.granularity, "granularity", "rounding step of the recommendation (a quantity) up to --granularity-above")
	fs.Var(f.large, "granularity-large", "rounding step above --granularity-above")
	fs.Var(f.above, "granularity-above", "size above which --granularity-large applies")
	fs.StringVar(&f.scope.Cluster, "cluster", "", "in a fleet's query engine, this cluster's `NAME`: every query carries --cluster-label=\"NAME\"; empty: a single cluster, no label")
	fs.StringVar(&f.scope.ClusterLabel, "cluster-label", remediate.DefaultClusterLabel, "the label that names the cluster in series (the rules' clusterLabel)")
	fs.StringVar(&f.scope.CadvisorSelector, "cadvisor-selector", p.CadvisorSelector, "label matchers for cAdvisor series")
	fs.StringVar(&f.scope.KubeStateMetricsSelector, "kube-state-metrics-selector", p.KubeStateMetricsSelector, "label matchers for kube-state-metrics series")
	return fs
}

func runRecommend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f recommendFlags
	fs := recommendFlagSet(&f, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	usageErr := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "recommend: "+format+"\n", a...)
		return errUsage
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected arguments %q", fs.Args())
	}
	if f.allNamespaces && f.namespace != "" {
		return usageErr("-n and -A exclude each other")
	}
	f.scope.Namespace = f.namespace
	if !f.allNamespaces && f.namespace == "" {
		f.scope.Namespace = "default"
	}
	switch f.output {
	case "table", "json", "patch":
	default:
		return usageErr("-o %q: want table, json or patch", f.output)
	}
	if f.selector != "" {
		sel, err := labels.Parse(f.selector)
		if err != nil {
			return usageErr("-l %q: %v", f.selector, err)
		}
		f.scope.Selector = sel
	}
	f.scope.Workload = f.workload
	f.params.Window, f.params.LeakOnset = time.Duration(f.window), time.Duration(f.onset)
	if err := f.params.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if f.step <= 0 {
		return usageErr("--step must be positive")
	}
	// Prometheus refuses a range query of more than 11,000 points per series.
	if n := (2*f.window + f.onset) / f.step; n > 11000 {
		return usageErr("twice --window plus --leak-onset over --step is %d points, more than Prometheus answers (11000): raise --step", n)
	}
	end := time.Now()
	if f.end != "" {
		t, err := time.Parse(time.RFC3339, f.end)
		if err != nil {
			return usageErr("--end %q: %v", f.end, err)
		}
		end = t
	}
	promAPI, err := promRangeAPI(f.prometheusURL, f.prometheusConfigFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	containers, err := recommend.Collect(ctx, promAPI, f.scope, end, time.Duration(f.window), time.Duration(f.step), time.Duration(f.onset))
	if err != nil {
		return fmt.Errorf("read Prometheus at %s: %w", f.prometheusURL, err)
	}
	rows := make([]recommendRow, 0, len(containers))
	for _, c := range containers {
		r, err := recommend.Recommend(c.Input, f.params)
		if err != nil {
			return fmt.Errorf("%s %s: %w", c.Workload, c.Container, err)
		}
		rows = append(rows, recommendRow{Container: c, Request: c.Input.Request, Limit: c.Input.Limit, Recommendation: r})
	}
	// Everything is computed before anything is printed: an error above
	// prints no recommendation at all.
	switch f.output {
	case "json":
		return writeRecommendJSON(stdout, rows)
	case "patch":
		return writeRecommendPatches(stdout, rows)
	default:
		return writeRecommendTable(stdout, rows)
	}
}

// promRangeAPI builds the Prometheus HTTP API client recommend reads,
// the same client as serve's (promQuerier), refusing a URL that is not
// http(s) and a --prometheus-config-file (file) that does not load.
func promRangeAPI(raw, file string) (recommend.API, error) {
	if err := checkURLFlag("prometheus-url", raw); err != nil {
		return nil, err
	}
	return promclient.New(raw, file, "leakguard/"+version)
}

// recommendRow is one line of recommend's output.
type recommendRow struct {
	recommend.Container
	Request        float64                  `json:"request"`
	Limit          float64                  `json:"limit"`
	Recommendation recommend.Recommendation `json:"recommendation"`
}

func writeRecommendTable(w io.Writer, rows []recommendRow) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tWORKLOAD\tCONTAINER\tREQUEST\tLIMIT\tREC REQUEST\tREC LIMIT\tPEAK\tHIGH\tOOM KILLS\tRESTARTS\tVERDICT\tREASON")
	for _, r := range rows {
		rec := r.Recommendation
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n",
			r.Workload.Namespace, r.Workload, r.Container.Container,
			recommend.FormatBytes(r.Request), recommend.FormatBytes(r.Limit),
			recommend.FormatBytes(rec.Request), recommend.FormatBytes(rec.Limit),
			recommend.FormatBytes(rec.Evidence.Peak), recommend.FormatBytes(rec.Evidence.High),
			rec.Evidence.OOMKills, rec.Evidence.Restarts, rec.Verdict, rec.Reason)
	}
	return tw.Flush()
}

func writeRecommendJSON(w io.Writer, rows []recommendRow) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// patchable are the verdicts a patch is written for: the others keep the
// current values (ok), have none (not-enough-data) or must not be sized up
// by a patch (leaking: fix the leak; its value is in the table and JSON).
var patchable = map[recommend.Verdict]bool{recommend.Raise: true, recommend.Lower: true, recommend.NoLimit: true}

// writeRecommendPatches writes one strategic-merge patch per workload
// (YAML documents, each preceded by the kubectl command that applies it),
// setting the memory request and limit of its patchable containers. Each
// names its object (apiVersion, kind, metadata), so that it is also a
// kustomize patch file (patches: - path: FILE).
// Bare pods and Jobs cannot change their resources in place: a comment
// says so instead.
func writeRecommendPatches(w io.Writer, rows []recommendRow) error {
	type container struct {
		Name      string `json:"name"`
		Resources struct {
			Requests map[string]string `json:"requests"`
			Limits   map[string]string `json:"limits"`
		} `json:"resources"`
	}
	var order []recommend.Workload
	byWorkload := map[recommend.Workload][]container{}
	for _, r := range rows {
		if !patchable[r.Recommendation.Verdict] {
			continue
		}
		var c container
		c.Name = r.Container.Container
		c.Resources.Requests = map[string]string{"memory": quantity(r.Recommendation.Request)}
		c.Resources.Limits = map[string]string{"memory": quantity(r.Recommendation.Limit)}
		if _, ok := byWorkload[r.Workload]; !ok {
			order = append(order, r.Workload)
		}
		byWorkload[r.Workload] = append(byWorkload[r.Workload], c)
	}
	if len(order) == 0 {
		_, err := fmt.Fprintln(w, "# nothing to patch")
		return err
	}
	for i, wl := range order {
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		switch wl.Kind {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		default:
			fmt.Fprintf(w, "# %s in %s: a %s's containers cannot be patched in place; set their resources where it is defined\n", wl, wl.Namespace, wl.Kind)
			continue
		}
		patch := map[string]any{
			"apiVersion": "apps/v1",
			"kind":       wl.Kind,
			"metadata":   map[string]any{"name": wl.Name, "namespace": wl.Namespace},
			"spec":       map[string]any{"template": map[string]any{"spec": map[string]any{"containers": byWorkload[wl]}}},
		}
		b, err := yaml.Marshal(patch)
		if err != nil {
			return fmt.Errorf("patch of %s: %w", wl, err)
		}
		fmt.Fprintf(w, "# kubectl patch %s -n %s --type strategic --patch-file FILE\n%s", wl, wl.Namespace, b)
	}
	return nil
}

// quantity writes bytes as a Kubernetes quantity (recommendations are
// whole MiB).
func quantity(b float64) string {
	return strings.TrimSpace(resource.NewQuantity(int64(b), resource.BinarySI).String())
}
