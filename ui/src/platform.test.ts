import { describe, expect, it } from "vitest";
import { countsHealth, createPlatformStore, duration, formatLag, formatTime, phaseHealth, recordLag, type ZkMigrationSummary } from "./platform";

const mig = (name: string, lag: number | null): ZkMigrationSummary => ({
  name, namespace: "ns", clusterRef: "demo", phase: "Running", currentPhase: 1, phases: [], conditions: [],
  sync: { lagP99Seconds: lag, digestsEqual: true, differences: 0, conflicts: 0 },
});

describe("platform store", () => {
  it("opens pages, selects, and clears the selection on a page change", () => {
    const s = createPlatformStore();
    s.getState().open("mesosclusters");
    s.getState().select("ns/demo");
    expect(s.getState().selected).toBe("ns/demo");
    s.getState().open("mesosclusters"); // same page: selection kept
    expect(s.getState().selected).toBe("ns/demo");
    s.getState().open("zkmigrations");
    expect(s.getState()).toMatchObject({ page: "zkmigrations", selected: null });
    s.getState().open(null);
    expect(s.getState().page).toBeNull();
  });

  it("records the sync lag of each migration at each poll and drops gone ones", () => {
    const s = createPlatformStore();
    s.getState().received("zkmigrations", [mig("a", 0.03), mig("b", null)], 1000);
    s.getState().received("zkmigrations", [mig("a", 0.05), mig("b", 0.2)], 6000);
    expect(s.getState().lag["ns/a"]).toEqual([[1000, 0.03], [6000, 0.05]]);
    expect(s.getState().lag["ns/b"]).toEqual([[6000, 0.2]]);
    s.getState().received("zkmigrations", [mig("b", 0.1)], 11000);
    expect(s.getState().lag["ns/a"]).toBeUndefined();
    expect(s.getState().zkmigrations?.length).toBe(1);
  });

  it("keeps the last data on a failure and clears the error on success", () => {
    const s = createPlatformStore();
    s.getState().received("mesosclusters", [{ name: "x", namespace: "y" }], 1);
    s.getState().failed("the Kubernetes API cannot be reached");
    expect(s.getState().error).toMatch(/cannot be reached/);
    expect(s.getState().mesosclusters?.length).toBe(1);
    s.getState().received("mesosclusters", [], 2);
    expect(s.getState().error).toBeNull();
  });
});

describe("platform helpers", () => {
  it("bounds the lag history and skips missing samples", () => {
    let h = recordLag(undefined, 0, null);
    expect(h).toEqual([]);
    for (let i = 0; i < 5; i++) h = recordLag(h, i, i / 10, 3);
    expect(h).toEqual([[2, 0.2], [3, 0.3], [4, 0.4]]);
  });
  it("grades components, phases and formats durations and lag", () => {
    expect(countsHealth({ ready: 3, desired: 3 })).toBe("ok");
    expect(countsHealth({ ready: 2, desired: 3 })).toBe("warn");
    expect(countsHealth({ ready: 1, desired: 3 })).toBe("bad");
    expect(countsHealth(undefined)).toBe("unknown");
    expect(phaseHealth("Ready")).toBe("ok");
    expect(phaseHealth("Invalid")).toBe("bad");
    expect(phaseHealth("Progressing")).toBe("warn");
    expect(duration("2026-11-27T10:00:00Z", "2026-11-27T10:04:10Z")).toBe("4m 10s");
    expect(duration("2026-11-27T10:00:00Z", "2026-11-27T12:05:00Z")).toBe("2h 5m");
    expect(duration(null, null)).toBe("");
    expect(formatLag(0.036)).toBe("36 ms");
    expect(formatLag(1.5)).toBe("1.50 s");
    expect(formatLag(null)).toBe("—");
    expect(formatTime("2026-11-27T10:00:00Z")).toBe("2026-11-27 10:00Z");
  });
});

import { parsePlatformUrl, withPlatform } from "./platform";

describe("platform URL", () => {
  it("round-trips the page and the selected item", () => {
    const url = withPlatform("?view=hosts", "zkmigrations", "prod/move");
    expect(url).toBe("?view=hosts&page=zkmigrations&item=prod%2Fmove");
    expect(parsePlatformUrl(url)).toEqual({ page: "zkmigrations", selected: "prod/move" });
    expect(withPlatform("?view=hosts", null, "x")).toBe("?view=hosts");
    expect(parsePlatformUrl("?page=pods&item=x")).toEqual({ page: null, selected: null });
  });
});

import { componentHealth, conditionHealth, syncStateHealth, withSyncState, type Condition } from "./platform";

const cond = (type: string, status: string, reason = ""): Condition => ({ type, status, reason, message: "", lastTransitionTime: null });

describe("condition colours", () => {
  it("does not paint a successful migration's Progressing False red", () => {
    expect(conditionHealth(cond("Progressing", "False", "Succeeded"))).toBe("ok");
    expect(conditionHealth(cond("Progressing", "True", "Running"))).toBe("warn");
    expect(conditionHealth(cond("Progressing", "False", "Failed"))).toBe("bad");
    expect(conditionHealth(cond("Progressing", "False", "Pending"))).toBe("unknown");
    expect(conditionHealth(cond("Completed", "True", "Succeeded"))).toBe("ok");
    expect(conditionHealth(cond("Completed", "False", "NotFinished"))).toBe("unknown");
  });
  it("reads Ready-like conditions as True good and abnormal-true ones the other way", () => {
    expect(conditionHealth(cond("MastersReady", "True"))).toBe("ok");
    expect(conditionHealth(cond("MastersReady", "False"))).toBe("bad");
    expect(conditionHealth(cond("MastersReady", "Unknown"))).toBe("unknown");
    expect(conditionHealth(cond("Degraded", "True"))).toBe("bad");
    expect(conditionHealth(cond("Degraded", "False"))).toBe("ok");
  });
  it("shows a component green only when its condition is True", () => {
    const all = { ready: 3, desired: 3 };
    expect(componentHealth(all, cond("MastersReady", "True"))).toBe("ok");
    expect(componentHealth(all, cond("MastersReady", "False"))).toBe("bad"); // pods ready, program not
    expect(componentHealth(all, undefined)).toBe("unknown");
    expect(componentHealth(all, cond("MastersReady", "Unknown"))).toBe("unknown");
    expect(componentHealth({ ready: 2, desired: 3 }, cond("MastersReady", "True"))).toBe("warn");
    expect(componentHealth({ ready: 0, desired: 3 }, undefined)).toBe("bad");
  });
  it("grades the sync state and takes it from the migration's own status", () => {
    expect(syncStateHealth("Running")).toBe("ok");
    expect(syncStateHealth("Failed")).toBe("bad");
    expect(syncStateHealth("Stopped")).toBe("unknown");
    const items = [mig("a", 0.03), mig("b", 0.1)];
    const out = withSyncState(items, "ns/a", { status: { sync: { state: "Running", message: "replicating" } } });
    expect(out[0].sync).toMatchObject({ state: "Running", message: "replicating", lagP99Seconds: 0.03 });
    expect(out[1].sync?.state).toBeUndefined();
    expect(withSyncState(items, "ns/a", null)).toBe(items);
  });
});
