package remediate

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWithAttrsWritesWhatWithWrites(t *testing.T) {
	var lazy, eager bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	l := withAttrs(slog.New(slog.NewJSONHandler(&lazy, opts)), slog.String("alert", "A"), slog.String("fingerprint", "f1"))
	e := slog.New(slog.NewJSONHandler(&eager, opts)).With("alert", "A", "fingerprint", "f1")
	for _, lg := range []*slog.Logger{l, e} {
		lg.Info("decision", "decision", "held")
		lg.With("remediator", "annotate").Warn("could not", "error", "boom")
		lg.WithGroup("g").Info("grouped", "k", 1)
		lg.Debug("dropped")
	}
	// The same keys and values, line by line (the order of keys may differ).
	ll, el := strings.Split(lazy.String(), "\n"), strings.Split(eager.String(), "\n")
	if len(ll) != len(el) {
		t.Fatalf("withAttrs wrote %d lines, With %d:\n%s\n%s", len(ll), len(el), lazy.String(), eager.String())
	}
	for i := range ll {
		if ll[i] == "" && el[i] == "" {
			continue
		}
		var l, e map[string]any
		if err := json.Unmarshal([]byte(ll[i]), &l); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(el[i]), &e); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e, l); diff != "" {
			t.Errorf("line %d: withAttrs differs from With (-With +withAttrs):\n%s", i, diff)
		}
	}
}
