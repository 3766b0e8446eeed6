package rules

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// Severity of an alert: critical pages, warning tickets, info is not routed.
type Severity string

// The severities of shared/ALERTS.md.
const (
	SeverityCritical Severity = "critical"
	SeverityWarning  Severity = "warning"
	SeverityInfo     Severity = "info"
)

// Alert is one alerting rule of the catalogue.
type Alert struct {
	Name        string
	Severity    Severity
	Expr        string
	For         model.Duration
	Summary     string // a static sentence
	Description string // templated with the object and the value
	// Labels are the labels the contract requires the alert to carry; they
	// come out of Expr (the catalogue test checks them against the traces).
	Labels []string
}

// Record is one recording rule.
type Record struct {
	Name string
	Expr string
}

// Group is a named group of recording and alerting rules, evaluated in order.
type Group struct {
	Name string
	// Interval is how often the group is evaluated; 0 is the rule file's
	// global evaluation interval.
	Interval model.Duration
	Records  []Record
	Alerts   []Alert
}

// sel joins selector fragments into a brace-enclosed matcher list.
func sel(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return "{" + strings.Join(kept, ", ") + "}"
}

// prom renders a duration the way PromQL and rule files write it ("1h30m").
func prom(d model.Duration) string { return d.String() }

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// bytesNum writes a number of bytes without an exponent, rounded down (the
// gates of the trend records must not exceed the bounds they stand for).
func bytesNum(f float64) string { return strconv.FormatFloat(math.Floor(f), 'f', -1, 64) }

func seconds(d model.Duration) string { return num(time.Duration(d).Seconds()) }

// offset returns "metric offset d", or the metric alone for d == 0.
func offset(metric string, d time.Duration) string {
	if d == 0 {
		return metric
	}
	return metric + " offset " + prom(model.Duration(d))
}

// trendRecords records the two series a steady-growth test reads: step, the
// rise of metric over the last step, and growth, its rise over all steps.
// Recording them once keeps the test to a few look-ups back in time.
func trendRecords(metric, step, growth string, window model.Duration, steps int) (stepRecord, growthRecord Record) {
	w := time.Duration(window)
	return Record{step, rise(metric, w)}, Record{growth, rise(metric, w*time.Duration(steps))}
}

// rise is the rise of metric over d.
func rise(metric string, d time.Duration) string {
	return fmt.Sprintf(`%s - %s`, metric, offset(metric, d))
}

// trend is a test of steady growth over steps of a recorded metric: step is
// the record of its rise over one step, growth over all steps.
type trend struct {
	step, growth string
	window       model.Duration
	steps        int
	// minRising is how many steps must rise; the others may be flat (a
	// climb in steps), but none may fall. minRising == steps: every step.
	minRising int
	// minShare is how much a step must rise to count, as a share of the
	// average step; a step that falls by as much fails the trend.
	minShare float64
}

// span is how far back the trend looks.
func (t trend) span() model.Duration {
	return model.Duration(time.Duration(t.window) * time.Duration(t.steps))
}

// share is how much a step must rise to count, as a share of the growth.
func (t trend) share() float64 { return t.minShare / float64(t.steps) }

// gatedRecords records the trend's step and growth only where they can
// matter, when the trend also needs the growth to pass minGrowth: where
// every step must rise, a step that rose by less than share × minGrowth
// cannot count, and a growth of less than minGrowth fails the trend. Many
// containers' floors do not move that much, so the records, and every
// vector the test builds from them, hold part of the containers instead of
// all. stepGate and growthGate are those bounds (the growth record may
// serve as another trend's step, with a lower bound). Where falls are
// tested too the step is recorded whole: a filter on both signs would
// compute it twice, which costs more than it saves.
func (t trend) gatedRecords(metric string, stepGate, growthGate float64) (stepRecord, growthRecord Record) {
	step := rise(metric, time.Duration(t.window))
	if t.minRising >= t.steps {
		step = fmt.Sprintf("%s > %s", step, bytesNum(stepGate))
	}
	return Record{t.step, step}, Record{t.growth, fmt.Sprintf("%s > %s", rise(metric, time.Duration(t.span())), bytesNum(growthGate))}
}

// stepLabel is the label that tells the steps of a trend apart while they
// are compared as one vector; no input series carries it.
const stepLabel = "step"

// stepsVector is every step of the trend as one vector: the last step as it
// is, each earlier one with stepLabel set to its index. An aggregation
// without stepLabel then takes the steps of each container in one pass,
// where a comparison per step would read the growth once per step.
func (t trend) stepsVector() string {
	w := time.Duration(t.window)
	parts := []string{t.step}
	for i := 1; i < t.steps; i++ {
		parts = append(parts, fmt.Sprintf(`label_replace(%s, "%s", "%d", "", "")`, offset(t.step, w*time.Duration(i)), stepLabel, i))
	}
	return strings.Join(parts, "\n  or\n  ")
}

// expr is the growth over all steps, present only where the trend holds: it
// grew, and at least minRising steps rose by the share of the growth while
// none fell by as much. A sawtooth, noise or a single step up (a warm-up)
// followed by flat jitter does not pass. chain is more filters on the growth
// (" > 33554432"); without, the growth must be positive.
//
// Each step scores 1 when it rose by the share, 0 when it moved less or is
// absent (the gated records leave out steps that moved less), and -steps
// when it fell by as much: ceil((step/growth - share) / (2 share)), times
// steps, clamped to [-steps, 1]. The scores must add up to minRising, which
// a single fall prevents.
func (t trend) expr(chain string) string {
	if chain == "" {
		chain = " > 0"
	}
	share := t.share()
	return fmt.Sprintf(`%s%s
and
sum without (%s) (
  clamp(
    %d * ceil(
      ((
        %s
      ) / ignoring (%s) group_left %s - %s) / %s
    ),
    -%d, 1
  )
) >= %d`, t.growth, chain, stepLabel, t.steps, strings.ReplaceAll(t.stepsVector(), "\n  ", "\n        "), stepLabel, t.growth, num(share), num(2*share), t.steps, t.minRising)
}

// Groups returns the whole catalogue for p.
func Groups(p Params) []Group {
	cadvisor := p.CadvisorSelector
	ksm := p.KubeStateMetricsSelector
	containers := sel(cadvisor, `container!=""`, `container!="POD"`, `image!=""`)
	fast, steady, slow := p.trends()
	// Every leak trend needs its growth above LeakMinGrowthBytes, so its
	// records are gated (trend.gatedRecords). The steady growth may be the
	// slow trend's step, which needs less.
	minG := float64(p.LeakMinGrowthBytes)
	fastStep, fastGrowth := fast.gatedRecords(RecWorkingSetFloorFast, fast.share()*minG, minG)
	steadyGrowthGate := minG
	if slow.step == steady.growth {
		steadyGrowthGate = min(minG, slow.share()*minG)
	}
	floorStep, floorGrowth := steady.gatedRecords(RecWorkingSetFloor, steady.share()*minG, steadyGrowthGate)
	slowStep, slowGrowth := slow.gatedRecords(RecWorkingSetFloor, slow.share()*minG, minG)
	trendRecs := []Record{fastStep, fastGrowth, floorStep, floorGrowth}
	if slow.step != steady.growth {
		trendRecs = append(trendRecs, slowStep)
	}
	trendRecs = append(trendRecs, slowGrowth)
	dyingStep, dyingGrowth := trendRecords(RecNodeDyingCgroups, RecNodeDyingCgroupsStep, RecNodeDyingCgroupsGrowth, p.DyingStepWindow, p.DyingSteps)
	nodeMemory := fmt.Sprintf(`(
  max by (node) (machine_memory_bytes%s)
  or
  max by (node) (kube_node_status_capacity%s)
)`, sel(cadvisor), sel(ksm, `resource="memory"`))
	// The floor over FloorWindow is the lowest of the fast floor's last
	// windows, which is cheaper than another range over the working set: one
	// aggregation over the windows, each labelled apart, present only where
	// the fast floor is (a container gone has no floor).
	floor := RecWorkingSetFloorFast
	if n := int(time.Duration(p.FloorWindow) / time.Duration(p.FastStepWindow)); n > 1 {
		floor = fmt.Sprintf("min without (%s) (\n  %s\n)\nand\n%s", stepLabel,
			trend{step: RecWorkingSetFloorFast, window: p.FastStepWindow, steps: n}.stepsVector(), RecWorkingSetFloorFast)
	}
	// restarted is every container whose current run started within d: a
	// trend across a restart compares two processes, which is no trend. (The
	// fall of the floor at a restart breaks every trend too; this is the
	// belt to those braces, and one look-up a container.)
	// The start times are read once, into a record of the runs that started
	// within the longest of the three windows.
	restartWindows := []model.Duration{p.FastStepWindow + fast.span(), p.FloorWindow + steady.span(), p.FloorWindow + slow.span()}
	restarted := func(d model.Duration) string {
		return fmt.Sprintf("(%s > time() - %s)", RecRecentStart, seconds(d))
	}
	minGrowth := fmt.Sprintf("%d", p.LeakMinGrowthBytes)

	// The container group runs every Interval (1m): the working set, the
	// limit and the alerts that must be quick (near the limit, OOM killed).
	container := Group{
		Name:     "leakguard.container-memory",
		Interval: p.Interval,
		Records: []Record{
			{RecWorkingSet, fmt.Sprintf(`max by (namespace, pod, container, node) (
  container_memory_working_set_bytes%s
)`, containers)},
			{RecMemoryLimit, fmt.Sprintf(`max by (namespace, pod, container) (
  kube_pod_container_resource_limits%s
) > 0`, sel(ksm, `resource="memory"`, `unit="byte"`))},
			{RecLimitRatio, fmt.Sprintf(`%s
/ on (namespace, pod, container) group_left
%s`, RecWorkingSet, RecMemoryLimit)},
		},
		Alerts: []Alert{
			{
				Name:        AlertContainerMemoryNearLimit,
				Severity:    SeverityWarning,
				Expr:        fmt.Sprintf(`%s >= %s`, RecLimitRatio, num(p.NearLimitRatio)),
				For:         p.NearLimitFor,
				Summary:     "A container's working set is close to its memory limit.",
				Description: `Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }} uses {{ $value | humanizePercentage }} of its memory limit.`,
				Labels:      []string{"namespace", "pod", "container", "node"},
			},
			{
				Name:     AlertContainerOOMKilled,
				Severity: SeverityWarning,
				Expr: fmt.Sprintf(`(
  max by (namespace, pod, container) (
    increase(kube_pod_container_status_restarts_total%[1]s[%[2]s])
  ) > 0
  and on (namespace, pod, container)
  max by (namespace, pod, container) (
    kube_pod_container_status_last_terminated_reason%[3]s
  ) == 1
)
or on (namespace, pod, container)
(
  max by (namespace, pod, container) (
    increase(container_oom_events_total%[4]s[%[2]s])
  ) > 0
)`, sel(ksm), prom(p.OOMKilledWindow), sel(ksm, `reason="OOMKilled"`), containers),
				Summary:     "A container was killed because it ran out of memory.",
				Description: fmt.Sprintf(`Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} was OOM-killed in the last %s.`, prom(p.OOMKilledWindow)),
				Labels:      []string{"namespace", "pod", "container"},
			},
		},
	}

	// Leaks move over hours: the trend group runs every TrendInterval, over
	// floors of the working set recorded above, which is a fraction of the
	// cost of running it at the rule file's interval.
	trendRecs = append([]Record{
		{RecWorkingSetFloorFast, fmt.Sprintf(`min_over_time(%s[%s])`, RecWorkingSet, prom(p.FastStepWindow))},
		{RecWorkingSetFloor, floor},
		{RecWorkingSetDeriv, fmt.Sprintf(`deriv(%s[%s])`, RecWorkingSetFloor, prom(steady.span()))},
	}, trendRecs...)
	trendRecs = append(trendRecs,
		Record{RecRecentStart, fmt.Sprintf(`max by (namespace, pod, container) (
  kube_pod_container_state_started%s
) > time() - %s`, sel(ksm), seconds(slices.Max(restartWindows)))},
		Record{RecMemoryRequest, fmt.Sprintf(`max by (namespace, pod, container) (
  kube_pod_container_resource_requests%s
) > 0`, sel(ksm, `resource="memory"`, `unit="byte"`))},
		// The leak rate is the growth of whichever trend holds, fastest
		// first, per second of its span: a steep climb against the room left
		// to the limit over the fast span, a steady one over the leak span, or a slow one
		// over half a day, whose threshold does not grow with the container.
		// Each trend filters its (gated) growth in one chain of comparisons:
		// more than the least growth, more than its share of the room left or
		// of where it started; then the steps' test. Each trend is a record
		// of its own (present only where it holds), so that the look-ups of
		// the fast and steady trends are not spread over the slow trend's
		// 12 hours: Prometheus opens every block a query's range covers for
		// every selector of the query.
		Record{RecLeakRateFast, fmt.Sprintf(`(
%s
  unless on (namespace, pod, container)
  %s
) / %s`, indent(fast.expr(fmt.Sprintf(" > %s > %s * (%s - on (namespace, pod, container) group_right %s)", minGrowth, num(p.FastMinHeadroomRatio), RecMemoryLimit, RecWorkingSetFloorFast))),
			restarted(restartWindows[0]), seconds(fast.span()))},
		Record{RecLeakRateSteady, fmt.Sprintf(`(
%s
  unless on (namespace, pod, container)
  %s
) / %s`, indent(steady.expr(fmt.Sprintf(" > %s > %s * %s", minGrowth, num(p.LeakMinGrowthRatio), offset(RecWorkingSetFloor, time.Duration(steady.span()))))),
			restarted(restartWindows[1]), seconds(steady.span()))},
		Record{RecLeakRateSlow, fmt.Sprintf(`(
%s
  unless on (namespace, pod, container)
  %s
) / %s`, indent(slow.expr(" > "+minGrowth)), restarted(restartWindows[2]), seconds(slow.span()))},
	)
	// A run younger than the trends' windows: its own trend, whose rate
	// comes last in the union below.
	trendRecs = append(trendRecs, youngRecords(p, RecRecentStart)...)
	trendRecs = append(trendRecs,
		// The leak rate is the growth of whichever trend holds, fastest
		// first, per second of its span.
		Record{RecLeakRate, fmt.Sprintf("%s\nor\n%s\nor\n%s\nor\n%s", RecLeakRateFast, RecLeakRateSteady, RecLeakRateSlow, RecLeakRateYoung)},
		// From the current peak, at the leak's rate: present only for a
		// container whose trend holds and that has a limit.
		Record{RecSecondsToLimit, fmt.Sprintf(`(
  %s
  - on (namespace, pod, container) group_right
  max_over_time(%s[%s])
)
/
%s`, RecMemoryLimit, RecWorkingSet, prom(p.FloorWindow), RecLeakRate)},
	)
	containerTrend := Group{
		Name:     "leakguard.container-memory-trend",
		Interval: p.TrendInterval,
		Records:  trendRecs,
		Alerts: []Alert{
			{
				Name:     AlertContainerMemoryLeak,
				Severity: SeverityWarning,
				// The leak rate per hour, for the description.
				Expr:        fmt.Sprintf(`%s * 3600`, RecLeakRate),
				For:         p.LeakFor,
				Summary:     "A container's working set keeps growing: a likely memory leak.",
				Description: `Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }}: its working set after garbage collection keeps rising, by about {{ $value | humanize1024 }}B an hour, without a restart.`,
				Labels:      []string{"namespace", "pod", "container", "node"},
			},
			{
				Name:     AlertContainerMemoryOOMPredicted,
				Severity: SeverityCritical,
				Expr:     fmt.Sprintf(`%s < %s`, RecSecondsToLimit, seconds(p.OOMHorizon)),
				For:      p.OOMFor,
				Summary:  "A container's growing working set will reach its memory limit within hours: an OOM kill is coming.",
				Description: fmt.Sprintf(`Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} on node {{ $labels.node }} grows steadily and, at this rate, reaches its memory limit in {{ $value | humanizeDuration }} (alerting within %s).`,
					prom(p.OOMHorizon)),
				Labels: []string{"namespace", "pod", "container", "node"},
			},
		},
	}

	agent := sel(p.AgentSelector)
	nodes := Group{
		Name:     "leakguard.node-cgroups",
		Interval: p.Interval,
		Records: []Record{
			{RecNodeOrphanCgroups, fmt.Sprintf(`max by (node) (leakguard_node_orphan_cgroups%s)`, agent)},
			{RecNodeDyingCgroups, fmt.Sprintf(`max by (node) (leakguard_node_dying_cgroups%s)`, agent)},
			dyingStep, dyingGrowth,
			{RecNodeMemoryCgroups, fmt.Sprintf(`(
  max by (node) (leakguard_node_cgroups%[1]s)
  + on (node)
  %[2]s
)
or
max by (node) (leakguard_node_cgroups%[1]s)`, sel(p.AgentSelector, `controller=~"memory|unified"`), RecNodeDyingCgroups)},
		},
		Alerts: []Alert{
			{
				Name:        AlertNodeOrphanCgroups,
				Severity:    SeverityWarning,
				Expr:        fmt.Sprintf(`%s > %s`, RecNodeOrphanCgroups, num(p.OrphanCgroupsThreshold)),
				For:         p.OrphanCgroupsFor,
				Summary:     "Pod cgroups outlive their pods on a node.",
				Description: `Node {{ $labels.node }} has {{ $value }} pod cgroups whose pod is gone and which hold no process.`,
				Labels:      []string{"node"},
			},
			{
				// Both branches return the node's live plus dying memory
				// cgroups, so that the description means one thing.
				Name:     AlertNodeCgroupLeak,
				Severity: SeverityWarning,
				Expr: fmt.Sprintf(`%[1]s
and on (node)
(
%[2]s
) > %[3]s
or
%[1]s > %[4]s`, RecNodeMemoryCgroups, indent(trend{RecNodeDyingCgroupsStep, RecNodeDyingCgroupsGrowth, p.DyingStepWindow, p.DyingSteps, p.DyingSteps, p.DyingMinStepShare}.expr("")),
					num(p.DyingMinGrowth), num(p.MemoryCgroupsLimit)),
				For:         p.CgroupLeakFor,
				Summary:     "Cgroups pile up on a node: dying cgroups keep growing, or memory cgroups near the kernel's limit.",
				Description: fmt.Sprintf(`Node {{ $labels.node }} holds {{ $value }} live and dying memory cgroups: dying cgroups grew in each of the last %d steps of %s, or the count passed %s (the kernel's memory cgroup ids end at 65,535, after which pods fail to start).`, p.DyingSteps, prom(p.DyingStepWindow), num(p.MemoryCgroupsLimit)),
				Labels:      []string{"node"},
			},
		},
	}

	controlPlane := Group{
		Name:     "leakguard.control-plane",
		Interval: p.Interval,
		Records: []Record{
			{RecNodeMemoryRatio, fmt.Sprintf(`max by (node) (container_memory_working_set_bytes%s)
/ on (node)
%s`, sel(cadvisor, `id="/"`), nodeMemory)},
			{RecAPIServerMemoryRatio, fmt.Sprintf(`(
  max by (node, pod) (
    label_replace(
      max by (instance) (process_resident_memory_bytes%[1]s),
      "host_ip", "$1", "instance", "^\\[?([^\\]]*?)\\]?:[0-9]+$"
    )
    * on (host_ip) group_left (node, pod)
    topk by (host_ip) (1, max by (host_ip, node, pod) (kube_pod_info%[2]s))
  )
  or on (node)
  max by (node) (
    label_replace(
      max by (instance) (process_resident_memory_bytes%[1]s),
      "internal_ip", "$1", "instance", "^\\[?([^\\]]*?)\\]?:[0-9]+$"
    )
    * on (internal_ip) group_left (node)
    max by (internal_ip, node) (kube_node_info%[3]s)
  )
)
/ on (node) group_left ()
%[4]s`, sel(p.APIServerSelector), sel(ksm, `namespace="kube-system"`, `pod=~"kube-apiserver-.+"`, `created_by_kind="Node"`), sel(ksm), nodeMemory)},
			// apiserver_resource_objects (1.34+) names a resource by resource
			// and group; apiserver_storage_objects as "resource.group". Both
			// read -1 when the count is unknown, which is no count at all.
			{RecAPIServerObjects, fmt.Sprintf(`max by (resource) (
  label_replace(
    label_join(apiserver_resource_objects%[1]s >= 0, "resource", ".", "resource", "group"),
    "resource", "$1", "resource", "^(.*)\\.$"
  )
)
or
max by (resource) (apiserver_storage_objects%[1]s >= 0)`, sel(p.APIServerSelector))},
		},
		Alerts: []Alert{
			{
				Name:     AlertControlPlaneMemoryAboveWaterline,
				Severity: SeverityWarning,
				Expr: fmt.Sprintf(`%s > %s
and on (node)
max by (node) (kube_node_role%s)`, RecNodeMemoryRatio, num(p.ControlPlaneWaterline), sel(ksm, p.ControlPlaneRoleSelector)),
				For:         p.ControlPlaneFor,
				Summary:     "A control-plane node uses more memory than the waterline.",
				Description: fmt.Sprintf(`Control-plane node {{ $labels.node }} uses {{ $value | humanizePercentage }} of its memory (waterline %s).`, percent(p.ControlPlaneWaterline)),
				Labels:      []string{"node"},
			},
			{
				Name:        AlertKubeAPIServerMemoryHigh,
				Severity:    SeverityCritical,
				Expr:        fmt.Sprintf(`%s > %s`, RecAPIServerMemoryRatio, num(p.APIServerMemoryRatio)),
				For:         p.APIServerMemoryFor,
				Summary:     "kube-apiserver uses more than the waterline of its node's memory.",
				Description: fmt.Sprintf(`kube-apiserver on node {{ $labels.node }} uses {{ $value | humanizePercentage }} of the node's memory (waterline %s); take a heap profile now.`, percent(p.APIServerMemoryRatio)),
				Labels:      []string{"node"},
			},
			{
				Name:     AlertKubeAPIServerObjectSurge,
				Severity: SeverityWarning,
				Expr: fmt.Sprintf(`(%[1]s - %[2]s) > %[3]s
and
%[1]s > (1 + %[4]s) * %[2]s`, RecAPIServerObjects, offset(RecAPIServerObjects, time.Duration(p.ObjectSurgeWindow)), num(p.ObjectSurgeMinObjects), num(p.ObjectSurgeMinRatio)),
				For:         p.ObjectSurgeFor,
				Summary:     "The number of one resource's objects in the API server surges.",
				Description: fmt.Sprintf(`{{ $labels.resource }} objects grew by {{ $value }} in %s; a burst of large objects inflates kube-apiserver's memory.`, prom(p.ObjectSurgeWindow)),
				Labels:      []string{"resource"},
			},
		},
	}
	// ContainerMemoryLimitMissing is in the limits group, after the
	// recommendation it shows (recommendGroups).
	recommendation, limits := recommendGroups(p)
	groups := []Group{container, containerTrend, recommendation, limits, nodes, controlPlane}
	if p.ClusterLabel != "" {
		for i := range groups {
			for j := range groups[i].Records {
				groups[i].Records[j].Expr = keepCluster(groups[i].Records[j].Expr, p.ClusterLabel)
			}
			for j := range groups[i].Alerts {
				groups[i].Alerts[j].Expr = keepCluster(groups[i].Alerts[j].Expr, p.ClusterLabel)
			}
		}
	}
	return groups
}

// groupings are the label lists of aggregations ("max by (node)") and of
// vector matching ("on (namespace, pod)"); the labels that group_left and
// group_right copy are not among them.
var groupings = regexp.MustCompile(`\b(by|on) \(`)

// keepCluster adds the cluster label to every aggregation and join of expr,
// so that no rule mixes two clusters' series: on a central engine holding
// many clusters (Thanos, Mimir, VictoriaMetrics) two clusters' shop/cart-0
// stay two series, and every record and alert carries its cluster. On the
// series of one cluster without that label, grouping by it changes nothing.
func keepCluster(expr, label string) string {
	return groupings.ReplaceAllString(expr, "$1 ("+label+", ")
}

// trends are the three speeds of the container leak test: fast (a steep
// climb over the fast floor), steady (the floor over the leak steps, which
// may climb in steps) and slow (the floor over half a day).
func (p Params) trends() (fast, steady, slow trend) {
	fast = trend{RecWorkingSetFloorFastStep, RecWorkingSetFloorFastGrowth, p.FastStepWindow, p.FastSteps, p.FastSteps, p.LeakMinStepShare}
	steady = trend{RecWorkingSetFloorStep, RecWorkingSetFloorGrowth, p.LeakStepWindow, p.LeakSteps, p.LeakMinRisingSteps, p.LeakMinStepShare}
	slow = trend{RecWorkingSetFloorSlowStep, RecWorkingSetFloorSlowGrowth, p.SlowStepWindow, p.SlowSteps, p.SlowSteps, p.LeakMinStepShare}
	if slow.window == steady.span() {
		// The slow step is the steady trend's growth: record it once.
		slow.step = steady.growth
	}
	return fast, steady, slow
}

func percent(f float64) string { return num(f*100) + " %" }

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
