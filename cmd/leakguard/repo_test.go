package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	moduleRootOnce sync.Once
	moduleRootDir  string
	moduleRootErr  string
)

// repoPath returns the path of elem under the module's root (the
// directory of leakguard's go.mod), found by walking up from the test's
// working directory, so that tests name the files they read (deploy/,
// remediate/testdata/) as the repository lays them out, wherever this
// package sits. A root that cannot be found fails the test.
func repoPath(t testing.TB, elem ...string) string {
	t.Helper()
	moduleRootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			moduleRootErr = "working directory: " + err.Error()
			return
		}
		for {
			data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && strings.HasPrefix(string(data), "module github.com/leakguard/leakguard\n") {
				moduleRootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				moduleRootErr = "no go.mod of github.com/leakguard/leakguard above the working directory"
				return
			}
			dir = parent
		}
	})
	if moduleRootDir == "" {
		t.Fatalf("module root: %s", moduleRootErr)
	}
	return filepath.Join(append([]string{moduleRootDir}, elem...)...)
}
