import { describe, expect, it } from "vitest";
import { createUiStore, visibleNodes } from "./store";
import { parseUrl, serverQuery, toUrl } from "./url";
import type { TopoNode } from "./types";

const node = (id: string, extra: Partial<TopoNode> = {}): TopoNode => ({
  id, topology: "containers", label: id, ...extra,
});

describe("store", () => {
  it("applies a reset then diffs and counts them", () => {
    const s = createUiStore(parseUrl(""));
    s.getState().receive({ topology: "containers", reset: true, add: [node("a"), node("b")] });
    expect(s.getState().nodes.size).toBe(2);
    expect(s.getState().change?.reset).toBe(true);
    s.getState().receive({ topology: "containers", remove: ["a"], add: [node("c")] });
    const st = s.getState();
    expect([...st.nodes.keys()].sort()).toEqual(["b", "c"]);
    expect(st.change?.added).toEqual(["c"]);
    expect(st.change?.removed).toEqual(["a"]);
    expect(st.diffsApplied).toBe(2);
    expect(st.seq).toBe(2);
  });

  it("drops messages of another topology and clears the view on switch", () => {
    const s = createUiStore(parseUrl("?view=hosts"));
    s.getState().receive({ topology: "containers", reset: true, add: [node("a")] });
    expect(s.getState().nodes.size).toBe(0);
    s.getState().receive({ topology: "hosts", reset: true, add: [node("h", { topology: "hosts" })] });
    s.getState().select("h");
    s.getState().setTopology("pods");
    expect(s.getState().nodes.size).toBe(0);
    expect(s.getState().selected).toBeNull();
  });

  it("unselects a node that was removed", () => {
    const s = createUiStore(parseUrl(""));
    s.getState().receive({ reset: true, add: [node("a")] });
    s.getState().select("a");
    s.getState().receive({ remove: ["a"] });
    expect(s.getState().selected).toBeNull();
  });

  it("filters by metric threshold on the client", () => {
    const nodes = new Map([
      ["a", node("a", { metrics: { cpu_percent: 10 } })],
      ["b", node("b", { metrics: { cpu_percent: 60 } })],
      ["c", node("c")],
    ]);
    const f = { ...parseUrl("").filters, metric: "cpu_percent", min: "50" };
    expect(visibleNodes(nodes, f).map((n) => n.id)).toEqual(["b"]);
    expect(visibleNodes(nodes, parseUrl("").filters).length).toBe(3);
  });
});

describe("url", () => {
  it("round-trips view, filters, selection and grouping", () => {
    const v = parseUrl("?view=pods&q=web&namespace=prod&meta=label.app%3Dweb&metric=cpu_percent&min=5&node=pod%3Ax&group=1");
    expect(v.topology).toBe("pods");
    expect(v.filters.meta).toBe("label.app=web");
    expect(v.selected).toBe("pod:x");
    expect(v.grouped).toBe(true);
    expect(parseUrl(toUrl(v))).toEqual(v);
  });
  it("falls back to containers for an unknown view", () => {
    expect(parseUrl("?view=nope").topology).toBe("containers");
  });
  it("turns filters into the app's query parameters", () => {
    const q = serverQuery({ ...parseUrl("").filters, q: "web", meta: "label.app=web", min: "3" });
    expect(q.toString()).toBe("q=web&meta.label.app=web");
  });
});
