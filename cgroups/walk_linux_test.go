//go:build linux

package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// TestGetdentsWithoutDType holds the getdents paths to the portable ones on
// a file system that does not fill d_type (ext2 without the filetype
// feature, where every entry is DT_UNKNOWN). It needs mkfs.ext2 and the
// right to mount a loop device; without them it is skipped.
func TestGetdentsWithoutDType(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext2")
	if err != nil {
		t.Skipf("no mkfs.ext2: %v", err)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", "-O", "^filetype", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext2: %v: %s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	mustMkdir(t, mnt)
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a loop device (%v: %s): needs CAP_SYS_ADMIN", err, out)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })

	root := filepath.Join(mnt, "cgroup")
	mustMkdir(t, filepath.Join(root, "a", "b", "c"))
	mustMkdir(t, filepath.Join(root, "d"))
	mustWrite(t, filepath.Join(root, "cgroup.procs"))
	mustWrite(t, filepath.Join(root, "a", "memory.max"))
	if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if typ := firstDirentType(t, root); typ != unix.DT_UNKNOWN {
		t.Skipf("the file system fills d_type (%d): nothing to test", typ)
	}

	got, err := subdirs(root, nil)
	if err != nil {
		t.Fatalf("subdirs(%s) error: %v", root, err)
	}
	slices.Sort(got)
	if want := []string{"a", "d"}; !slices.Equal(got, want) {
		t.Errorf("subdirs(%s) = %q, want %q", root, got, want)
	}
	want, err := subdirsPortable(root, nil)
	if err != nil {
		t.Fatalf("subdirsPortable(%s) error: %v", root, err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("subdirs(%s) = %q, subdirsPortable = %q; want the same", root, got, want)
	}
	for _, f := range []struct {
		name string
		fn   func(string) (int, error)
	}{{"countDirs", countDirs}, {"countDirsPortable", countDirsPortable}} {
		if n, err := f.fn(root); err != nil || n != 5 {
			t.Errorf("%s(%s) = %d, %v; want 5", f.name, root, n, err)
		}
	}
}

// firstDirentType returns d_type of the first entry getdents returns for
// dir.
func firstDirentType(t *testing.T, dir string) byte {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 4096)
	n, err := unix.ReadDirent(fd, buf)
	if err != nil || n < 19 {
		t.Fatalf("getdents(%s) = %d, %v", dir, n, err)
	}
	return buf[18]
}
