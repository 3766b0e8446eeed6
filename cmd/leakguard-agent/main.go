// Command leakguard-agent is the node agent alone: the same code as
// "leakguard agent" (its package agentcmd), built without the other
// subcommands, so that the program every node runs links none of serve's
// dependencies. Its arguments are the agent's flags, optionally after the
// word "agent", so that the DaemonSet's arguments serve either binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/leakguard/leakguard/cmd/leakguard-agent/agentcmd"
	"github.com/leakguard/leakguard/internal/cli"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "agent" {
		args = args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agentcmd.Run(ctx, args, os.Stderr, version)
	stop()
	switch {
	case err == nil, errors.Is(err, cli.ErrHelp):
	case errors.Is(err, agentcmd.ErrUsage):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "leakguard-agent: %v\n", err)
		os.Exit(1)
	}
}
