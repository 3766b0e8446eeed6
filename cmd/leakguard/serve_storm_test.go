package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/server"
	"github.com/leakguard/leakguard/test/stormfixture"
)

// gateQuerier confirms every check, but holds each query until open is
// closed, counting the queries that wait.
type gateQuerier struct {
	open    chan struct{}
	waiting atomic.Int64
}

func (g *gateQuerier) Query(ctx context.Context, q string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	g.waiting.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, nil, nil, ctx.Err()
	}
	return stormfixture.Querier{}.Query(ctx, q, ts, opts...)
}

// waitUntil polls cond every 5 ms for at most 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 6000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out after 30s waiting for %s", what)
}

func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestServeStorm sends 10,000 distinct leak alerts at once, in 100
// payloads of 100 sent concurrently, to serve's handler (not in dry-run)
// over a fake cluster of 1,000 Deployments' pods with the default policy
// (annotate; 10 actions a minute, a burst of 5, shared in the budget
// Lease). With --queue-wait=0, while the first --max-in-flight
// deliveries wait for Prometheus, every other one must be answered 503 at
// once, not queued (TestServeStormQueued has the default's wait);
// retried as Alertmanager retries them, every alert gets exactly one
// decision; the budget holds: 5 actions (annotate patches) in all, the
// rest held rate-limited; and the heap returns to its level before the
// storm. Counts only, no timing.
func TestServeStorm(t *testing.T) {
	const (
		alerts   = 10000
		perBody  = 100
		inFlight = server.DefaultMaxInFlight
	)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	client := stormfixture.Client(stormfixture.Objects(stormfixture.Leak, alerts, now)...)
	var patches atomic.Int64
	client.PrependReactor("patch", "*", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		if a.GetResource().Resource == "deployments" {
			patches.Add(1)
		}
		return false, nil, nil
	})
	reg := builtin.Registry()
	policy, err := remediate.DefaultPolicy(reg)
	if err != nil {
		t.Fatal(err)
	}
	q := &gateQuerier{open: make(chan struct{})}
	_, h, err := buildServe(serveDeps{
		flags:  serveFlags{namespace: "leakguard", server: server.Config{InsecureNoAuth: true, MaxInFlight: inFlight}},
		policy: policy, client: client, querier: q, logger: slog.New(slog.DiscardHandler), registry: reg,
		now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatalf("buildServe: %v", err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	bodies := make([][]byte, alerts/perBody)
	for i := range bodies {
		bodies[i] = stormfixture.Payload(stormfixture.Leak, i*perBody, perBody)
	}
	before := heapAfterGC()

	type answer struct {
		Decisions []remediate.Decision `json:"decisions"`
	}
	var (
		first503, retries atomic.Int64
		answered503       atomic.Int64
		mu                sync.Mutex
		decisions         = map[string]remediate.Decision{}
		duplicates        int
		failures          []string
		wg                sync.WaitGroup
	)
	post := func(body []byte) (int, []byte, error) {
		resp, err := http.Post(srv.URL+server.AlertsPath, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes(), err
	}
	release := make(chan struct{}) // retries start once the gate opens
	for _, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for attempt := 0; attempt < 1000; attempt++ {
				status, data, err := post(b)
				if err == nil && status == http.StatusServiceUnavailable {
					if attempt == 0 {
						first503.Add(1)
					}
					answered503.Add(1)
					retries.Add(1)
					<-release
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				defer mu.Unlock()
				if err != nil || status != http.StatusOK {
					failures = append(failures, fmt.Sprintf("status %d, error %v: %s", status, err, data))
					return
				}
				var ans answer
				if err := json.Unmarshal(data, &ans); err != nil {
					failures = append(failures, err.Error())
					return
				}
				for _, d := range ans.Decisions {
					if _, dup := decisions[d.Fingerprint]; dup {
						duplicates++
					}
					decisions[d.Fingerprint] = d
				}
				return
			}
			mu.Lock()
			failures = append(failures, "still 503 after 1000 attempts")
			mu.Unlock()
		}()
	}
	// The bound: inFlight deliveries wait in their first query, and each
	// of the others is answered 503 while they wait.
	waitUntil(t, fmt.Sprintf("%d deliveries waiting for Prometheus and %d answered 503", inFlight, len(bodies)-inFlight), func() bool {
		return q.waiting.Load() == inFlight && first503.Load() == int64(len(bodies)-inFlight)
	})
	close(q.open)
	close(release)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d deliveries failed, first: %s", len(failures), failures[0])
	}
	if got, want := first503.Load(), int64(len(bodies)-inFlight); got != want {
		t.Errorf("first-round 503s = %d, want %d (all but --max-in-flight)", got, want)
	}
	counts := map[string]int{}
	for _, d := range decisions {
		counts[d.Decision+"/"+d.Reason]++
	}
	if len(decisions) != alerts || duplicates != 0 {
		t.Errorf("decisions for %d distinct alerts, %d duplicates; want %d and 0: %v", len(decisions), duplicates, alerts, counts)
	}
	burst := 5 // the default policy's rateLimit.burst
	if counts[remediate.DecisionActed+"/"] != burst || counts[remediate.DecisionHeld+"/"+remediate.ReasonRateLimited] != alerts-burst {
		t.Errorf("decisions = %v, want %d acted and %d held rate-limited", counts, burst, alerts-burst)
	}
	// Each action is two patches: the cooldown claim, then annotate's.
	if got := patches.Load(); got != 2*int64(burst) {
		t.Errorf("Deployment patches = %d, want %d (two for each of the budget's %d actions)", got, 2*burst, burst)
	}
	lease, err := client.CoordinationV1().Leases("leakguard").Get(context.Background(), remediate.BudgetLeaseName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("budget Lease: %v", err)
	}
	t.Logf("budget Lease: %v; %d retried deliveries", lease.Annotations, retries.Load())

	// The fake keeps every action it saw; what it keeps is not serve's.
	client.ClearActions()
	decisions, bodies = nil, nil
	after := heapAfterGC()
	t.Logf("heap after GC: %.1f MiB before the storm, %.1f MiB after", float64(before)/(1<<20), float64(after)/(1<<20))
	if after > before+16<<20 {
		t.Errorf("heap after GC grew from %.1f MiB to %.1f MiB over the storm, want it back within 16 MiB", float64(before)/(1<<20), float64(after)/(1<<20))
	}
}

// counter reads the value of an unlabelled counter from serve's /metrics.
func counter(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestServeStormQueued is the burst of an Alertmanager restart (200
// deliveries at once) against serve's handler with --queue-wait: while
// the first --max-in-flight deliveries wait for Prometheus, the other 192
// wait for a slot instead of being answered 503, and once Prometheus
// answers every delivery is answered 200 with one decision per alert. A
// sustained overload (Prometheus held beyond the wait) is still answered
// 503 with Retry-After after the wait, without reaching the engine. The
// gate and the counters order the steps; no duration is asserted.
func TestServeStormQueued(t *testing.T) {
	const (
		deliveries = 200
		perBody    = 10
		inFlight   = server.DefaultMaxInFlight
	)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	start := func(t *testing.T, wait time.Duration) (*httptest.Server, *gateQuerier) {
		t.Helper()
		reg := builtin.Registry()
		policy, err := remediate.DefaultPolicy(reg)
		if err != nil {
			t.Fatal(err)
		}
		q := &gateQuerier{open: make(chan struct{})}
		_, h, err := buildServe(serveDeps{
			flags:  serveFlags{namespace: "leakguard", server: server.Config{InsecureNoAuth: true, MaxInFlight: inFlight, QueueWait: wait}},
			policy: policy, client: stormfixture.Client(stormfixture.Objects(stormfixture.Leak, deliveries*perBody, now)...), querier: q,
			logger: slog.New(slog.DiscardHandler), registry: reg, now: func() time.Time { return now },
		})
		if err != nil {
			t.Fatalf("buildServe: %v", err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv, q
	}
	type result struct {
		status     int
		retryAfter string
		decisions  []remediate.Decision
		err        error
	}
	post := func(url string, body []byte) result {
		resp, err := http.Post(url+server.AlertsPath, "application/json", bytes.NewReader(body))
		if err != nil {
			return result{err: err}
		}
		defer resp.Body.Close()
		var ans struct {
			Decisions []remediate.Decision `json:"decisions"`
		}
		r := result{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
		if resp.StatusCode == http.StatusOK {
			r.err = json.NewDecoder(resp.Body).Decode(&ans)
			r.decisions = ans.Decisions
		}
		return r
	}
	burst := func(url string, n int) <-chan result {
		results := make(chan result, n)
		for i := range n {
			go func() { results <- post(url, stormfixture.Payload(stormfixture.Leak, i*perBody, perBody)) }()
		}
		return results
	}

	t.Run("a burst is absorbed", func(t *testing.T) {
		// A wait far longer than the burst needs on a loaded machine:
		// what is shown is that the deliveries wait, not how long.
		srv, q := start(t, time.Minute)
		results := burst(srv.URL, deliveries)
		waitUntil(t, fmt.Sprintf("%d deliveries waiting for Prometheus and %d for a slot", inFlight, deliveries-inFlight), func() bool {
			return q.waiting.Load() == inFlight && counter(t, srv.URL, "leakguard_deliveries_waited_total") == deliveries-inFlight
		})
		close(q.open)
		codes := map[int]int{}
		seen := map[string]bool{}
		for range deliveries {
			r := <-results
			if r.err != nil {
				t.Fatalf("delivery: %v", r.err)
			}
			codes[r.status]++
			for _, d := range r.decisions {
				seen[d.Fingerprint] = true
			}
		}
		if codes[http.StatusOK] != deliveries || len(seen) != deliveries*perBody {
			t.Errorf("answers %v with decisions for %d alerts, want %d of 200 and %d alerts decided", codes, len(seen), deliveries, deliveries*perBody)
		}
		if got := counter(t, srv.URL, "leakguard_deliveries_rejected_total"); got != 0 {
			t.Errorf("rejected %v deliveries of the burst, want 0", got)
		}
	})

	t.Run("a sustained overload is pushed back", func(t *testing.T) {
		// Prometheus holds the deliveries in flight beyond the wait.
		srv, q := start(t, 50*time.Millisecond)
		held := burst(srv.URL, inFlight)
		waitUntil(t, fmt.Sprintf("%d deliveries waiting for Prometheus", inFlight), func() bool { return q.waiting.Load() == inFlight })
		const more = 32
		pushed := make(chan result, more)
		for i := range more {
			go func() {
				pushed <- post(srv.URL, stormfixture.Payload(stormfixture.Leak, (inFlight+i)*perBody, perBody))
			}()
		}
		codes := map[int]int{}
		for range more {
			r := <-pushed
			if r.err != nil {
				t.Fatalf("delivery: %v", r.err)
			}
			if r.status == http.StatusServiceUnavailable && r.retryAfter == "" {
				t.Error("a 503 without Retry-After")
			}
			codes[r.status]++
		}
		if codes[http.StatusServiceUnavailable] != more {
			t.Errorf("answers to the overload %v, want %d of 503", codes, more)
		}
		if w, r := counter(t, srv.URL, "leakguard_deliveries_waited_total"), counter(t, srv.URL, "leakguard_deliveries_rejected_total"); w != more || r != more {
			t.Errorf("waited %v, rejected %v; want %d and %d", w, r, more, more)
		}
		if got := q.waiting.Load(); got != inFlight {
			t.Errorf("%d queries reached Prometheus, want only the %d deliveries in flight", got, inFlight)
		}
		close(q.open)
		for range inFlight {
			if r := <-held; r.err != nil || r.status != http.StatusOK {
				t.Errorf("held delivery = %d (%v), want 200 once Prometheus answers", r.status, r.err)
			}
		}
	})
}
