package remediate

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

//go:embed default_policy.yaml
var defaultPolicyYAML []byte

// DefaultPolicyYAML returns the policy that the binary embeds and that
// `leakguard serve` uses without --policy.
func DefaultPolicyYAML() []byte { return bytes.Clone(defaultPolicyYAML) }

// DefaultPolicy parses the embedded policy with reg.
func DefaultPolicy(reg *Registry) (*Policy, error) {
	p, err := ParsePolicy(defaultPolicyYAML, reg)
	if err != nil {
		return nil, fmt.Errorf("embedded default policy: %w", err)
	}
	return p, nil
}

// Target kinds a policy entry may name.
const (
	// TargetWorkload is the pod's owning workload (ReplicaSet → Deployment,
	// StatefulSet, DaemonSet, Job), or the pod itself when it has none.
	TargetWorkload = "workload"
	// TargetPod is the alert's pod.
	TargetPod = "pod"
	// TargetNode is the alert's node.
	TargetNode = "node"
	// TargetAPIServer is the static pod kube-system/kube-apiserver-<node>
	// when it exists, else the node.
	TargetAPIServer = "apiserver"
	// TargetNone means the alert is about no object; the decision is only
	// recorded in logs and metrics.
	TargetNone = "none"
)

var targetKinds = []string{TargetWorkload, TargetPod, TargetNode, TargetAPIServer, TargetNone}

// Defaults of the policy's global settings.
const (
	DefaultCooldown      = time.Hour
	DefaultRatePerMinute = 10
	DefaultRateBurst     = 5
	// SystemNamespace is kube-system: out of scope unless an entry
	// names it, and where the apiserver's static pods live.
	SystemNamespace = "kube-system"
	// DefaultDisruptivePerNamespacePerHour caps the disruptive actions in
	// one namespace in any hour.
	DefaultDisruptivePerNamespacePerHour = 2
	// DefaultDisruptiveNodesPerHour caps the disruptive actions on nodes
	// (cordon, drain), over the whole cluster, in any hour: nodes have no
	// namespace, and a node budget is not a namespace's.
	DefaultDisruptiveNodesPerHour = 2
	// DefaultDisruptivePerNodePoolPerHour caps the disruptive actions in
	// one node pool in any hour, when disruption.nodes.poolLabel names
	// the label that says a node's pool.
	DefaultDisruptivePerNodePoolPerHour = 1
	// DefaultStormTargets, DefaultStormWindow and DefaultStormPause: more
	// than 5 targets needing a disruptive action within 10 minutes pause
	// every disruptive remediator for 30 minutes.
	DefaultStormTargets = 5
	DefaultStormWindow  = 10 * time.Minute
	DefaultStormPause   = 30 * time.Minute
)

// Duration is a time.Duration written as a Go duration string ("90m").
type Duration time.Duration

// UnmarshalJSON parses a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"1h30m\", got %s", b)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a Go duration such as \"90m\" or \"1h30m\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// PolicySpec is the policy file as written.
type PolicySpec struct {
	// DryRun makes every entry dry-run: decide and record, change nothing.
	DryRun bool `json:"dryRun"`
	// Cooldown is the least time between two actions of one remediator on
	// one target; 0 or absent means DefaultCooldown.
	Cooldown Duration `json:"cooldown"`
	// RateLimit bounds actions over all targets, across replicas.
	RateLimit RateLimitSpec `json:"rateLimit"`
	// Disruption bounds the disruptive remediators.
	Disruption DisruptionSpec `json:"disruption"`
	// Namespaces scopes pod and workload targets.
	Namespaces NamespaceSpec `json:"namespaces"`
	// Alerts maps alert names to what to do.
	Alerts map[string]json.RawMessage `json:"alerts"`
}

// RateLimitSpec is a token bucket over every action the engine takes.
type RateLimitSpec struct {
	// PerMinute is the refill rate; 0 or absent means DefaultRatePerMinute.
	PerMinute float64 `json:"perMinute"`
	// Burst is the bucket size; 0 or absent means DefaultRateBurst.
	Burst int `json:"burst"`
}

// DisruptionSpec bounds disruptive actions, across replicas (the budgets
// live in a Lease).
type DisruptionSpec struct {
	// PerNamespacePerHour caps the disruptive actions in one namespace in
	// any hour; 0 or absent means DefaultDisruptivePerNamespacePerHour.
	PerNamespacePerHour int `json:"perNamespacePerHour"`
	// Nodes bounds the disruptive actions on nodes, which have no
	// namespace: a bucket of their own, apart from the namespaces'.
	Nodes NodeBudgetSpec `json:"nodes"`
	// Storm pauses every disruptive remediator when more than Targets
	// targets need one within Window, for Pause.
	Storm StormSpec `json:"storm"`
}

// NodeBudgetSpec bounds the disruptive actions on nodes: over the whole
// cluster, and per node pool when PoolLabel names the node label that
// says a node's pool (cloud.google.com/gke-nodepool, say).
type NodeBudgetSpec struct {
	// PerHour caps the disruptive actions on all nodes in any hour; 0 or
	// absent means DefaultDisruptiveNodesPerHour.
	PerHour int `json:"perHour"`
	// PoolLabel, when set, gives every value of that node label (and the
	// nodes without it, together) a budget of its own as well.
	PoolLabel string `json:"poolLabel"`
	// PerPoolPerHour caps the disruptive actions in one pool in any
	// hour; 0 or absent means DefaultDisruptivePerNodePoolPerHour. It
	// needs PoolLabel.
	PerPoolPerHour int `json:"perPoolPerHour"`
}

// StormSpec is the storm guard; zero fields take the defaults.
type StormSpec struct {
	Targets int      `json:"targets"`
	Window  Duration `json:"window"`
	Pause   Duration `json:"pause"`
}

// NamespaceSpec lists the namespaces the engine may act in. kube-system is
// excluded unless Include lists it (or an entry's AllowNamespaces does).
type NamespaceSpec struct {
	// Include, when not empty, is the only namespaces acted in.
	Include []string `json:"include"`
	// Exclude is never acted in.
	Exclude []string `json:"exclude"`
}

// EntrySpec is what to do for one alert name.
type EntrySpec struct {
	// Target is which object the alert is about: workload, pod, node,
	// apiserver or none.
	Target string `json:"target"`
	// Check confirms the finding against Prometheus before acting.
	Check ComponentSpec `json:"check"`
	// Remediators run in order on the target.
	Remediators []ComponentSpec `json:"remediators"`
	// DryRun makes this entry dry-run whatever the global setting.
	DryRun bool `json:"dryRun"`
	// Cooldown overrides the global cooldown for this entry.
	Cooldown Duration `json:"cooldown"`
	// AllowNamespaces are namespaces this entry may act in although the
	// global lists exclude them (kube-system for the apiserver's static
	// pod, say).
	AllowNamespaces []string `json:"allowNamespaces"`
}

// ComponentSpec names a check or remediator and its arguments.
type ComponentSpec struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
	// Enabled must be true for a disruptive remediator (restart): a
	// policy that disrupts says so in as many words. It is not allowed on
	// a check.
	Enabled *bool `json:"enabled,omitempty"`
}

// Policy is a validated, compiled policy.
type Policy struct {
	// registry is the registry the policy was compiled with: its
	// Resumers are called whatever the entries name.
	registry      *Registry
	DryRun        bool
	Cooldown      time.Duration
	RatePerMinute float64
	RateBurst     int
	// DisruptivePerNamespacePerHour, StormTargets, StormWindow and
	// StormPause are the disruption budgets, defaults filled in.
	DisruptivePerNamespacePerHour int
	// DisruptiveNodesPerHour caps the disruptive actions on nodes over
	// the cluster; NodePoolLabel, when set, gives each node pool a cap
	// of DisruptivePerNodePoolPerHour too.
	DisruptiveNodesPerHour       int
	NodePoolLabel                string
	DisruptivePerNodePoolPerHour int
	StormTargets                 int
	StormWindow                  time.Duration
	StormPause                   time.Duration
	include                      map[string]bool
	exclude                      map[string]bool
	entries                      map[string]*Entry
}

// Entry is a compiled policy entry.
type Entry struct {
	AlertName       string
	Target          string
	Check           Check
	Remediators     []EntryRemediator
	DryRun          bool
	Cooldown        time.Duration
	AllowNamespaces map[string]bool
}

// EntryRemediator is one remediator of an entry, as declared and built.
type EntryRemediator struct {
	RemediatorInfo
	Remediator Remediator
}

// disruptive reports whether any of e's remediators is disruptive.
func (e *Entry) disruptive() bool {
	for _, r := range e.Remediators {
		if r.Disruptive {
			return true
		}
	}
	return false
}

// Entry returns the entry for an alert name, or nil.
func (p *Policy) Entry(alertname string) *Entry { return p.entries[alertname] }

// AlertNames returns the alert names the policy covers, sorted.
func (p *Policy) AlertNames() []string { return sortedNames(p.entries) }

// namespaceAllowed reports whether entry e may act in namespace ns.
func (p *Policy) namespaceAllowed(e *Entry, ns string) bool {
	if e.AllowNamespaces[ns] {
		return true
	}
	if p.exclude[ns] {
		return false
	}
	if len(p.include) > 0 {
		return p.include[ns]
	}
	return ns != SystemNamespace
}

// LoadPolicyFile reads and parses a policy file.
func LoadPolicyFile(path string, reg *Registry) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	p, err := ParsePolicy(data, reg)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy parses a policy strictly: unknown fields, duplicate keys,
// unknown check, remediator or target names and unusable arguments are
// errors, each naming the alert entry it is in. All problems are reported
// together.
func ParsePolicy(data []byte, reg *Registry) (*Policy, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parse YAML: %w", err)
	}
	var spec PolicySpec
	if err := strictJSON(js, &spec); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	p := &Policy{
		registry:                      reg,
		DryRun:                        spec.DryRun,
		Cooldown:                      orDefault(time.Duration(spec.Cooldown), DefaultCooldown),
		RatePerMinute:                 spec.RateLimit.PerMinute,
		RateBurst:                     spec.RateLimit.Burst,
		DisruptivePerNamespacePerHour: spec.Disruption.PerNamespacePerHour,
		DisruptiveNodesPerHour:        orDefault(spec.Disruption.Nodes.PerHour, DefaultDisruptiveNodesPerHour),
		NodePoolLabel:                 spec.Disruption.Nodes.PoolLabel,
		DisruptivePerNodePoolPerHour:  orDefault(spec.Disruption.Nodes.PerPoolPerHour, DefaultDisruptivePerNodePoolPerHour),
		StormTargets:                  spec.Disruption.Storm.Targets,
		StormWindow:                   orDefault(time.Duration(spec.Disruption.Storm.Window), DefaultStormWindow),
		StormPause:                    orDefault(time.Duration(spec.Disruption.Storm.Pause), DefaultStormPause),
		include:                       map[string]bool{},
		exclude:                       map[string]bool{},
		entries:                       map[string]*Entry{},
	}
	if spec.Cooldown < 0 {
		bad("cooldown: must not be negative, got %s", time.Duration(spec.Cooldown))
	}
	switch {
	case spec.RateLimit.PerMinute < 0:
		bad("rateLimit.perMinute: must not be negative, got %g", spec.RateLimit.PerMinute)
	case spec.RateLimit.PerMinute == 0:
		p.RatePerMinute = DefaultRatePerMinute
	}
	switch {
	case spec.RateLimit.Burst < 0:
		bad("rateLimit.burst: must not be negative, got %d", spec.RateLimit.Burst)
	case spec.RateLimit.Burst == 0:
		p.RateBurst = DefaultRateBurst
	}
	switch {
	case spec.Disruption.PerNamespacePerHour < 0:
		bad("disruption.perNamespacePerHour: must not be negative, got %d", spec.Disruption.PerNamespacePerHour)
	case spec.Disruption.PerNamespacePerHour == 0:
		p.DisruptivePerNamespacePerHour = DefaultDisruptivePerNamespacePerHour
	}
	nodes := spec.Disruption.Nodes
	if nodes.PerHour < 0 || nodes.PerPoolPerHour < 0 {
		bad("disruption.nodes: perHour and perPoolPerHour must not be negative, got %d and %d", nodes.PerHour, nodes.PerPoolPerHour)
	}
	if nodes.PoolLabel == "" && nodes.PerPoolPerHour != 0 {
		bad("disruption.nodes.perPoolPerHour: needs poolLabel, the node label that names a node's pool")
	}
	if nodes.PoolLabel != "" {
		if errs := validation.IsQualifiedName(nodes.PoolLabel); len(errs) > 0 {
			bad("disruption.nodes.poolLabel: %q is not a label key: %s", nodes.PoolLabel, strings.Join(errs, "; "))
		}
	}
	switch {
	case spec.Disruption.Storm.Targets < 0:
		bad("disruption.storm.targets: must not be negative, got %d", spec.Disruption.Storm.Targets)
	case spec.Disruption.Storm.Targets == 0:
		p.StormTargets = DefaultStormTargets
	}
	if spec.Disruption.Storm.Window < 0 || spec.Disruption.Storm.Pause < 0 {
		bad("disruption.storm: window and pause must not be negative, got %s and %s", time.Duration(spec.Disruption.Storm.Window), time.Duration(spec.Disruption.Storm.Pause))
	}
	for _, ns := range spec.Namespaces.Include {
		p.include[ns] = true
	}
	for _, ns := range spec.Namespaces.Exclude {
		if p.include[ns] {
			bad("namespaces: %q is both included and excluded", ns)
		}
		p.exclude[ns] = true
	}
	if len(spec.Alerts) == 0 {
		bad("alerts: no entries; a policy must cover at least one alert")
	}
	names := make([]string, 0, len(spec.Alerts))
	for n := range spec.Alerts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		e, entryErrs := compileEntry(name, spec.Alerts[name], reg, p.Cooldown)
		for _, err := range entryErrs {
			bad("alert %q: %w", name, err)
		}
		if e != nil && len(entryErrs) == 0 {
			p.entries[name] = e
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func compileEntry(name string, raw json.RawMessage, reg *Registry, cooldown time.Duration) (*Entry, []error) {
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("empty alert name"))
	}
	var spec EntrySpec
	if err := strictJSON(raw, &spec); err != nil {
		return nil, append(errs, err)
	}
	e := &Entry{
		AlertName:       name,
		Target:          spec.Target,
		DryRun:          spec.DryRun,
		Cooldown:        orDefault(time.Duration(spec.Cooldown), cooldown),
		AllowNamespaces: map[string]bool{},
	}
	if !slices.Contains(targetKinds, spec.Target) {
		errs = append(errs, fmt.Errorf("target %q: want one of %s", spec.Target, strings.Join(targetKinds, ", ")))
	}
	if spec.Cooldown < 0 {
		errs = append(errs, fmt.Errorf("cooldown: must not be negative, got %s", time.Duration(spec.Cooldown)))
	}
	for _, ns := range spec.AllowNamespaces {
		e.AllowNamespaces[ns] = true
	}
	if spec.Check.Enabled != nil {
		errs = append(errs, errors.New("check: enabled is a remediator setting"))
	}
	if spec.Check.Name == "" {
		errs = append(errs, errors.New("check: no name (use \"none\" to act on the alert alone)"))
	} else if c, err := reg.newCheck(spec.Check.Name, spec.Check.Args); err != nil {
		errs = append(errs, err)
	} else {
		e.Check = c
	}
	if spec.Target == TargetNone && len(spec.Remediators) > 0 {
		errs = append(errs, errors.New("remediators: target none has no object to act on; remove the remediators"))
	}
	seen := map[string]bool{}
	for i, rs := range spec.Remediators {
		if rs.Name == "" {
			errs = append(errs, fmt.Errorf("remediators[%d]: no name", i))
			continue
		}
		if seen[rs.Name] {
			errs = append(errs, fmt.Errorf("remediators[%d]: %s is listed twice", i, rs.Name))
			continue
		}
		seen[rs.Name] = true
		info, r, err := reg.newRemediator(rs.Name, rs.Args)
		if err != nil {
			errs = append(errs, fmt.Errorf("remediators[%d]: %w", i, err))
			continue
		}
		if spec.Target != TargetNone && slices.Contains(targetKinds, spec.Target) && !slices.Contains(info.Targets, spec.Target) {
			errs = append(errs, fmt.Errorf("remediators[%d]: %s cannot act on target %s (it acts on %s)", i, rs.Name, spec.Target, strings.Join(info.Targets, ", ")))
		}
		if rs.Enabled != nil && !*rs.Enabled {
			errs = append(errs, fmt.Errorf("remediators[%d]: %s has enabled: false; remove it from the list instead", i, rs.Name))
		}
		if info.Disruptive {
			if rs.Enabled == nil || !*rs.Enabled {
				errs = append(errs, fmt.Errorf("remediators[%d]: %s disrupts running workloads and must be enabled explicitly (enabled: true)", i, rs.Name))
			}
			if spec.Check.Name == CheckNone || asksNothing(e.Check) {
				errs = append(errs, fmt.Errorf("remediators[%d]: %s disrupts running workloads and needs a check that re-asks Prometheus, not check: %s", i, rs.Name, spec.Check.Name))
			}
		}
		e.Remediators = append(e.Remediators, EntryRemediator{RemediatorInfo: info, Remediator: r})
	}
	return e, errs
}

// strictJSON decodes data into v, rejecting unknown fields and trailing
// data; the error drops encoding/json's "json: " prefix.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errors.New("unexpected data after the policy")
	}
	return nil
}

func orDefault[T comparable](d, def T) T {
	var zero T
	if d == zero {
		return def
	}
	return d
}
