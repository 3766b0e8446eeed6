package remediate

import (
	"context"
	"log/slog"
)

// lazyAttrs is a slog.Handler that adds attrs to each record it handles
// instead of formatting them up front as slog.Logger.With makes the JSON
// handler do. A run that logs more than its decision line gets a logger
// with the alert's name and fingerprint (run.log); With cost a handler
// clone and a formatting per alert (a tenth of deciding an alert held by
// its policy, in tools/loadgen's profile), for a logger that writes one or
// two lines. The decision line itself carries them as attributes.
type lazyAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

// withAttrs returns l with attrs added to every line it writes.
func withAttrs(l *slog.Logger, attrs ...slog.Attr) *slog.Logger {
	return slog.New(lazyAttrs{h: l.Handler(), attrs: attrs})
}

func (l lazyAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return l.h.Enabled(ctx, level)
}

func (l lazyAttrs) Handle(ctx context.Context, r slog.Record) error {
	// After the record's own attrs: the order differs from With's, the
	// keys and values do not. r is this call's copy, not retained.
	r.AddAttrs(l.attrs...)
	return l.h.Handle(ctx, r)
}

func (l lazyAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return lazyAttrs{h: l.h, attrs: append(l.attrs[:len(l.attrs):len(l.attrs)], attrs...)}
}

func (l lazyAttrs) WithGroup(name string) slog.Handler {
	return l.h.WithAttrs(l.attrs).WithGroup(name)
}
