package docs_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	"github.com/leakguard/leakguard/remediate"
	"github.com/leakguard/leakguard/remediate/builtin"
	"github.com/leakguard/leakguard/remediate/check"
	"github.com/leakguard/leakguard/remediate/node"
	"github.com/leakguard/leakguard/remediate/profile"
	"github.com/leakguard/leakguard/remediate/restart"
)

// examplePolicy is the complete example policy, for docs/policy.md.
const examplePolicy = "examples/policy.yaml"

// argsTypes gives, for every check and remediator leakguard ships, the type
// its policy arguments decode into; nil for one that takes none. The walk
// below needs it to know the fields of each `args`. A check or remediator
// registered later fails TestExamplePolicyCoversEveryField until it has an
// entry here and an example in examples/policy.yaml.
var argsTypes = map[string]reflect.Type{
	"working-set-slope": reflect.TypeFor[check.WorkingSetSlopeArgs](),
	"orphan-cgroups":    reflect.TypeFor[check.OrphanCgroupsArgs](),
	"dying-cgroups":     reflect.TypeFor[check.DyingCgroupsArgs](),
	"apiserver-memory":  reflect.TypeFor[check.APIServerMemoryArgs](),
	"none":              nil,
	"annotate":          nil,
	"profile":           reflect.TypeFor[profile.ProfileArgs](),
	"restart":           reflect.TypeFor[restart.RestartArgs](),
	"cordon":            reflect.TypeFor[node.CordonArgs](),
	"drain":             reflect.TypeFor[node.DrainArgs](),
}

// TestExamplePolicyLoads loads the example with the loader `leakguard
// serve --policy` uses and checks that it covers the alerts the default
// policy covers, so that a copy of it leaves no alert without an entry.
func TestExamplePolicyLoads(t *testing.T) {
	reg := builtin.Registry()
	p, err := remediate.LoadPolicyFile(examplePolicy, reg)
	if err != nil {
		t.Fatalf("the example policy does not load: %v", err)
	}
	def, err := remediate.DefaultPolicy(reg)
	if err != nil {
		t.Fatalf("default policy: %v", err)
	}
	if diff := cmp.Diff(def.AlertNames(), p.AlertNames()); diff != "" {
		t.Errorf("the example's alerts differ from the default policy's (-default +example):\n%s", diff)
	}
	// The example is a production policy: it acts (one entry is dry-run,
	// to show the field).
	if p.DryRun {
		t.Errorf("the example policy is dry-run as a whole; it should show a policy that acts")
	}
}

// TestExamplePolicyCoversEveryField walks the policy's types by reflection
// and fails for every field that the example never sets: a field added to
// the policy, or to a check's or remediator's arguments, needs an example.
func TestExamplePolicyCoversEveryField(t *testing.T) {
	data, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := unsetFields(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Errorf("examples/policy.yaml sets no %s: add it, with a comment", m)
	}

	reg := builtin.Registry()
	used := componentNames(t, data)
	for _, name := range append(reg.CheckNames(), reg.RemediatorNames()...) {
		if _, ok := argsTypes[name]; !ok {
			t.Errorf("%s is registered but argsTypes has no entry for it: add its args type there and an example to examples/policy.yaml", name)
		}
		if !used[name] {
			t.Errorf("examples/policy.yaml never uses %s", name)
		}
	}
}

// TestUnsetFields checks the walk itself: it finds a field missing at each
// level (the top, a nested block, an alert entry, a remediator's
// arguments, a nested argument), counts a field set in any one entry, and
// rejects what it cannot walk.
func TestUnsetFields(t *testing.T) {
	full, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// drop removes the lines that hold these exact texts (trimmed).
		drop []string
		want []string
	}{
		{name: "complete", want: nil},
		{name: "top level", drop: []string{"dryRun: false"}, want: []string{"dryRun"}},
		{name: "nested block", drop: []string{"perPoolPerHour: 1"}, want: []string{"disruption.nodes.perPoolPerHour"}},
		{name: "entry field set once", drop: []string{"allowNamespaces: [kube-system]"}, want: []string{"alerts.*.allowNamespaces"}},
		{name: "remediator option", drop: []string{"enabled: true"}, want: []string{"alerts.*.{check,remediators[]}.enabled"}},
		{name: "argument", drop: []string{"apiserverPort: 6443"}, want: []string{"args of profile: apiserverPort"}},
		{name: "nested argument", drop: []string{"window: 24h"}, want: []string{"args of restart: recurrence.window"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var kept []string
			for _, l := range strings.Split(string(full), "\n") {
				if !slices.Contains(tc.drop, strings.TrimSpace(strings.SplitN(l, "#", 2)[0])) {
					kept = append(kept, l)
				}
			}
			got, err := unsetFields([]byte(strings.Join(kept, "\n")))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("unset fields (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("unknown component", func(t *testing.T) {
		_, err := unsetFields([]byte("alerts:\n  A:\n    target: none\n    check: {name: no-such-check}\n"))
		if err == nil || !strings.Contains(err.Error(), "no-such-check") {
			t.Errorf("err = %v, want one naming no-such-check", err)
		}
	})
}

// unsetFields returns the fields of remediate.PolicySpec, and of the
// arguments of every check and remediator the file uses, that the policy
// file sets nowhere: for each struct type, a field counts as set when any
// one value of that type in the file has its key (an alert entry's
// cooldown in one entry is enough). It returns them as dotted paths,
// sorted.
func unsetFields(data []byte) ([]string, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("the policy is not a mapping: %w", err)
	}
	w := &walker{}
	if err := w.walk("", reflect.TypeFor[remediate.PolicySpec](), []any{doc}); err != nil {
		return nil, err
	}
	sort.Strings(w.missing)
	return w.missing, nil
}

// walker collects the unset fields.
type walker struct{ missing []string }

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	entryType      = reflect.TypeFor[remediate.EntrySpec]()
	componentType  = reflect.TypeFor[remediate.ComponentSpec]()
)

// walk checks that every field of struct type typ is set in at least one
// of vals (the decoded YAML mappings that hold a value of typ), then
// descends into the fields' values.
func (w *walker) walk(path string, typ reflect.Type, vals []any) error {
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := jsonName(f)
		if key == "" {
			continue
		}
		var sub []any
		for _, v := range vals {
			if m, ok := v.(map[string]any); ok {
				if x, ok := m[key]; ok {
					sub = append(sub, x)
				}
			}
		}
		fpath := join(path, key)
		if len(sub) == 0 {
			w.missing = append(w.missing, fpath)
			continue
		}
		if err := w.descend(fpath, typ, f, sub); err != nil {
			return err
		}
	}
	return nil
}

// descend walks the values of field f of typ.
func (w *walker) descend(path string, typ reflect.Type, f reflect.StructField, vals []any) error {
	ft := f.Type
	for ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	switch {
	case typ == entryType && (f.Name == "Check" || f.Name == "Remediators"),
		typ == componentType && f.Name == "Args":
		// Checks and remediators share ComponentSpec: walked together
		// with the alert entries, and their arguments by component.
		return nil
	case typ == reflect.TypeFor[remediate.PolicySpec]() && f.Name == "Alerts":
		return w.walkEntries(path, vals)
	case ft == rawMessageType:
		return fmt.Errorf("%s: a json.RawMessage field the walk does not know; teach unsetFields its type", path)
	case ft.Kind() == reflect.Map:
		return fmt.Errorf("%s: a map field the walk does not know; teach unsetFields its values' type", path)
	case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
		return fmt.Errorf("%s: a list of structs the walk does not know; teach unsetFields to walk it", path)
	case ft.Kind() == reflect.Struct && ft.NumField() > 0:
		return w.walk(path, ft, vals)
	}
	return nil
}

// walkEntries walks the alert entries (the values of every alerts
// mapping in vals) as EntrySpec, then their checks and remediators
// together as ComponentSpec (a field counts as set on either: enabled is
// a remediator's alone), then each one's arguments.
func (w *walker) walkEntries(path string, vals []any) error {
	var entries, components []any
	for _, v := range vals {
		m, _ := v.(map[string]any)
		for _, e := range m {
			entries = append(entries, e)
			em, _ := e.(map[string]any)
			if c, ok := em["check"]; ok {
				components = append(components, c)
			}
			l, _ := em["remediators"].([]any)
			components = append(components, l...)
		}
	}
	if err := w.walk(path+".*", entryType, entries); err != nil {
		return err
	}
	if err := w.walk(path+".*.{check,remediators[]}", componentType, components); err != nil {
		return err
	}
	return w.walkComponents(components)
}

// walkComponents walks the arguments of checks and remediators, grouped by
// name, against each one's argument type.
func (w *walker) walkComponents(items []any) error {
	byName := map[string][]any{}
	var names []string
	for _, it := range items {
		m, _ := it.(map[string]any)
		name, _ := m["name"].(string)
		if _, seen := byName[name]; !seen {
			names = append(names, name)
		}
		byName[name] = append(byName[name], m["args"])
	}
	sort.Strings(names)
	for _, name := range names {
		typ, ok := argsTypes[name]
		if !ok {
			return fmt.Errorf("check or remediator %q has no entry in argsTypes", name)
		}
		if typ == nil {
			continue
		}
		if err := w.walk("args of "+name+":", typ, byName[name]); err != nil {
			return err
		}
	}
	return nil
}

// componentNames returns the names of every check and remediator the
// policy file uses.
func componentNames(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	var spec struct {
		Alerts map[string]remediate.EntrySpec `json:"alerts"`
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		t.Fatalf("decode the alert entries: %v", err)
	}
	used := map[string]bool{}
	for _, e := range spec.Alerts {
		used[e.Check.Name] = true
		for _, r := range e.Remediators {
			used[r.Name] = true
		}
	}
	return used
}

// jsonName is the key a field is written under, or "" for a field that is
// not written.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch tag {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return tag
}

// join appends key to a dotted path; an args path ends in ":" and takes
// the key after a space.
func join(path, key string) string {
	switch {
	case path == "":
		return key
	case strings.HasSuffix(path, ":"):
		return path + " " + key
	}
	return path + "." + key
}
