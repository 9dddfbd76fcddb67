import Graph from "graphology";
import FA2Layout from "graphology-layout-forceatlas2/worker";
import Sigma from "sigma";
import { groupKeyOf, healthOf, HEALTH_COLOURS, type NodeMap } from "./diff";
import type { TopoNode } from "./types";
import { BoxGrid, PackedLayout, type LayoutNode } from "./layout";
import { meanMove } from "./settle";

interface NodeAttrs {
  x: number;
  y: number;
  size: number;
  color: string;
  label: string;
  fixed?: boolean;
  highlighted?: boolean;
  members?: number;
}

/** Figures the e2e tests and bench/ui.py read from `window.__ui`. */
export interface GraphProbe {
  nodes: number;
  edges: number;
  firstDrawAt: number | null;
  layoutDoneAt: number | null;
  renders: number;
  lastRenderAt: number;
  layoutRunning: boolean;
  /** which layout placed the nodes: "packed" (the default) or "forceatlas2" */
  layout: string;
  /** false when ForceAtlas2 stopped at its time budget rather than settled (packed: always true) */
  settled: boolean;
  hasNode(id: string): boolean;
  colorOf(id: string): string | null;
  /** the node labels drawn in the last frame, as [x0, y0, x1, y1] boxes in CSS pixels */
  labelBoxes(): number[][];
  /** how many labels the last frame drew */
  labelsDrawn: number;
}

declare global {
  interface Window {
    __ui?: GraphProbe;
  }
}

const hash = (s: string): number => {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0) / 4294967296;
};

export type LayoutName = "packed" | "forceatlas2";

/** The group a node is laid out in: containers and processes by host, pods and services by
 * namespace, hosts (and grouped nodes) all in one. */
export function layoutGroupOf(n: TopoNode): string {
  switch (n.topology) {
    case "containers":
    case "processes":
      return n.host ?? "";
    case "pods":
    case "services":
      return n.metadata?.namespace ?? "";
    default:
      return "";
  }
}

const LABEL_SIZE = 12;
const LABEL_FONT = "system-ui, sans-serif";
const MAX_LABEL = 32;

export interface GraphOptions {
  /** "packed" (default): groups of sunflowers, placed at once; "forceatlas2": the force
   * layout in a web worker until it settles or its budget runs out (slower; for comparison) */
  layout?: LayoutName;
  sizeBy: string;
  grouped: boolean;
  selected: string | null;
  onSelect(id: string | null): void;
}

/** The topology drawn with sigma.js (WebGL). Positions of known nodes are kept across diffs;
 * new nodes take the next slot of their group (layout.ts), so live updates never make the
 * drawing jump. Labels are drawn only where they do not overlap a label already drawn. */
export class GraphView {
  readonly graph = new Graph<NodeAttrs>({ multi: false, type: "directed" });
  private sigma: Sigma<NodeAttrs>;
  private layout: FA2Layout<NodeAttrs> | null = null;
  private layoutTimer: number | undefined;
  private dragged: string | null = null;
  private maxMetric = 1;
  private sizeScale = 1;
  private opts: GraphOptions;
  private source: NodeMap = new Map();
  private packed = new PackedLayout();
  private labels = new BoxGrid();
  private labelWidths = new Map<string, number>();
  readonly probe: GraphProbe;

  constructor(container: HTMLElement, opts: GraphOptions) {
    this.opts = opts;
    const labels = this.labels;
    const widths = this.labelWidths;
    this.sigma = new Sigma(this.graph, container, {
      renderEdgeLabels: false,
      labelRenderedSizeThreshold: 0,
      labelSize: LABEL_SIZE,
      labelFont: LABEL_FONT,
      labelColor: { color: "#1d2733" },
      // up to 3 candidates per 100 px cell; the overlap check below keeps the ones that fit
      labelDensity: 3,
      labelGridCellSize: 100,
      defaultEdgeColor: "#8391a1",
      defaultEdgeType: "arrow",
      minEdgeThickness: 1.4,
      hideEdgesOnMove: true,
      zIndex: true,
      // a label is drawn only where it overlaps no label drawn before it in this frame (sigma
      // offers the biggest nodes' labels first), with a halo so edges do not cross the text
      defaultDrawNodeLabel: (ctx, data) => {
        if (!data.label) return;
        const text = data.label.length > MAX_LABEL ? `${data.label.slice(0, MAX_LABEL - 1)}…` : data.label;
        ctx.font = `${LABEL_SIZE}px ${LABEL_FONT}`;
        let w = widths.get(text);
        if (w === undefined) {
          w = ctx.measureText(text).width;
          if (widths.size > 20000) widths.clear();
          widths.set(text, w);
        }
        const x = data.x + data.size + 3, y = data.y + LABEL_SIZE / 3;
        if (!labels.tryAdd(x - 1, y - LABEL_SIZE, x + w + 1, y + 4)) return;
        ctx.lineWidth = 3;
        ctx.strokeStyle = "rgba(245, 247, 250, 0.9)";
        ctx.strokeText(text, x, y);
        ctx.fillStyle = "#1d2733";
        ctx.fillText(text, x, y);
      },
      nodeReducer: (node, data) => {
        if (node === this.opts.selected) return { ...data, highlighted: true, zIndex: 2 };
        return data;
      },
    });
    const graph = this.graph;
    const probe: GraphProbe = {
      nodes: 0, edges: 0, firstDrawAt: null, layoutDoneAt: null, renders: 0, lastRenderAt: 0,
      layoutRunning: false,
      layout: opts.layout ?? "packed",
      settled: true,
      hasNode: (id) => graph.hasNode(id),
      colorOf: (id) => (graph.hasNode(id) ? graph.getNodeAttribute(id, "color") : null),
      labelBoxes: () => {
        const b = this.labels.boxes, out: number[][] = [];
        for (let i = 0; i < b.length; i += 4) out.push([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        return out;
      },
      labelsDrawn: 0,
    };
    this.probe = probe;
    window.__ui = probe;
    this.sigma.on("beforeRender", () => labels.clear());
    this.sigma.on("afterRender", () => {
      probe.labelsDrawn = labels.boxes.length / 4;
      probe.nodes = graph.order;
      probe.edges = graph.size;
      probe.renders++;
      probe.lastRenderAt = Date.now();
      if (probe.firstDrawAt === null && graph.order > 0) probe.firstDrawAt = performance.now();
    });
    this.sigma.on("clickNode", ({ node }) => this.opts.onSelect(node));
    this.sigma.on("clickStage", () => this.opts.onSelect(null));
    this.sigma.on("downNode", (e) => {
      this.dragged = e.node;
      graph.setNodeAttribute(e.node, "fixed", true);
    });
    this.sigma.getMouseCaptor().on("mousemovebody", (e) => {
      if (!this.dragged) return;
      const p = this.sigma.viewportToGraph(e);
      graph.mergeNodeAttributes(this.dragged, { x: p.x, y: p.y });
      e.preventSigmaDefault();
      e.original.preventDefault();
      e.original.stopPropagation();
    });
    const release = () => {
      this.dragged = null; // a dragged node stays where it was dropped (still "fixed")
    };
    this.sigma.getMouseCaptor().on("mouseup", release);
    this.sigma.getMouseCaptor().on("mousedown", () => {
      if (!this.sigma.getCustomBBox()) this.sigma.setCustomBBox(this.sigma.getBBox());
    });
  }

  setOptions(opts: Partial<GraphOptions>): void {
    const regroup = opts.grouped !== undefined && opts.grouped !== this.opts.grouped;
    const resize = opts.sizeBy !== undefined && opts.sizeBy !== this.opts.sizeBy;
    this.opts = { ...this.opts, ...opts };
    if (regroup) this.rebuild(this.source, true);
    else if (resize) {
      this.computeMax(this.source);
      for (const n of this.source.values()) if (this.graph.hasNode(n.id)) this.graph.setNodeAttribute(n.id, "size", this.sizeOf(n));
    }
    this.sigma.refresh();
  }

  private computeMax(nodes: NodeMap): void {
    let m = 0;
    for (const n of nodes.values()) m = Math.max(m, n.metrics?.[this.opts.sizeBy] ?? 0);
    this.maxMetric = m || 1;
    // past a few hundred nodes the discs shrink so groups stay apart on screen (zooming in
    // enlarges them again)
    this.sizeScale = Math.min(1, Math.max(0.35, Math.sqrt(300 / Math.max(1, nodes.size))));
  }

  private sizeOf(n: TopoNode): number {
    const v = n.metrics?.[this.opts.sizeBy] ?? 0;
    return (3 + 9 * Math.sqrt(Math.max(0, v) / this.maxMetric)) * this.sizeScale;
  }

  private attrsOf(n: TopoNode): Omit<NodeAttrs, "x" | "y"> {
    return {
      size: this.sizeOf(n),
      color: HEALTH_COLOURS[healthOf(n)],
      label: n.label,
    };
  }

  /** Replace the whole graph (a reset, a new view, grouping switched). Keeps positions of
   * nodes that stay. */
  rebuild(nodes: NodeMap, keepPositions: boolean): void {
    this.source = nodes;
    const old = new Map<string, { x: number; y: number }>();
    if (keepPositions) this.graph.forEachNode((id, a) => old.set(id, { x: a.x, y: a.y }));
    this.graph.clear();
    this.computeMax(nodes);
    if (this.opts.layout === "forceatlas2") return this.rebuildForce(nodes, old);
    if (this.opts.grouped) this.buildGrouped(nodes);
    else {
      for (const n of nodes.values()) this.graph.addNode(n.id, { ...this.attrsOf(n), x: 0, y: 0 });
      for (const n of nodes.values()) this.addEdges(n);
    }
    this.sigma.setCustomBBox(null);
    // arrows show the direction of a connection; past a few thousand nodes plain lines are cheaper
    this.sigma.setSetting("defaultEdgeType", this.graph.order <= 3000 ? "arrow" : "line");
    this.stopLayout();
    const kept = [...old.keys()].some((id) => this.graph.hasNode(id));
    if (kept) {
      // nodes that stay keep their place; new ones take their group's next slot
      this.graph.forEachNode((id, a) => {
        const p = old.get(id) ?? this.packed.place(this.layoutNode(id, nodes));
        a.x = p.x;
        a.y = p.y;
      });
    } else {
      const all: LayoutNode[] = [];
      this.graph.forEachNode((id) => all.push(this.layoutNode(id, nodes)));
      const pos = this.packed.layout(all);
      this.graph.forEachNode((id, a) => {
        const p = pos.get(id)!;
        a.x = p.x;
        a.y = p.y;
      });
    }
    this.laidOut();
  }

  /** The graph as it was built before the packed layout: each node seeded next to a neighbour
   * added before it (or by a hash of its group), then ForceAtlas2. */
  private rebuildForce(nodes: NodeMap, old: Map<string, { x: number; y: number }>): void {
    if (this.opts.grouped) {
      this.buildGrouped(nodes);
      this.graph.forEachNode((g, a) => {
        const p = old.get(g) ?? { x: hash(g) * 100, y: hash(g + "y") * 100 };
        a.x = p.x;
        a.y = p.y;
      });
    } else {
      for (const n of nodes.values()) {
        const p = old.get(n.id) ?? this.seedPosition(n, nodes.size);
        this.graph.addNode(n.id, { ...this.attrsOf(n), x: p.x, y: p.y });
      }
      for (const n of nodes.values()) this.addEdges(n);
    }
    this.sigma.setCustomBBox(null);
    this.sigma.setSetting("defaultEdgeType", this.graph.order <= 3000 ? "arrow" : "line");
    this.runLayout(old.size === 0 ? "all" : "new", new Set(old.keys()));
  }

  /** What the packed layout needs of a node of the drawing. */
  private layoutNode(id: string, nodes: NodeMap): LayoutNode {
    const g = this.graph;
    const degree = g.degree(id);
    if (this.opts.grouped) return { id, group: "", degree, label: g.getNodeAttribute(id, "label") };
    const n = nodes.get(id);
    return { id, group: n ? layoutGroupOf(n) : "", degree, label: n?.label ?? id };
  }

  /** The positions are final: the next frame shows the laid-out graph. */
  private laidOut(): void {
    this.probe.layoutRunning = false;
    this.probe.settled = true;
    this.probe.layoutDoneAt = null;
    this.sigma.refresh();
    requestAnimationFrame(() => {
      this.probe.layoutDoneAt = performance.now();
    });
  }

  private buildGrouped(nodes: NodeMap): void {
    const groupOf = new Map<string, string>();
    const counts = new Map<string, { n: number; worst: string; label: string }>();
    const rank: Record<string, number> = { ok: 0, unknown: 1, warn: 2, bad: 3 };
    for (const n of nodes.values()) {
      const g = groupKeyOf(n) ?? n.id;
      groupOf.set(n.id, g);
      const h = healthOf(n);
      const c = counts.get(g) ?? { n: 0, worst: "ok", label: g.replace(/^[a-z]+:/, "") };
      c.n++;
      if (rank[h] > rank[c.worst]) c.worst = h;
      counts.set(g, c);
    }
    for (const [g, c] of counts) {
      this.graph.addNode(g, {
        x: 0, y: 0, size: 4 + 3 * Math.log2(1 + c.n),
        color: HEALTH_COLOURS[c.worst as keyof typeof HEALTH_COLOURS],
        label: `${c.label} (${c.n})`, members: c.n,
      });
    }
    for (const n of nodes.values()) {
      const a = groupOf.get(n.id)!;
      for (const t of n.adjacency ?? []) {
        const b = groupOf.get(t);
        if (b && a !== b && !this.graph.hasEdge(a, b)) this.graph.addEdge(a, b, { size: 1 });
      }
    }
  }

  private seedPosition(n: TopoNode, total: number): { x: number; y: number } {
    // Near a known neighbour or parent; otherwise scattered by a hash of the group (clusters
    // start together, which shortens the layout).
    for (const t of [...(n.adjacency ?? []), ...Object.values(n.parents ?? {})]) {
      if (this.graph.hasNode(t)) {
        const a = this.graph.getNodeAttributes(t);
        return { x: a.x + (hash(n.id) - 0.5) * 4, y: a.y + (hash(n.id + "y") - 0.5) * 4 };
      }
    }
    const g = groupKeyOf(n) ?? n.host ?? n.id;
    const r = Math.sqrt(total) * 10;
    const gx = (hash(g) - 0.5) * r, gy = (hash(g + "y") - 0.5) * r;
    return { x: gx + (hash(n.id) - 0.5) * 20, y: gy + (hash(n.id + "y") - 0.5) * 20 };
  }

  private addEdges(n: TopoNode): void {
    for (const t of n.adjacency ?? []) {
      if (t !== n.id && this.graph.hasNode(t) && !this.graph.hasEdge(n.id, t)) {
        this.graph.addEdge(n.id, t, { size: 1 });
      }
    }
  }

  /** Apply a diff that the store already merged into `nodes`. */
  applyChange(nodes: NodeMap, added: string[], updated: string[], removed: string[], metricsOnly: boolean): void {
    if (this.opts.grouped) {
      if (!metricsOnly || added.length || removed.length) return this.rebuild(nodes, true);
    }
    this.source = nodes;
    const g = this.graph;
    for (const id of removed) if (g.hasNode(id)) g.dropNode(id);
    const known = new Set<string>();
    g.forEachNode((id) => known.add(id));
    const force = this.opts.layout === "forceatlas2";
    for (const id of added) {
      const n = nodes.get(id);
      if (!n || g.hasNode(id)) continue;
      const p = force ? this.seedPosition(n, nodes.size) : this.packed.place({ id, group: layoutGroupOf(n), degree: 0, label: n.label });
      g.addNode(id, { ...this.attrsOf(n), x: p.x, y: p.y });
    }
    for (const id of updated) {
      const n = nodes.get(id);
      if (n && g.hasNode(id)) g.mergeNodeAttributes(id, this.attrsOf(n));
    }
    if (!metricsOnly) {
      for (const id of [...added, ...updated]) {
        const n = nodes.get(id);
        if (!n || !g.hasNode(id)) continue;
        const want = new Set(n.adjacency ?? []);
        for (const e of g.outEdges(id)) if (!want.has(g.target(e))) g.dropEdge(e);
        this.addEdges(n);
      }
      for (const id of added) {
        // edges into a new node from nodes that already named it
        g.forEachNode((src) => {
          if (src !== id && !g.hasEdge(src, id) && nodes.get(src)?.adjacency?.includes(id)) g.addEdge(src, id, { size: 1 });
        });
        if (added.length > 50) break;
      }
    }
    if (added.length && force) this.runLayout("new", known);
    else if (added.length) return this.laidOut();
    this.sigma.refresh();
  }

  /** ForceAtlas2 in a web worker (`?layout=forceatlas2`, the layout before the packed one,
   * kept to compare in bench/ui.py), until it settles or its time budget runs out. "new":
   * the nodes that were already placed stay fixed, only the new ones move into place. */
  private runLayout(mode: "all" | "new", known: Set<string>): void {
    this.stopLayout();
    const g = this.graph;
    if (g.order === 0) return;
    const pinned: string[] = [];
    if (mode === "new") {
      g.forEachNode((id, a) => {
        if (known.has(id) && !a.fixed) {
          g.setNodeAttribute(id, "fixed", true);
          pinned.push(id);
        }
      });
    }
    const large = g.order > 2000;
    this.layout = new FA2Layout(g, {
      settings: {
        barnesHutOptimize: large,
        barnesHutTheta: 0.8,
        gravity: 1,
        scalingRatio: 10,
        slowDown: 1 + Math.log10(g.order),
        adjustSizes: false,
        strongGravityMode: false,
      },
    });
    this.probe.layoutRunning = true;
    this.probe.layoutDoneAt = null;
    this.layout.start();
    // Stop when the layout has settled (mean move per check under 0.2% of the drawing's
    // extent), or at the time budget; new nodes alone get a short budget.
    const started = performance.now();
    const budget = mode === "new" ? 500 : large ? 4000 : 3000;
    let last = this.positions();
    const check = () => {
      const now = this.positions();
      const moved = meanMove(last, now);
      last = now;
      const elapsed = performance.now() - started;
      const settled = elapsed >= 300 && moved < 0.002;
      if (elapsed >= budget || settled) {
        this.probe.settled = settled;
        this.stopLayout();
        for (const id of pinned) if (g.hasNode(id)) g.setNodeAttribute(id, "fixed", false);
        this.sigma.refresh();
        requestAnimationFrame(() => {
          this.probe.layoutDoneAt = performance.now();
        });
      } else this.layoutTimer = window.setTimeout(check, 150);
    };
    this.layoutTimer = window.setTimeout(check, 150);
  }

  private positions(): Float64Array {
    const g = this.graph;
    const out = new Float64Array(g.order * 2);
    let i = 0;
    g.forEachNode((_id, a) => {
      out[i++] = a.x;
      out[i++] = a.y;
    });
    return out;
  }

  private stopLayout(): void {
    window.clearTimeout(this.layoutTimer);
    if (this.layout) {
      this.layout.kill();
      this.layout = null;
    }
    this.probe.layoutRunning = false;
  }

  refresh(): void {
    this.sigma.refresh();
  }

  focus(id: string): void {
    if (!this.graph.hasNode(id)) return;
    const d = this.sigma.getNodeDisplayData(id);
    if (d) this.sigma.getCamera().animate({ x: d.x, y: d.y, ratio: 0.5 }, { duration: 300 });
  }

  zoom(factor: number): void {
    const cam = this.sigma.getCamera();
    if (factor === 0) cam.animatedReset({ duration: 200 });
    else cam.animate({ ratio: cam.ratio / factor }, { duration: 200 });
  }

  kill(): void {
    this.stopLayout();
    this.sigma.kill();
  }
}
