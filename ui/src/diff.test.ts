import { describe, expect, it } from "vitest";
import { applyDiff, groupKeyOf, healthOf, type NodeMap } from "./diff";
import type { TopoNode } from "./types";

const node = (id: string, extra: Partial<TopoNode> = {}): TopoNode => ({
  id, topology: "containers", label: id, ...extra,
});

describe("applyDiff", () => {
  it("reset replaces everything and reports what went away", () => {
    const prev: NodeMap = new Map([["a", node("a")], ["b", node("b")]]);
    const r = applyDiff(prev, { reset: true, add: [node("b"), node("c")] });
    expect([...r.nodes.keys()].sort()).toEqual(["b", "c"]);
    expect(r.added).toEqual(["c"]);
    expect(r.updated).toEqual(["b"]);
    expect(r.removed).toEqual(["a"]);
    expect(r.metricsOnly).toBe(false);
  });

  it("adds, updates and removes without mutating the previous map", () => {
    const a = node("a");
    const prev: NodeMap = new Map([["a", a], ["b", node("b")]]);
    const r = applyDiff(prev, {
      add: [node("c")],
      update: [node("a", { label: "A2" })],
      remove: ["b", "zzz"],
    });
    expect(prev.get("a")).toBe(a);
    expect(prev.has("b")).toBe(true);
    expect(r.nodes.get("a")?.label).toBe("A2");
    expect(r.nodes.has("b")).toBe(false);
    expect(r.added).toEqual(["c"]);
    expect(r.updated).toEqual(["a"]);
    expect(r.removed).toEqual(["b"]);
  });

  it("merges metrics-only updates into the known node and ignores unknown ids", () => {
    const prev: NodeMap = new Map([["a", node("a", { metrics: { cpu_percent: 1, mem: 5 } })]]);
    const r = applyDiff(prev, {
      metrics: [{ id: "a", metrics: { cpu_percent: 9 } }, { id: "ghost", metrics: { x: 1 } }],
    });
    expect(r.nodes.get("a")?.metrics).toEqual({ cpu_percent: 9, mem: 5 });
    expect(r.nodes.has("ghost")).toBe(false);
    expect(r.metricsOnly).toBe(true);
    expect(r.updated).toEqual(["a"]);
  });

  it("keeps unchanged node objects shared", () => {
    const b = node("b");
    const r = applyDiff(new Map([["a", node("a")], ["b", b]]), { update: [node("a")] });
    expect(r.nodes.get("b")).toBe(b);
  });
});

describe("health and grouping", () => {
  it("colours containers by state and hosts by CPU", () => {
    expect(healthOf(node("a", { metadata: { state: "running" } }))).toBe("ok");
    expect(healthOf(node("a", { metadata: { state: "paused" } }))).toBe("warn");
    expect(healthOf(node("a", { metadata: { state: "exited" } }))).toBe("bad");
    expect(healthOf(node("h", { topology: "hosts", metrics: { cpu_percent: 95 } }))).toBe("bad");
    expect(healthOf(node("h", { topology: "hosts" }))).toBe("unknown");
  });
  it("groups containers by image and pods by namespace", () => {
    expect(groupKeyOf(node("a", { metadata: { image: "busybox" } }))).toBe("image:busybox");
    expect(groupKeyOf(node("p", { topology: "pods", metadata: { namespace: "ns1" } }))).toBe("ns:ns1");
    expect(groupKeyOf(node("h", { topology: "hosts" }))).toBeNull();
  });
});
