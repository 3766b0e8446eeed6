package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/leakguard/leakguard/rules"
)

var update = flag.Bool("update", false, "rewrite the committed files under deploy/grafana/ from Files(DefaultParams())")

// deployDir is the repository's deploy directory, seen from this package.
const deployDir = "../deploy"

// TestCommittedFilesUpToDate compares Files(DefaultParams()) with what is
// committed under deploy/grafana/ (make verify does the same through
// `leakguard generate`); -update rewrites them.
func TestCommittedFilesUpToDate(t *testing.T) {
	files, err := Files(rules.DefaultParams())
	if err != nil {
		t.Fatalf("Files(DefaultParams()) error: %v", err)
	}
	paths := make([]string, 0, len(files))
	for k := range files {
		paths = append(paths, k)
	}
	sort.Strings(paths)
	for _, rel := range paths {
		path := filepath.Join(deployDir, filepath.FromSlash(rel))
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, files[rel], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("read %s: %v (run go test ./dashboards -run TestCommittedFilesUpToDate -update)", path, err)
			continue
		}
		if !bytes.Equal(got, files[rel]) {
			t.Errorf("%s is stale (run make generate)", path)
		}
	}
	entries, err := os.ReadDir(filepath.Join(deployDir, "grafana"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// The one hand-written file: the kustomization that includes the
		// ConfigMaps in deploy/'s base and overlays.
		if e.Name() == "kustomization.yaml" {
			continue
		}
		if _, ok := files["grafana/"+e.Name()]; !ok && !*update {
			t.Errorf("deploy/grafana/%s is not generated any more: remove it", e.Name())
		}
	}
}
