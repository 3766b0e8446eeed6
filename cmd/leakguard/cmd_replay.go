package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/leakguard/leakguard/internal/cli"
	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/server"
)

func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f serveFlags
	fs := cli.NewFlagSet("replay", stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: leakguard replay [flags] FILE

Run a saved Alertmanager webhook payload (JSON, version 4; - reads stdin)
through the policy against the current cluster and Prometheus, in dry-run:
nothing is written, not even Events. Prints a table of what would happen to
each alert and why (-o json: the decisions as a JSON array, each as
serve's answer encodes it). No server is needed.

flags:
`)
		fs.PrintDefaults()
	}
	f.registerCommon(fs, "warn")
	fs.StringVarP(&f.output, "output", "o", "table", "output format: table (a row per alert, then plans and reasons), or json (an array of the decisions)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if f.output != "table" && f.output != "json" {
		fmt.Fprintf(stderr, "replay: -o %q: want table or json\n", f.output)
		fs.Usage()
		return errUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "replay: want exactly one payload FILE")
		fs.Usage()
		return errUsage
	}
	// A bad URL fails before the payload, the policy or the cluster is
	// read (exit 1, as a bad --log-level).
	if err := checkURLFlag("prometheus-url", f.prometheusURL); err != nil {
		return err
	}
	// So does a bad --prometheus-config-file.
	querier, err := promQuerier(f.prometheusURL, f.prometheusConfigFile)
	if err != nil {
		return err
	}
	msg, err := readPayload(fs.Arg(0))
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, f.logLevel)
	if err != nil {
		return err
	}
	policy, err := loadPolicy(f.policyFile, builtin.Registry())
	if err != nil {
		return err
	}
	client, md, err := kubeClient(f.kubeconfig, f.kubeContext)
	if err != nil {
		return err
	}
	return replay(ctx, msg, policy, client, md, querier, f, logger, stdout)
}

// replay runs msg through a read-only engine and prints the table, or
// with f.output "json" the decisions as a JSON array.
func replay(ctx context.Context, msg *server.Message, policy *remediate.Policy, client kubernetes.Interface,
	md metadata.Interface, querier remediate.Querier, f serveFlags, logger *slog.Logger, stdout io.Writer) error {
	engine, err := remediate.NewEngine(f.engineOptions(remediate.Options{
		Client: client, Metadata: md, Querier: querier, Policy: policy, ReadOnly: true, Logger: logger,
	}))
	if err != nil {
		return err
	}
	if f.output != "json" {
		return remediate.Replay(ctx, engine, msg.Alerts, stdout)
	}
	// The engine is read-only (above), as remediate.Replay requires.
	decisions, err := engine.Decide(ctx, msg.Alerts)
	if decisions == nil {
		decisions = []remediate.Decision{}
	}
	// Decision's JSON form, as serve answers POST /api/v1/alerts with it;
	// indented for people, as version -o json.
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(decisions); werr != nil {
		return fmt.Errorf("replay: write json: %w", werr)
	}
	// As with the table: the decisions are written, then the engine's
	// error (a failed check, say) fails the command.
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

// readPayload reads and validates a webhook payload from a file, or from
// stdin for "-".
func readPayload(path string) (*server.Message, error) {
	r := io.Reader(os.Stdin)
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
		defer file.Close()
		r = file
	}
	msg, err := server.DecodeMessage(r)
	if err != nil {
		return nil, fmt.Errorf("payload %s: %w", path, err)
	}
	return msg, nil
}
