//go:build linux

package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cgroup2Mount returns the first cgroup2 mount point of /proc/self/mounts,
// or "" when there is none.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	return ""
}

// TestScanRealCgroup2 scans pod cgroups that it creates under the
// machine's real cgroup2 mount, in a subtree of its own (removed after),
// where the kernel, not a fixture, writes cgroup.controllers, cgroup.stat
// (nr_descendants) and cgroup.events (populated). It is skipped where
// there is no cgroup2 mount or no right to create cgroups in it.
//
// The tree: a bound pod, an unbound pod with a process in its container
// (a sleep moved into it: not an orphan), and an unbound empty pod (the
// orphan), in the systemd driver's burstable layout.
func TestScanRealCgroup2(t *testing.T) {
	mount := cgroup2Mount(t)
	if mount == "" {
		t.Skip("no cgroup2 mount in /proc/self/mounts")
	}
	root := filepath.Join(mount, fmt.Sprintf("leakguard-test-%d", os.Getpid()))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", mount, err)
	}
	var dirs []string // every cgroup created, parents first
	t.Cleanup(func() {
		for _, d := range slices.Backward(dirs) {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove test cgroup %s: %v", d, err)
			}
		}
		if err := os.Remove(root); err != nil {
			t.Errorf("remove test cgroup %s: %v", root, err)
		}
	})
	mk := func(parts ...string) string {
		d := filepath.Join(append([]string{root}, parts...)...)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("mkdir %s: %v", d, err)
		}
		dirs = append(dirs, d)
		return d
	}
	const (
		kp  = "kubepods.slice"
		bst = "kubepods-burstable.slice"
	)
	bound, busyUID, orphanUID := uid(1), uid(2), uid(3)
	podDir := func(u string) string { return "kubepods-burstable-pod" + strings.ReplaceAll(u, "-", "_") + ".slice" }
	mk(kp)
	mk(kp, bst)
	for _, u := range []string{bound, busyUID, orphanUID} {
		mk(kp, bst, podDir(u))
		mk(kp, bst, podDir(u), fmt.Sprintf("cri-containerd-%064x.scope", len(dirs)))
	}
	busyContainer := dirs[len(dirs)-3]

	// A process in the busy pod's container.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		sleep.Process.Kill()
		sleep.Wait()
		// A cgroup is removable once the kernel has seen its last
		// process leave: wait for populated 0, a bounded 5 s.
		for i := 0; i < 500; i++ {
			if b, _ := os.ReadFile(filepath.Join(busyContainer, "cgroup.events")); strings.Contains(string(b), "populated 0") {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("%s still populated 5 s after its process was killed", busyContainer)
	})
	if err := os.WriteFile(filepath.Join(busyContainer, "cgroup.procs"), []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
		t.Skipf("cannot move a process into a test cgroup: %v", err)
	}

	clock := newFakeClock()
	s, err := NewScanner(Options{CgroupRoot: root, GracePeriod: time.Minute, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)}, newFakePods(bound))
	if err != nil {
		t.Fatalf("NewScanner(%s) error: %v", root, err)
	}
	if v := s.Layout().Version; v != V2 {
		t.Fatalf("Layout().Version = %v, want v2", v)
	}
	first := s.Scan()
	if first.Err != nil {
		t.Fatalf("first Scan() error: %v", first.Err)
	}
	// The root and every cgroup below it (nr_descendants): kubepods, the
	// QoS slice, three pods and their containers.
	if got, want := first.Cgroups, map[string]int{"unified": 1 + len(dirs)}; !maps.Equal(got, want) {
		t.Errorf("first Scan().Cgroups = %v, want %v", got, want)
	}
	if first.Pending != 1 || len(first.Orphans) != 0 {
		t.Errorf("first Scan() = %d pending, %d orphans; want 1 pending (the empty unbound pod), 0 orphans", first.Pending, len(first.Orphans))
	}
	if !first.DyingKnown {
		t.Errorf("first Scan().DyingKnown = false, want true (cgroup.stat of a real cgroup2)")
	}

	clock.Advance(2 * time.Minute)
	second := s.Scan()
	if second.Err != nil {
		t.Fatalf("second Scan() error: %v", second.Err)
	}
	var got []string
	for _, o := range second.Orphans {
		got = append(got, o.PodUID)
	}
	if want := []string{orphanUID}; !slices.Equal(got, want) {
		t.Errorf("second Scan() orphans = %v, want %v (the busy pod %s holds a process)", got, want, busyUID)
	}

	// With --remove-empty-orphans the kernel removes the orphan (its
	// container first) and leaves the busy pod.
	s.opts.RemoveEmptyOrphans = true
	third := s.Scan()
	if third.Err != nil {
		t.Fatalf("third Scan() error: %v", third.Err)
	}
	if third.Removed != 2 {
		t.Errorf("third Scan().Removed = %d, want 2 (the orphan pod and its container)", third.Removed)
	}
	if _, err := os.Stat(filepath.Join(root, kp, bst, podDir(orphanUID))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan cgroup after removal: stat error %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(root, kp, bst, podDir(busyUID))); err != nil {
		t.Errorf("busy pod cgroup after removal: %v, want it kept", err)
	}
	if got, want := s.Scan().Cgroups, map[string]int{"unified": 1 + len(dirs) - 2}; !maps.Equal(got, want) {
		t.Errorf("Scan().Cgroups after removal = %v, want %v", got, want)
	}
}
