// Command recordtrace records real memory series from the lab's real node
// (test/e2e/lab, Options.RealNode: a kubelet with containerd and runc, and
// kube-state-metrics, scraped by Prometheus with kube-prometheus's labels)
// and writes them as a promtool unit test of the shipped rules.
//
// It has two steps. record brings the real node up with the shipped rules
// (rules.DefaultParams, as deploy/prometheus/rules.yaml has them) loaded
// into the lab's Prometheus, runs the workloads below in namespace shop for
// -duration, notes when the live Prometheus had each alert pending and
// firing, then reads every series the rules read for shop's pods (and the
// node's) from Prometheus's API at -step and writes them, with the alert
// log, as JSON (-recording). write turns that recording and a hand-written
// file of expectations (-expect: the test's alert_rule_test and
// promql_expr_test, judged against the alert log) into the unit test
// (-out). While it records, record writes the recording so far every
// three minutes to -recording + ".partial", which write also reads, so
// that expectations can be drafted before the end; it removes that file
// at the end. TestGeneratedFileIsCurrent checks that the committed test is what
// write makes of the committed recording.
//
// The workloads (test/e2e/lab/images/leaker) are a slow leak from the
// start, a container that climbs fast then holds near its limit, one that
// is OOM-killed again and again, and a flat one.
//
// usage (as root, on a host lab.CheckNodeHost accepts, one real node at a
// time):
//
//	go run ./tools/recordtrace record -duration 44m -recording tools/recordtrace/testdata/recording.json
//	go run ./tools/recordtrace write -recording tools/recordtrace/testdata/recording.json \
//	    -expect tools/recordtrace/testdata/expect.yaml -out rules/testdata/real-trace.test.yaml
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/leakguard/leakguard/rules"
	"github.com/leakguard/leakguard/test/e2e/lab"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: recordtrace record|write [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "record":
		err = recordMain(os.Args[2:])
	case "write":
		err = writeMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown step %q: want record or write", os.Args[1])
	}
	if err != nil {
		slog.Error("recordtrace", "err", err)
		os.Exit(1)
	}
}

func recordMain(args []string) error {
	fs := flag.NewFlagSet("record", flag.ExitOnError)
	repo := fs.String("repo", ".", "the leakguard module (the lab reads deploy/ and builds the images from it)")
	duration := fs.Duration("duration", 75*time.Minute, "how long to record after the workloads run (a leak from the start fires its leak alerts at about 56m to 60m)")
	step := fs.Duration("step", 30*time.Second, "the resolution the series are read back at (kube-prometheus scrapes cAdvisor every 30s)")
	out := fs.String("recording", "tools/recordtrace/testdata/recording.json", "where to write the recording (JSON)")
	leakguard := fs.String("leakguard", "", "a built leakguard binary for the lab's serve replicas (default: build one)")
	_ = fs.Parse(args)

	bin, err := lab.FindBinaries(*repo)
	if err == nil {
		err = lab.CheckNodeHost(bin)
	}
	if err != nil {
		return fmt.Errorf("the real node cannot run here: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	params := rules.DefaultParams()
	c, err := lab.StartChain(startCtx, lab.ChainOptions{
		RepoRoot: *repo, BinDir: bin, RealNode: true, Params: &params, Leakguard: *leakguard,
		Progress: func(s string, took time.Duration) {
			slog.Info("chain", "step", s, "took", took.Round(time.Millisecond))
		},
	})
	if err != nil {
		return fmt.Errorf("start the real node: %w", err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			slog.Error("close the lab", "err", err)
		}
	}()
	rec, err := record(ctx, c, *duration, *step, func(r *Recording) {
		if err := writeRecording(*out+".partial", r); err != nil {
			slog.Warn("checkpoint", "err", err)
		}
	})
	if err != nil {
		return err
	}
	if err := writeRecording(*out, rec); err != nil {
		return err
	}
	if err := os.Remove(*out + ".partial"); err != nil && !os.IsNotExist(err) {
		slog.Warn("remove the checkpoint", "err", err)
	}
	slog.Info("recorded", "file", *out, "series", len(rec.Series), "alerts", len(rec.Alerts))
	return nil
}

func writeMain(args []string) error {
	fs := flag.NewFlagSet("write", flag.ExitOnError)
	in := fs.String("recording", "tools/recordtrace/testdata/recording.json", "the recording (record's output)")
	expect := fs.String("expect", "tools/recordtrace/testdata/expect.yaml", "the test's expectations: its alert_rule_test and promql_expr_test, as YAML")
	out := fs.String("out", "rules/testdata/real-trace.test.yaml", "the promtool unit test to write")
	_ = fs.Parse(args)
	b, err := generate(*in, *expect)
	if err != nil {
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

// writeRecording writes rec as indented JSON to path.
func writeRecording(path string, rec *Recording) error {
	data, err := json.MarshalIndent(rec, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the recording: %w", err)
	}
	return nil
}
