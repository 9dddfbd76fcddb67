// The graph's layout: deterministic and settled by construction (no simulation to wait for).
//
// Nodes are placed in groups (the host of a container or process, the namespace of a pod or
// service, one group for hosts): each group is a sunflower (Vogel spiral) of its members,
// the most connected in the middle, and the groups' disks are packed in rows, largest first.
// Sorting is the only super-linear step, so a layout of n nodes costs O(n log n); no two
// nodes share a slot and no two groups' disks overlap. A node added later takes its group's
// next slot (or a new group's disk after the last row), so the nodes already drawn never move.

/** The golden angle: consecutive sunflower slots are this far apart. */
const GOLDEN = Math.PI * (3 - Math.sqrt(5));
/** Distance between neighbouring slots, in graph units. */
export const SLOT = 1;
/** Gap between two groups' disks. */
const GROUP_GAP = 2.5 * SLOT;
/** Width / height of the packed rows (a 1280x800 screen minus the side list). */
const ASPECT = 1.6;

export interface LayoutNode {
  id: string;
  group: string;
  /** connections in and out: the most connected sit in the middle of their group */
  degree: number;
  label: string;
}

interface GroupPlace {
  cx: number;
  cy: number;
  next: number;
}

/** Vogel's spiral r = C·sqrt(k + 1/2) has its closest two slots 1.546·C apart. */
const C = SLOT / 1.54;

/** Position of slot k of a sunflower centred on (cx, cy). */
export function slot(cx: number, cy: number, k: number): { x: number; y: number } {
  const r = C * Math.sqrt(k + 0.5);
  const a = k * GOLDEN;
  return { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) };
}

/** Radius of a group's disk holding n slots. */
export function groupRadius(n: number): number {
  return C * Math.sqrt(Math.max(n, 1) - 0.5) + SLOT / 2;
}

const byGroupOrder = (a: LayoutNode, b: LayoutNode): number =>
  b.degree - a.degree || (a.label < b.label ? -1 : a.label > b.label ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Places nodes; keeps what it needs to place later ones next to their group. */
export class PackedLayout {
  private groups = new Map<string, GroupPlace>();
  // where the next new group's disk goes: the row below everything placed so far
  private rowX = 0;
  private rowY = 0;
  private rowH = 0;
  private width = 0;

  /** Positions for all `nodes` (a new drawing: forgets earlier groups). */
  layout(nodes: LayoutNode[]): Map<string, { x: number; y: number }> {
    this.groups.clear();
    const members = new Map<string, LayoutNode[]>();
    for (const n of nodes) {
      const m = members.get(n.group);
      if (m) m.push(n);
      else members.set(n.group, [n]);
    }
    const order = [...members.entries()].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let area = 0;
    for (const [, m] of order) area += (2 * groupRadius(m.length) + GROUP_GAP) ** 2;
    this.width = Math.sqrt(area * ASPECT);
    this.rowX = 0;
    this.rowY = 0;
    this.rowH = 0;
    const out = new Map<string, { x: number; y: number }>();
    for (const [key, m] of order) {
      const g = this.placeGroup(key, m.length);
      m.sort(byGroupOrder);
      for (const n of m) out.set(n.id, slot(g.cx, g.cy, g.next++));
    }
    return out;
  }

  /** Position for a node added after the layout: its group's next slot, or a new group. */
  place(n: LayoutNode): { x: number; y: number } {
    const g = this.groups.get(n.group) ?? this.placeGroup(n.group, 8);
    return slot(g.cx, g.cy, g.next++);
  }

  private placeGroup(key: string, n: number): GroupPlace {
    const d = 2 * groupRadius(n) + GROUP_GAP;
    if (this.rowX > 0 && this.rowX + d > this.width) {
      this.rowY -= this.rowH; // rows go down the screen (sigma's y axis points up)
      this.rowX = 0;
      this.rowH = 0;
    }
    if (this.width === 0) this.width = d;
    const g = { cx: this.rowX + d / 2, cy: this.rowY - d / 2, next: 0 };
    this.rowX += d;
    this.rowH = Math.max(this.rowH, d);
    this.groups.set(key, g);
    return g;
  }
}

/** Axis-aligned boxes that must not overlap (labels drawn in one frame): a uniform grid. */
export class BoxGrid {
  private cells = new Map<number, number[]>();
  readonly boxes: number[] = []; // x0, y0, x1, y1, ...
  constructor(private cell = 64) {}

  clear(): void {
    this.cells.clear();
    this.boxes.length = 0;
  }

  /** Adds the box unless it overlaps one already added; true when added. */
  tryAdd(x0: number, y0: number, x1: number, y1: number): boolean {
    const c = this.cell;
    const i0 = Math.floor(x0 / c), i1 = Math.floor(x1 / c), j0 = Math.floor(y0 / c), j1 = Math.floor(y1 / c);
    const b = this.boxes;
    for (let i = i0; i <= i1; i++) {
      for (let j = j0; j <= j1; j++) {
        for (const k of this.cells.get(i * 100003 + j) ?? []) {
          if (x0 < b[k + 2] && b[k] < x1 && y0 < b[k + 3] && b[k + 1] < y1) return false;
        }
      }
    }
    const k = b.length;
    b.push(x0, y0, x1, y1);
    for (let i = i0; i <= i1; i++) {
      for (let j = j0; j <= j1; j++) {
        const key = i * 100003 + j;
        const list = this.cells.get(key);
        if (list) list.push(k);
        else this.cells.set(key, [k]);
      }
    }
    return true;
  }
}

/** Pairs of boxes (x0, y0, x1, y1 flattened) that overlap: what the e2e test checks. */
export function overlappingPairs(boxes: number[]): number {
  let n = 0;
  for (let a = 0; a < boxes.length; a += 4) {
    for (let b = a + 4; b < boxes.length; b += 4) {
      if (boxes[a] < boxes[b + 2] && boxes[b] < boxes[a + 2] && boxes[a + 1] < boxes[b + 3] && boxes[b + 1] < boxes[a + 3]) n++;
    }
  }
  return n;
}
