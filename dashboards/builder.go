package dashboards

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/leakguard/leakguard/rules"
)

// Units of Grafana's value formats used by the panels.
const (
	unitBytes   = "bytes"
	unitPercent = "percentunit"
	unitSeconds = "s"
	unitShort   = "short"
	unitPerSec  = "cps"
)

// promDS is the data source of every panel and query: the dashboard's
// datasource variable.
var promDS = DataSourceRef{Type: "prometheus", UID: "${datasource}"}

// sel joins label matchers into a selector body, skipping empty ones.
func sel(matchers ...string) string {
	var parts []string
	for _, m := range matchers {
		if strings.TrimSpace(m) != "" {
			parts = append(parts, m)
		}
	}
	return strings.Join(parts, ", ")
}

// metric renders metric{matchers...}.
func metric(name string, matchers ...string) string {
	return name + "{" + sel(matchers...) + "}"
}

// clusterM matches the cluster variable; a series without a cluster label
// matches its "All" value (.*). The definitions write it with the label
// "cluster"; forCluster puts the generator's clusterLabel in its place.
const clusterM = `cluster=~"$cluster"`

// groupings are the label lists of aggregations ("max by (node)") and of
// joins ("and on (namespace, pod)"), as in the rules.
var groupings = regexp.MustCompile(`\b(by|on) \(`)

// forCluster makes d tell clusters apart by label, the generator's
// clusterLabel: every selector matches the cluster variable on it, every
// aggregation and join keeps it (so that under "All" two clusters'
// shop/cart-0 stay two series), and every legend and table shows it. On the
// series of one cluster without the label, grouping by it changes nothing,
// the legend's {{label}} is empty and All (.*) matches every series. An
// empty label removes the cluster variable and its matchers.
func forCluster(d Dashboard, label string) Dashboard {
	fix := func(expr string) string {
		if label == "" {
			expr = strings.ReplaceAll(expr, ", "+clusterM, "")
			expr = strings.ReplaceAll(expr, clusterM+", ", "")
			return strings.ReplaceAll(expr, clusterM, "")
		}
		expr = strings.ReplaceAll(expr, clusterM, label+`=~"$cluster"`)
		return groupings.ReplaceAllString(expr, "$1 ("+label+", ")
	}
	legend := func(l string) string {
		if label == "" || !strings.Contains(l, "{{") {
			return l
		}
		return "{{" + label + "}} " + l
	}
	var vars []Variable
	for _, v := range d.Templating.List {
		if v.Name == "cluster" {
			if label == "" {
				continue
			}
			v.Query = strings.Replace(v.Query, ", cluster)", ", "+label+")", 1)
		}
		v.Query = fix(v.Query)
		vars = append(vars, v)
	}
	d.Templating.List = vars
	for i, a := range d.Annotations.List {
		if a.Target != nil {
			t := *a.Target
			t.Expr = fix(t.Expr)
			d.Annotations.List[i].Target = &t
		}
	}
	for i := range d.Panels {
		p := &d.Panels[i]
		targets := append([]Target(nil), p.Targets...)
		for j := range targets {
			targets[j].Expr = fix(targets[j].Expr)
			targets[j].LegendFormat = legend(targets[j].LegendFormat)
		}
		p.Targets = targets
		if label != "" && p.Type == "table" {
			p.Transformations = withClusterColumn(p.Transformations, label)
		}
	}
	return d
}

// withClusterColumn puts the cluster label first among a table's columns.
func withClusterColumn(ts []Transformation, label string) []Transformation {
	out := make([]Transformation, len(ts))
	for i, t := range ts {
		out[i] = t
		if t.ID != "organize" {
			continue
		}
		opts, ok := t.Options.(map[string]any)
		if !ok {
			continue
		}
		index, ok := opts["indexByName"].(map[string]int)
		if !ok {
			continue
		}
		shifted := map[string]int{label: 0}
		for k, v := range index {
			shifted[k] = v + 1
		}
		copied := map[string]any{}
		for k, v := range opts {
			copied[k] = v
		}
		copied["indexByName"] = shifted
		out[i].Options = copied
	}
	return out
}

// realContainers excludes cAdvisor's pod cgroup, pause container and
// non-container cgroups, as the recording rules do.
const realContainers = `container!="", container!="POD", image!=""`

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func seconds(d model.Duration) string { return num(time.Duration(d).Seconds()) }

func ptr[T any](v T) *T { return &v }

// query is a range query drawn as a series.
func query(expr, legend string) Target {
	return Target{Expr: expr, LegendFormat: legend, Range: true, EditorMode: "code"}
}

// tableQuery is an instant query shown as table rows.
func tableQuery(expr string) Target {
	return Target{Expr: expr, Format: "table", Instant: true, EditorMode: "code"}
}

// instantQuery is an instant query for a stat.
func instantQuery(expr, legend string) Target {
	return Target{Expr: expr, LegendFormat: legend, Instant: true, EditorMode: "code"}
}

// thresholds builds absolute thresholds: base colour from -∞, then each
// (value, colour) pair.
func thresholds(base string, steps ...any) *ThresholdsConfig {
	t := &ThresholdsConfig{Mode: "absolute", Steps: []Threshold{{Color: base}}}
	for i := 0; i+1 < len(steps); i += 2 {
		t.Steps = append(t.Steps, Threshold{Color: steps[i+1].(string), Value: ptr(steps[i].(float64))})
	}
	return t
}

// runbookLink links a panel to the runbook of the alert it is about.
func runbookLink(p rules.Params, alert string) Link {
	return Link{
		Title:       "Runbook: " + alert,
		Type:        "link",
		URL:         rules.RunbookURL(p, alert),
		Tooltip:     "What " + alert + " means and what to do about it",
		Icon:        "doc",
		Tags:        []string{},
		TargetBlank: true,
	}
}

func runbookLinks(p rules.Params, alerts ...string) []Link {
	var links []Link
	for _, a := range alerts {
		links = append(links, runbookLink(p, a))
	}
	return links
}

// panelSpec is what a dashboard definition says about a panel; layout, ids
// and the data source are filled in by build.
type panelSpec struct {
	Panel
	w, h int
}

func timeseries(title, description, unit string, targets ...Target) panelSpec {
	return panelSpec{w: 12, h: 8, Panel: Panel{
		Type:        "timeseries",
		Title:       title,
		Description: description,
		Targets:     targets,
		FieldConfig: FieldConfigSource{Defaults: FieldConfig{
			Unit:       unit,
			Color:      &FieldColor{Mode: "palette-classic"},
			Thresholds: thresholds("green"),
			Custom: GraphFieldConfig{
				DrawStyle: "line", LineWidth: 1, FillOpacity: 10, ShowPoints: "never",
				ThresholdsStyle: ThresholdsStyle{Mode: "off"},
			},
		}, Overrides: []Override{}},
		Options: TimeSeriesOptions{
			Legend:  Legend{Calcs: []string{"lastNotNull", "max"}, DisplayMode: "table", Placement: "bottom", ShowLegend: true, SortBy: "Last *", SortDesc: true},
			Tooltip: Tooltip{Mode: "multi", Sort: "desc"},
		},
	}}
}

// withThresholdLines draws the thresholds as lines across the graph.
func (s panelSpec) withThresholds(t *ThresholdsConfig, style string) panelSpec {
	s.FieldConfig.Defaults.Thresholds = t
	if c, ok := s.FieldConfig.Defaults.Custom.(GraphFieldConfig); ok {
		c.ThresholdsStyle = ThresholdsStyle{Mode: style}
		s.FieldConfig.Defaults.Custom = c
	}
	return s
}

// noValue is what a stat shows when its query returns nothing.
func (s panelSpec) noValue(text string) panelSpec { s.FieldConfig.Defaults.NoValue = text; return s }

func (s panelSpec) withLinks(links []Link) panelSpec { s.Links = links; return s }

func (s panelSpec) size(w, h int) panelSpec { s.w, s.h = w, h; return s }

func (s panelSpec) withOverrides(o ...Override) panelSpec {
	s.FieldConfig.Overrides = append(s.FieldConfig.Overrides, o...)
	return s
}

func (s panelSpec) withMinMax(min, max *float64) panelSpec {
	s.FieldConfig.Defaults.Min, s.FieldConfig.Defaults.Max = min, max
	return s
}

// bars draws the series as bars (for counts per interval).
func (s panelSpec) bars() panelSpec {
	if c, ok := s.FieldConfig.Defaults.Custom.(GraphFieldConfig); ok {
		c.DrawStyle, c.FillOpacity = "bars", 80
		s.FieldConfig.Defaults.Custom = c
	}
	return s
}

// dashedRed is an override that draws the named series (a limit) as a red
// dashed line.
func dashedRed(regex string) Override { return dashed(regex, "red") }

// dashed draws the series whose name matches regex as a dashed line in a
// fixed colour: the limits and requests that the working set is read against.
func dashed(regex, color string) Override {
	return Override{
		Matcher: Matcher{ID: "byRegexp", Options: regex},
		Properties: []Property{
			{ID: "color", Value: FieldColor{Mode: "fixed", FixedColor: color}},
			{ID: "custom.lineStyle", Value: LineStyle{Fill: "dash", Dash: []int{10, 10}}},
			{ID: "custom.fillOpacity", Value: 0},
		},
	}
}

func stat(title, description, unit string, t *ThresholdsConfig, targets ...Target) panelSpec {
	return panelSpec{w: 6, h: 5, Panel: Panel{
		Type:        "stat",
		Title:       title,
		Description: description,
		Targets:     targets,
		FieldConfig: FieldConfigSource{Defaults: FieldConfig{
			Unit:       unit,
			Color:      &FieldColor{Mode: "thresholds"},
			Thresholds: t,
			NoValue:    "0",
		}, Overrides: []Override{}},
		Options: StatOptions{
			ReduceOptions: ReduceOptions{Calcs: []string{"lastNotNull"}, Fields: "", Values: false},
			Orientation:   "auto", ColorMode: "value", GraphMode: "none", JustifyMode: "auto",
			TextMode: "auto", WideLayout: true, PercentChangeColorMode: "standard",
		},
	}}
}

// column is one value column of a table: its header, unit, the instant
// query that fills it and optional thresholds.
type column struct {
	name       string
	unit       string
	expr       string
	thresholds *ThresholdsConfig
	hidden     bool
}

// table merges instant queries that share the label columns into one row per
// label set; labels lists the label columns in order, with optional links.
func table(title, description string, labels []string, labelLinks map[string]DataLink, sortBy string, cols ...column) panelSpec {
	s := panelSpec{w: 24, h: 10, Panel: Panel{
		Type:        "table",
		Title:       title,
		Description: description,
		FieldConfig: FieldConfigSource{Defaults: FieldConfig{
			Unit:       unitShort,
			Thresholds: thresholds("green"),
			Custom:     TableFieldConfig{Align: "auto", CellOptions: TableCellOptions{Type: "auto"}, Inspect: false, Filterable: true},
		}, Overrides: []Override{}},
		Options: TableOptions{FrameIndex: 0, ShowHeader: true, CellHeight: "sm"},
	}}
	if sortBy != "" {
		s.Options = TableOptions{FrameIndex: 0, ShowHeader: true, CellHeight: "sm", SortBy: []TableSortBy{{DisplayName: sortBy, Desc: true}}}
	}
	rename := map[string]string{}
	index := map[string]int{}
	exclude := map[string]bool{"Time": true}
	for i, l := range labels {
		index[l] = i
	}
	for i, c := range cols {
		ref := string(rune('A' + i))
		t := tableQuery(c.expr)
		t.RefID = ref
		s.Targets = append(s.Targets, t)
		valueCol := "Value #" + ref
		if len(cols) == 1 {
			valueCol = "Value"
		}
		rename[valueCol] = c.name
		index[valueCol] = len(labels) + i
		if c.hidden {
			exclude[valueCol] = true
		}
		props := []Property{{ID: "unit", Value: c.unit}}
		if c.thresholds != nil {
			props = append(props,
				Property{ID: "thresholds", Value: c.thresholds},
				Property{ID: "custom.cellOptions", Value: TableCellOptions{Type: "color-text"}})
		}
		s.FieldConfig.Overrides = append(s.FieldConfig.Overrides, Override{Matcher: Matcher{ID: "byName", Options: c.name}, Properties: props})
	}
	for _, l := range labels {
		if link, ok := labelLinks[l]; ok {
			s.FieldConfig.Overrides = append(s.FieldConfig.Overrides, Override{
				Matcher:    Matcher{ID: "byName", Options: l},
				Properties: []Property{{ID: "links", Value: []DataLink{link}}},
			})
		}
	}
	// The queries aggregate to exactly the label columns, so merge joins
	// them into one row per label set with nothing else to hide.
	s.Transformations = []Transformation{
		{ID: "merge", Options: map[string]any{}},
		{ID: "organize", Options: map[string]any{"excludeByName": exclude, "indexByName": index, "renameByName": rename}},
	}
	return s
}

// build lays the panels out left to right in rows of 24 columns, numbers
// them, and sets the data source of every panel and query.
func build(d Dashboard, specs []panelSpec) Dashboard {
	x, y, rowH := 0, 0, 0
	for i, s := range specs {
		if x+s.w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		p := s.Panel
		p.ID = i + 1
		p.GridPos = GridPos{H: s.h, W: s.w, X: x, Y: y}
		p.Datasource = promDS
		for j := range p.Targets {
			p.Targets[j].Datasource = &promDS
			if p.Targets[j].RefID == "" {
				p.Targets[j].RefID = string(rune('A' + j))
			}
		}
		d.Panels = append(d.Panels, p)
		x += s.w
		if s.h > rowH {
			rowH = s.h
		}
	}
	return d
}

// newDashboard fills in what every leakguard dashboard shares: tags,
// links to the other dashboards, time settings and the schema version.
func newDashboard(uid, title, description string, vars []Variable, annotations []Annotation) Dashboard {
	return Dashboard{
		UID:           uid,
		Title:         title,
		Description:   description,
		Tags:          []string{"leakguard", "memory"},
		Timezone:      "browser",
		Editable:      true,
		GraphTooltip:  1,
		Refresh:       "1m",
		Time:          TimeRange{From: "now-12h", To: "now"},
		SchemaVersion: SchemaVersion,
		Links: []Link{{
			Title: "leakguard", Type: "dashboards", Tags: []string{"leakguard"}, Tooltip: "The other leakguard dashboards",
			Icon: "external link", AsDropdown: true, IncludeVars: true, KeepTime: true,
		}},
		Templating:  Templating{List: vars},
		Annotations: AnnotationList{List: append([]Annotation{builtInAnnotation()}, annotations...)},
		Panels:      []Panel{},
	}
}

func builtInAnnotation() Annotation {
	return Annotation{
		BuiltIn:    1,
		Name:       "Annotations & Alerts",
		Datasource: DataSourceRef{Type: "grafana", UID: "-- Grafana --"},
		Enable:     true,
		Hide:       true,
		IconColor:  "rgba(0, 211, 255, 1)",
		Type:       "dashboard",
	}
}

// promAnnotation marks the time axis wherever expr is non-zero.
func promAnnotation(name, color, expr, title, text, tagKeys string) Annotation {
	return Annotation{
		Name:        name,
		Datasource:  promDS,
		Enable:      true,
		IconColor:   color,
		Target:      &Target{RefID: "Anno", Expr: expr, Interval: "1m"},
		TitleFormat: title,
		TextFormat:  text,
		TagKeys:     tagKeys,
	}
}

// Variables shared by the dashboards.

func datasourceVar() Variable {
	return Variable{
		Name: "datasource", Label: "Data source", Type: "datasource", Query: "prometheus",
		Description: "The Prometheus that scrapes cAdvisor, kube-state-metrics, the apiserver and leakguard, and evaluates leakguard's rules.",
		Refresh:     varRefreshOnLoad, Hide: varHideNone,
	}
}

// clusterVar is shown: Grafana cannot hide a variable depending on the data.
// Where the series carry no cluster label (one Prometheus per cluster) it
// offers only All, whose value .* matches every series, label or not; where
// one engine holds several clusters it picks one, or All of them, kept apart
// in every panel. Generate with an empty clusterLabel to drop it. The label
// is written "cluster" here; forCluster puts clusterLabel in its place.
func clusterVar(p rules.Params) Variable {
	return queryVar("cluster", "Cluster",
		"The cluster label (clusterLabel) on an engine that holds several clusters (Thanos, Mimir, VictoriaMetrics); with one cluster and no such label, All matches everything.",
		fmt.Sprintf("label_values(%s, cluster)", metric("kube_pod_info", p.KubeStateMetricsSelector)), true, false, ".*", varHideNone)
}

func queryVar(name, label, description, q string, includeAll, multi bool, allValue string, hide int) Variable {
	return Variable{
		Name: name, Label: label, Description: description, Type: "query",
		Datasource: &promDS, Query: q, Refresh: varRefreshOnTimeRange, Sort: varSortAlphaAsc,
		Hide: hide, IncludeAll: includeAll, Multi: multi, AllValue: allValue,
	}
}
