// Package render builds deploy/'s kustomizations with the kustomize API, as
// `kubectl apply -k` does, from an in-memory copy of the directory, so that
// files can be written over the copy without writing into the checkout.
// The e2e lab (test/e2e/lab), deploy/'s own test and the Helm chart's
// generator (internal/chart) render through it, so that all three see the
// same objects.
package render

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Root is where the copy of the deploy directory lives in the in-memory
// file system.
const Root = "/deploy"

// Build builds the kustomization at deployDir/kustomization (a directory
// relative to deployDir, "." for the base), with files (paths relative to
// deployDir) written over the copy first: a kustomization as a user edits
// it, or files `leakguard generate` has just written.
func Build(deployDir, kustomization string, files map[string][]byte) (resmap.ResMap, error) {
	mem, err := memDeploy(deployDir)
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		path := filepath.Join(Root, name)
		if err := mem.MkdirAll(filepath.Dir(path)); err != nil {
			return nil, err
		}
		if err := mem.WriteFile(path, data); err != nil {
			return nil, err
		}
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join(Root, kustomization))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", kustomization, err)
	}
	return resMap, nil
}

// memDeploy copies deployDir into memory under Root.
func memDeploy(deployDir string) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(deployDir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return mem.MkdirAll(filepath.Join(Root, rel))
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join(Root, rel), data)
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", deployDir, err)
	}
	return mem, nil
}
