package remediate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// ReloadPolicyFile parses the policy at path with reg and, when it is
// valid, makes it e's policy. An invalid file changes nothing.
func (e *Engine) ReloadPolicyFile(path string, reg *Registry) error {
	return e.ReloadPolicyFileIf(path, reg, nil)
}

// ReloadPolicyFileIf is ReloadPolicyFile with one more condition: admit,
// when not nil, must accept the parsed policy (serve asks the API server
// for the rights it needs, CheckAccess). A policy it refuses changes
// nothing either: the running policy goes on.
func (e *Engine) ReloadPolicyFileIf(path string, reg *Registry, admit func(*Policy) error) error {
	p, err := LoadPolicyFile(path, reg)
	if err != nil {
		return fmt.Errorf("reload: keeping the running policy: %w", err)
	}
	if admit != nil {
		if err := admit(p); err != nil {
			return fmt.Errorf("reload: keeping the running policy: policy %s: %w", path, err)
		}
	}
	e.SetPolicy(p)
	return nil
}

// ReloadOnSignal calls reload for every value received on sig (SIGHUP, as
// the caller arranges with signal.Notify) until ctx is done, logging the
// outcome; a failed reload keeps the running policy.
func ReloadOnSignal(ctx context.Context, sig <-chan os.Signal, reload func() error, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sig:
			if err := reload(); err != nil {
				logger.Error("policy reload failed", "signal", fmt.Sprint(s), "error", err)
				continue
			}
			logger.Info("policy reloaded", "signal", fmt.Sprint(s))
		}
	}
}
