package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
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
