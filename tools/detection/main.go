// Command detection measures, on the shared trace suite, when the leak
// alerts of one or more rule files fire: for every leak case the time from
// the start of the leak to the first firing ContainerMemoryLeak and the lead
// time of ContainerMemoryOOMPredicted before the working set reaches the
// limit, and for every quiet container case whether either alert fired at
// any minute of the trace. It prints a Markdown table.
//
//	go run ./tools/detection -cases ../shared/traces/cases \
//	    before=/tmp/old-rules.yaml after=deploy/prometheus/rules.yaml
//
// Each case is probed once a minute by one promtool run per alert and rule
// file: the probe expects "not firing" at every minute, so the minutes that
// fail are the minutes at which the alert fires.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"
)

// leakStarts is the minute at which each leak case's leak starts, from the
// case table of shared/traces/README.md; the other container cases are quiet.
var leakStarts = map[string]int{"L1": 0, "L2": 0, "R1": 0, "F1": 180, "S1": 40, "E1": 0, "D1": 0}

// quietCases are the container cases in which neither leak alert may fire
// once the trace has settled (H1 climbs for 1h45m before its plateau, so it
// may fire during the climb; the table says when).
var quietCases = []string{"N1", "N2", "N3", "N4", "H1", "B1", "D2"}

const (
	alertLeak = "ContainerMemoryLeak"
	alertOOM  = "ContainerMemoryOOMPredicted"
)

type series struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type exprTest struct {
	Expr       string   `json:"expr"`
	EvalTime   string   `json:"eval_time"`
	ExpSamples []sample `json:"exp_samples"`
}

type sample struct {
	Labels string  `json:"labels"`
	Value  float64 `json:"value"`
}

type testGroup struct {
	Interval       string     `json:"interval"`
	InputSeries    []series   `json:"input_series"`
	PromqlExprTest []exprTest `json:"promql_expr_test"`
}

type testFile struct {
	RuleFiles          []string    `json:"rule_files"`
	EvaluationInterval string      `json:"evaluation_interval"`
	GroupEvalOrder     []string    `json:"group_eval_order,omitempty"`
	Tests              []testGroup `json:"tests"`
}

// caseFile is one file of the suite: the case, its file and last minute.
type caseFile struct {
	kind, id, file string
	last           int
}

func main() {
	cases := flag.String("cases", "../shared/traces/cases", "the shared trace suite's cases directory")
	promtool := flag.String("promtool", "promtool", "promtool binary")
	jobs := flag.Int("jobs", 2, "promtool runs at once")
	timeout := flag.Duration("timeout", 20*time.Minute, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: detection [flags] NAME=RULES_FILE...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var names, files []string
	for _, arg := range flag.Args() {
		name, file, ok := strings.Cut(arg, "=")
		if !ok || name == "" || file == "" {
			fmt.Fprintf(os.Stderr, "detection: %q: want NAME=RULES_FILE\n", arg)
			os.Exit(2)
		}
		abs, err := filepath.Abs(file)
		if err != nil {
			fmt.Fprintln(os.Stderr, "detection:", err)
			os.Exit(2)
		}
		names, files = append(names, name), append(files, abs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, os.Stdout, *cases, *promtool, *jobs, names, files); err != nil {
		fmt.Fprintln(os.Stderr, "detection:", err)
		os.Exit(1)
	}
}

// probe is one promtool run: an alert over one case for one rule file.
type probe struct {
	id, alert, rules string
	file             testFile
	// firstFiring and lastFiring are the first and last minutes the alert
	// fired, -1 if never.
	firstFiring, lastFiring int
	err                     error
}

func run(ctx context.Context, out *os.File, casesDir, promtool string, jobs int, names, rules []string) error {
	index, err := readIndex(filepath.Join(casesDir, "index.tsv"))
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "detection")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var probes []*probe
	crossing := map[string]int{}
	for _, id := range append(sortedKeys(leakStarts), quietCases...) {
		longest, probeFile, err := caseFiles(index, id)
		if err != nil {
			return err
		}
		if probeFile != nil {
			crossing[id] = probeFile.last
		}
		for _, rf := range rules {
			alerts := []string{alertLeak, alertOOM}
			for _, alert := range alerts {
				if !defines(rf, alert) {
					continue
				}
				src := longest
				if alert == alertOOM && probeFile != nil {
					src = *probeFile // its series end at the crossing
				}
				tf, err := probeOf(filepath.Join(casesDir, src.file), rf, alert, src.last)
				if err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				probes = append(probes, &probe{id: id, alert: alert, rules: rf, file: tf})
			}
		}
	}

	sem := make(chan struct{}, max(jobs, 1))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p.firstFiring, p.lastFiring, p.err = runProbe(ctx, promtool, filepath.Join(tmp, fmt.Sprintf("probe-%03d.yaml", i)), p.file)
		}()
	}
	wg.Wait()

	result, lastResult := map[string]int{}, map[string]int{}
	for _, p := range probes {
		if p.err != nil {
			return fmt.Errorf("%s %s %s: %w", p.id, p.alert, p.rules, p.err)
		}
		result[p.id+"|"+p.alert+"|"+p.rules] = p.firstFiring
		lastResult[p.id+"|"+p.alert+"|"+p.rules] = p.lastFiring
	}

	w := bufio.NewWriter(out)
	defer w.Flush()
	fmt.Fprintf(w, "| case | leak starts | limit reached |")
	for _, n := range names {
		fmt.Fprintf(w, " %s: Leak after start | %s: Leak last firing | %s: OOMPredicted lead |", n, n, n)
	}
	fmt.Fprintf(w, "\n|---|---|---|%s\n", strings.Repeat("---|---|---|", len(names)))
	for _, id := range sortedKeys(leakStarts) {
		start := leakStarts[id]
		cross := "–"
		if c, ok := crossing[id]; ok {
			cross = hm(c)
		}
		fmt.Fprintf(w, "| %s | %s | %s |", id, hm(start), cross)
		for _, rf := range rules {
			leak := result[id+"|"+alertLeak+"|"+rf]
			oom := result[id+"|"+alertOOM+"|"+rf]
			leakCell, lastCell := "never", "–"
			switch {
			case !defines(rf, alertLeak):
				leakCell = "– (no such alert)"
			case leak >= 0 && leak < start:
				leakCell = fmt.Sprintf("%s before it (at %s)", hm(start-leak), hm(leak))
				lastCell = hm(lastResult[id+"|"+alertLeak+"|"+rf])
			case leak >= 0:
				leakCell = hm(leak - start)
				lastCell = hm(lastResult[id+"|"+alertLeak+"|"+rf])
			}
			oomCell := "never"
			if !defines(rf, alertOOM) {
				oomCell = "– (no such alert)"
			} else if c, ok := crossing[id]; !ok {
				oomCell = "– (no limit reached)"
				if oom >= 0 {
					oomCell = "fired at " + hm(oom)
				}
			} else if oom >= 0 {
				oomCell = fmt.Sprintf("%.2f h", float64(c-oom)/60)
			}
			fmt.Fprintf(w, " %s | %s | %s |", leakCell, lastCell, oomCell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\n| quiet case | trace |")
	for _, n := range names {
		fmt.Fprintf(w, " %s: Leak | %s: OOMPredicted |", n, n)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|---|", len(names)))
	for _, id := range quietCases {
		longest, _, _ := caseFiles(index, id)
		fmt.Fprintf(w, "| %s | %s |", id, hm(longest.last))
		for _, rf := range rules {
			for _, alert := range []string{alertLeak, alertOOM} {
				cell := "quiet"
				if !defines(rf, alert) {
					cell = "–"
				} else if m := result[id+"|"+alert+"|"+rf]; m >= 0 {
					cell = fmt.Sprintf("fired %s to %s", hm(m), hm(lastResult[id+"|"+alert+"|"+rf]))
				}
				fmt.Fprintf(w, " %s |", cell)
			}
		}
		fmt.Fprintln(w)
	}
	return nil
}

func readIndex(path string) ([]caseFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []caseFile
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 4 {
			return nil, fmt.Errorf("%s: short line %q", path, line)
		}
		last, err := strconv.Atoi(f[3])
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, line, err)
		}
		id, _, _ := strings.Cut(f[1], "/")
		out = append(out, caseFile{kind: f[0], id: id, file: f[2], last: last})
	}
	return out, nil
}

// caseFiles returns a case's check with the longest series and its lead-time
// probe, if it has one.
func caseFiles(index []caseFile, id string) (longest caseFile, probeFile *caseFile, err error) {
	found := false
	for _, c := range index {
		if c.id != id {
			continue
		}
		if c.kind == "probe" {
			c := c
			probeFile = &c
			continue
		}
		if !found || c.last > longest.last {
			longest, found = c, true
		}
	}
	if !found {
		return longest, nil, fmt.Errorf("case %s: no check in the index", id)
	}
	return longest, probeFile, nil
}

var (
	nsRe  = regexp.MustCompile(`namespace="([^"]*)"`)
	podRe = regexp.MustCompile(`pod="([^"]*)"`)
)

// probeOf turns a case file into a probe of alert over minutes 0..last: the
// same series, and at every minute the expectation that the alert does not
// fire for the case's pod.
func probeOf(path, rules, alert string, last int) (testFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return testFile{}, err
	}
	var tf testFile
	if err := yaml.Unmarshal(data, &tf); err != nil {
		return testFile{}, fmt.Errorf("%s: %w", path, err)
	}
	if len(tf.Tests) != 1 || len(tf.Tests[0].PromqlExprTest) == 0 {
		return testFile{}, fmt.Errorf("%s: want one test group with an expression test", path)
	}
	expr := tf.Tests[0].PromqlExprTest[0].Expr
	ns, pod := nsRe.FindStringSubmatch(expr), podRe.FindStringSubmatch(expr)
	if ns == nil || pod == nil {
		return testFile{}, fmt.Errorf("%s: no namespace and pod in %q", path, expr)
	}
	q := fmt.Sprintf(`count(ALERTS{alertname=%q,alertstate="firing",namespace=%q,pod=%q}) or vector(0)`, alert, ns[1], pod[1])
	tf.RuleFiles = []string{rules}
	// promtool evaluates one instant's groups in map order unless told;
	// the file's order keeps a lead time from moving by a minute between runs.
	if tf.GroupEvalOrder, err = groupNames(rules); err != nil {
		return testFile{}, err
	}
	tests := make([]exprTest, 0, last+1)
	for m := 0; m <= last; m++ {
		tests = append(tests, exprTest{Expr: q, EvalTime: fmt.Sprintf("%dm", m), ExpSamples: []sample{{Labels: "{}", Value: 0}}})
	}
	tf.Tests[0].PromqlExprTest = tests
	return tf, nil
}

// groupNames is the rule file's groups' names, in its order.
func groupNames(rules string) ([]string, error) {
	data, err := os.ReadFile(rules)
	if err != nil {
		return nil, err
	}
	var rf struct {
		Groups []struct {
			Name string `json:"name"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &rf); err != nil {
		return nil, fmt.Errorf("%s: %w", rules, err)
	}
	names := make([]string, 0, len(rf.Groups))
	for _, g := range rf.Groups {
		names = append(names, g.Name)
	}
	return names, nil
}

var failedAt = regexp.MustCompile(`expr: .*, time: ([0-9hms]+),`)

// runProbe runs promtool on tf and returns the first and last minutes at
// which the probe failed (the alert fired), or -1.
func runProbe(ctx context.Context, promtool, path string, tf testFile) (first, last int, err error) {
	data, err := yaml.Marshal(tf)
	if err != nil {
		return 0, 0, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, promtool, "test", "rules", path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	first, last = -1, -1
	for _, m := range failedAt.FindAllStringSubmatch(out.String(), -1) {
		d, perr := time.ParseDuration(m[1])
		if perr != nil {
			return 0, 0, fmt.Errorf("promtool time %q: %w", m[1], perr)
		}
		mins := int(d.Minutes())
		if first < 0 || mins < first {
			first = mins
		}
		last = max(last, mins)
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return -1, -1, nil
	case errors.As(err, &exit) && first >= 0:
		return first, last, nil
	default:
		return 0, 0, fmt.Errorf("promtool: %v: %s", err, firstLines(out.String(), 5))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(s), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, " | ")
}

func hm(minutes int) string {
	if minutes < 0 {
		return "-" + hm(-minutes)
	}
	return fmt.Sprintf("%dh%02dm", minutes/60, minutes%60)
}

// defines reports whether a rule file has an alerting rule named alert.
func defines(rulesFile, alert string) bool {
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		return true // the probe reports the error
	}
	return regexp.MustCompile(`(?m)^\s*-?\s*alert:\s*` + regexp.QuoteMeta(alert) + `\s*$`).Match(data)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
