package main

import (
	"context"
	"errors"
	"io"
)

// runAgent is wired in by its own issue; until then it says so.
func runAgent(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("agent: not built yet")
}
