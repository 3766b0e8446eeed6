package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// kubernetesRequire finds the Kubernetes release in the tools module's
// go.mod: the cache directory is named after it.
var kubernetesRequire = regexp.MustCompile(`(?m)^require k8s\.io/kubernetes (v[0-9]+\.[0-9]+\.[0-9]+)$`)

// FindBinaries returns the directory that holds kube-apiserver and etcd:
// $LEAKGUARD_E2E_BIN when set, else the cache directory that
// hack/e2e-binaries.sh fills, for the Kubernetes release that
// tools/kube/kube-apiserver/go.mod pins under repoRoot. It returns an
// error naming what is missing and how to get it.
func FindBinaries(repoRoot string) (string, error) {
	dir := os.Getenv("LEAKGUARD_E2E_BIN")
	if dir == "" {
		gomod := filepath.Join(repoRoot, "tools", "kube", "kube-apiserver", "go.mod")
		data, err := os.ReadFile(gomod)
		if err != nil {
			return "", err
		}
		m := kubernetesRequire.FindSubmatch(data)
		if m == nil {
			return "", fmt.Errorf("%s has no line 'require k8s.io/kubernetes vX.Y.Z'", gomod)
		}
		cache := os.Getenv("LEAKGUARD_CACHE")
		if cache == "" {
			userCache, err := os.UserCacheDir()
			if err != nil {
				return "", err
			}
			cache = filepath.Join(userCache, "leakguard")
		}
		dir = filepath.Join(cache, "bin", string(m[1]))
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return dir, fmt.Errorf("no %s in %s (run hack/e2e-binaries.sh, or make e2e, which builds kube-apiserver and etcd from source once): %w", bin, dir, err)
		}
	}
	return dir, nil
}
