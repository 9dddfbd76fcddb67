// Platform pages' state: MesosClusters, ZkMigrations and MarathonApps read through the app
// (/api/platform/...), polled; the sync lag history is kept here, from each poll.
import { createStore } from "zustand/vanilla";

export type PlatformKind = "mesosclusters" | "zkmigrations" | "marathonapps";
export const PLATFORM_PAGES: { kind: PlatformKind; title: string }[] = [
  { kind: "mesosclusters", title: "Mesos clusters" },
  { kind: "zkmigrations", title: "ZooKeeper migrations" },
  { kind: "marathonapps", title: "Marathon apps" },
];

export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime: string | null;
}
export interface Counts { ready: number; desired: number }
export interface MesosClusterSummary {
  name: string;
  namespace: string;
  phase: string | null;
  leadingMaster: string | null;
  zookeeperConnectString?: string | null;
  components: Record<string, Counts>;
  mesos: { agentsActive: number; frameworksActive: number; tasksRunning: number } | null;
  rollout?: string | null;
  maintenance: { node: string; state: string; tasks: number }[];
  conditions: Condition[];
}
export interface PhaseRecord {
  number: number;
  name: string;
  state: string;
  startedAt: string | null;
  finishedAt: string | null;
  message: string;
}
export interface SyncSummary {
  /** Stopped, Starting, Running or Failed (status.sync.state); the list route does not send
   * it, the page reads it from the migration's own route (withSyncState) */
  state?: string | null;
  message?: string | null;
  lagP99Seconds: number | null;
  digestsEqual: boolean | null;
  differences: number | null;
  conflicts: number | null;
  lastReconcileTime?: string | null;
}
export interface ZkMigrationSummary {
  name: string;
  namespace: string;
  clusterRef: string | null;
  phase: string | null;
  currentPhase: number | null;
  phases: PhaseRecord[];
  sync: SyncSummary | null;
  conditions: Condition[];
}

export interface AppInstances { desired: number; staged: number; running: number; healthy: number; unhealthy: number }
export interface AnalysisResult { step: number | null; metric: string; value: number | null; limit: number | null; result: string }
export interface MarathonAppSummary {
  name: string;
  namespace: string;
  cluster: string | null;
  appId: string | null;
  strategy: string;
  version: string | null;
  instances: AppInstances;
  relaunches: number;
  flapping: boolean;
  launchDelaySeconds: number | null;
  deployment: { id: string; currentStep: number; totalSteps: number; steps: string[] } | null;
  rollout: {
    strategy: string | null;
    phase: string | null;
    step: number | null;
    weights: Record<string, number>;
    stableVersion: string | null;
    canaryVersion: string | null;
    message: string | null;
    analysis: AnalysisResult[];
  } | null;
  autoscaling: {
    desiredInstances: number | null;
    lastScaleAt: string | null;
    reason: string | null;
    metric: { name: string; value: number | null; target: number | null } | null;
  } | null;
  drift: { detected: boolean; fields: string[]; lastRevertedAt: string | null };
  conditions: Condition[];
  /** How the app translates to Kubernetes (status.readiness); absent from older operators. */
  readiness?: {
    verdict: string;
    summary: string;
    findings: { feature: string; severity: string; message: string }[];
  } | null;
}

/** The readiness verdict's colour: Ready ok, NeedsReview warn, Blocked bad. */
export function readinessHealth(verdict: string | null | undefined): Health {
  if (verdict === "Ready") return "ok";
  if (verdict === "NeedsReview") return "warn";
  if (verdict === "Blocked") return "bad";
  return "unknown";
}

export const LAG_HISTORY = 120; // samples kept per migration (10 min at one poll every 5 s)

export interface PlatformState {
  page: PlatformKind | null;
  selected: string | null; // "namespace/name"
  mesosclusters: MesosClusterSummary[] | null;
  zkmigrations: ZkMigrationSummary[] | null;
  marathonapps: MarathonAppSummary[] | null;
  error: string | null;
  updatedAt: number | null;
  lag: Record<string, [number, number][]>;
  open(page: PlatformKind | null): void;
  select(key: string | null): void;
  received(kind: PlatformKind, items: unknown[], now: number): void;
  failed(message: string): void;
}

export const keyOf = (o: { namespace: string; name: string }): string => `${o.namespace}/${o.name}`;

/** Appends a lag sample (seconds) to a history, keeping the last `max`. */
export function recordLag(history: [number, number][] | undefined, t: number, v: number | null | undefined, max = LAG_HISTORY): [number, number][] {
  const h = history ?? [];
  if (v == null || !Number.isFinite(v)) return h;
  return [...h, [t, v] as [number, number]].slice(-max);
}

export function createPlatformStore() {
  return createStore<PlatformState>((set) => ({
    page: null,
    selected: null,
    mesosclusters: null,
    zkmigrations: null,
    marathonapps: null,
    error: null,
    updatedAt: null,
    lag: {},
    open: (page) => set((s) => (s.page === page ? {} : { page, selected: null, error: null })),
    select: (selected) => set({ selected }),
    received: (kind, items, now) =>
      set((s) => {
        if (kind === "mesosclusters") return { mesosclusters: items as MesosClusterSummary[], error: null, updatedAt: now };
        if (kind === "marathonapps") return { marathonapps: items as MarathonAppSummary[], error: null, updatedAt: now };
        const migrations = items as ZkMigrationSummary[];
        const lag: Record<string, [number, number][]> = {};
        for (const m of migrations) lag[keyOf(m)] = recordLag(s.lag[keyOf(m)], now, m.sync?.lagP99Seconds);
        return { zkmigrations: migrations, lag, error: null, updatedAt: now };
      }),
    failed: (error) => set({ error }),
  }));
}

export type Health = "ok" | "warn" | "bad" | "unknown";

/** ready/desired: all ready ok, some bad-but-majority warn, otherwise bad. */
export function countsHealth(c: Counts | undefined): Health {
  if (!c) return "unknown";
  if (c.ready >= c.desired) return "ok";
  return c.ready * 2 > c.desired ? "warn" : "bad";
}

/** Conditions whose True is the bad news (Kubernetes' "abnormal-true" polarity). */
const ABNORMAL_TRUE = new Set(["Degraded", "Failed", "Stalled", "ReplicaFailure"]);
/** Reasons that mean a condition's False is a failure rather than "done" or "not yet". */
const FAILED_REASONS = new Set(["Failed", "RolledBack", "RollingBack", "Error"]);

/** The colour of a condition: a Ready-like condition is green only when True; Progressing is
 * amber while True and neutral when it ended well (a Succeeded migration's Progressing False),
 * red only when it ended in failure; Completed False means "not yet", not an error. */
export function conditionHealth(c: Condition): Health {
  if (c.status !== "True" && c.status !== "False") return "unknown";
  const on = c.status === "True";
  if (ABNORMAL_TRUE.has(c.type)) return on ? "bad" : "ok";
  if (c.type === "Progressing") return on ? "warn" : FAILED_REASONS.has(c.reason) ? "bad" : c.reason === "Succeeded" ? "ok" : "unknown";
  if (c.type === "Completed") return on ? "ok" : FAILED_REASONS.has(c.reason) ? "bad" : "unknown";
  return on ? "ok" : "bad";
}

/** The condition that says whether each component of a MesosCluster works. */
export const COMPONENT_CONDITIONS: Record<string, string> = {
  zookeeper: "ZookeeperReady",
  masters: "MastersReady",
  agents: "AgentsReady",
  marathon: "MarathonReady",
};

/** A component's colour: its ready/desired counts, but green only when its condition is True
 * (pods can be ready while the program in them is not: a master that cannot reach ZooKeeper).
 * No condition reported: at best grey. */
export function componentHealth(counts: Counts | undefined, condition: Condition | undefined): Health {
  const byCounts = countsHealth(counts);
  if (!condition || (condition.status !== "True" && condition.status !== "False")) return byCounts === "ok" ? "unknown" : byCounts;
  if (condition.status === "False") return "bad";
  return byCounts;
}

/** A sync engine's state: Running is fine, Starting on its way, Failed bad; Stopped is
 * neutral (before phase 1 and after phase 6 it is expected). */
export function syncStateHealth(state: string | null | undefined): Health {
  if (state === "Running") return "ok";
  if (state === "Starting") return "warn";
  if (state === "Failed") return "bad";
  return "unknown";
}

/** Adds the sync state and message read from one migration's own route (its raw status) to
 * that migration in a list answer. */
export function withSyncState(items: ZkMigrationSummary[], key: string, raw: unknown): ZkMigrationSummary[] {
  const sync = (raw as { status?: { sync?: { state?: unknown; message?: unknown } } } | null)?.status?.sync;
  if (!sync) return items;
  return items.map((m) =>
    keyOf(m) === key && m.sync
      ? { ...m, sync: { ...m.sync, state: m.sync.state ?? (typeof sync.state === "string" ? sync.state : null), message: m.sync.message ?? (typeof sync.message === "string" ? sync.message : null) } }
      : m,
  );
}

export function phaseHealth(phase: string | null): Health {
  if (!phase) return "unknown";
  if (["Ready", "Succeeded", "Completed"].includes(phase)) return "ok";
  if (["Failed", "Invalid", "Degraded", "RolledBack"].includes(phase)) return "bad";
  return "warn";
}

/** "4m 10s", "2h 5m": the time between two RFC 3339 times (or until now). */
export function duration(start: string | null, end: string | null, now: number = Date.now()): string {
  if (!start) return "";
  const a = Date.parse(start);
  const b = end ? Date.parse(end) : now;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return "";
  let s = Math.max(0, Math.round((b - a) / 1000));
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

export const formatTime = (t: string | null | undefined): string =>
  t ? new Date(t).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/:\d\dZ$/, "Z") : "—";

export function formatLag(v: number | null | undefined): string {
  if (v == null) return "—";
  return v < 1 ? `${Math.round(v * 1000)} ms` : `${v.toFixed(2)} s`;
}

/** The platform page in the URL: `page=mesosclusters&item=namespace/name`. */
export function parsePlatformUrl(search: string): { page: PlatformKind | null; selected: string | null } {
  const p = new URLSearchParams(search);
  const page = p.get("page");
  const ok = PLATFORM_PAGES.some((x) => x.kind === page);
  return { page: ok ? (page as PlatformKind) : null, selected: ok ? p.get("item") : null };
}

/** Adds the platform page (if any) to a query string made by url.toUrl. */
export function withPlatform(search: string, page: PlatformKind | null, selected: string | null): string {
  if (!page) return search;
  const p = new URLSearchParams(search);
  p.set("page", page);
  if (selected) p.set("item", selected);
  return `?${p.toString()}`;
}

/** A MarathonApp's health in one word and colour: bad when Degraded, flapping, not accepted,
 * rolled back or aborted, or when Available is False and nothing is in progress; warn while a
 * deployment or rollout step runs (or a canary is paused); ok when Available; else unknown. */
export function appHealth(a: MarathonAppSummary): { health: Health; word: string } {
  const c = (t: string) => a.conditions.find((x) => x.type === t);
  const phase = a.rollout?.phase;
  if (c("Accepted")?.status === "False") return { health: "bad", word: "Invalid" };
  if (phase === "RolledBack" || phase === "Aborted") return { health: "bad", word: phase };
  if (c("Degraded")?.status === "True") return { health: "bad", word: "Degraded" };
  if (a.flapping) return { health: "bad", word: "Flapping" };
  if (phase === "Paused") return { health: "warn", word: "Paused" };
  if (c("Progressing")?.status === "True") return { health: "warn", word: "Progressing" };
  const available = c("Available");
  if (available?.status === "True") return { health: "ok", word: "Available" };
  if (available?.status === "False") return { health: "bad", word: "Unavailable" };
  return { health: "unknown", word: "Unknown" };
}

/** The traffic split of a rollout: "/shop 75% · /shop-canary 25%", stable (largest) first;
 * "" when the app has no weights (a rolling app: all its tasks weigh the same). */
export function weightsText(weights: Record<string, number> | null | undefined): string {
  const entries = Object.entries(weights ?? {});
  if (!entries.length) return "";
  return entries.sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0])).map(([app, w]) => `${app} ${w}%`).join(" · ");
}

/** "step 1 of 2" for a Marathon deployment, "" when none runs. */
export function deploymentText(d: MarathonAppSummary["deployment"]): string {
  return d ? `step ${d.currentStep} of ${d.totalSteps}` : "";
}

/** The autoscaler's metric: "92% / 60%" for utilisation, "250.0 / 100.0 req/s" for requests. */
export function metricText(m: { name: string; value: number | null; target: number | null } | null | undefined): string {
  if (!m) return "—";
  const isRate = m.name === "requestsPerSecond";
  const f = (v: number | null) => (v == null ? "—" : isRate ? v.toFixed(1) : `${Math.round(v * 100)}%`);
  return `${m.name} ${f(m.value)} / ${f(m.target)}${isRate ? " req/s" : ""}`;
}
