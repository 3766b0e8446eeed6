//go:build linux

package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRemoveNeedsWritableRoot mounts a read-only tmpfs holding a v2 root
// and checks that orphan removal is refused at start. Mounting needs
// CAP_SYS_ADMIN; without it the test is skipped.
func TestRemoveNeedsWritableRoot(t *testing.T) {
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs CAP_SYS_ADMIN", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("memory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{CgroupRoot: dir, RemoveEmptyOrphans: true}
	if _, err := NewScanner(opts, newFakePods()); err != nil {
		t.Fatalf("NewScanner(%+v) on a writable root: %v", opts, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	_, err := NewScanner(opts, newFakePods())
	if err == nil || !strings.Contains(err.Error(), "mounted read-write") {
		t.Errorf("NewScanner(%+v) on a read-only root = %v, want an error saying it must be read-write", opts, err)
	}
	opts.RemoveEmptyOrphans = false
	if _, err := NewScanner(opts, newFakePods()); err != nil {
		t.Errorf("NewScanner(%+v) without removal on a read-only root: %v", opts, err)
	}
}
