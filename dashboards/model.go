// Package dashboards holds leakguard's Grafana dashboards as Go values and
// renders them to dashboard JSON, to ConfigMaps for the Grafana sidecar and to
// grafana-operator GrafanaDashboard objects.
//
// The structs below cover the part of Grafana's dashboard JSON model that the
// dashboards use, with the field names of Grafana's schema (the npm package
// @grafana/schema, against which `make dashboards-check` validates every
// rendered dashboard). Every query reuses the recording rules and selectors of
// package rules, so that a dashboard and an alert never disagree.
package dashboards

// SchemaVersion is the dashboard schemaVersion of the pinned @grafana/schema
// (dashboards/schema/package.json): Grafana migrates older dashboards on load,
// a current one loads as it is.
const SchemaVersion = 42

// Dashboard is a Grafana dashboard.
type Dashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Description   string         `json:"description"`
	Tags          []string       `json:"tags"`
	Timezone      string         `json:"timezone"`
	Editable      bool           `json:"editable"`
	GraphTooltip  int            `json:"graphTooltip"`
	Refresh       string         `json:"refresh"`
	Time          TimeRange      `json:"time"`
	SchemaVersion int            `json:"schemaVersion"`
	Links         []Link         `json:"links"`
	Templating    Templating     `json:"templating"`
	Annotations   AnnotationList `json:"annotations"`
	Panels        []Panel        `json:"panels"`
}

// TimeRange is the dashboard's default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Link is a dashboard or panel link (Grafana's DashboardLink).
type Link struct {
	Title       string   `json:"title"`
	Type        string   `json:"type"`
	URL         string   `json:"url,omitempty"`
	Tooltip     string   `json:"tooltip"`
	Icon        string   `json:"icon"`
	Tags        []string `json:"tags"`
	AsDropdown  bool     `json:"asDropdown"`
	IncludeVars bool     `json:"includeVars"`
	KeepTime    bool     `json:"keepTime"`
	TargetBlank bool     `json:"targetBlank"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a template variable.
type Variable struct {
	Name        string         `json:"name"`
	Label       string         `json:"label"`
	Description string         `json:"description"`
	Type        string         `json:"type"`
	Datasource  *DataSourceRef `json:"datasource,omitempty"`
	Query       string         `json:"query"`
	Regex       string         `json:"regex,omitempty"`
	Refresh     int            `json:"refresh"`
	Sort        int            `json:"sort,omitempty"`
	Hide        int            `json:"hide"`
	IncludeAll  bool           `json:"includeAll"`
	Multi       bool           `json:"multi"`
	AllValue    string         `json:"allValue,omitempty"`
}

// Variable types, refresh and hide values of Grafana's model.
const (
	varRefreshOnLoad      = 1
	varRefreshOnTimeRange = 2
	varHideNone           = 0
	varHideVariable       = 2
	varSortAlphaAsc       = 1
)

// DataSourceRef names a data source by type and uid (or a variable).
type DataSourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// AnnotationList holds the dashboard's annotation queries.
type AnnotationList struct {
	List []Annotation `json:"list"`
}

// Annotation is an annotation query: Grafana's built-in one, or a
// Prometheus query whose non-zero points mark the time axis. TitleFormat,
// TextFormat and TagKeys are the Prometheus data source's own options.
type Annotation struct {
	BuiltIn     int           `json:"builtIn,omitempty"`
	Name        string        `json:"name"`
	Datasource  DataSourceRef `json:"datasource"`
	Enable      bool          `json:"enable"`
	Hide        bool          `json:"hide"`
	IconColor   string        `json:"iconColor"`
	Type        string        `json:"type,omitempty"`
	Target      *Target       `json:"target,omitempty"`
	TitleFormat string        `json:"titleFormat,omitempty"`
	TextFormat  string        `json:"textFormat,omitempty"`
	TagKeys     string        `json:"tagKeys,omitempty"`
}

// Panel is a visualisation panel (timeseries, table or stat).
type Panel struct {
	ID              int               `json:"id"`
	Type            string            `json:"type"`
	Title           string            `json:"title"`
	Description     string            `json:"description"`
	Datasource      DataSourceRef     `json:"datasource"`
	GridPos         GridPos           `json:"gridPos"`
	Targets         []Target          `json:"targets"`
	FieldConfig     FieldConfigSource `json:"fieldConfig"`
	Options         any               `json:"options"`
	Transformations []Transformation  `json:"transformations,omitempty"`
	Links           []Link            `json:"links,omitempty"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is a Prometheus query.
type Target struct {
	Datasource   *DataSourceRef `json:"datasource,omitempty"`
	RefID        string         `json:"refId"`
	Expr         string         `json:"expr"`
	LegendFormat string         `json:"legendFormat,omitempty"`
	Format       string         `json:"format,omitempty"`
	Instant      bool           `json:"instant,omitempty"`
	Range        bool           `json:"range,omitempty"`
	Interval     string         `json:"interval,omitempty"`
	EditorMode   string         `json:"editorMode,omitempty"`
}

// FieldConfigSource is a panel's field configuration: defaults and
// per-field overrides.
type FieldConfigSource struct {
	Defaults  FieldConfig `json:"defaults"`
	Overrides []Override  `json:"overrides"`
}

// FieldConfig is the display configuration of a panel's fields.
type FieldConfig struct {
	Unit        string            `json:"unit"`
	Decimals    *int              `json:"decimals,omitempty"`
	Min         *float64          `json:"min,omitempty"`
	Max         *float64          `json:"max,omitempty"`
	NoValue     string            `json:"noValue,omitempty"`
	Color       *FieldColor       `json:"color,omitempty"`
	Thresholds  *ThresholdsConfig `json:"thresholds,omitempty"`
	Links       []DataLink        `json:"links,omitempty"`
	Custom      any               `json:"custom,omitempty"`
	DisplayName string            `json:"displayName,omitempty"`
}

// FieldColor is a field's colour scheme.
type FieldColor struct {
	Mode       string `json:"mode"`
	FixedColor string `json:"fixedColor,omitempty"`
}

// ThresholdsConfig colours values by threshold.
type ThresholdsConfig struct {
	Mode  string      `json:"mode"`
	Steps []Threshold `json:"steps"`
}

// Threshold is one step; the first step's Value is null (from -∞).
type Threshold struct {
	Color string   `json:"color"`
	Value *float64 `json:"value"`
}

// DataLink is a link on a field's values.
type DataLink struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	TargetBlank bool   `json:"targetBlank,omitempty"`
}

// Override changes properties of the fields a matcher picks.
type Override struct {
	Matcher    Matcher    `json:"matcher"`
	Properties []Property `json:"properties"`
}

// Matcher picks fields, e.g. byName.
type Matcher struct {
	ID      string `json:"id"`
	Options string `json:"options"`
}

// Property is one overridden field property.
type Property struct {
	ID    string `json:"id"`
	Value any    `json:"value"`
}

// Transformation is a data transformation of a panel.
type Transformation struct {
	ID      string `json:"id"`
	Options any    `json:"options"`
}

// TimeSeriesOptions are the timeseries panel's options.
type TimeSeriesOptions struct {
	Legend  Legend  `json:"legend"`
	Tooltip Tooltip `json:"tooltip"`
}

// Legend configures a panel legend.
type Legend struct {
	Calcs       []string `json:"calcs"`
	DisplayMode string   `json:"displayMode"`
	Placement   string   `json:"placement"`
	ShowLegend  bool     `json:"showLegend"`
	SortBy      string   `json:"sortBy,omitempty"`
	SortDesc    bool     `json:"sortDesc,omitempty"`
}

// Tooltip configures a panel tooltip.
type Tooltip struct {
	Mode string `json:"mode"`
	Sort string `json:"sort"`
}

// GraphFieldConfig is the timeseries panel's custom field configuration.
type GraphFieldConfig struct {
	DrawStyle         string          `json:"drawStyle"`
	LineWidth         int             `json:"lineWidth"`
	FillOpacity       int             `json:"fillOpacity"`
	ShowPoints        string          `json:"showPoints"`
	SpanNulls         bool            `json:"spanNulls"`
	ThresholdsStyle   ThresholdsStyle `json:"thresholdsStyle"`
	AxisSoftMin       *float64        `json:"axisSoftMin,omitempty"`
	LineInterpolation string          `json:"lineInterpolation,omitempty"`
}

// ThresholdsStyle says how thresholds are drawn on a graph.
type ThresholdsStyle struct {
	Mode string `json:"mode"`
}

// LineStyle is a dashed or solid line.
type LineStyle struct {
	Fill string `json:"fill"`
	Dash []int  `json:"dash,omitempty"`
}

// TableOptions are the table panel's options.
type TableOptions struct {
	FrameIndex int           `json:"frameIndex"`
	ShowHeader bool          `json:"showHeader"`
	CellHeight string        `json:"cellHeight"`
	SortBy     []TableSortBy `json:"sortBy,omitempty"`
}

// TableSortBy is a table's initial sort.
type TableSortBy struct {
	DisplayName string `json:"displayName"`
	Desc        bool   `json:"desc"`
}

// TableFieldConfig is the table panel's custom field configuration.
type TableFieldConfig struct {
	Align       string           `json:"align"`
	CellOptions TableCellOptions `json:"cellOptions"`
	Inspect     bool             `json:"inspect"`
	Filterable  bool             `json:"filterable"`
}

// TableCellOptions picks how table cells are drawn.
type TableCellOptions struct {
	Type string `json:"type"`
}

// StatOptions are the stat panel's options.
type StatOptions struct {
	ReduceOptions          ReduceOptions `json:"reduceOptions"`
	Orientation            string        `json:"orientation"`
	ColorMode              string        `json:"colorMode"`
	GraphMode              string        `json:"graphMode"`
	JustifyMode            string        `json:"justifyMode"`
	TextMode               string        `json:"textMode"`
	WideLayout             bool          `json:"wideLayout"`
	ShowPercentChange      bool          `json:"showPercentChange"`
	PercentChangeColorMode string        `json:"percentChangeColorMode"`
}

// ReduceOptions reduce a series to the stat's value.
type ReduceOptions struct {
	Calcs  []string `json:"calcs"`
	Fields string   `json:"fields"`
	Values bool     `json:"values"`
}
