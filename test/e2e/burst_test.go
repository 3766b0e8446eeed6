package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/alertmanager/template"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/server"
)

// heldQuerier confirms every check once open is closed, counting the
// queries that reached it.
type heldQuerier struct {
	open    chan struct{}
	queries atomic.Int64
}

func (q *heldQuerier) Query(ctx context.Context, query string, ts time.Time, opts ...v1.Option) (model.Value, v1.Warnings, v1.Infos, error) {
	q.queries.Add(1)
	select {
	case <-q.open:
	case <-ctx.Done():
		return nil, nil, nil, ctx.Err()
	}
	return (&answerQuerier{value: confirmingValue}).Query(ctx, query, ts, opts...)
}

const burstPolicy = `
rateLimit: {perMinute: 600, burst: 100}
alerts:
  ContainerMemoryLeak:
    target: pod
    check: {name: working-set-slope}
    remediators:
      - name: annotate
`

// counterIn is the value of the unlabelled counter name in reg.
func counterIn(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// The webhook receiver in front of the engine on the real API server (as
// leakguard's service account, dry-run): a burst of 200 deliveries at
// once, while the first --max-in-flight wait for Prometheus, waits for
// slots (--queue-wait) and is answered 200 throughout, a decision per
// alert; with Prometheus held beyond the wait, the deliveries beyond the
// slots are answered 503 with Retry-After and never reach the engine.
// Dry-run: no object of the world is written. The held Prometheus and the
// counters order the steps; no duration is asserted.
func TestWebhookBurst(t *testing.T) {
	const (
		deliveries = 200
		inFlight   = server.DefaultMaxInFlight
	)
	ctx := testContext(t)
	w := newWorld(t)
	admin := needLab(t).Admin
	before := w.objectVersions(ctx, t, admin)
	start := func(t *testing.T, wait time.Duration) (string, *heldQuerier, *prometheus.Registry) {
		t.Helper()
		q := &heldQuerier{open: make(chan struct{})}
		e := newEngineWithPolicy(t, leakguardClient(t), burstPolicy, budgetNamespace(t), func(o *remediate.Options) {
			o.Querier, o.DryRun = q, true
		})
		reg := prometheus.NewRegistry()
		h, err := server.NewHandler(server.Config{InsecureNoAuth: true, MaxInFlight: inFlight, QueueWait: wait, Registerer: reg},
			server.ProcessorFunc(func(ctx context.Context, msg *server.Message) (any, error) { return e.Decide(ctx, msg.Alerts) }),
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		t.Cleanup(func() {
			select {
			case <-q.open:
			default:
				close(q.open)
			}
		})
		return srv.URL, q, reg
	}
	type result struct {
		status     int
		retryAfter string
		decisions  int
		err        error
	}
	post := func(url string, i int) result {
		a := alert("ContainerMemoryLeak", map[string]string{"namespace": w.Namespace, "pod": w.Pod, "container": "app", "node": w.Node})
		a.Fingerprint = fmt.Sprintf("e2e-burst-%d", i)
		body, err := json.Marshal(server.Message{Data: &template.Data{Receiver: "leakguard", Status: "firing", Alerts: template.Alerts{a}}, Version: "4", GroupKey: fmt.Sprintf("{}:{burst=%d}", i)})
		if err != nil {
			return result{err: err}
		}
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
			r.decisions = len(ans.Decisions)
		}
		return r
	}
	send := func(url string, from, n int) <-chan result {
		results := make(chan result, n)
		for i := range n {
			go func() { results <- post(url, from+i) }()
		}
		return results
	}
	poll := func(t *testing.T, what string, cond func() bool) {
		t.Helper()
		for range 1200 {
			if cond() {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("timed out after 60s waiting for %s", what)
	}

	t.Run("a burst is absorbed", func(t *testing.T) {
		// A wait far longer than the burst needs on a loaded machine.
		url, q, reg := start(t, 2*time.Minute-time.Second)
		results := send(url, 0, deliveries)
		poll(t, fmt.Sprintf("%d deliveries in Prometheus and %d waiting for a slot", inFlight, deliveries-inFlight), func() bool {
			return q.queries.Load() == inFlight && counterIn(t, reg, "leakguard_deliveries_waited_total") == deliveries-inFlight
		})
		close(q.open)
		codes, decided := map[int]int{}, 0
		for range deliveries {
			r := <-results
			if r.err != nil {
				t.Fatalf("delivery: %v", r.err)
			}
			codes[r.status]++
			decided += r.decisions
		}
		if codes[http.StatusOK] != deliveries || decided != deliveries {
			t.Errorf("answers %v with %d decisions, want %d of 200 and a decision each", codes, decided, deliveries)
		}
		if got := counterIn(t, reg, "leakguard_deliveries_rejected_total"); got != 0 {
			t.Errorf("%v deliveries of the burst rejected, want 0", got)
		}
	})

	t.Run("a sustained overload is pushed back", func(t *testing.T) {
		url, q, reg := start(t, 100*time.Millisecond)
		held := send(url, 1000, inFlight)
		poll(t, fmt.Sprintf("%d deliveries in Prometheus", inFlight), func() bool { return q.queries.Load() == inFlight })
		const more = 16
		pushed := send(url, 2000, more)
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
		if codes[http.StatusServiceUnavailable] != more || q.queries.Load() != inFlight {
			t.Errorf("answers to the overload %v after %d queries, want %d of 503 and only the %d in flight queried", codes, q.queries.Load(), more, inFlight)
		}
		if got := counterIn(t, reg, "leakguard_deliveries_rejected_total"); got != more {
			t.Errorf("rejected %v, want %d", got, more)
		}
		close(q.open)
		for range inFlight {
			if r := <-held; r.err != nil || r.status != http.StatusOK {
				t.Errorf("held delivery = %d (%v), want 200 once Prometheus answers", r.status, r.err)
			}
		}
	})

	if diff := cmp.Diff(before, w.objectVersions(ctx, t, admin)); diff != "" {
		t.Errorf("dry-run wrote the world's objects (-before +after):\n%s", diff)
	}
}
