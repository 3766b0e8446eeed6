package remediate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/prometheus/alertmanager/template"
)

// Replay runs alerts through e, which must be read-only (Options.ReadOnly),
// and writes a table of what would happen and why to w: one row per alert
// with its target, the check's result, the guards, the remediators, the
// decision and its reason, followed by the details of held and failed
// decisions and what each remediator would do (its plan: the patch or the
// eviction a real run would make) or why it is held. The error is the
// engine's (a failed check, say), returned after the table is written.
func Replay(ctx context.Context, e *Engine, alerts []template.Alert, w io.Writer) error {
	if !e.readOnly {
		return errors.New("replay: the engine must be read-only")
	}
	decisions, err := e.Decide(ctx, alerts)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ALERT\tSTATUS\tTARGET\tCHECK\tGUARDS\tREMEDIATORS\tDECISION\tREASON")
	for _, d := range decisions {
		check := dash(d.Check)
		if d.CheckResult != "" {
			check += ": " + d.CheckResult
		}
		var rems []string
		for _, r := range d.Remediators {
			rems = append(rems, r.Name+" "+r.Result)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.AlertName, d.Status, dash(d.Target), check,
			dash(strings.Join(d.Guards, ", ")), dash(strings.Join(rems, ", ")), d.Decision, dash(d.Reason))
	}
	if ferr := tw.Flush(); ferr != nil {
		return fmt.Errorf("replay: write table: %w", ferr)
	}
	wrotePlans := false
	for i, d := range decisions {
		for _, r := range d.Remediators {
			if r.Detail == "" {
				continue
			}
			if !wrotePlans {
				fmt.Fprintln(w, "\nplans:")
				wrotePlans = true
			}
			fmt.Fprintf(w, "  %d %s %s: %s %s: %s\n", i, d.AlertName, dash(d.Target), r.Name, r.Result, r.Detail)
		}
	}
	wroteHeader := false
	for i, d := range decisions {
		if d.Message == "" {
			continue
		}
		if !wroteHeader {
			fmt.Fprintln(w, "\nwhy:")
			wroteHeader = true
		}
		fmt.Fprintf(w, "  %d %s %s: %s\n", i, d.AlertName, dash(d.Target), d.Message)
	}
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
