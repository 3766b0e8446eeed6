package cgroups

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// maxDepth bounds every walk below a pod cgroup. Pod cgroups hold container
// cgroups and, with some runtimes, one more level; a deeper tree is not the
// kubelet's and is not followed.
const maxDepth = 16

// errVanished marks a cgroup that was removed while it was being read: the
// kubelet or the runtime tore it down, which is neither an error nor an
// orphan.
var errVanished = errors.New("cgroup vanished during the scan")

// subdirs returns the names of the directories in dir, in directory order.
// It reads the entries' types from the directory itself (no stat per entry).
// names is reused as the result's backing array.
func subdirs(dir string, names []string) ([]string, error) {
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

// countDirs returns the number of directories in the tree at root, root
// included. Directories that vanish while the walk runs are not counted and
// are not errors; any other error is returned beside the count of what could
// be read.
func countDirs(root string) (int, error) {
	n := 0
	var errs []error
	stack := []string{root}
	var names []string
	for len(stack) > 0 {
		dir := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		var err error
		names, err = subdirs(dir, names[:0])
		if err != nil {
			if dir != root && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			errs = append(errs, fmt.Errorf("list %s: %w", dir, err))
			continue
		}
		n++
		for _, name := range names {
			stack = append(stack, filepath.Join(dir, name))
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
	names, err := subdirs(dir, nil)
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
