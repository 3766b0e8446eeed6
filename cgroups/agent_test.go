package cgroups

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scriptedScanner returns its results in order, the last one forever. When
// block is set, Scan waits on it first.
type scriptedScanner struct {
	results []Result
	block   chan struct{}
	entered chan struct{}
}

func (s *scriptedScanner) Scan() Result {
	if s.block != nil {
		s.entered <- struct{}{}
		<-s.block
	}
	r := s.results[0]
	if len(s.results) > 1 {
		s.results = s.results[1:]
	}
	return r
}

func newTestAgent(t *testing.T, s scanner, clock *fakeClock, max int) *Agent {
	t.Helper()
	a, err := NewAgent(AgentOptions{Node: "node-a", Interval: time.Minute, MaxListedOrphans: max, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)}, s)
	if err != nil {
		t.Fatalf("NewAgent() error: %v", err)
	}
	return a
}

var agentMetrics = []string{metricOrphans, metricCgroups, metricDying, metricScanErrors}

func orphans(n int) []Orphan {
	var o []Orphan
	for i := range n {
		o = append(o, Orphan{Path: "/kubepods/pod" + uid(i), PodUID: uid(i), QoS: qosBurstable, FirstSeen: time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC)})
	}
	return o
}

func TestAgentMetrics(t *testing.T) {
	v2 := Result{Version: V2, OrphansKnown: true, Orphans: orphans(3), Cgroups: map[string]int{UnifiedController: 1234}, Dying: 56, DyingKnown: true, Duration: 20 * time.Millisecond}
	v1 := Result{Version: V1, OrphansKnown: true, Orphans: orphans(1), Cgroups: map[string]int{"memory": 90, "cpu": 80}, Dying: 17, DyingKnown: true, Duration: 3 * time.Millisecond}
	v1Unknown := Result{Version: V1, OrphansKnown: true, Orphans: orphans(1), Cgroups: map[string]int{"memory": 90, "cpu": 80}, Duration: 3 * time.Millisecond}
	failed := Result{Version: V2, Cgroups: map[string]int{UnifiedController: 1200}, Dying: 60, DyingKnown: true, Err: errors.New("orphans: no kubepods"), Duration: time.Millisecond}
	for _, tc := range []struct {
		name    string
		results []Result
		want    string
	}{
		{
			name:    "before the first scan only the error counter",
			results: nil,
			want: `
# HELP leakguard_node_cgroup_scan_errors_total Scans of the node's cgroup tree that failed in whole or in part.
# TYPE leakguard_node_cgroup_scan_errors_total counter
leakguard_node_cgroup_scan_errors_total{node="node-a"} 0
`,
		},
		{
			name:    "v2",
			results: []Result{v2},
			want: `
# HELP leakguard_node_cgroup_scan_errors_total Scans of the node's cgroup tree that failed in whole or in part.
# TYPE leakguard_node_cgroup_scan_errors_total counter
leakguard_node_cgroup_scan_errors_total{node="node-a"} 0
# HELP leakguard_node_cgroups Live cgroups per controller: num_cgroups of /proc/cgroups on cgroup v1, the number of cgroup directories on v2 (controller="unified").
# TYPE leakguard_node_cgroups gauge
leakguard_node_cgroups{controller="unified",node="node-a"} 1234
# HELP leakguard_node_dying_cgroups Removed cgroups the kernel has not freed yet: nr_dying_descendants of the root cgroup on v2; on v1 the memory controller's num_cgroups minus its live cgroup directories.
# TYPE leakguard_node_dying_cgroups gauge
leakguard_node_dying_cgroups{node="node-a"} 56
# HELP leakguard_node_orphan_cgroups Pod-level cgroups under kubepods whose pod UID is not a pod bound to this node and which hold no process, seen so for at least the grace period.
# TYPE leakguard_node_orphan_cgroups gauge
leakguard_node_orphan_cgroups{node="node-a"} 3
`,
		},
		{
			name:    "v1",
			results: []Result{v1},
			want: `
# HELP leakguard_node_cgroup_scan_errors_total Scans of the node's cgroup tree that failed in whole or in part.
# TYPE leakguard_node_cgroup_scan_errors_total counter
leakguard_node_cgroup_scan_errors_total{node="node-a"} 0
# HELP leakguard_node_cgroups Live cgroups per controller: num_cgroups of /proc/cgroups on cgroup v1, the number of cgroup directories on v2 (controller="unified").
# TYPE leakguard_node_cgroups gauge
leakguard_node_cgroups{controller="cpu",node="node-a"} 80
leakguard_node_cgroups{controller="memory",node="node-a"} 90
# HELP leakguard_node_dying_cgroups Removed cgroups the kernel has not freed yet: nr_dying_descendants of the root cgroup on v2; on v1 the memory controller's num_cgroups minus its live cgroup directories.
# TYPE leakguard_node_dying_cgroups gauge
leakguard_node_dying_cgroups{node="node-a"} 17
# HELP leakguard_node_orphan_cgroups Pod-level cgroups under kubepods whose pod UID is not a pod bound to this node and which hold no process, seen so for at least the grace period.
# TYPE leakguard_node_orphan_cgroups gauge
leakguard_node_orphan_cgroups{node="node-a"} 1
`,
		},
		{
			name:    "a v1 scan whose dying count is unknown has no dying gauge",
			results: []Result{v1, v1Unknown},
			want: `
# HELP leakguard_node_cgroup_scan_errors_total Scans of the node's cgroup tree that failed in whole or in part.
# TYPE leakguard_node_cgroup_scan_errors_total counter
leakguard_node_cgroup_scan_errors_total{node="node-a"} 0
# HELP leakguard_node_cgroups Live cgroups per controller: num_cgroups of /proc/cgroups on cgroup v1, the number of cgroup directories on v2 (controller="unified").
# TYPE leakguard_node_cgroups gauge
leakguard_node_cgroups{controller="cpu",node="node-a"} 80
leakguard_node_cgroups{controller="memory",node="node-a"} 90
# HELP leakguard_node_orphan_cgroups Pod-level cgroups under kubepods whose pod UID is not a pod bound to this node and which hold no process, seen so for at least the grace period.
# TYPE leakguard_node_orphan_cgroups gauge
leakguard_node_orphan_cgroups{node="node-a"} 1
`,
		},
		{
			name:    "a failed scan counts and drops what it could not judge",
			results: []Result{v2, failed},
			want: `
# HELP leakguard_node_cgroup_scan_errors_total Scans of the node's cgroup tree that failed in whole or in part.
# TYPE leakguard_node_cgroup_scan_errors_total counter
leakguard_node_cgroup_scan_errors_total{node="node-a"} 1
# HELP leakguard_node_cgroups Live cgroups per controller: num_cgroups of /proc/cgroups on cgroup v1, the number of cgroup directories on v2 (controller="unified").
# TYPE leakguard_node_cgroups gauge
leakguard_node_cgroups{controller="unified",node="node-a"} 1200
# HELP leakguard_node_dying_cgroups Removed cgroups the kernel has not freed yet: nr_dying_descendants of the root cgroup on v2; on v1 the memory controller's num_cgroups minus its live cgroup directories.
# TYPE leakguard_node_dying_cgroups gauge
leakguard_node_dying_cgroups{node="node-a"} 60
`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptedScanner{results: tc.results}
			a := newTestAgent(t, s, newFakeClock(), 0)
			for range tc.results {
				a.ScanOnce()
			}
			if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(tc.want), agentMetrics...); err != nil {
				t.Errorf("metrics after %d scans: %v", len(tc.results), err)
			}
		})
	}
}

func TestAgentScanDurationHistogram(t *testing.T) {
	s := &scriptedScanner{results: []Result{{Duration: 20 * time.Millisecond}, {Duration: 200 * time.Millisecond}}}
	a := newTestAgent(t, s, newFakeClock(), 0)
	a.ScanOnce()
	a.ScanOnce()
	want := `
# HELP leakguard_node_cgroup_scan_duration_seconds Time of one scan of the node's cgroup tree.
# TYPE leakguard_node_cgroup_scan_duration_seconds histogram
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.001"} 0
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.0025"} 0
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.005"} 0
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.01"} 0
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.025"} 1
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.05"} 1
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.1"} 1
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.25"} 2
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="0.5"} 2
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="1"} 2
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="2.5"} 2
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="5"} 2
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="10"} 2
leakguard_node_cgroup_scan_duration_seconds_bucket{node="node-a",le="+Inf"} 2
leakguard_node_cgroup_scan_duration_seconds_sum{node="node-a"} 0.22
leakguard_node_cgroup_scan_duration_seconds_count{node="node-a"} 2
`
	if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(want), metricScanDuration); err != nil {
		t.Error(err)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestAgentOrphansEndpoint(t *testing.T) {
	scanned := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		results []Result
		max     int
		want    OrphanList
	}{
		{
			name: "before the first scan",
			max:  2,
			want: OrphanList{Node: "node-a", Orphans: []Orphan{}},
		},
		{
			name:    "bounded list",
			results: []Result{{Start: scanned, OrphansKnown: true, Orphans: orphans(3), Pending: 4, Removed: 2}},
			max:     2,
			want:    OrphanList{Node: "node-a", ScannedAt: &scanned, Known: true, Total: 3, Truncated: true, Orphans: orphans(2), Pending: 4, RemovedTotal: 2},
		},
		{
			name:    "under the bound",
			results: []Result{{Start: scanned, OrphansKnown: true, Orphans: orphans(1)}},
			max:     2,
			want:    OrphanList{Node: "node-a", ScannedAt: &scanned, Known: true, Total: 1, Orphans: orphans(1)},
		},
		{
			name:    "failed scan",
			results: []Result{{Start: scanned, Err: ErrPodsNotSynced}},
			max:     2,
			want:    OrphanList{Node: "node-a", ScannedAt: &scanned, Orphans: []Orphan{}, Error: ErrPodsNotSynced.Error()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAgent(t, &scriptedScanner{results: tc.results}, newFakeClock(), tc.max)
			for range tc.results {
				a.ScanOnce()
			}
			code, body := get(t, a.Handler(), "/orphans")
			if code != http.StatusOK {
				t.Fatalf("GET /orphans = %d %s, want 200", code, body)
			}
			var got OrphanList
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("GET /orphans body %q: %v", body, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET /orphans (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAgentHealth(t *testing.T) {
	clock := newFakeClock()
	a := newTestAgent(t, &scriptedScanner{results: []Result{{}}}, clock, 0)
	for _, step := range []struct {
		name    string
		advance time.Duration
		scan    bool
		want    int
	}{
		{"just started", 0, false, http.StatusOK},
		{"first scan late but within three intervals", 3 * time.Minute, false, http.StatusOK},
		{"no scan for more than three intervals", time.Second, false, http.StatusServiceUnavailable},
		{"a scan finishes", 0, true, http.StatusOK},
		{"stuck again", 3*time.Minute + time.Second, false, http.StatusServiceUnavailable},
	} {
		clock.Advance(step.advance)
		if step.scan {
			a.ScanOnce()
		}
		if code, body := get(t, a.Handler(), "/healthz"); code != step.want {
			t.Errorf("%s: GET /healthz = %d %q, want %d", step.name, code, body, step.want)
		}
	}
	if code, _ := get(t, a.Handler(), "/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing = %d, want 404", code)
	}
}

// TestAgentScrapeDuringScan checks that a scrape and /orphans answer from
// the last result while a scan is still running.
func TestAgentScrapeDuringScan(t *testing.T) {
	s := &scriptedScanner{
		results: []Result{{OrphansKnown: true, Orphans: orphans(2)}, {OrphansKnown: true, Orphans: orphans(5)}},
	}
	a := newTestAgent(t, s, newFakeClock(), 0)
	a.ScanOnce()
	s.block, s.entered = make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() { a.ScanOnce(); close(done) }()
	<-s.entered // the second scan is running and will not finish until told

	srv := httptest.NewUnstartedServer(a.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/metrics", "/orphans"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s during a scan: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s during a scan = %d, want 200", path, resp.StatusCode)
		}
		if path == "/metrics" && !strings.Contains(string(body), `leakguard_node_orphan_cgroups{node="node-a"} 2`) {
			t.Errorf("GET /metrics during a scan does not show the last result (2 orphans):\n%s", body)
		}
	}
	close(s.block)
	<-done
	if err := testutil.GatherAndCompare(a.Registry(), strings.NewReader(`
# HELP leakguard_node_orphan_cgroups Pod-level cgroups under kubepods whose pod UID is not a pod bound to this node and which hold no process, seen so for at least the grace period.
# TYPE leakguard_node_orphan_cgroups gauge
leakguard_node_orphan_cgroups{node="node-a"} 5
`), metricOrphans); err != nil {
		t.Errorf("after the scan: %v", err)
	}
}

// TestAgentRunAndServe runs the real loop and server on loopback against a
// fixture tree, and stops them.
func TestAgentRunAndServe(t *testing.T) {
	f := newFixture(t, V2)
	f.cgroup(podRel(DriverSystemd, qosBurstable, uid(1)))
	s, err := NewScanner(Options{CgroupRoot: f.root, GracePeriod: time.Nanosecond, Logger: slog.New(slog.DiscardHandler)}, newFakePods())
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAgent(AgentOptions{Node: "node-a", Interval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln) }()
	ran := make(chan struct{})
	go func() { a.Run(ctx); close(ran) }()

	client := &http.Client{Timeout: 5 * time.Second}
	want := `leakguard_node_orphan_cgroups{node="node-a"} 1`
	waitFor(t, "the orphan to be counted and served", func() bool {
		resp, err := client.Get("http://" + ln.Addr().String() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), want)
	})
	cancel()
	<-ran
	if err := <-served; err != nil {
		t.Errorf("Serve() after cancel = %v, want nil", err)
	}
}

func TestNewAgentErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    AgentOptions
		s       scanner
		wantErr string
	}{
		{"no node", AgentOptions{}, &scriptedScanner{}, "empty node name"},
		{"no scanner", AgentOptions{Node: "n"}, nil, "nil scanner"},
		{"negative interval", AgentOptions{Node: "n", Interval: -time.Second}, &scriptedScanner{}, "negative interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewAgent(tc.opts, tc.s); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewAgent(%+v) error = %v, want one containing %q", tc.opts, err, tc.wantErr)
			}
		})
	}
}
