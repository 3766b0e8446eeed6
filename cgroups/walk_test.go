package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCountDirs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  int
	}{
		{"root alone", func(*testing.T, string) {}, 1},
		{"files are not counted", func(t *testing.T, root string) {
			mustWrite(t, filepath.Join(root, "cgroup.procs"))
			mustMkdir(t, filepath.Join(root, "a"))
			mustWrite(t, filepath.Join(root, "a", "memory.max"))
		}, 2},
		{"symbolic links are not followed", func(t *testing.T, root string) {
			mustMkdir(t, filepath.Join(root, "a", "b"))
			if err := os.Symlink(filepath.Join(root, "a"), filepath.Join(root, "link")); err != nil {
				t.Fatal(err)
			}
		}, 3},
		{"deep and wide", func(t *testing.T, root string) {
			mustMkdir(t, filepath.Join(root, "1", "2", "3", "4", "5", "6", "7", "8"))
			for i := range 5 {
				mustMkdir(t, filepath.Join(root, "1", "2", fmt.Sprintf("w%d", i), "leaf"))
			}
		}, 19},
		{"more entries than one getdents buffer holds", func(t *testing.T, root string) {
			long := strings.Repeat("x", 200)
			for i := range 300 {
				mustMkdir(t, filepath.Join(root, fmt.Sprintf("%s-%03d", long, i)))
				mustWrite(t, filepath.Join(root, fmt.Sprintf("%s-%03d.file", long, i)))
			}
			mustMkdir(t, filepath.Join(root, long+"-000", "child"))
		}, 302},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(t, root)
			for _, f := range []struct {
				name string
				fn   func(string) (int, error)
			}{{"countDirs", countDirs}, {"countDirsPortable", countDirsPortable}} {
				got, err := f.fn(root)
				if err != nil || got != tc.want {
					t.Errorf("%s(%s) = %d, %v; want %d", f.name, tc.name, got, err, tc.want)
				}
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "missing")
	for _, fn := range []func(string) (int, error){countDirs, countDirsPortable} {
		if n, err := fn(missing); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("count of a missing root = %d, %v; want a no-such-file error", n, err)
		}
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSubdirs(t *testing.T) {
	root := t.TempDir()
	for i := range 300 {
		mustMkdir(t, filepath.Join(root, fmt.Sprintf("%s-%03d", strings.Repeat("d", 100), i)))
		mustWrite(t, filepath.Join(root, fmt.Sprintf("%s-%03d", strings.Repeat("f", 100), i)))
	}
	if err := os.Symlink(root, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	got, err := subdirs(root, nil)
	if err != nil {
		t.Fatalf("subdirs(%s) error: %v", root, err)
	}
	want, err := subdirsPortable(root, nil)
	if err != nil {
		t.Fatalf("subdirsPortable(%s) error: %v", root, err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) != 300 || !slices.Equal(got, want) {
		t.Errorf("subdirs(%s) = %d names, subdirsPortable = %d; want the same 300", root, len(got), len(want))
	}
	for _, fn := range []func(string, []string) ([]string, error){subdirs, subdirsPortable} {
		if _, err := fn(filepath.Join(root, "missing"), nil); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("listing a missing directory: error %v, want one that is fs.ErrNotExist", err)
		}
	}
}

func TestReadSmall(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cgroup.events")
	if err := os.WriteFile(path, []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, fn := range []func(string, []byte) (int, error){readSmall, readSmallPortable} {
		buf := make([]byte, 64)
		if n, err := fn(path, buf); err != nil || string(buf[:n]) != "populated 1\nfrozen 0\n" {
			t.Errorf("read %s = %q, %v; want its content", path, buf[:n], err)
		}
		short := make([]byte, 4)
		if n, err := fn(path, short); err != nil || string(short[:n]) != "popu" {
			t.Errorf("read %s into 4 bytes = %q, %v; want %q", path, short[:n], err, "popu")
		}
		if _, err := fn(dir, buf); err == nil {
			t.Errorf("read of a directory: error nil, want one")
		}
		if _, err := fn(filepath.Join(dir, "missing"), buf); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("read of a missing file: error %v, want fs.ErrNotExist", err)
		}
	}
}
