//go:build linux

package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// countDirs returns the number of directories in the tree at root, root
// included, as countDirsPortable does, with fewer system calls and almost no
// allocation: each directory is opened relative to its parent's descriptor,
// its entries are read with getdents into one buffer per depth and parsed in
// place, and a subdirectory whose link count says it is a leaf is counted
// from one fstatat without being opened.
func countDirs(root string) (int, error) {
	// The root may be reached through a symbolic link; nothing below it is.
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", root, err)
	}
	w := dirWalker{}
	n := w.walk(fd, root, 0)
	unix.Close(fd)
	return n, errors.Join(w.errs...)
}

// dirWalker holds a walk's buffers and errors.
type dirWalker struct {
	bufs [][]byte // one getdents buffer per depth
	errs []error
}

// maxWalkDepth bounds the whole-tree walk; cgroup trees are far shallower.
const maxWalkDepth = 32

// walk counts the directory open at fd and everything below it, and closes
// nothing: the caller owns fd.
func (w *dirWalker) walk(fd int, path string, depth int) int {
	if depth >= maxWalkDepth {
		w.errs = append(w.errs, fmt.Errorf("%s: deeper than %d levels", path, maxWalkDepth))
		return 1
	}
	for len(w.bufs) <= depth {
		w.bufs = append(w.bufs, make([]byte, 16<<10))
	}
	buf := w.bufs[depth]
	n := 1
	for {
		nb, err := readDirent(fd, buf)
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("list %s: %w", path, err))
			return n
		}
		if nb <= 0 {
			return n
		}
		for off := 0; off < nb; {
			// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
			reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			off += reclen
			if reclen == 0 {
				return n
			}
			if i := indexNUL(name); i >= 0 {
				name = name[:i]
			}
			if typ != unix.DT_DIR && typ != unix.DT_UNKNOWN {
				continue
			}
			if string(name) == "." || string(name) == ".." {
				continue
			}
			n += w.child(fd, path, string(name), depth)
		}
	}
}

// child counts the subdirectory name of the directory open at fd.
func (w *dirWalker) child(fd int, path, name string, depth int) int {
	var st unix.Stat_t
	if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			w.errs = append(w.errs, fmt.Errorf("stat %s: %w", filepath.Join(path, name), err))
		}
		return 0 // removed under us: not a live cgroup any more
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0
	}
	if st.Nlink == leafLinks {
		return 1
	}
	cfd, err := openDir(fd, name)
	if err != nil {
		if !errors.Is(err, unix.ENOENT) {
			w.errs = append(w.errs, fmt.Errorf("list %s: %w", filepath.Join(path, name), err))
		}
		return 0
	}
	n := w.walk(cfd, filepath.Join(path, name), depth+1)
	unix.Close(cfd)
	return n
}

func openDir(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func readDirent(fd int, buf []byte) (int, error) {
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func indexNUL(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return -1
}

// subdirs returns the names of the directories in dir, in directory order,
// as subdirsPortable does, reading the entries with getdents into a buffer
// and allocating only the names of directories. names is reused as the
// result's backing array.
func subdirs(dir string, names []string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return names, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	bufp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bufp)
	buf := *bufp
	for {
		nb, err := readDirent(fd, buf)
		if err != nil {
			return names, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if nb <= 0 {
			return names, nil
		}
		for off := 0; off < nb; {
			reclen := int(*(*uint16)(unsafe.Pointer(&buf[off+16])))
			if reclen == 0 {
				return names, nil
			}
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			off += reclen
			if i := indexNUL(name); i >= 0 {
				name = name[:i]
			}
			if string(name) == "." || string(name) == ".." {
				continue
			}
			switch typ {
			case unix.DT_DIR:
			case unix.DT_UNKNOWN:
				// A file system that does not say: ask.
				var st unix.Stat_t
				if err := unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
					continue
				}
			default:
				continue
			}
			names = append(names, string(name))
		}
	}
}

// direntBufs holds getdents buffers between calls of subdirs.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// readSmall reads the start of a small file into buf and returns how many
// bytes it read, without an os.File.
func readSmall(path string, buf []byte) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// readOnlyMount reports whether path is on a read-only mount.
func readOnlyMount(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Flags&unix.ST_RDONLY != 0, nil
}
