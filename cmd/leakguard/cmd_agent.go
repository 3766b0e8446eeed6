package main

import (
	"context"
	"errors"
	"io"

	"github.com/leakguard/leakguard/cgroups/agentcmd"
)

// runAgent runs the node agent (cgroups/agentcmd, which
// cmd/leakguard-agent runs too).
func runAgent(ctx context.Context, args []string, _, stderr io.Writer) error {
	err := agentcmd.Run(ctx, args, stderr, version)
	if errors.Is(err, agentcmd.ErrUsage) {
		return errUsage
	}
	return err
}
