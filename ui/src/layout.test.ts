import { describe, expect, it } from "vitest";
import { BoxGrid, groupRadius, overlappingPairs, PackedLayout, SLOT, type LayoutNode } from "./layout";

/** n nodes spread over `groups` groups, with a degree that varies. */
function nodes(n: number, groups: number): LayoutNode[] {
  return Array.from({ length: n }, (_, i) => ({ id: `n${i}`, group: `host-${i % groups}`, degree: (i * 7) % 11, label: `node ${i}` }));
}

function minDistance(pos: Map<string, { x: number; y: number }>): number {
  // grid of cell SLOT: only neighbouring cells can hold a closer pair
  const cells = new Map<string, { x: number; y: number }[]>();
  let best = Infinity;
  for (const p of pos.values()) {
    const i = Math.floor(p.x / SLOT), j = Math.floor(p.y / SLOT);
    for (let di = -1; di <= 1; di++) {
      for (let dj = -1; dj <= 1; dj++) {
        for (const q of cells.get(`${i + di},${j + dj}`) ?? []) best = Math.min(best, Math.hypot(p.x - q.x, p.y - q.y));
      }
    }
    const k = `${i},${j}`;
    cells.set(k, [...(cells.get(k) ?? []), p]);
  }
  return best;
}

describe("PackedLayout", () => {
  it("places every node, no two closer than a slot, the same way every time", () => {
    const input = nodes(1000, 50);
    const a = new PackedLayout().layout(input);
    const b = new PackedLayout().layout([...input].reverse());
    expect(a.size).toBe(1000);
    expect(minDistance(a)).toBeGreaterThanOrEqual(SLOT * 0.99);
    for (const [id, p] of a) expect(b.get(id)).toEqual(p);
  });

  it("keeps each group inside its own disk, apart from the others", () => {
    const input = nodes(600, 12);
    const pos = new PackedLayout().layout(input);
    const centre = new Map<string, { x: number; y: number; n: number }>();
    for (const n of input) {
      const p = pos.get(n.id)!;
      const c = centre.get(n.group) ?? { x: 0, y: 0, n: 0 };
      centre.set(n.group, { x: c.x + p.x, y: c.y + p.y, n: c.n + 1 });
    }
    // every node is nearer its own group's centre than the disk's radius, and no other group's
    // centre is within the two radii
    const centres = [...centre.entries()].map(([g, c]) => ({ g, x: c.x / c.n, y: c.y / c.n, r: groupRadius(c.n) }));
    for (const n of input) {
      const p = pos.get(n.id)!;
      const own = centres.find((c) => c.g === n.group)!;
      expect(Math.hypot(p.x - own.x, p.y - own.y)).toBeLessThanOrEqual(own.r + 0.5 * SLOT);
    }
    for (let i = 0; i < centres.length; i++) {
      for (let j = i + 1; j < centres.length; j++) {
        const [a, b] = [centres[i], centres[j]];
        expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThan(a.r + b.r);
      }
    }
  });

  it("puts the most connected node of a group in its middle", () => {
    const input: LayoutNode[] = [
      { id: "a", group: "h", degree: 1, label: "a" },
      { id: "hub", group: "h", degree: 9, label: "hub" },
      { id: "b", group: "h", degree: 2, label: "b" },
    ];
    const pos = new PackedLayout().layout(input);
    const c = [...pos.values()].reduce((s, p) => ({ x: s.x + p.x / 3, y: s.y + p.y / 3 }), { x: 0, y: 0 });
    const d = (id: string) => Math.hypot(pos.get(id)!.x - c.x, pos.get(id)!.y - c.y);
    expect(d("hub")).toBeLessThan(Math.min(d("a"), d("b")));
  });

  it("places a node added later in its group's next free slot, moving nobody", () => {
    const l = new PackedLayout();
    const input = nodes(100, 4);
    const pos = l.layout(input);
    const added = l.place({ id: "new", group: "host-1", degree: 0, label: "new" });
    pos.set("new", added);
    expect(minDistance(pos)).toBeGreaterThanOrEqual(SLOT * 0.99);
    // a new group gets a disk of its own below the others
    const other = l.place({ id: "new2", group: "elsewhere", degree: 0, label: "new2" });
    const lowest = Math.min(...[...pos.values()].map((p) => p.y));
    expect(other.y).toBeLessThan(lowest);
  });

  it("lays out 10,000 nodes in 500 groups", () => {
    const pos = new PackedLayout().layout(nodes(10000, 500));
    expect(pos.size).toBe(10000);
    expect(minDistance(pos)).toBeGreaterThanOrEqual(SLOT * 0.99);
    // the packed rows are wider than tall, like the screen
    const xs = [...pos.values()].map((p) => p.x), ys = [...pos.values()].map((p) => p.y);
    const w = Math.max(...xs) - Math.min(...xs), h = Math.max(...ys) - Math.min(...ys);
    expect(w).toBeGreaterThan(h);
  });
});

describe("BoxGrid", () => {
  it("refuses a box that overlaps one already added and keeps the rest", () => {
    const g = new BoxGrid(10);
    expect(g.tryAdd(0, 0, 50, 12)).toBe(true);
    expect(g.tryAdd(40, 5, 90, 17)).toBe(false); // overlaps the first
    expect(g.tryAdd(50, 0, 90, 12)).toBe(true); // touches it only
    expect(g.tryAdd(0, 12, 50, 24)).toBe(true);
    expect(g.boxes.length / 4).toBe(3);
    expect(overlappingPairs(g.boxes)).toBe(0);
    g.clear();
    expect(g.tryAdd(40, 5, 90, 17)).toBe(true);
  });

  it("counts overlapping pairs", () => {
    expect(overlappingPairs([0, 0, 10, 10, 5, 5, 15, 15, 20, 20, 30, 30])).toBe(1);
  });
});
