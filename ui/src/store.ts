import { create } from "zustand";
import { applyDiff, type DiffResult, type NodeMap } from "./diff";
import type { Filters, ViewState } from "./url";
import { EMPTY_FILTERS } from "./url";
import type { Conn, Diff, Role, TopologyName, TopoNode } from "./types";

export interface Change extends DiffResult {
  seq: number;
  reset: boolean;
}

export interface UiState extends ViewState {
  token: string | null;
  role: Role | null;
  conn: Conn;
  connError: string;
  nodes: NodeMap;
  change: Change | null;
  seq: number;
  diffsApplied: number;
  setToken(token: string | null, role?: Role | null): void;
  setConn(conn: Conn, error?: string): void;
  setTopology(t: TopologyName): void;
  setFilters(f: Partial<Filters>): void;
  select(id: string | null): void;
  setSizeBy(metric: string): void;
  setGrouped(g: boolean): void;
  receive(diff: Diff): void;
}

/** Nodes that pass the client-side metric threshold (server filters are applied upstream). */
export function visibleNodes(nodes: NodeMap, f: Filters): TopoNode[] {
  const min = f.min === "" ? NaN : Number(f.min);
  const out: TopoNode[] = [];
  for (const n of nodes.values()) {
    if (f.metric && !Number.isNaN(min) && !((n.metrics?.[f.metric] ?? -Infinity) >= min)) continue;
    out.push(n);
  }
  return out;
}

export const createUiStore = (init: ViewState) =>
  create<UiState>()((set, get) => ({
    ...init,
    token: null,
    role: null,
    conn: "idle",
    connError: "",
    nodes: new Map(),
    change: null,
    seq: 0,
    diffsApplied: 0,
    setToken: (token, role = null) => set({ token, role }),
    setConn: (conn, error = "") => set({ conn, connError: error }),
    setTopology: (topology) =>
      topology === get().topology ? undefined : set({ topology, nodes: new Map(), selected: null, change: null }),
    setFilters: (f) => set({ filters: { ...get().filters, ...f } }),
    select: (selected) => set({ selected }),
    setSizeBy: (sizeBy) => set({ sizeBy }),
    setGrouped: (grouped) => set({ grouped }),
    receive: (diff) => {
      const s = get();
      if (diff.topology && diff.topology !== s.topology) return; // a late message of the old view
      const r = applyDiff(s.nodes, diff);
      const seq = s.seq + 1;
      const selected = s.selected && r.removed.includes(s.selected) ? null : s.selected;
      set({
        nodes: r.nodes,
        change: { ...r, seq, reset: !!diff.reset },
        seq,
        selected,
        diffsApplied: s.diffsApplied + 1,
      });
    },
  }));

export type UiStore = ReturnType<typeof createUiStore>;
export { EMPTY_FILTERS };
