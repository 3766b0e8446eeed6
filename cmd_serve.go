package main

import (
	"context"
	"errors"
	"io"
)

// runServe is wired in by its own issue; until then it says so.
func runServe(_ context.Context, _ []string, _, _ io.Writer) error {
	return errors.New("serve: not built yet")
}
