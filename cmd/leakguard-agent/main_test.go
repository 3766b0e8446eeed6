package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoServeDependencies keeps the agent's program small: it must
// not link client-go's typed clients, the API types of k8s.io/api, or
// serve's packages (their pages would be resident on every node).
func TestLinksNoServeDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"k8s.io/api/", "k8s.io/client-go/kubernetes", "k8s.io/client-go/informers",
			"github.com/leakguard/leakguard/remediate", "github.com/leakguard/leakguard/server"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("leakguard-agent links %s", pkg)
			}
		}
	}
}
