import { TOPOLOGIES, type TopologyName } from "./types";

export interface Filters {
  q: string;
  host: string;
  state: string;
  namespace: string;
  /** exact metadata match, "key=value" (label.app=web) */
  meta: string;
  /** client-side metric threshold: nodes with metric >= min */
  metric: string;
  min: string;
}

export const EMPTY_FILTERS: Filters = {
  q: "", host: "", state: "", namespace: "", meta: "", metric: "", min: "",
};

export interface ViewState {
  topology: TopologyName;
  filters: Filters;
  selected: string | null;
  sizeBy: string;
  grouped: boolean;
  /** the graph's layout: "packed" (default) or "forceatlas2" (the older, slower one) */
  layout: "packed" | "forceatlas2";
}

export function parseUrl(search: string): ViewState {
  const p = new URLSearchParams(search);
  const t = p.get("view") as TopologyName | null;
  const filters: Filters = { ...EMPTY_FILTERS };
  for (const k of Object.keys(filters) as (keyof Filters)[]) filters[k] = p.get(k) ?? "";
  return {
    topology: t && TOPOLOGIES.includes(t) ? t : "containers",
    filters,
    selected: p.get("node"),
    sizeBy: p.get("size") ?? "cpu_percent",
    grouped: p.get("group") === "1",
    layout: p.get("layout") === "forceatlas2" ? "forceatlas2" : "packed",
  };
}

export function toUrl(v: ViewState): string {
  const p = new URLSearchParams();
  p.set("view", v.topology);
  for (const [k, val] of Object.entries(v.filters)) if (val) p.set(k, val);
  if (v.selected) p.set("node", v.selected);
  if (v.sizeBy && v.sizeBy !== "cpu_percent") p.set("size", v.sizeBy);
  if (v.grouped) p.set("group", "1");
  if (v.layout === "forceatlas2") p.set("layout", v.layout);
  return `?${p.toString()}`;
}

/** Query string for the app's topology filters (server-side: q, host, state, namespace,
 * meta.<key>=<value>). */
export function serverQuery(f: Filters): URLSearchParams {
  const p = new URLSearchParams();
  if (f.q) p.set("q", f.q);
  if (f.host) p.set("host", f.host);
  if (f.state) p.set("state", f.state);
  if (f.namespace) p.set("namespace", f.namespace);
  const eq = f.meta.indexOf("=");
  if (eq > 0) p.set(`meta.${f.meta.slice(0, eq)}`, f.meta.slice(eq + 1));
  return p;
}
