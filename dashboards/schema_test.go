package dashboards

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakguard/leakguard/rules"
)

// schemaCheck is the validator make dashboards-check runs.
const schemaCheck = "schema/check.sh"

func requireSchemaTools(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("schema/node_modules/.bin/tsc"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dashboards/schema/node_modules missing (CI is set): run 'npm ci' in dashboards/schema, as .ci/run does")
		}
		t.Skip("dashboards/schema/node_modules missing: run 'npm ci' in dashboards/schema to run the schema check")
	}
	requireTool(t, "node")
}

// TestSchemaValidator renders every dashboard and a few broken copies of
// one, runs the validator of make dashboards-check on them, and wants it to
// accept the dashboards and reject each broken copy, naming the bad field.
func TestSchemaValidator(t *testing.T) {
	requireSchemaTools(t)
	dir := t.TempDir()
	var good []string
	var overview []byte
	for _, d := range All(rules.DefaultParams()) {
		js, err := Render(d)
		if err != nil {
			t.Fatal(err)
		}
		if d.UID == UIDOverview {
			overview = js
		}
		path := filepath.Join(dir, d.UID+".json")
		if err := os.WriteFile(path, js, 0o644); err != nil {
			t.Fatal(err)
		}
		good = append(good, path)
	}

	out, err := exec.Command(schemaCheck, good...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s on the generated dashboards: %v\n%s", schemaCheck, err, out)
	}

	broken := []struct {
		name, old, new, want string
	}{
		{"misspelt panel key", `"gridPos"`, `"gridPoss"`, "gridPoss"},
		{"unknown dashboard key", `"schemaVersion"`, `"schemaVersoin"`, "schemaVersoin"},
		{"unknown query field", `"legendFormat"`, `"legend"`, `'"legend"' does not exist`},
		{"wrong enum value", `"mode": "absolute"`, `"mode": "absolut"`, `"absolut"`},
		{"wrong type", `"schemaVersion": 42`, `"schemaVersion": "42"`, "not assignable to type 'number'"},
		{"unknown table option", `"showHeader"`, `"showHeaders"`, "showHeaders"},
	}
	// One validator run over all broken copies; tsc prefixes each error
	// with the file it is in.
	var paths []string
	for i, b := range broken {
		if !strings.Contains(string(overview), b.old) {
			t.Fatalf("%s: the overview has no %s to break", b.name, b.old)
		}
		path := filepath.Join(dir, fmt.Sprintf("broken_%d.json", i))
		if err := os.WriteFile(path, []byte(strings.Replace(string(overview), b.old, b.new, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	out, err = exec.Command(schemaCheck, paths...).CombinedOutput()
	if err == nil {
		t.Fatalf("%s accepted broken dashboards:\n%s", schemaCheck, out)
	}
	errs := map[int][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		for i := range broken {
			if strings.Contains(line, fmt.Sprintf("broken_%d.ts(", i)) {
				errs[i] = append(errs[i], line)
			}
		}
	}
	for i, b := range broken {
		if !strings.Contains(strings.Join(errs[i], "\n"), b.want) {
			t.Errorf("%s: %s errors = %q, want one mentioning %s", b.name, schemaCheck, errs[i], b.want)
		}
	}
}
