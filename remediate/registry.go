package remediate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// CheckFactory builds a check from its policy arguments (JSON, possibly
// empty). It rejects unknown arguments and unusable values.
type CheckFactory func(args json.RawMessage) (Check, error)

// RemediatorFactory builds a remediator from its policy arguments.
type RemediatorFactory func(args json.RawMessage) (Remediator, error)

// Registry maps the names a policy uses to the factories of checks and
// remediators. It is filled explicitly (remediate/builtin fills it with what leakguard
// ships), never by init().
type Registry struct {
	checks      map[string]CheckFactory
	remediators map[string]RemediatorInfo
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{checks: map[string]CheckFactory{}, remediators: map[string]RemediatorInfo{}}
}

// AddCheck registers a check factory under name; a name already taken or
// empty is an error.
func (r *Registry) AddCheck(name string, f CheckFactory) error {
	if name == "" || f == nil {
		return errors.New("add check: empty name or nil factory")
	}
	if _, dup := r.checks[name]; dup {
		return fmt.Errorf("add check: %q is already registered", name)
	}
	r.checks[name] = f
	return nil
}

// AddRemediator registers a remediator; a name already taken or empty, a
// nil factory or no target kinds is an error.
func (r *Registry) AddRemediator(info RemediatorInfo) error {
	if info.Name == "" || info.New == nil || len(info.Targets) == 0 {
		return errors.New("add remediator: empty name, nil factory or no target kinds")
	}
	if _, dup := r.remediators[info.Name]; dup {
		return fmt.Errorf("add remediator: %q is already registered", info.Name)
	}
	r.remediators[info.Name] = info
	return nil
}

// resumers returns the registered remediators that have a Resumer, by
// name.
func (r *Registry) resumers() []RemediatorInfo {
	var out []RemediatorInfo
	for _, name := range r.RemediatorNames() {
		if info := r.remediators[name]; info.Resumer != nil {
			out = append(out, info)
		}
	}
	return out
}

// CheckNames returns the registered check names, sorted.
func (r *Registry) CheckNames() []string { return sortedNames(r.checks) }

// RemediatorNames returns the registered remediator names, sorted.
func (r *Registry) RemediatorNames() []string { return sortedNames(r.remediators) }

func (r *Registry) newCheck(name string, args json.RawMessage) (Check, error) {
	f, ok := r.checks[name]
	if !ok {
		return nil, fmt.Errorf("unknown check %q (known: %s)", name, strings.Join(r.CheckNames(), ", "))
	}
	c, err := f(args)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", name, err)
	}
	return c, nil
}

func (r *Registry) newRemediator(name string, args json.RawMessage) (RemediatorInfo, Remediator, error) {
	info, ok := r.remediators[name]
	if !ok {
		return RemediatorInfo{}, nil, fmt.Errorf("unknown remediator %q (known: %s)", name, strings.Join(r.RemediatorNames(), ", "))
	}
	rem, err := info.New(args)
	if err != nil {
		return RemediatorInfo{}, nil, fmt.Errorf("remediator %s: %w", name, err)
	}
	return info, rem, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DecodeArgs decodes policy arguments strictly into v, which holds the
// defaults: absent or null arguments leave it as it is, an unknown argument
// is an error.
func DecodeArgs(args json.RawMessage, v any) error {
	trimmed := bytes.TrimSpace(args)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("args: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return nil
}
