package rules

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Params are the generator's parameters. Every selector, threshold, window
// and `for` duration of the catalogue is one of them; DefaultParams holds the
// shipped defaults of shared/ALERTS.md.
type Params struct {
	// Selectors are label matchers (without braces) that pick each source's
	// series. The defaults match kube-prometheus and kube-prometheus-stack.
	CadvisorSelector         string `json:"cadvisorSelector"`
	KubeStateMetricsSelector string `json:"kubeStateMetricsSelector"`
	APIServerSelector        string `json:"apiServerSelector"`
	AgentSelector            string `json:"agentSelector"`
	// ControlPlaneRoleSelector picks control-plane nodes out of
	// kube_node_role.
	ControlPlaneRoleSelector string `json:"controlPlaneRoleSelector"`

	// ClusterLabel is the label that tells clusters apart where one engine
	// (Thanos, Mimir, VictoriaMetrics) holds the series of many: every
	// aggregation and join keeps it, so alerts carry it. Empty: none.
	ClusterLabel string `json:"clusterLabel"`

	// RunbookBaseURL is where the runbook pages live; an alert's runbook_url
	// is this base followed by "<AlertName>.md".
	RunbookBaseURL string `json:"runbookBaseURL"`
	// AlertLabels are added to every alert (a team or cluster label, say).
	AlertLabels map[string]string `json:"alertLabels,omitempty"`
	// ObjectLabels are the PrometheusRule object's labels; kube-prometheus-stack
	// selects rules by its release label.
	ObjectLabels map[string]string `json:"objectLabels,omitempty"`
	// Namespace and Name of the PrometheusRule object.
	Namespace string `json:"namespace"`
	Name      string `json:"name"`

	// Leak detection follows the working-set floor, the lowest working set
	// over FloorWindow (longer than a garbage-collection cycle), with three
	// trends of different speed; any one of them makes a leak:
	//
	//   - steady: the floor rose in at least LeakMinRisingSteps of LeakSteps
	//     steps of LeakStepWindow and fell in none (a leak that climbs in
	//     steps leaves some flat), by at least LeakMinGrowthBytes and
	//     LeakMinGrowthRatio of where it started;
	//   - fast: the fast floor (the lowest over FastStepWindow, which follows
	//     a leak sooner) rose in each of FastSteps steps of FastStepWindow,
	//     by at least LeakMinGrowthBytes and FastMinHeadroomRatio of the room
	//     left to the memory limit: a steep climb against the limit,
	//     recognised within the hour;
	//   - slow: the floor rose in each of SlowSteps steps of SlowStepWindow
	//     (half a day), by at least LeakMinGrowthBytes, a threshold that does
	//     not grow with the container.
	FloorWindow        model.Duration `json:"floorWindow"`
	LeakStepWindow     model.Duration `json:"leakStepWindow"`
	LeakSteps          int            `json:"leakSteps"`
	LeakMinRisingSteps int            `json:"leakMinRisingSteps"`
	LeakMinGrowthBytes int64          `json:"leakMinGrowthBytes"`
	LeakMinGrowthRatio float64        `json:"leakMinGrowthRatio"`
	// LeakMinStepShare is how much a step must rise to count, as a share of
	// the average step, in each trend (DyingMinStepShare likewise for dying
	// cgroups).
	LeakMinStepShare     float64        `json:"leakMinStepShare"`
	FastStepWindow       model.Duration `json:"fastStepWindow"`
	FastSteps            int            `json:"fastSteps"`
	FastMinHeadroomRatio float64        `json:"fastMinHeadroomRatio"`
	SlowStepWindow       model.Duration `json:"slowStepWindow"`
	SlowSteps            int            `json:"slowSteps"`
	LeakFor              model.Duration `json:"leakFor"`
	// MaxWarmUp is how long a container may climb steadily from its start
	// and still be warming up: a run whose working set has grown in every
	// step since its start for longer is a leak, and its two leak alerts
	// fire about two young steps (10m by default) later. The three trends
	// above skip runs that started within their windows; the young trend
	// (rules/fromstart.go) judges those until the steady trend may, from
	// kube_pod_container_state_started. A whole multiple of TrendInterval.
	MaxWarmUp model.Duration `json:"maxWarmUp"`
	// Interval is how often the groups other than the trends' are
	// evaluated (the working set, the quick alerts, nodes and the control
	// plane); 0 leaves it to the rule file's global interval.
	Interval model.Duration `json:"interval"`
	// TrendInterval is how often the leak trends and their alerts are
	// evaluated: leaks move over hours, so they need not be evaluated at the
	// rule file's interval. Every trend window is a whole multiple of it.
	TrendInterval model.Duration `json:"trendInterval"`

	// OOMHorizon is how far ahead the trend is extrapolated for
	// ContainerMemoryOOMPredicted.
	OOMHorizon model.Duration `json:"oomHorizon"`
	OOMFor     model.Duration `json:"oomFor"`

	NearLimitRatio float64        `json:"nearLimitRatio"`
	NearLimitFor   model.Duration `json:"nearLimitFor"`

	// OOMKilledWindow is how recent a restart with reason OOMKilled (or an
	// increase of container_oom_events_total) must be.
	OOMKilledWindow model.Duration `json:"oomKilledWindow"`

	LimitMissingFor model.Duration `json:"limitMissingFor"`

	OrphanCgroupsThreshold float64        `json:"orphanCgroupsThreshold"`
	OrphanCgroupsFor       model.Duration `json:"orphanCgroupsFor"`

	// Dying cgroups grew in each of DyingSteps steps of DyingStepWindow, by
	// at least DyingMinGrowth in all; or live plus dying memory cgroups
	// exceed MemoryCgroupsLimit.
	DyingStepWindow    model.Duration `json:"dyingStepWindow"`
	DyingSteps         int            `json:"dyingSteps"`
	DyingMinGrowth     float64        `json:"dyingMinGrowth"`
	DyingMinStepShare  float64        `json:"dyingMinStepShare"`
	MemoryCgroupsLimit float64        `json:"memoryCgroupsLimit"`
	CgroupLeakFor      model.Duration `json:"cgroupLeakFor"`

	ControlPlaneWaterline float64        `json:"controlPlaneWaterline"`
	ControlPlaneFor       model.Duration `json:"controlPlaneFor"`

	APIServerMemoryRatio float64        `json:"apiServerMemoryRatio"`
	APIServerMemoryFor   model.Duration `json:"apiServerMemoryFor"`

	ObjectSurgeWindow     model.Duration `json:"objectSurgeWindow"`
	ObjectSurgeMinRatio   float64        `json:"objectSurgeMinRatio"`
	ObjectSurgeMinObjects float64        `json:"objectSurgeMinObjects"`
	ObjectSurgeFor        model.Duration `json:"objectSurgeFor"`

	// The recommended memory limit of containers without one (the
	// recommendation group, see recommendGroups): the peak working set over
	// RecommendWindow plus RecommendHeadroom, rounded up to
	// RecommendGranularity up to RecommendGranularityAbove and to
	// RecommendGranularityLarge above it, as leakguard recommend rounds;
	// only for a pod that has run for RecommendMinHistory. The group runs
	// every RecommendInterval, which is also the step of its peaks.
	RecommendInterval         model.Duration `json:"recommendInterval"`
	RecommendWindow           model.Duration `json:"recommendWindow"`
	RecommendMinHistory       model.Duration `json:"recommendMinHistory"`
	RecommendHeadroom         float64        `json:"recommendHeadroom"`
	RecommendGranularity      int64          `json:"recommendGranularity"`
	RecommendGranularityLarge int64          `json:"recommendGranularityLarge"`
	RecommendGranularityAbove int64          `json:"recommendGranularityAbove"`
}

// usedLabels are the labels the rules group and join by, or that alerts
// carry, which the cluster label must not be.
var usedLabels = map[string]bool{
	"namespace": true, "pod": true, "container": true, "node": true, "resource": true,
	"instance": true, "host_ip": true, "internal_ip": true, "severity": true, "alertname": true,
}

// DefaultRunbookBaseURL is where the project's own runbook pages are served.
const DefaultRunbookBaseURL = "https://github.com/leakguard/leakguard/blob/main/docs/runbooks/"

func dur(d time.Duration) model.Duration { return model.Duration(d) }

// DefaultParams returns the shipped defaults.
func DefaultParams() Params {
	return Params{
		CadvisorSelector:         `job="kubelet", metrics_path="/metrics/cadvisor"`,
		KubeStateMetricsSelector: `job="kube-state-metrics"`,
		APIServerSelector:        `job="apiserver"`,
		AgentSelector:            `job="leakguard-agent"`,
		ControlPlaneRoleSelector: `role=~"control-plane|master"`,
		ClusterLabel:             "cluster",
		RunbookBaseURL:           DefaultRunbookBaseURL,
		ObjectLabels: map[string]string{
			"app.kubernetes.io/name":    "leakguard",
			"app.kubernetes.io/part-of": "leakguard",
			"release":                   "kube-prometheus-stack",
		},
		Namespace: "monitoring",
		Name:      "leakguard",

		FloorWindow:          dur(30 * time.Minute),
		LeakStepWindow:       dur(30 * time.Minute),
		LeakSteps:            4,
		LeakMinRisingSteps:   3,
		LeakMinGrowthBytes:   32 << 20,
		LeakMinGrowthRatio:   0.05,
		LeakMinStepShare:     0.25,
		FastStepWindow:       dur(15 * time.Minute),
		FastSteps:            4,
		FastMinHeadroomRatio: 0.1,
		SlowStepWindow:       dur(2 * time.Hour),
		SlowSteps:            6,
		LeakFor:              dur(15 * time.Minute),
		MaxWarmUp:            dur(45 * time.Minute),
		Interval:             dur(time.Minute),
		TrendInterval:        dur(5 * time.Minute),

		OOMHorizon: dur(4 * time.Hour),
		OOMFor:     dur(15 * time.Minute),

		NearLimitRatio: 0.9,
		NearLimitFor:   dur(15 * time.Minute),

		OOMKilledWindow: dur(10 * time.Minute),
		LimitMissingFor: dur(time.Hour),

		OrphanCgroupsThreshold: 20,
		OrphanCgroupsFor:       dur(15 * time.Minute),

		DyingStepWindow:    dur(15 * time.Minute),
		DyingSteps:         4,
		DyingMinGrowth:     50,
		DyingMinStepShare:  0.25,
		MemoryCgroupsLimit: 50000,
		CgroupLeakFor:      dur(5 * time.Minute),

		ControlPlaneWaterline: 0.6,
		ControlPlaneFor:       dur(15 * time.Minute),

		APIServerMemoryRatio: 0.6,
		APIServerMemoryFor:   dur(10 * time.Minute),

		ObjectSurgeWindow:     dur(time.Hour),
		ObjectSurgeMinRatio:   0.5,
		ObjectSurgeMinObjects: 1000,
		ObjectSurgeFor:        dur(10 * time.Minute),

		// leakguard recommend's defaults (recommend.DefaultParams).
		RecommendInterval:         dur(time.Hour),
		RecommendWindow:           dur(7 * 24 * time.Hour),
		RecommendMinHistory:       dur(24 * time.Hour),
		RecommendHeadroom:         0.15,
		RecommendGranularity:      64 << 20,
		RecommendGranularityLarge: 256 << 20,
		RecommendGranularityAbove: 1 << 30,
	}
}

// LeakSpan is how far back the steady leak trend looks: its steps, not
// counting the floor window before them.
func (p Params) LeakSpan() model.Duration {
	return model.Duration(time.Duration(p.LeakStepWindow) * time.Duration(p.LeakSteps))
}

// LoadParamsFile reads a YAML parameter file over p: the fields it names
// replace p's, the others keep their value. Unknown fields are errors.
func LoadParamsFile(path string, p *Params) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read parameters: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := yaml.UnmarshalStrict(data, p); err != nil {
		return fmt.Errorf("parameters %s: %w", path, err)
	}
	return nil
}

// Validate reports every unusable parameter at once.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for name, sel := range map[string]string{
		"cadvisorSelector":         p.CadvisorSelector,
		"kubeStateMetricsSelector": p.KubeStateMetricsSelector,
		"apiServerSelector":        p.APIServerSelector,
		"agentSelector":            p.AgentSelector,
		"controlPlaneRoleSelector": p.ControlPlaneRoleSelector,
	} {
		if err := checkSelector(sel); err != nil {
			bad("%s: %w", name, err)
		}
	}
	if p.ClusterLabel != "" {
		if !model.LabelName(p.ClusterLabel).IsValidLegacy() {
			bad("clusterLabel: %q is not a valid label name", p.ClusterLabel)
		} else if usedLabels[p.ClusterLabel] {
			bad("clusterLabel: %q is a label the rules already group by", p.ClusterLabel)
		}
	}
	if p.RunbookBaseURL == "" {
		bad("runbookBaseURL: must not be empty")
	}
	for _, k := range sortedKeys(p.AlertLabels) {
		switch v := p.AlertLabels[k]; {
		case !model.LabelName(k).IsValidLegacy():
			bad("alertLabels: %q is not a valid label name", k)
		case k == "severity" || k == "alertname":
			bad("alertLabels: %q is set by the catalogue", k)
		case v == "" || !utf8.ValidString(v):
			bad("alertLabels: %s: the value must be non-empty UTF-8, got %q", k, v)
		}
	}
	// The PrometheusRule object's labels are Kubernetes labels.
	for _, k := range sortedKeys(p.ObjectLabels) {
		for _, msg := range validation.IsQualifiedName(k) {
			bad("objectLabels: %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(p.ObjectLabels[k]) {
			bad("objectLabels: %s: %q: %s", k, p.ObjectLabels[k], msg)
		}
	}
	if p.Namespace == "" || p.Name == "" {
		bad("namespace and name: must not be empty")
	}
	positive := map[string]model.Duration{
		"floorWindow": p.FloorWindow, "leakStepWindow": p.LeakStepWindow, "oomHorizon": p.OOMHorizon,
		"fastStepWindow": p.FastStepWindow, "slowStepWindow": p.SlowStepWindow,
		"oomKilledWindow": p.OOMKilledWindow, "dyingStepWindow": p.DyingStepWindow,
		"objectSurgeWindow": p.ObjectSurgeWindow,
	}
	for _, name := range sortedKeys(positive) {
		if positive[name] <= 0 {
			bad("%s: must be positive, got %s", name, positive[name])
		}
	}
	nonNegative := map[string]model.Duration{
		"leakFor": p.LeakFor, "oomFor": p.OOMFor, "nearLimitFor": p.NearLimitFor,
		"limitMissingFor": p.LimitMissingFor, "orphanCgroupsFor": p.OrphanCgroupsFor,
		"cgroupLeakFor": p.CgroupLeakFor, "controlPlaneFor": p.ControlPlaneFor,
		"apiServerMemoryFor": p.APIServerMemoryFor, "objectSurgeFor": p.ObjectSurgeFor,
	}
	for _, name := range sortedKeys(nonNegative) {
		if nonNegative[name] < 0 {
			bad("%s: must not be negative, got %s", name, nonNegative[name])
		}
	}
	for _, n := range []struct {
		name  string
		steps int
	}{{"leakSteps", p.LeakSteps}, {"fastSteps", p.FastSteps}, {"slowSteps", p.SlowSteps}} {
		if n.steps < 2 || n.steps > 12 {
			bad("%s: must be between 2 and 12, got %d", n.name, n.steps)
		}
	}
	if p.LeakMinRisingSteps < 1 || p.LeakMinRisingSteps > p.LeakSteps {
		bad("leakMinRisingSteps: must be between 1 and leakSteps (%d), got %d", p.LeakSteps, p.LeakMinRisingSteps)
	}
	if p.Interval < 0 || p.Interval > p.TrendInterval {
		bad("interval: must be between 0 (the rule file's) and trendInterval (%s), got %s", p.TrendInterval, p.Interval)
	}
	// The trend group's records are read back at offsets of whole windows,
	// and instant queries must find them: Prometheus looks back 5m.
	if p.TrendInterval <= 0 || p.TrendInterval > dur(5*time.Minute) {
		bad("trendInterval: must be positive and at most 5m (Prometheus's lookback), got %s", p.TrendInterval)
	} else {
		for _, w := range []struct {
			name string
			d    model.Duration
		}{{"floorWindow", p.FloorWindow}, {"fastStepWindow", p.FastStepWindow}, {"leakStepWindow", p.LeakStepWindow}, {"slowStepWindow", p.SlowStepWindow}} {
			if w.d > 0 && w.d%p.TrendInterval != 0 {
				bad("%s: must be a whole multiple of trendInterval (%s), got %s", w.name, p.TrendInterval, w.d)
			}
		}
	}
	// The floor is the minimum of the fast floor's last windows.
	if p.FastStepWindow > 0 && p.FloorWindow > 0 && p.FloorWindow%p.FastStepWindow != 0 {
		bad("floorWindow: must be a whole multiple of fastStepWindow (%s), got %s", p.FastStepWindow, p.FloorWindow)
	}
	if p.FastStepWindow > 0 && p.FloorWindow/p.FastStepWindow > 12 {
		bad("floorWindow: must be at most 12 times fastStepWindow (%s), got %s", p.FastStepWindow, p.FloorWindow)
	}
	if p.DyingSteps < 2 || p.DyingSteps > 12 {
		bad("dyingSteps: must be between 2 and 12, got %d", p.DyingSteps)
	}
	if p.LeakMinGrowthBytes < 0 {
		bad("leakMinGrowthBytes: must not be negative, got %d", p.LeakMinGrowthBytes)
	}
	ratios := map[string]float64{
		"nearLimitRatio": p.NearLimitRatio, "controlPlaneWaterline": p.ControlPlaneWaterline,
		"apiServerMemoryRatio": p.APIServerMemoryRatio, "leakMinStepShare": p.LeakMinStepShare,
		"dyingMinStepShare": p.DyingMinStepShare, "fastMinHeadroomRatio": p.FastMinHeadroomRatio,
	}
	for _, name := range sortedKeys(ratios) {
		if v := ratios[name]; !(v > 0 && v <= 1) {
			bad("%s: must be in (0, 1], got %g", name, v)
		}
	}
	nonNegFloat := map[string]float64{
		"leakMinGrowthRatio": p.LeakMinGrowthRatio, "orphanCgroupsThreshold": p.OrphanCgroupsThreshold,
		"dyingMinGrowth": p.DyingMinGrowth, "memoryCgroupsLimit": p.MemoryCgroupsLimit,
		"objectSurgeMinRatio": p.ObjectSurgeMinRatio, "objectSurgeMinObjects": p.ObjectSurgeMinObjects,
	}
	for _, name := range sortedKeys(nonNegFloat) {
		if v := nonNegFloat[name]; v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s: must be a finite number >= 0, got %g", name, v)
		}
	}
	errs = append(errs, p.validateWarmUp()...)
	errs = append(errs, p.validateRecommend()...)
	return errors.Join(errs...)
}

// validateWarmUp checks maxWarmUp: positive (a warm-up of no length would
// make every young run's climb a leak) and, like every trend window, a
// whole multiple of trendInterval.
func (p Params) validateWarmUp() []error {
	switch {
	case p.MaxWarmUp <= 0:
		return []error{fmt.Errorf("maxWarmUp: must be positive, got %s", p.MaxWarmUp)}
	case p.TrendInterval > 0 && p.MaxWarmUp%p.TrendInterval != 0:
		return []error{fmt.Errorf("maxWarmUp: must be a whole multiple of trendInterval (%s), got %s", p.TrendInterval, p.MaxWarmUp)}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkSelector does a light syntax check of a matcher list: promtool checks
// the rendered rules in full, this catches the usual slips early and with the
// parameter's name.
func checkSelector(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("must not be empty")
	}
	if strings.ContainsAny(s, "{}") {
		return fmt.Errorf("%q: give the matchers without braces", s)
	}
	if strings.Count(s, `"`)%2 != 0 {
		return fmt.Errorf("%q: unbalanced quotes", s)
	}
	return nil
}

// RegisterFlags adds a flag for every parameter to fs, with p's current
// values as defaults; parsing fs writes into p.
func (p *Params) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&p.CadvisorSelector, "cadvisor-selector", p.CadvisorSelector, "label matchers for cAdvisor series")
	fs.StringVar(&p.KubeStateMetricsSelector, "kube-state-metrics-selector", p.KubeStateMetricsSelector, "label matchers for kube-state-metrics series")
	fs.StringVar(&p.APIServerSelector, "apiserver-selector", p.APIServerSelector, "label matchers for kube-apiserver series")
	fs.StringVar(&p.AgentSelector, "agent-selector", p.AgentSelector, "label matchers for the leakguard node agent's series")
	fs.StringVar(&p.ControlPlaneRoleSelector, "control-plane-role-selector", p.ControlPlaneRoleSelector, "label matchers on kube_node_role that pick control-plane nodes")
	fs.StringVar(&p.ClusterLabel, "cluster-label", p.ClusterLabel, "label that tells clusters apart on an engine holding many (Thanos, Mimir, VictoriaMetrics); every aggregation and join keeps it; empty for none")
	fs.StringVar(&p.RunbookBaseURL, "runbook-base-url", p.RunbookBaseURL, "base URL of the runbook pages; runbook_url is this plus <AlertName>.md")
	fs.Var(labelsFlag{&p.AlertLabels}, "alert-label", "`name=value` label added to every alert (repeatable)")
	fs.Var(labelsFlag{&p.ObjectLabels}, "object-label", "`name=value` label of the PrometheusRule object, e.g. release=<your kube-prometheus-stack release> (repeatable; name= removes a default)")
	fs.StringVar(&p.Namespace, "namespace", p.Namespace, "namespace of the PrometheusRule object")
	fs.StringVar(&p.Name, "name", p.Name, "name of the PrometheusRule object")
	fs.Var(&p.FloorWindow, "floor-window", "window of the working-set floor (min_over_time); longer than a GC cycle")
	fs.Var(&p.LeakStepWindow, "leak-step-window", "length of one step of the leak trend")
	fs.IntVar(&p.LeakSteps, "leak-steps", p.LeakSteps, "steps of the steady leak trend")
	fs.IntVar(&p.LeakMinRisingSteps, "leak-min-rising-steps", p.LeakMinRisingSteps, "steps of the steady leak trend in which the floor must rise; the others may be flat (a leak that climbs in steps), none may fall")
	fs.Int64Var(&p.LeakMinGrowthBytes, "leak-min-growth-bytes", p.LeakMinGrowthBytes, "least growth of the floor over any leak trend's span, in bytes")
	fs.Float64Var(&p.LeakMinGrowthRatio, "leak-min-growth-ratio", p.LeakMinGrowthRatio, "least growth of the floor over the steady trend's span, as a share of where it started")
	fs.Float64Var(&p.LeakMinStepShare, "leak-min-step-share", p.LeakMinStepShare, "least rise of a step to count as rising, as a share of the average step (every leak trend)")
	fs.Var(&p.FastStepWindow, "fast-step-window", "length of one step of the fast leak trend, and the window of its floor; floor-window is a multiple of it")
	fs.IntVar(&p.FastSteps, "fast-steps", p.FastSteps, "consecutive steps in which the fast floor must rise")
	fs.Float64Var(&p.FastMinHeadroomRatio, "fast-min-headroom-ratio", p.FastMinHeadroomRatio, "least growth of the fast floor over the fast span, as a share of the room left to the memory limit")
	fs.Var(&p.SlowStepWindow, "slow-step-window", "length of one step of the slow leak trend")
	fs.IntVar(&p.SlowSteps, "slow-steps", p.SlowSteps, "consecutive steps in which the floor must rise for the slow leak trend")
	fs.Var(&p.LeakFor, "leak-for", "for of ContainerMemoryLeak")
	fs.Var(&p.MaxWarmUp, "max-warm-up", "longest steady climb from a container's start that is still a warm-up: one that goes on longer is a leak, reported about 10m after it passes this (a multiple of trend-interval)")
	fs.Var(&p.Interval, "interval", "how often the working set, the quick container alerts, the node and the control-plane groups are evaluated; 0 for the rule file's global interval")
	fs.Var(&p.TrendInterval, "trend-interval", "how often the leak trends and ContainerMemoryLeak and ContainerMemoryOOMPredicted are evaluated (at most 5m; the trend windows are multiples of it)")
	fs.Var(&p.OOMHorizon, "oom-horizon", "ContainerMemoryOOMPredicted fires when the trend reaches the limit within this")
	fs.Var(&p.OOMFor, "oom-for", "for of ContainerMemoryOOMPredicted")
	fs.Float64Var(&p.NearLimitRatio, "near-limit-ratio", p.NearLimitRatio, "working set to limit ratio of ContainerMemoryNearLimit")
	fs.Var(&p.NearLimitFor, "near-limit-for", "for of ContainerMemoryNearLimit")
	fs.Var(&p.OOMKilledWindow, "oom-killed-window", "how recent an OOM kill must be for ContainerOOMKilled")
	fs.Var(&p.LimitMissingFor, "limit-missing-for", "for of ContainerMemoryLimitMissing")
	fs.Float64Var(&p.OrphanCgroupsThreshold, "orphan-cgroups-threshold", p.OrphanCgroupsThreshold, "orphan cgroups per node above which NodeOrphanCgroups fires")
	fs.Var(&p.OrphanCgroupsFor, "orphan-cgroups-for", "for of NodeOrphanCgroups")
	fs.Var(&p.DyingStepWindow, "dying-step-window", "length of one step of the dying-cgroup trend")
	fs.IntVar(&p.DyingSteps, "dying-steps", p.DyingSteps, "consecutive steps in which dying cgroups must grow")
	fs.Float64Var(&p.DyingMinGrowth, "dying-min-growth", p.DyingMinGrowth, "least growth of dying cgroups over all steps")
	fs.Float64Var(&p.DyingMinStepShare, "dying-min-step-share", p.DyingMinStepShare, "least rise of each step of dying cgroups, as a share of the average step")
	fs.Float64Var(&p.MemoryCgroupsLimit, "memory-cgroups-limit", p.MemoryCgroupsLimit, "live plus dying memory cgroups above which NodeCgroupLeak fires")
	fs.Var(&p.CgroupLeakFor, "cgroup-leak-for", "for of NodeCgroupLeak")
	fs.Float64Var(&p.ControlPlaneWaterline, "control-plane-waterline", p.ControlPlaneWaterline, "share of a control-plane node's memory above which ControlPlaneMemoryAboveWaterline fires")
	fs.Var(&p.ControlPlaneFor, "control-plane-for", "for of ControlPlaneMemoryAboveWaterline")
	fs.Float64Var(&p.APIServerMemoryRatio, "apiserver-memory-ratio", p.APIServerMemoryRatio, "share of its node's memory above which KubeAPIServerMemoryHigh fires")
	fs.Var(&p.APIServerMemoryFor, "apiserver-memory-for", "for of KubeAPIServerMemoryHigh")
	fs.Var(&p.ObjectSurgeWindow, "object-surge-window", "window over which KubeAPIServerObjectSurge compares object counts")
	fs.Float64Var(&p.ObjectSurgeMinRatio, "object-surge-min-ratio", p.ObjectSurgeMinRatio, "least relative growth for KubeAPIServerObjectSurge (0.5 is +50 %)")
	fs.Float64Var(&p.ObjectSurgeMinObjects, "object-surge-min-objects", p.ObjectSurgeMinObjects, "least absolute growth for KubeAPIServerObjectSurge")
	fs.Var(&p.ObjectSurgeFor, "object-surge-for", "for of KubeAPIServerObjectSurge")
	p.registerRecommendFlags(fs)
}

// labelsFlag is a repeatable name=value flag over a map; "name=" deletes.
type labelsFlag struct{ m *map[string]string }

func (f labelsFlag) String() string {
	if f.m == nil || *f.m == nil {
		return ""
	}
	parts := make([]string, 0, len(*f.m))
	for _, k := range sortedKeys(*f.m) {
		parts = append(parts, k+"="+(*f.m)[k])
	}
	return strings.Join(parts, ",")
}

// Type names the value in help.
func (f labelsFlag) Type() string { return "name=value" }

func (f labelsFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q: want name=value", s)
	}
	if *f.m == nil {
		*f.m = map[string]string{}
	}
	if value == "" {
		delete(*f.m, name)
		return nil
	}
	(*f.m)[name] = value
	return nil
}
