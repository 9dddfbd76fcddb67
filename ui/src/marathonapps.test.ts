import { describe, expect, it } from "vitest";
import {
  appHealth, createPlatformStore, deploymentText, metricText, parsePlatformUrl, PLATFORM_PAGES, readinessHealth, weightsText,
  type Condition, type MarathonAppSummary,
} from "./platform";

const cond = (type: string, status: string, reason = type): Condition => ({ type, status, reason, message: "", lastTransitionTime: null });
const app = (over: Partial<MarathonAppSummary> = {}): MarathonAppSummary => ({
  name: "web", namespace: "ns", cluster: "demo", appId: "/web", strategy: "rolling", version: "v1",
  instances: { desired: 3, staged: 0, running: 3, healthy: 3, unhealthy: 0 },
  relaunches: 0, flapping: false, launchDelaySeconds: null, deployment: null, rollout: null, autoscaling: null,
  drift: { detected: false, fields: [], lastRevertedAt: null },
  conditions: [cond("Accepted", "True"), cond("Available", "True"), cond("Progressing", "False"), cond("Degraded", "False")],
  ...over,
});
const rollout = (phase: string, weights: Record<string, number> = {}) => ({
  strategy: "canary", phase, step: 1, weights, stableVersion: "v1", canaryVersion: "v2", message: null, analysis: [],
});

describe("MarathonApps page", () => {
  it("is the third platform page, key 8, and in the URL", () => {
    expect(PLATFORM_PAGES.map((p) => p.kind)).toEqual(["mesosclusters", "zkmigrations", "marathonapps"]);
    expect(parsePlatformUrl("?page=marathonapps&item=ns/web")).toEqual({ page: "marathonapps", selected: "ns/web" });
  });

  it("keeps the apps of each poll in the store", () => {
    const s = createPlatformStore();
    s.getState().received("marathonapps", [app()], 1000);
    expect(s.getState().marathonapps?.[0].appId).toBe("/web");
    expect(s.getState().mesosclusters).toBeNull();
  });

  it("grades an app's health from its conditions, rollout and flapping", () => {
    expect(appHealth(app())).toEqual({ health: "ok", word: "Available" });
    expect(appHealth(app({ conditions: [cond("Accepted", "False")] })).word).toBe("Invalid");
    expect(appHealth(app({ rollout: rollout("RolledBack") }))).toEqual({ health: "bad", word: "RolledBack" });
    expect(appHealth(app({ rollout: rollout("Aborted") })).health).toBe("bad");
    expect(appHealth(app({ rollout: rollout("Paused") }))).toEqual({ health: "warn", word: "Paused" });
    expect(appHealth(app({ conditions: [cond("Available", "True"), cond("Degraded", "True")] })).word).toBe("Degraded");
    expect(appHealth(app({ flapping: true }))).toEqual({ health: "bad", word: "Flapping" });
    expect(appHealth(app({ conditions: [cond("Available", "False"), cond("Progressing", "True")] }))).toEqual({ health: "warn", word: "Progressing" });
    expect(appHealth(app({ conditions: [cond("Available", "False"), cond("Progressing", "False")] }))).toEqual({ health: "bad", word: "Unavailable" });
    expect(appHealth(app({ conditions: [] }))).toEqual({ health: "unknown", word: "Unknown" });
  });

  it("writes the traffic split stable first, the deployment step and the autoscaler's metric", () => {
    expect(weightsText({ "/shop-canary": 25, "/shop": 75 })).toBe("/shop 75% · /shop-canary 25%");
    expect(weightsText({ "/b": 50, "/a": 50 })).toBe("/a 50% · /b 50%");
    expect(weightsText({})).toBe("");
    expect(weightsText(undefined)).toBe("");
    expect(deploymentText({ id: "d", currentStep: 1, totalSteps: 2, steps: [] })).toBe("step 1 of 2");
    expect(deploymentText(null)).toBe("");
    expect(metricText({ name: "cpuUtilization", value: 0.92, target: 0.6 })).toBe("cpuUtilization 92% / 60%");
    expect(metricText({ name: "requestsPerSecond", value: 250, target: 100 })).toBe("requestsPerSecond 250.0 / 100.0 req/s");
    expect(metricText({ name: "memoryUtilization", value: null, target: 0.8 })).toBe("memoryUtilization — / 80%");
    expect(metricText(null)).toBe("—");
  });

  it("colours the readiness verdict for Kubernetes", () => {
    expect(readinessHealth("Ready")).toBe("ok");
    expect(readinessHealth("NeedsReview")).toBe("warn");
    expect(readinessHealth("Blocked")).toBe("bad");
    expect(readinessHealth(undefined)).toBe("unknown");
    const a = app({ readiness: { verdict: "Blocked", summary: "Blocked: persistent volume", findings: [] } });
    expect(a.readiness?.verdict).toBe("Blocked");
  });
});
