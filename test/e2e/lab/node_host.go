package lab

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// kubeletSysctls are the kernel settings the kubelet writes at its start
// (unless protectKernelDefaults): the lab saves them and writes back those
// that changed.
var kubeletSysctls = []string{
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
}

// hostPaths are the directories outside the lab's own that the kubelet and
// containerd write into: the pods' and containers' logs and the device
// plugins' socket (fixed paths in the kubelet, whatever its --root-dir) and
// containerd's socket directory (fixed, for cAdvisor).
var hostPaths = []string{"/var/log/pods", "/var/log/containers", "/var/lib/kubelet", "/run/containerd"}

// hostState is what the real node changes on the host, as it was before.
type hostState struct {
	sysctls map[string]string
	// entries holds, for each of hostPaths that existed, the names in
	// it; a path missing here did not exist.
	entries map[string]map[string]bool
}

func saveHostState() (*hostState, error) {
	h := &hostState{sysctls: map[string]string{}, entries: map[string]map[string]bool{}}
	for _, key := range kubeletSysctls {
		b, err := os.ReadFile(filepath.Join("/proc/sys", key))
		if err != nil {
			return nil, fmt.Errorf("save sysctl %s: %w", key, err)
		}
		h.sysctls[key] = strings.TrimSpace(string(b))
	}
	for _, dir := range hostPaths {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		names := map[string]bool{}
		for _, e := range ents {
			names[e.Name()] = true
		}
		h.entries[dir] = names
	}
	return h, nil
}

// restore removes the kubepods cgroups, removes from hostPaths what was not
// there before (the whole directory where it did not exist) and writes back
// every sysctl that changed.
func (h *hostState) restore() error {
	var errs []error
	errs = append(errs, removeKubepods())
	for _, dir := range hostPaths {
		before, existed := h.entries[dir]
		if !existed {
			errs = append(errs, os.RemoveAll(dir))
			continue
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range ents {
			if !before[e.Name()] {
				errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
			}
		}
	}
	for key, was := range h.sysctls {
		path := filepath.Join("/proc/sys", key)
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if strings.TrimSpace(string(b)) == was {
			continue
		}
		if err := os.WriteFile(path, []byte(was+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restore sysctl %s to %s: %w", key, was, err))
		}
	}
	return errors.Join(errs...)
}

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	path string
	// v2 is a cgroup2 (unified) mount; a v1 mount has its controllers
	// in options.
	v2      bool
	options []string
}

// cgroupMounts lists the host's cgroup hierarchies from
// /proc/self/mountinfo.
func cgroupMounts() ([]cgroupMount, error) {
	mounts, err := mountInfo()
	if err != nil {
		return nil, err
	}
	var out []cgroupMount
	for _, m := range mounts {
		switch m.fsType {
		case "cgroup":
			out = append(out, cgroupMount{path: m.point, options: strings.Split(m.superOptions, ",")})
		case "cgroup2":
			out = append(out, cgroupMount{path: m.point, v2: true})
		}
	}
	return out, nil
}

// memoryHierarchy returns the directory of the memory controller's root:
// the v1 hierarchy with the memory option, else a v2 hierarchy that
// offers memory.
func memoryHierarchy() (string, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return "", err
	}
	for _, m := range mounts {
		if !m.v2 {
			for _, o := range m.options {
				if o == "memory" {
					return m.path, nil
				}
			}
		}
	}
	for _, m := range mounts {
		if m.v2 {
			b, err := os.ReadFile(filepath.Join(m.path, "cgroup.controllers"))
			if err == nil && strings.Contains(" "+strings.TrimSpace(string(b))+" ", " memory ") {
				return m.path, nil
			}
		}
	}
	return "", errors.New("no memory cgroup controller mounted")
}

// probeMemoryCgroup checks that this process may create a memory cgroup,
// which the kubelet must for every pod, by creating and removing one.
func probeMemoryCgroup() error {
	root, err := memoryHierarchy()
	if err != nil {
		return err
	}
	probe := filepath.Join(root, fmt.Sprintf("leakguard-lab-probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Errorf("no writable memory cgroup at %s: %w", root, err)
	}
	if err := syscall.Rmdir(probe); err != nil {
		return fmt.Errorf("remove the probe cgroup %s: %w", probe, err)
	}
	return nil
}

// busyKubepods returns a kubepods cgroup of some hierarchy that holds a
// process, or "" when there is none.
func busyKubepods() string {
	mounts, err := cgroupMounts()
	if err != nil {
		return ""
	}
	for _, m := range mounts {
		busy := ""
		_ = filepath.WalkDir(filepath.Join(m.path, "kubepods"), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if procs := cgroupProcs(path); len(procs) > 0 {
				busy = path
				return filepath.SkipAll
			}
			return nil
		})
		if busy != "" {
			return busy
		}
	}
	return ""
}

// cgroupProcs returns the PIDs in the cgroup directory dir.
func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeKubepods removes the kubepods tree that the kubelet made in every
// cgroup hierarchy, deepest first. A cgroup that still holds a process
// holds one of the node's pods (containerd is gone): that process is killed
// by its PID, and the removal tried again for up to 10 s.
func removeKubepods() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		errs = append(errs, removeCgroupTree(filepath.Join(m.path, "kubepods")))
	}
	return errors.Join(errs...)
}

func removeCgroupTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			errs = append(errs, removeCgroupTree(filepath.Join(dir, e.Name())))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			break
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w (processes %v)", dir, err, cgroupProcs(dir)))
			break
		}
		for _, pid := range cgroupProcs(dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// processesNamed returns the PIDs of the processes whose command name
// (/proc/PID/comm) is name.
func processesNamed(name string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err == nil && strings.TrimSpace(string(b)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killShims kills, by PID, every containerd shim that runs in a bundle
// under dir: shims outlive containerd, and only the lab's own have their
// working directory in the lab's containerd state.
func killShims(dir string) error {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(comm)), "containerd-shim") {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !strings.HasPrefix(cwd, dir+string(filepath.Separator)) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill shim %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point, fsType, superOptions string
}

func mountInfo() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		out = append(out, mount{point: unescapeMount(a[4]), fsType: b[0], superOptions: b[2]})
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount under dir, deepest first: the pods'
// volumes (service account tokens on tmpfs), their shm, the containers'
// root filesystems, which the node's processes leave behind when they are
// killed.
func unmountUnder(dir string) error {
	mounts, err := mountInfo()
	if err != nil {
		return err
	}
	var points []string
	for _, m := range mounts {
		if strings.HasPrefix(m.point, dir+string(filepath.Separator)) {
			points = append(points, m.point)
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
