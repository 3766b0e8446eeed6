// The type every generated dashboard is checked against (make
// dashboards-check): Grafana's own Dashboard type from the pinned
// @grafana/schema, narrowed where the schema leaves a part to the plugin that
// owns it, so that an unknown or misspelt field anywhere is a compile error.
//
// - Panel options, custom field config and queries are typed per panel
//   plugin (timeseries, table, stat) with the schema's own panel types and a
//   Prometheus query type, instead of the schema's Record<string, unknown>.
// - A Prometheus annotation carries the data source's query as its target,
//   and the three options the Prometheus data source reads from the
//   annotation itself (titleFormat, textFormat, tagKeys).
// - JSON holds string enum values ("absolute"), which TypeScript's string
//   enums do not accept as literals: Plain<T> turns each enum into the union
//   of its values.
//
// checkDashboard also assigns the narrowed dashboard to the schema's plain
// Dashboard type, so the narrowing can never drift from the schema.
import type * as schema from '@grafana/schema';
import type * as timeseries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type * as table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';

export type Plain<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends Array<infer U>
      ? Array<Plain<U>>
      : T extends object
        ? { [K in keyof T]: Plain<T[K]> }
        : T;

/** A query of Grafana's Prometheus data source (its PromQuery model). */
export interface PromQuery extends schema.DataQuery {
  expr: string;
  legendFormat?: string;
  format?: 'time_series' | 'table' | 'heatmap';
  instant?: boolean;
  range?: boolean;
  exemplar?: boolean;
  interval?: string;
  intervalFactor?: number;
  editorMode?: 'code' | 'builder';
}

type FieldConfigSourceOf<Custom> = Omit<Plain<schema.FieldConfigSource>, 'defaults'> & {
  defaults: Omit<Plain<schema.FieldConfig>, 'custom'> & { custom?: Partial<Plain<Custom>> };
};

type PanelOf<Type extends string, Options, Custom> = Omit<Plain<schema.Panel>, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Type;
  options: Partial<Plain<Options>>;
  fieldConfig: FieldConfigSourceOf<Custom>;
  targets: Plain<PromQuery>[];
};

export type TimeSeriesPanel = PanelOf<'timeseries', timeseries.Options, timeseries.FieldConfig>;
export type TablePanel = PanelOf<'table', table.Options, table.FieldConfig>;
export type StatPanel = PanelOf<'stat', stat.Options, Record<string, never>>;

export type PromAnnotation = Omit<Plain<schema.AnnotationQuery<PromQuery>>, 'target'> & {
  target?: Plain<PromQuery>;
  titleFormat?: string;
  textFormat?: string;
  tagKeys?: string;
};

export type LeakguardDashboard = Omit<Plain<schema.Dashboard>, 'panels' | 'annotations'> & {
  panels: Array<TimeSeriesPanel | TablePanel | StatPanel>;
  annotations: { list: PromAnnotation[] };
};

/** checkDashboard accepts only a dashboard of the narrowed type, and checks that it is a schema Dashboard too. */
export function checkDashboard(d: LeakguardDashboard): Plain<schema.Dashboard> {
  return d;
}
