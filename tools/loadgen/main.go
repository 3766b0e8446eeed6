// Command loadgen measures the webhook receiver under load, over loopback
// only: the receiver as serve builds it (server.NewHandler over the
// remediation engine, default policy, dry-run, bearer authentication,
// metrics) against an in-process fake cluster and Prometheus
// (test/stormfixture), and in the same run the decode-only reference
// (newReferenceHandler, reference.go) with the same payloads. Each handler runs
// in a child process of its own (this program, re-executed with -child), so
// that its resident memory (VmHWM, VmRSS) is its own and not the load
// generator's.
//
// Every run is bounded in requests and in time:
//
//	go run ./tools/loadgen                 # the whole run, about 2 minutes
//	go run ./tools/loadgen -quick          # a shorter one
//
// It prints Markdown tables for docs/performance.md.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/server"
	"github.com/leakguard/leakguard/test/stormfixture"
)

// Alerts of each held kind cycle over heldAlerts pods, leak alerts over
// leakAlerts workloads.
const (
	heldAlerts = 1000
	leakAlerts = 10000
	token      = "loadgen-token"
)

// cpuProfile is -cpuprofile.
var cpuProfile string

// sizes are the throughput run's payload sizes (-sizes).
var sizes = []int{1, 10, 100}

func main() {
	child := flag.String("child", "", "internal: serve this handler (leakguard or reference) and print its address")
	tokenFile := flag.String("token-file", "", "internal: the child's bearer token file")
	quick := flag.Bool("quick", false, "shorter runs (a tenth of the requests and time)")
	only := flag.String("only", "", "run only these parts, comma-separated: throughput, rate, storm")
	kinds := flag.String("kinds", "", "throughput: only these alert kinds, comma-separated")
	sizesFlag := flag.String("sizes", "", "throughput: only these payload sizes (alerts), comma-separated; default 1,10,100")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write the leakguard child's CPU profile to this file")
	flag.Parse()
	if *kinds != "" {
		stormfixture.Kinds = nil
		for _, k := range strings.Split(*kinds, ",") {
			stormfixture.Kinds = append(stormfixture.Kinds, stormfixture.Kind(k))
		}
	}
	if *sizesFlag != "" {
		sizes = nil
		for _, f := range strings.Split(*sizesFlag, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				log.Fatalf("-sizes: %q is not a payload size", f)
			}
			sizes = append(sizes, n)
		}
	}
	if *child != "" {
		if cpuProfile != "" {
			f, err := os.Create(cpuProfile)
			if err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				log.Fatal(err)
			}
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
		if err := runChild(*child, *tokenFile); err != nil {
			log.Fatal(err)
		}
		return
	}
	scale := 1.0
	if *quick {
		scale = 0.1
	}
	parts := map[string]bool{"throughput": true, "rate": true, "storm": true}
	if *only != "" {
		parts = map[string]bool{}
		for _, p := range strings.Split(*only, ",") {
			parts[p] = true
		}
	}
	if err := run(scale, parts); err != nil {
		log.Fatal(err)
	}
}

// runChild serves one handler on a loopback port until stdin closes.
func runChild(which, tokenFile string) error {
	var h http.Handler
	switch which {
	case "reference":
		h = newReferenceHandler()
	case "leakguard":
		var err error
		if h, err = leakguardHandler(tokenFile); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown handler %q", which)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return server.ServeListener(ctx, ln, server.Config{}, h, logger)
}

// leakguardHandler builds what serve's buildServe builds: one registry
// with the Go and process collectors, the engine in dry-run over the
// fake cluster and Prometheus, the handler with bearer authentication.
// Logs are JSON, as in production, to a discarded writer.
func leakguardHandler(tokenFile string) (http.Handler, error) {
	reg := builtin.Registry()
	policy, err := remediate.DefaultPolicy(reg)
	if err != nil {
		return nil, err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	engine, err := remediate.NewEngine(remediate.Options{
		Client: stormfixture.Generated(time.Now()), Querier: stormfixture.Querier{}, Policy: policy,
		Namespace: "leakguard", DryRun: true, Logger: logger, Registerer: metrics,
	})
	if err != nil {
		return nil, err
	}
	cfg := server.Config{BearerTokenFile: tokenFile, Registerer: metrics}
	cfg.KnownAlertName = func(name string) bool { return engine.Policy().Entry(name) != nil }
	return server.NewHandler(cfg, server.ProcessorFunc(func(ctx context.Context, msg *server.Message) (any, error) {
		ds, err := engine.Decide(ctx, msg.Alerts)
		if remediate.IsTransient(err) {
			return nil, err
		}
		return ds, nil
	}), logger)
}

// child is a running handler process.
type child struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

func startChild(which, tokenFile string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-child", which, "-token-file", tokenFile}
	if cpuProfile != "" && which == "leakguard" {
		args = append(args, "-cpuprofile", cpuProfile)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		return nil, fmt.Errorf("child %s: %w", which, err)
	}
	c := &child{name: which, cmd: cmd, stdin: stdin, url: "http://" + strings.TrimSpace(line) + server.AlertsPath}
	return c, nil
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// status reads one "Key: N kB" field of the child's /proc status, in MiB.
func (c *child) status(key string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpu returns the child's user and system CPU time so far, from
// /proc/<pid>/stat (in clock ticks of 10 ms).
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

var client = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
}

// result of one request. The answer is kept as it came and decoded
// (decide) after the timed loop: the load generator shares the machine's
// cores with the handler, and decoding leakguard's answers (a decision
// per alert, where the reference answers {"status":"ok"}) inside the loop
// would take from leakguard's share alone.
type result struct {
	status    int
	latency   time.Duration
	body      []byte
	decisions map[string]int // decision/reason → count
}

// decide counts the decisions of a 200 answer.
func (r *result) decide() {
	if r.status != http.StatusOK || r.body == nil {
		return
	}
	var ans struct {
		Decisions []struct{ Decision, Reason string }
	}
	if err := json.Unmarshal(r.body, &ans); err == nil {
		r.decisions = map[string]int{}
		for _, d := range ans.Decisions {
			r.decisions[d.Decision+"/"+d.Reason]++
		}
	}
	r.body = nil
}

func post(url string, body []byte) (result, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return result{}, err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r := result{status: resp.StatusCode, latency: time.Since(start), body: data}
	return r, err
}

// payloads returns count payloads of size alerts of kind k, cycling over
// the fixture's alerts of that kind.
func payloads(k stormfixture.Kind, size, count int) [][]byte {
	n := heldAlerts
	if k == stormfixture.Leak {
		n = leakAlerts
	}
	var out [][]byte
	for j := range min(count, n/size) {
		out = append(out, stormfixture.Payload(k, j*size, size))
	}
	return out
}

// stats summarises a run.
type stats struct {
	requests, alerts, non200 int
	elapsed                  time.Duration
	lat                      []time.Duration
	decisions                map[string]int
	// answers are the 200 answers not yet counted (count).
	answers []result
}

func (s *stats) add(r result, alerts int) {
	s.requests++
	if r.status != http.StatusOK {
		s.non200++
	} else {
		s.alerts += alerts
		s.answers = append(s.answers, r)
	}
	s.lat = append(s.lat, r.latency)
}

// count decodes the answers kept by add into the decision counts; the
// timed loops call it once they are timed.
func (s *stats) count() {
	for i := range s.answers {
		s.answers[i].decide()
		for k, v := range s.answers[i].decisions {
			s.decisions[k] += v
		}
	}
	s.answers = nil
}

func (s *stats) merge(o *stats) {
	s.requests += o.requests
	s.alerts += o.alerts
	s.non200 += o.non200
	s.elapsed += o.elapsed
	s.lat = append(s.lat, o.lat...)
	for k, v := range o.decisions {
		s.decisions[k] += v
	}
}

func (s *stats) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	slices.Sort(s.lat)
	i := int(p/100*float64(len(s.lat))+0.5) - 1
	return s.lat[max(0, min(i, len(s.lat)-1))]
}

func (s *stats) perSecond() float64 { return float64(s.alerts) / s.elapsed.Seconds() }

func (s *stats) decisionSummary() string {
	var keys []string
	for k := range s.decisions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimSuffix(k, "/"), s.decisions[k]))
	}
	return strings.Join(parts, ", ")
}

// closedLoop sends the bodies round-robin from workers concurrent
// clients, at most maxRequests requests and for at most maxTime.
func closedLoop(url string, bodies [][]byte, size, workers, maxRequests int, maxTime time.Duration) (*stats, error) {
	st := &stats{decisions: map[string]int{}}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
		errc = make(chan error, workers)
	)
	deadline := time.Now().Add(maxTime)
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i >= maxRequests {
					return
				}
				r, err := post(url, bodies[i%len(bodies)])
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				st.add(r, size)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	st.count()
	select {
	case err := <-errc:
		return st, err
	default:
	}
	return st, nil
}

// openLoop sends requests at rate per second, whatever the answers'
// latency, for count requests (at most 256 outstanding).
func openLoop(url string, bodies [][]byte, size, rate, count int) (*stats, error) {
	st := &stats{decisions: map[string]int{}}
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		sem      = make(chan struct{}, 256)
	)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := range count {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := post(url, bodies[i%len(bodies)])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				firstErr = cmpErr(firstErr, err)
				return
			}
			st.add(r, size)
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	st.count()
	return st, firstErr
}

func cmpErr(old, err error) error {
	if old != nil {
		return old
	}
	return err
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func run(scale float64, parts map[string]bool) error {
	dir, err := os.MkdirTemp("", "leakguard-loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		return err
	}
	// Dated a minute back, as a mounted Secret is older than the process
	// that reads it: the receiver re-reads a credentials file modified in
	// the last 2 s (server.racyWindow) at every request, which would fall
	// on leakguard's first rows alone.
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(tokenFile, past, past); err != nil {
		return err
	}
	host, _ := os.Hostname()
	fmt.Printf("loadgen on %s: %d CPUs (GOMAXPROCS %d), %s, %s\n\n", host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	n := func(x int) int { return max(1, int(float64(x)*scale)) }
	dur := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }

	defer func() { fmt.Printf("load average at the end: %s\n", loadavg()) }()
	fmt.Printf("load average at the start: %s\n\n", loadavg())
	if parts["throughput"] {
		if err := throughput(tokenFile, n, dur); err != nil {
			return err
		}
	}
	if parts["rate"] {
		if err := rateRun(tokenFile, n); err != nil {
			return err
		}
	}
	if parts["storm"] {
		if err := storm(tokenFile); err != nil {
			return err
		}
	}
	return nil
}

// throughput: closed loop, 4 clients, every kind and size, both handlers
// in turn on the same payloads.
func throughput(tokenFile string, n func(int) int, dur func(time.Duration) time.Duration) error {
	ref, err := startChild("reference", tokenFile)
	if err != nil {
		return err
	}
	defer ref.stop()
	lg, err := startChild("leakguard", tokenFile)
	if err != nil {
		return err
	}
	defer lg.stop()
	fmt.Println("| alerts | payload | handler | requests | alerts/s | p50 | p99 | p99.9 | server CPU per alert | ratio to reference: CPU per alert | ratio: alerts/s | decisions |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	const rounds = 5
	for _, k := range stormfixture.Kinds {
		for _, size := range sizes {
			bodies := payloads(k, size, 1000)
			reqs := n(max(200, 40000/size))
			// Warm both (connections, caches), then measure in rounds
			// that alternate the handlers, on the same payloads, so that
			// a change in the load other processes put on the machine
			// falls on both.
			for _, c := range []*child{ref, lg} {
				if _, err := closedLoop(c.url, bodies, size, 4, min(reqs, 50), 10*time.Second); err != nil {
					return fmt.Errorf("warm %s: %w", c.name, err)
				}
			}
			total := map[*child]*stats{ref: {decisions: map[string]int{}}, lg: {decisions: map[string]int{}}}
			cpu := map[*child]time.Duration{}
			for round := range rounds {
				// Each round the other handler goes first, so that a load
				// that rises or falls within a round falls on both alike.
				order := []*child{ref, lg}
				if round%2 == 1 {
					order = []*child{lg, ref}
				}
				for _, c := range order {
					before := c.cpu()
					st, err := closedLoop(c.url, bodies, size, 4, reqs/rounds, dur(10*time.Second)/rounds)
					if err != nil {
						return fmt.Errorf("%s %s/%d: %w", c.name, k, size, err)
					}
					cpu[c] += c.cpu() - before
					total[c].merge(st)
				}
			}
			cpuPer := func(c *child) float64 { return float64(cpu[c].Microseconds()) / float64(total[c].alerts) }
			for _, c := range []*child{ref, lg} {
				st := total[c]
				cpuRatio, rateRatio := "–", "–"
				if c == lg {
					cpuRatio = fmt.Sprintf("%.2fx", cpuPer(lg)/cpuPer(ref))
					rateRatio = fmt.Sprintf("%.2fx", total[ref].perSecond()/st.perSecond())
				}
				fmt.Printf("| %s | %d | %s | %d | %.0f | %s | %s | %s | %.1f µs | %s | %s | %s |\n", k, size, c.name, st.requests, st.perSecond(),
					ms(st.pct(50)), ms(st.pct(99)), ms(st.pct(99.9)), cpuPer(c), cpuRatio, rateRatio, st.decisionSummary())
			}
		}
	}
	fmt.Printf("\npeak resident (VmHWM): reference %.1f MiB, leakguard %.1f MiB\n\n", ref.status("VmHWM"), lg.status("VmHWM"))
	return nil
}

// rateRun: open loop, 500 requests per second of 10-alert payloads.
func rateRun(tokenFile string, n func(int) int) error {
	fmt.Println("| alerts | rate | handler | requests | p50 | p99 | p99.9 | max | non-200 | decisions |")
	fmt.Println("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
	for _, k := range []stormfixture.Kind{stormfixture.Cooldown, stormfixture.Leak} {
		for _, which := range []string{"reference", "leakguard"} {
			c, err := startChild(which, tokenFile)
			if err != nil {
				return err
			}
			bodies := payloads(k, 10, 1000)
			if _, err := closedLoop(c.url, bodies, 10, 4, 200, 10*time.Second); err != nil {
				c.stop()
				return err
			}
			count := n(5000) // 10 s at 500/s
			st, err := openLoop(c.url, bodies, 10, 500, count)
			c.stop()
			if err != nil {
				return fmt.Errorf("%s %s at 500/s: %w", which, k, err)
			}
			fmt.Printf("| %s | 500/s × 10 alerts | %s | %d | %s | %s | %s | %s | %d | %s |\n", k, which, st.requests,
				ms(st.pct(50)), ms(st.pct(99)), ms(st.pct(99.9)), ms(st.pct(100)), st.non200, st.decisionSummary())
		}
	}
	fmt.Println()
	return nil
}

// storm: 10,000 distinct leak alerts in 100 payloads of 100, all sent at
// once; a 503 (the in-flight bound) is retried after 100 ms, as
// Alertmanager retries with its backoff, at most 200 times.
func storm(tokenFile string) error {
	fmt.Println("| handler | idle VmRSS | peak VmHWM | VmRSS 10 s after | heap in use after | first-round 503s | retries | alerts decided | time | decisions |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
	bodies := payloads(stormfixture.Leak, 100, 100)
	for _, which := range []string{"reference", "leakguard"} {
		c, err := startChild(which, tokenFile)
		if err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		idle := c.status("VmRSS")
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			first503  atomic.Int64
			retries   atomic.Int64
			decided   int
			decisions = map[string]int{}
			errs      []error
		)
		start := time.Now()
		for _, b := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for attempt := 0; attempt < 200; attempt++ {
					r, err := post(c.url, b)
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						return
					}
					if r.status == http.StatusServiceUnavailable {
						if attempt == 0 {
							first503.Add(1)
						}
						retries.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
					r.decide()
					mu.Lock()
					defer mu.Unlock()
					for k, v := range r.decisions {
						decisions[k] += v
						decided += v
					}
					if r.status != http.StatusOK && which == "leakguard" {
						errs = append(errs, fmt.Errorf("status %d", r.status))
					}
					return
				}
				mu.Lock()
				errs = append(errs, errors.New("still 503 after 200 attempts"))
				mu.Unlock()
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		peak := c.status("VmHWM")
		time.Sleep(10 * time.Second)
		after := c.status("VmRSS")
		heap := "–"
		if which == "leakguard" {
			heap = heapInUse(strings.TrimSuffix(c.url, server.AlertsPath) + "/metrics")
		}
		c.stop()
		if len(errs) > 0 {
			return fmt.Errorf("storm against %s: %v", which, errors.Join(errs...))
		}
		st := &stats{decisions: decisions}
		fmt.Printf("| %s | %.1f MiB | %.1f MiB | %.1f MiB | %s | %d | %d | %d | %s | %s |\n", which, idle, peak, after, heap,
			first503.Load(), retries.Load(), decided, elapsed.Round(time.Millisecond), st.decisionSummary())
	}
	fmt.Println()
	return nil
}

// loadavg is /proc/loadavg's first three fields: how busy the machine
// was (other processes' load changes every figure but the ratios).
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// heapInUse scrapes go_memstats_heap_inuse_bytes from /metrics.
func heapInUse(url string) string {
	resp, err := client.Get(url)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return fmt.Sprintf("%.1f MiB", f/(1<<20))
		}
	}
	return "?"
}
