package main

import (
	"context"
	"errors"
	"io"
)

// runReplay is wired in by its own issue; until then it says so.
func runReplay(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("replay: not built yet")
}
