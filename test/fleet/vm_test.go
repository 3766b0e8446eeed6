package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const vmInstall = "Debian: apt-get install victoria-metrics; .ci/run installs it"

// startVictoriaMetrics runs a single-node VictoriaMetrics on loopback and
// returns its base URL. The rollup cache is off: the tests write samples
// into the past (backfilling) and read them back at once, which VictoriaMetrics'
// cache does not expect; the latency offset is off so that a query at "now"
// sees the samples written just before.
func startVictoriaMetrics(t *testing.T) string {
	t.Helper()
	bin := binary(t, "victoria-metrics", vmInstall)
	addr := loopback(t)
	p := start(t, "victoria-metrics", bin,
		"-storageDataPath="+filepath.Join(t.TempDir(), "vm"),
		"-httpListenAddr="+addr,
		"-retentionPeriod=100y",
		"-search.disableCache",
		"-search.latencyOffset=0s",
		"-loggerLevel=WARN")
	base := "http://" + addr
	waitReady(t, p, base+"/health")
	return base
}

// timestampSeries are the metrics whose values are Unix times (seconds).
// promtool's clock starts at 0, so in a trace a container that started
// with the trace says 0; written at start, its value moves by start too,
// or the rules' restart guard (state_started > time() - 4500, ...) would
// see a container started in 1970 and never hold back an alert.
var timestampSeries = map[string]bool{"kube_pod_container_state_started": true}

// importSeries writes ss into VictoriaMetrics through its JSON line import
// API, minute m of a trace at start+m. A staleness marker ends the series
// there: the import API carries no markers, so VictoriaMetrics sees the
// series stop (see docs/fleets.md for what that changes).
func importSeries(t *testing.T, base string, ss []series, start time.Time) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, s := range ss {
		line := struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}{Metric: s.labels}
		shift := 0.0
		if timestampSeries[s.labels["__name__"]] {
			shift = float64(start.Unix())
		}
		for _, p := range s.points {
			if p.stale {
				continue
			}
			line.Values = append(line.Values, p.value+shift)
			line.Timestamps = append(line.Timestamps, start.Add(time.Duration(p.minute)*time.Minute).UnixMilli())
		}
		if len(line.Values) == 0 {
			continue
		}
		if err := enc.Encode(line); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(base+"/api/v1/import", "application/json", &buf)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("import: %s: %s", resp.Status, body)
	}
	// Imported rows become searchable after VictoriaMetrics' next flushes
	// (see replay): flush, and check that every sample is counted (again
	// after another flush, should the import still be adding rows).
	want, last := 0, 0
	for _, s := range ss {
		for _, p := range s.points {
			if !p.stale {
				want++
			}
			if p.minute > last {
				last = p.minute
			}
		}
	}
	end := start.Add(time.Duration(last) * time.Minute)
	q := fmt.Sprintf(`sum(count_over_time({__name__!=""}[%ds]))`, int(end.Sub(start).Seconds())+60)
	waitFor(t, 60*time.Second, fmt.Sprintf("%d imported samples searchable", want), func() (bool, error) {
		flush(t, base)
		v, err := scalarAt(base, q, end)
		return v == float64(want), err
	})
}

// scalarAt evaluates an expression of one result at time at (0 when
// empty).
func scalarAt(base, query string, at time.Time) (float64, error) {
	q := url.Values{"query": {query}, "time": {unix(at)}}
	resp, err := http.Get(base + "/api/v1/query?" + q.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if len(r.Data.Result) == 0 {
		return 0, nil
	}
	str, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(str, 64)
}

// seriesCount counts the series VictoriaMetrics holds between from and to.
func seriesCount(base string, from, to time.Time) (int, error) {
	q := url.Values{"match[]": {`{__name__!=""}`}, "start": {unix(from)}, "end": {unix(to)}}
	resp, err := http.Get(base + "/api/v1/series?" + q.Encode())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	return len(r.Data), nil
}

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// exported is one series of VictoriaMetrics' export API.
type exported struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export reads the raw samples of the series that match selector.
func export(t *testing.T, base, selector string, from, to time.Time) []exported {
	t.Helper()
	q := url.Values{"match[]": {selector}, "start": {unix(from)}, "end": {unix(to)}}
	resp, err := http.Get(base + "/api/v1/export?" + q.Encode())
	if err != nil {
		t.Fatalf("export %s: %v", selector, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("export %s: %s: %s", selector, resp.Status, body)
	}
	var out []exported
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export %s: %v", selector, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("export %s: %v", selector, err)
	}
	return out
}

// replay runs vmalert's replay mode over [from, to]: every rule of the rule
// file is evaluated at each evaluation interval (1m, as Prometheus and the
// traces do), and the recorded series and ALERTS / ALERTS_FOR_STATE are
// written back into VictoriaMetrics.
//
// The recording rules form chains (a rule reads the ones before it in its
// group), and replay evaluates one rule over the whole range before the
// next. What a rule wrote must be searchable, completely, before the next
// one asks for it, and VictoriaMetrics 1.79 makes it so only eventually:
// the samples and the index entries of new series wait in buffers that are
// flushed about once a second, each on its own timer; and the index's cache
// of tag filters -> series (not the rollup cache that -search.disableCache
// turns off) is reset only every 10 s after such a flush. A query that
// arrives in between caches what it found, say no floor series yet or only
// one cluster's, and every query with those filters gets that answer until
// the reset. vmalert's -replay.rulesDelay is a sleep racing both; so is a
// marker sample (what the harness used to wait for: found once the
// marker's own buffer was flushed, while the index buffer holding the
// rule's new series could still be pending). So each rule is replayed on
// its own, in the file's order, and after each, flush forces every buffer
// into searchable parts and, doing so, resets that cache: the next rule
// finds all of it, every time.
func replay(t *testing.T, base string, from, to time.Time) {
	t.Helper()
	bin := binary(t, "vmalert", vmInstall)
	started := time.Now()
	dir := t.TempDir()
	for _, file := range splitRules(t, dir) {
		out := run(t, 5*time.Minute, "vmalert replay of "+file, bin,
			"-rule="+file,
			"-datasource.url="+base,
			"-remoteWrite.url="+base,
			"-remoteWrite.flushInterval=200ms",
			// The step of replay's range queries: one evaluation a minute, as
			// the group interval says (the default, 5m, records one in five).
			"-datasource.queryStep=1m",
			"-evaluationInterval=1m",
			"-replay.rulesDelay=0s",
			"-replay.maxDatapointsPerQuery=1500",
			"-replay.disableProgressBar",
			"-replay.timeFrom="+from.UTC().Format(time.RFC3339),
			"-replay.timeTo="+to.UTC().Format(time.RFC3339),
			"-httpListenAddr="+loopback(t),
			"-loggerLevel=WARN")
		if os.Getenv("LEAKGUARD_FLEET_VERBOSE") != "" {
			t.Logf("vmalert replay of %s:\n%s", file, out)
		}
		// vmalert's replay exits after its remote write client has sent
		// everything it recorded (it closes the client, which flushes).
		flush(t, base)
	}
	t.Logf("vmalert replay of %v took %v", to.Sub(from), time.Since(started).Round(time.Second))
}

// flush makes everything VictoriaMetrics has received searchable at once:
// /internal/force_flush (VictoriaMetrics' handler for tests) converts the
// buffered samples and index entries into searchable parts before it
// answers and, as a final flush, resets the index's tag-filter cache.
func flush(t *testing.T, base string) {
	t.Helper()
	client := http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(base + "/internal/force_flush")
	if err != nil {
		t.Fatalf("force_flush: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("force_flush: %s: %s", resp.Status, body)
	}
}

// ruleGroup is one group of ruleFile, as read back.
type ruleGroup struct {
	Name  string           `json:"name"`
	Rules []map[string]any `json:"rules"`
}

// ruleFileGroups reads ruleFile's groups, in its order.
func ruleFileGroups(t *testing.T) []ruleGroup {
	t.Helper()
	data, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []ruleGroup `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", ruleFile, err)
	}
	return f.Groups
}

// splitRules writes every rule of the rule file into a file of its own (a
// group of the same name holding that rule alone), in the file's order.
func splitRules(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, g := range ruleFileGroups(t) {
		for _, r := range g.Rules {
			one := map[string]any{"groups": []any{map[string]any{"name": g.Name, "rules": []any{r}}}}
			out, err := yaml.Marshal(one)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, fmt.Sprintf("rule-%02d.yaml", len(files)))
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			files = append(files, path)
		}
	}
	return files
}

// firingAt lists the label sets of the ALERTS series that are firing at
// exactly time at (replay writes one sample per evaluation).
func firingAt(all []exported, at time.Time) []map[string]string {
	var out []map[string]string
	ms := at.UnixMilli()
	for _, e := range all {
		if e.Metric["alertstate"] != "firing" {
			continue
		}
		for i, ts := range e.Timestamps {
			if ts == ms && e.Values[i] == 1 {
				out = append(out, e.Metric)
				break
			}
		}
	}
	return out
}

func describe(ls []map[string]string) string {
	var b bytes.Buffer
	for _, l := range ls {
		fmt.Fprintf(&b, "\n  %s", labelString(l))
	}
	if b.Len() == 0 {
		return " none"
	}
	return b.String()
}
