package check

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

func sampleAt(v float64, at time.Time) model.Vector {
	return model.Vector{{Metric: model.Metric{"node": "n1"}, Value: model.SampleValue(v), Timestamp: model.TimeFromUnixNano(at.UnixNano())}}
}

func TestSampleValue(t *testing.T) {
	tests := []struct {
		name    string
		answer  model.Value
		want    float64
		wantErr error
		errText string
	}{
		{name: "one sample", answer: sampleAt(3, testNow), want: 3},
		{name: "max of several", answer: append(sampleAt(3, testNow), sampleAt(7, testNow)...), want: 7},
		{name: "NaN skipped", answer: append(sampleAt(math.NaN(), testNow), sampleAt(2, testNow)...), want: 2},
		{name: "scalar", answer: &model.Scalar{Value: 5, Timestamp: model.TimeFromUnixNano(testNow.UnixNano())}, want: 5},
		{name: "nil answer", answer: nil, wantErr: remediate.ErrNoData},
		{name: "empty vector", answer: model.Vector{}, wantErr: remediate.ErrNoData},
		{name: "only NaN", answer: sampleAt(math.NaN(), testNow), wantErr: remediate.ErrNoData},
		{name: "stale sample", answer: sampleAt(9, testNow.Add(-maxSampleAge-time.Second)), wantErr: remediate.ErrNoData},
		{name: "matrix is wrong", answer: model.Matrix{}, errText: "answer of type matrix, want an instant vector"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sampleValue(tc.answer, testNow)
			switch {
			case tc.wantErr != nil || tc.errText != "":
				if err == nil {
					t.Fatalf("sampleValue() = %g, nil; want an error", got)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("sampleValue() error = %v, want %v", err, tc.wantErr)
				}
				if tc.errText != "" && err.Error() != tc.errText {
					t.Errorf("sampleValue() error = %q, want %q", err, tc.errText)
				}
			case err != nil:
				t.Fatalf("sampleValue() error: %v", err)
			case got != tc.want:
				t.Errorf("sampleValue() = %g, want %g", got, tc.want)
			}
		})
	}
}

func containerAlert(labels map[string]string) template.Alert {
	kv := template.KV{"alertname": "ContainerMemoryLeak"}
	for k, v := range labels {
		kv[k] = v
	}
	return template.Alert{Status: "firing", Labels: kv}
}

// checkCase is one row of a check's threshold table.
type checkCase struct {
	name      string
	answer    model.Value
	confirmed bool
	summary   string
	noData    bool
}

func runCheckCases(t *testing.T, c remediate.Check, a template.Alert, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Evaluate(a, tc.answer, testNow)
			if tc.noData {
				if !errors.Is(err, remediate.ErrNoData) {
					t.Fatalf("%s.Evaluate() = %+v, %v; want ErrNoData", c.Name(), got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s.Evaluate() error: %v", c.Name(), err)
			}
			if got.Confirmed != tc.confirmed || got.Summary != tc.summary {
				t.Errorf("%s.Evaluate() = confirmed %v %q, want %v %q", c.Name(), got.Confirmed, got.Summary, tc.confirmed, tc.summary)
			}
		})
	}
}

func TestWorkingSetSlope(t *testing.T) {
	c, err := NewWorkingSetSlope(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := containerAlert(map[string]string{"namespace": "shop", "pod": "web-1", "container": "app"})
	q, err := c.Query(a)
	want := `max(namespace_pod_container:container_memory_working_set_bytes:deriv{namespace="shop",pod="web-1",container="app"})`
	if err != nil || q != want {
		t.Errorf("Query() = %q, %v; want %q", q, err, want)
	}
	perHour := func(bph float64) model.Vector { return vec(bph / 3600) }
	runCheckCases(t, c, a, []checkCase{
		{name: "well above 1 MiB/h", answer: perHour(8 << 20), confirmed: true, summary: "8.0 MiB/h > 1.0 MiB/h"},
		{name: "just above", answer: perHour(1<<20 + 3600), confirmed: true, summary: "1.0 MiB/h > 1.0 MiB/h"},
		{name: "exactly the threshold is not above", answer: perHour(1 << 20), confirmed: false, summary: "1.0 MiB/h <= 1.0 MiB/h"},
		{name: "flat", answer: perHour(0), confirmed: false, summary: "0.0 B/h <= 1.0 MiB/h"},
		{name: "shrinking", answer: perHour(-(2 << 20)), confirmed: false, summary: "-2.0 MiB/h <= 1.0 MiB/h"},
		{name: "no series", answer: model.Vector{}, noData: true},
	})
	c4, err := NewWorkingSetSlope([]byte(`{"threshold": 16777216}`))
	if err != nil {
		t.Fatal(err)
	}
	runCheckCases(t, c4, a, []checkCase{
		{name: "custom threshold holds 8 MiB/h", answer: perHour(8 << 20), confirmed: false, summary: "8.0 MiB/h <= 16.0 MiB/h"},
	})
}

func TestOrphanCgroups(t *testing.T) {
	c, err := NewOrphanCgroups(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := containerAlert(map[string]string{"node": "n1"})
	q, err := c.Query(a)
	if want := `max(node:leakguard_node_orphan_cgroups:max{node="n1"})`; err != nil || q != want {
		t.Errorf("Query() = %q, %v; want %q", q, err, want)
	}
	runCheckCases(t, c, a, []checkCase{
		{name: "above", answer: vec(35), confirmed: true, summary: "35 orphan cgroups > 20 orphan cgroups"},
		{name: "at threshold", answer: vec(20), confirmed: false, summary: "20 orphan cgroups <= 20 orphan cgroups"},
		{name: "cleaned up", answer: vec(0), confirmed: false, summary: "0 orphan cgroups <= 20 orphan cgroups"},
		{name: "agent gone", answer: model.Vector{}, noData: true},
	})
}

func TestAPIServerMemory(t *testing.T) {
	c, err := NewAPIServerMemory(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := containerAlert(map[string]string{"node": "cp1"})
	q, err := c.Query(a)
	if want := `max(node:apiserver_process_resident_memory_bytes:ratio{node="cp1"})`; err != nil || q != want {
		t.Errorf("Query() = %q, %v; want %q", q, err, want)
	}
	runCheckCases(t, c, a, []checkCase{
		{name: "above the waterline", answer: vec(0.72), confirmed: true, summary: "72.0 % > 60.0 %"},
		{name: "at the waterline", answer: vec(0.6), confirmed: false, summary: "60.0 % <= 60.0 %"},
		{name: "below", answer: vec(0.3), confirmed: false, summary: "30.0 % <= 60.0 %"},
		{name: "stale", answer: sampleAt(0.9, testNow.Add(-time.Hour)), noData: true},
	})
}

func TestNoneCheck(t *testing.T) {
	c, err := NewNone(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := containerAlert(nil)
	if q, err := c.Query(a); q != "" || err != nil {
		t.Errorf("none.Query() = %q, %v; want \"\", nil", q, err)
	}
	r, err := c.Evaluate(a, nil, testNow)
	if err != nil || !r.Confirmed {
		t.Errorf("none.Evaluate() = %+v, %v; want confirmed", r, err)
	}
	if _, err := NewNone([]byte(`{"x": 1}`)); err == nil {
		t.Errorf("NewNone(args) = nil error, want unknown field")
	}
}

func TestCheckQueryLabels(t *testing.T) {
	slope, _ := NewWorkingSetSlope(nil)
	orphans, _ := NewOrphanCgroups(nil)
	tests := []struct {
		name   string
		check  remediate.Check
		labels map[string]string
		want   string
		err    string
	}{
		{name: "quotes and backslashes escaped", check: orphans, labels: map[string]string{"node": `n"1\x`},
			want: `max(node:leakguard_node_orphan_cgroups:max{node="n\"1\\x"})`},
		{name: "newline escaped", check: orphans, labels: map[string]string{"node": "a\nb"},
			want: `max(node:leakguard_node_orphan_cgroups:max{node="a\nb"})`},
		{name: "injection stays a string", check: orphans, labels: map[string]string{"node": `"} or vector(1) or {x="`},
			want: `max(node:leakguard_node_orphan_cgroups:max{node="\"} or vector(1) or {x=\""})`},
		{name: "missing container", check: slope, labels: map[string]string{"namespace": "shop", "pod": "p"},
			err: `alert ContainerMemoryLeak has no "container" label`},
		{name: "missing node", check: orphans, labels: nil, err: `alert ContainerMemoryLeak has no "node" label`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.check.Query(containerAlert(tc.labels))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("Query() = %q, %v; want error %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Query() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestCheckArgs(t *testing.T) {
	tests := []struct {
		name    string
		factory remediate.CheckFactory
		args    string
		err     string
	}{
		{"slope zero", NewWorkingSetSlope, `{"threshold": 0}`, "threshold must be a positive number of bytes per hour, got 0"},
		{"slope unknown", NewWorkingSetSlope, `{"bytesPerHour": 5}`, `args: unknown field "bytesPerHour"`},
		{"slope wrong type", NewWorkingSetSlope, `{"threshold": "1Mi"}`, "args: cannot unmarshal string into Go struct field WorkingSetSlopeArgs.threshold of type float64"},
		{"orphans negative", NewOrphanCgroups, `{"threshold": -1}`, "threshold must be a finite count >= 0, got -1"},
		{"apiserver above one", NewAPIServerMemory, `{"threshold": 60}`, "threshold must be a share of node memory in (0, 1], got 60"},
		{"apiserver zero", NewAPIServerMemory, `{"threshold": 0}`, "threshold must be a share of node memory in (0, 1], got 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.factory([]byte(tc.args))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("factory(%s) = %v, %v; want error %q", tc.args, c, err, tc.err)
			}
		})
	}
}

// TestScopedQueryRefusesTheAlertsLabel: a scope label that is also one
// of the alert's labels the check reads is an error, not two matchers.
func TestScopedQueryRefusesTheAlertsLabel(t *testing.T) {
	c := &thresholdCheck{metric: "m", labels: []string{"node", "cluster"}}
	if q, err := c.ScopedQuery(alert("firing", map[string]string{"node": "n1", "cluster": "eu-1"}), map[string]string{"cluster": "eu-1"}); err == nil {
		t.Errorf("ScopedQuery with the scope's label among the alert's = %q, want an error", q)
	}
}
