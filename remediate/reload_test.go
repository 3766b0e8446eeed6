package remediate

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestReloadOnSignal(t *testing.T) {
	e, _ := newTestEngine(t, engineSetup{})
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sig := make(chan os.Signal)
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	reloaded := make(chan error, 1)
	go func() {
		defer close(done)
		ReloadOnSignal(ctx, sig, func() error {
			err := e.ReloadPolicyFile(path, shippedRegistry())
			reloaded <- err
			return err
		}, slog.New(slog.DiscardHandler))
	}()
	send := func() error {
		select {
		case sig <- syscall.SIGHUP:
		case <-time.After(5 * time.Second):
			t.Fatal("reloader not listening")
		}
		select {
		case err := <-reloaded:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("no reload")
		}
		return nil
	}
	steps := []struct {
		name   string
		file   string
		ok     bool
		alerts []string
	}{
		{"valid file replaces the default", "alerts:\n  NodeCgroupLeak: {target: node, check: {name: none}}\n", true, []string{"NodeCgroupLeak"}},
		{"invalid file keeps the running policy", "alerts:\n  NodeCgroupLeak: {target: node, check: {name: bogus}}\n", false, []string{"NodeCgroupLeak"}},
		{"next valid file applies", "alerts:\n  NodeOrphanCgroups: {target: node, check: {name: none}}\n", true, []string{"NodeOrphanCgroups"}},
	}
	for _, s := range steps {
		write(s.file)
		err := send()
		if (err == nil) != s.ok {
			t.Errorf("%s: reload error = %v, want ok %v", s.name, err, s.ok)
		}
		if got := e.Policy().AlertNames(); len(got) != 1 || got[0] != s.alerts[0] {
			t.Errorf("%s: policy alerts = %v, want %v", s.name, got, s.alerts)
		}
	}
	cancel()
	<-done
}
