package remediate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// benchPolicy acts on every leak it sees: a cooldown shorter than the
// benchmark clock's tick and a rate limit that never holds, so that each
// decision takes the whole path (target, guards, check, cooldown claim,
// annotate, Event).
const benchPolicy = `cooldown: 1ns
rateLimit: {perMinute: 1000000000, burst: 1000000}
alerts:
  ContainerMemoryLeak:
    target: workload
    check: {name: working-set-slope}
    remediators: [{name: annotate}]
`

// benchDecide decodes the payload in file and decides its alerts, b.N
// times. With acting, the engine's clock moves on a second per alert, so
// every alert acts; without, it stands still, so that after the first
// round every alert is held by its cooldown (Alertmanager's redelivery).
func benchDecide(b *testing.B, file string, acting bool) {
	data, err := os.ReadFile(filepath.Join("testdata", "alertmanager", file))
	if err != nil {
		b.Fatal(err)
	}
	alerts := loadPayload(b, file)
	e, _ := newTestEngine(b, engineSetup{policy: benchPolicy, objs: clusterFor(alerts), simple: true})
	e.querier = confirmingQuerier{}
	var tick atomic.Int64
	if acting {
		e.now = func() time.Time { return testNow.Add(time.Duration(tick.Add(1)) * time.Second) }
	}
	want := DecisionActed
	if !acting {
		want = DecisionHeld
		if _, err := e.Decide(context.Background(), alerts); err != nil { // warm: claim every cooldown
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		var p payload
		if err := json.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
		ds, err := e.Decide(context.Background(), p.Alerts)
		if err != nil {
			b.Fatal(err)
		}
		if ds[len(ds)-1].Decision != want {
			b.Fatalf("decision %s/%s, want %s", ds[len(ds)-1].Decision, ds[len(ds)-1].Reason, want)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(alerts)), "ns/alert")
}

// BenchmarkDecodeDecide measures decoding a webhook body plus deciding
// every alert in it, against a fake clientset and a fake Querier, for one
// alert and for a payload of 100 alerts.
func BenchmarkDecodeDecide(b *testing.B) {
	b.Run("alert/acted", func(b *testing.B) { benchDecide(b, "alertmanager-0.25-e2e-leak.json", true) })
	b.Run("alert/held-cooldown", func(b *testing.B) { benchDecide(b, "alertmanager-0.25-e2e-leak.json", false) })
	b.Run("payload-100/acted", func(b *testing.B) { benchDecide(b, "alertmanager-0.25-firing-100.json", true) })
	b.Run("payload-100/held-cooldown", func(b *testing.B) { benchDecide(b, "alertmanager-0.25-firing-100.json", false) })
}

// BenchmarkPolicyParse measures parsing and compiling the default policy
// (startup and every SIGHUP).
func BenchmarkPolicyParse(b *testing.B) {
	reg := shippedRegistry()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePolicy(defaultPolicyYAML, reg); err != nil {
			b.Fatal(err)
		}
	}
}
