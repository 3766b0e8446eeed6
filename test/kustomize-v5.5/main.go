// Command kustomize-v5.5 renders kustomizations with the kustomize API that
// kubectl 1.32 bundles (kustomize v5.5.0: sigs.k8s.io/kustomize/api
// v0.18.0, kyaml v0.18.1), which the main module cannot import beside its
// own, newer one. deploy/deploy_test.go runs it (TestKustomizeVersions) and
// compares its renders with the main module's.
//
// It reads a Request as JSON on stdin and writes one Result per build, in
// order, as a JSON array on stdout. Each build runs on an in-memory copy of
// the request's directory with the build's files written over it, so that
// a kustomization can be added or changed without writing into the
// checkout. A build that fails is a Result with Error set; a request that
// cannot be read or copied exits 1.
package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Request names a directory (copied under /deploy in memory) and the
// builds to run on it.
type Request struct {
	Dir    string  `json:"dir"`
	Builds []Build `json:"builds"`
}

// Build is one kustomize build: Kustomization is a directory relative to
// the request's Dir ("." for its root), Files are written over the copy
// first (paths relative to Dir).
type Build struct {
	Kustomization string            `json:"kustomization"`
	Files         map[string]string `json:"files,omitempty"`
}

// Result is a build's YAML stream, or the error that stopped it.
type Result struct {
	YAML  string `json:"yaml,omitempty"`
	Error string `json:"error,omitempty"`
}

func main() {
	var req Request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "kustomize-v5.5: read the request:", err)
		os.Exit(1)
	}
	results := make([]Result, 0, len(req.Builds))
	for _, b := range req.Builds {
		mem, err := copyDir(req.Dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "kustomize-v5.5:", err)
			os.Exit(1)
		}
		out, err := build(mem, b)
		if err != nil {
			results = append(results, Result{Error: err.Error()})
			continue
		}
		results = append(results, Result{YAML: string(out)})
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintln(os.Stderr, "kustomize-v5.5: write the results:", err)
		os.Exit(1)
	}
}

func build(mem filesys.FileSystem, b Build) ([]byte, error) {
	for name, data := range b.Files {
		path := filepath.Join("/deploy", name)
		if err := mem.MkdirAll(filepath.Dir(path)); err != nil {
			return nil, err
		}
		if err := mem.WriteFile(path, []byte(data)); err != nil {
			return nil, err
		}
	}
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/deploy", b.Kustomization))
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", b.Kustomization, err)
	}
	return resMap.AsYaml()
}

// copyDir copies dir into memory under /deploy.
func copyDir(dir string) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return mem.MkdirAll(filepath.Join("/deploy", rel))
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile(filepath.Join("/deploy", rel), data)
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s: %w", dir, err)
	}
	return mem, nil
}
