package server

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
)

// benchPayloads are real Alertmanager payloads of 1 and 100 alerts.
var benchPayloads = []struct {
	alerts int
	file   string
}{
	{1, "alertmanager-0.25-apiserver-firing.json"},
	{100, "alertmanager-0.25-firing-100.json"},
}

// reportPerAlert adds the time per alert to a benchmark's results.
func reportPerAlert(b *testing.B, alerts int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*alerts), "ns/alert")
}

// BenchmarkDecode measures DecodeMessage (JSON decoding and validation) per
// payload; ns/alert divides by the alerts in it.
func BenchmarkDecode(b *testing.B) {
	for _, bp := range benchPayloads {
		body := readFixture(b, bp.file)
		b.Run(fmt.Sprintf("alerts=%d", bp.alerts), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				msg, err := DecodeMessage(bytes.NewReader(body))
				if err != nil || len(msg.Alerts) != bp.alerts {
					b.Fatalf("DecodeMessage(%s) = %v, want %d alerts", bp.file, err, bp.alerts)
				}
			}
			reportPerAlert(b, bp.alerts)
		})
	}
}

// BenchmarkHandler measures one authenticated webhook request through the
// whole router (request id, metrics, logging to a discarding handler, bearer
// auth, body limit, content type, decoding, counting, encoding the answer)
// with a trivial Processor that returns one decision per alert.
func BenchmarkHandler(b *testing.B) {
	trivial := ProcessorFunc(func(_ context.Context, msg *Message) (any, error) {
		decisions := make([]string, len(msg.Alerts))
		for i := range decisions {
			decisions[i] = "noop"
		}
		return decisions, nil
	})
	for _, bp := range benchPayloads {
		body := readFixture(b, bp.file)
		b.Run(fmt.Sprintf("alerts=%d", bp.alerts), func(b *testing.B) {
			h := newTestHandler(b, bearerConfig(b), trivial)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				rec := serve(h, postAlerts(body))
				if rec.Code != http.StatusOK {
					b.Fatalf("POST %s = %d %s, want 200", bp.file, rec.Code, rec.Body)
				}
			}
			reportPerAlert(b, bp.alerts)
		})
	}
}
