package stormfixture

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/server"
)

// BenchmarkDecide is the engine's share of the load run (tools/loadgen),
// without HTTP: one 100-alert payload of each kind decoded (decode, the
// decode-only reference's work) and decided (decide) by the engine as the
// load run builds it (default policy, dry-run, JSON logs to a discarded
// writer, over Generated and Querier).
//
//	go test -run '^$' -bench . -benchmem ./test/stormfixture/
func BenchmarkDecide(b *testing.B) {
	policy, err := remediate.DefaultPolicy(builtin.Registry())
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for _, k := range Kinds {
		body := Payload(k, 0, 100)
		b.Run(string(k)+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := server.DecodeMessage(bytes.NewReader(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(k)+"/decide", func(b *testing.B) {
			e, err := remediate.NewEngine(remediate.Options{
				Client: Generated(now), Querier: Querier{}, Policy: policy, DryRun: true,
				Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			msg, err := server.DecodeMessage(bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Decide(context.Background(), msg.Alerts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
