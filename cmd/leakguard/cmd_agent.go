package main

import (
	"context"
	"errors"
	"io"

	"github.com/leakguard/leakguard/cmd/leakguard-agent/agentcmd"
)

// runAgent runs the node agent (cmd/leakguard-agent/agentcmd, the
// wiring that the program cmd/leakguard-agent runs too).
func runAgent(ctx context.Context, args []string, _, stderr io.Writer) error {
	err := agentcmd.Run(ctx, args, stderr, version)
	if errors.Is(err, agentcmd.ErrUsage) {
		return errUsage
	}
	return err
}
