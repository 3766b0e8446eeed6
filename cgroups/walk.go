package cgroups

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// maxDepth bounds every walk below a pod cgroup. Pod cgroups hold container
// cgroups and, with some runtimes, one more level; a deeper tree is not the
// kubelet's and is not followed.
const maxDepth = 16

// errVanished marks a cgroup that was removed while it was being read: the
// kubelet or the runtime tore it down, which is neither an error nor an
// orphan.
var errVanished = errors.New("cgroup vanished during the scan")

// subdirsPortable returns the names of the directories in dir, in
// directory order, with the os package alone; subdirs is the fast version of
// it on Linux, and the tests hold both to the same answers. It reads the
// entries' types from the directory itself (no stat per entry). names is
// reused as the result's backing array.
func subdirsPortable(dir string, names []string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return names, err
	}
	defer f.Close()
	for {
		ents, err := f.ReadDir(256)
		for _, e := range ents {
			if e.Type().IsDir() {
				names = append(names, e.Name())
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(ents) == 0) {
			return names, nil
		}
		if err != nil {
			return names, err
		}
	}
}

// dirLinks returns the link count of dir. On kernfs (both cgroup versions),
// ext4 and tmpfs a directory has two links plus one per subdirectory, so a
// count of 2 means a leaf that need not be listed; 0 means unknown.
func dirLinks(dir string) (uint64, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return 0, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink), nil
	}
	return 0, nil
}

// leafLinks is the link count of a directory without subdirectories.
const leafLinks = 2

// countDirsPortable returns the number of directories in the tree at root,
// root included, with the os package alone; countDirs is the fast version of
// it on Linux, and the tests hold both to the same answers. A directory whose
// link count says it has no subdirectory is counted without being listed,
// which saves most of the system calls on a node whose cgroups are mostly
// container leaves. Directories that vanish while the walk runs are not
// counted and are not errors; any other error is returned beside the count
// of what could be read.
func countDirsPortable(root string) (int, error) {
	type dir struct {
		path  string
		links uint64
	}
	links, err := dirLinks(root)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", root, err)
	}
	n := 0
	var errs []error
	stack := []dir{{root, links}}
	var names []string
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if d.links == leafLinks {
			n++
			continue
		}
		names, err = subdirs(d.path, names[:0])
		if err != nil {
			if d.path != root && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			errs = append(errs, fmt.Errorf("list %s: %w", d.path, err))
			continue
		}
		n++
		for _, name := range names {
			child := filepath.Join(d.path, name)
			links, err := dirLinks(child)
			if err != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, fmt.Errorf("stat %s: %w", child, err))
				}
				continue
			}
			stack = append(stack, dir{child, links})
		}
	}
	return n, errors.Join(errs...)
}

// procsChecker answers whether a cgroup subtree holds a process. It keeps a
// read buffer between calls and is not safe for concurrent use.
type procsChecker struct {
	buf [64]byte
}

// busy reports whether cgroup.procs of dir or of any cgroup below it (down
// to maxDepth) lists a process. It stops at the first process found. A dir
// that no longer exists yields errVanished.
func (p *procsChecker) busy(dir string, depth int) (bool, error) {
	has, err := p.readProcs(dir)
	if err != nil || has {
		return has, err
	}
	if depth >= maxDepth {
		return false, fmt.Errorf("%s: deeper than %d levels below the pod cgroup", dir, maxDepth)
	}
	links, err := dirLinks(dir)
	if err == nil && links == leafLinks {
		return false, nil // no child cgroup: nothing more to read
	}
	var names []string
	if err == nil {
		names, err = subdirs(dir, nil)
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, errVanished
		}
		return false, fmt.Errorf("list %s: %w", dir, err)
	}
	for _, name := range names {
		has, err := p.busy(filepath.Join(dir, name), depth+1)
		if errors.Is(err, errVanished) {
			continue // a container cgroup removed under us holds nothing
		}
		if err != nil || has {
			return has, err
		}
	}
	return false, nil
}

// populated reads the populated field of dir/cgroup.events (cgroup v2):
// the kernel's own answer to whether any process lives in the cgroup or
// below it, in one read instead of a walk. ok is false when the file does
// not exist, and the caller walks instead.
func (p *procsChecker) populated(dir string) (populated, ok bool, err error) {
	path := filepath.Join(dir, "cgroup.events")
	n, err := readSmall(path, p.buf[:])
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := parseStatField(p.buf[:n], "populated")
	if err != nil {
		return false, false, fmt.Errorf("parse %s: %w", path, err)
	}
	if v > 1 {
		return false, false, fmt.Errorf("parse %s: populated %d is neither 0 nor 1", path, v)
	}
	return v == 1, true, nil
}

// pidsCurrent reads dir/pids.current (the v1 pids controller): the number
// of tasks in the cgroup and below it. ok is false when the file does not
// exist, and the caller walks instead.
func (p *procsChecker) pidsCurrent(dir string) (busy, ok bool, err error) {
	path := filepath.Join(dir, "pids.current")
	n, err := readSmall(path, p.buf[:])
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(p.buf[:n])))
	if err != nil || v < 0 {
		return false, false, fmt.Errorf("parse %s: %q is not a count", path, p.buf[:n])
	}
	return v > 0, true, nil
}

// readSmallPortable reads the start of a small file into buf and returns how
// many bytes it read; readSmall is its Linux version without an os.File.
func readSmallPortable(path string, buf []byte) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := io.ReadFull(f, buf)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// readProcs reports whether dir/cgroup.procs lists at least one process,
// reading no more than the first bytes of it.
func (p *procsChecker) readProcs(dir string) (bool, error) {
	path := filepath.Join(dir, "cgroup.procs")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
				return false, errVanished
			}
		}
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	for {
		n, err := f.Read(p.buf[:])
		for _, c := range p.buf[:n] {
			if c != ' ' && c != '\n' && c != '\t' {
				return true, nil
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// removeTree removes the cgroup at dir and every cgroup below it, deepest
// first, with rmdir; the kernel refuses to remove a cgroup that holds a
// process or a child, so nothing alive is removed. It returns how many
// directories it removed and the first refusal.
func removeTree(dir string, rmdir func(string) error, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%s: deeper than %d levels below the pod cgroup", dir, maxDepth)
	}
	names, err := subdirs(dir, nil)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", dir, err)
	}
	removed := 0
	for _, name := range names {
		n, err := removeTree(filepath.Join(dir, name), rmdir, depth+1)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	if err := rmdir(dir); err != nil {
		return removed, fmt.Errorf("rmdir %s: %w", dir, err)
	}
	return removed + 1, nil
}
