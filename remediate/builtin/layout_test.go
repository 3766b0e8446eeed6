package builtin

import (
	"bytes"
	"os/exec"
	"path"
	"strings"
	"testing"
)

const module = "github.com/leakguard/leakguard/remediate"

// goList runs go list with args in the module and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.Fields(string(out))
}

// below lists the packages under remediate/ but the engine itself: the
// plugins, their own sub-packages (such as profile/summary), this
// assembly package and the shared test fakes.
func below(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, p := range goList(t, module+"/...") {
		if p != module {
			out = append(out, p)
		}
	}
	return out
}

// plugins are the packages directly under remediate/ that hold checks and
// remediators: everything but the engine, this assembly package, the
// shared test fakes and the plugins' own sub-packages.
func plugins(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, p := range below(t) {
		switch {
		case p == module+"/builtin", p == module+"/remediatetest":
			continue
		case strings.Contains(strings.TrimPrefix(p, module+"/"), "/"):
			continue
		}
		out = append(out, p)
	}
	return out
}

// TestEngineImportsNoPlugin: the engine package depends on no check or
// remediator package, nor on their sub-packages or this assembly package:
// plugins import the engine, never the other way round.
func TestEngineImportsNoPlugin(t *testing.T) {
	if len(plugins(t)) == 0 {
		t.Fatal("no plugin packages under remediate/: the layout this test guards is gone")
	}
	forbidden := map[string]bool{}
	for _, p := range below(t) {
		forbidden[p] = true
	}
	for _, dep := range goList(t, "-deps", module) {
		if forbidden[dep] {
			t.Errorf("the engine %s depends on %s", module, dep)
		}
	}
}

// TestPluginsAreTheirOwnPackages: the checks live in remediate/check and
// every plugin is a package of its own that builtin imports; the
// engine's directory holds no check file any more.
func TestPluginsAreTheirOwnPackages(t *testing.T) {
	ps := plugins(t)
	imports := map[string]bool{}
	for _, p := range goList(t, "-f", `{{join .Imports "\n"}}`, module+"/builtin") {
		imports[p] = true
	}
	for _, p := range ps {
		if !imports[p] {
			t.Errorf("builtin does not import the plugin package %s", p)
		}
	}
	if !imports[module+"/check"] {
		t.Errorf("builtin does not import %s/check", module)
	}
	for _, f := range goList(t, "-f", `{{join .GoFiles "\n"}}`, module) {
		if strings.HasPrefix(path.Base(f), "check_") {
			t.Errorf("the engine holds %s: checks belong in remediate/check", f)
		}
	}
}
