package lab

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRealNodeRefusedBeforeAnythingStarts: where the host cannot run the
// real node (here: its binaries are missing), Start says why with an error
// wrapping ErrNodeUnsupported, and it does so before it starts or writes
// anything (no lab directory, so no etcd, no kube-apiserver).
func TestRealNodeRefusedBeforeAnythingStarts(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/false\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Start(ctx, Options{BinDir: bin, RealNode: true, RepoRoot: "../../.."})
	if err == nil {
		l.Close()
		t.Fatal("Start with a real node and no kubelet: nil error, want ErrNodeUnsupported")
	}
	if !errors.Is(err, ErrNodeUnsupported) {
		t.Errorf("Start = %v, want an error wrapping ErrNodeUnsupported", err)
	}
	if !strings.Contains(err.Error(), "no kubelet in "+bin) {
		t.Errorf("Start = %v, want it to name the missing kubelet", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("Start left %d entries in TMPDIR (%s), want none", len(ents), ents[0].Name())
	}
}

func TestUnescapeMount(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/kubelet", "/var/lib/kubelet"},
		{`/tmp/a\040b`, "/tmp/a b"},
		{`/tmp/tab\011x\134y`, "/tmp/tab\tx\\y"},
		{`/tmp/trailing\`, `/tmp/trailing\`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := unescapeMount(tc.in); got != tc.want {
				t.Errorf("unescapeMount(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestMissingNodeBinaries: the node's binaries that a directory lacks, in
// NodeBinaries' order; a file of another name does not count.
func TestMissingNodeBinaries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		present []string
		want    []string
	}{
		{"none built", nil, []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-state-metrics"}},
		{"some built", []string{"kube-scheduler", "kubelet", "kube-apiserver"}, []string{"kube-controller-manager", "kube-state-metrics"}},
		{"all built", NodeBinaries, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, name := range tc.present {
				if err := os.WriteFile(filepath.Join(dir, name), nil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, MissingNodeBinaries(dir)); diff != "" {
				t.Errorf("MissingNodeBinaries (-want +got):\n%s", diff)
			}
		})
	}
}
