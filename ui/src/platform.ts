// Platform pages' state: MesosClusters and ZkMigrations read through the app
// (/api/platform/...), polled; the sync lag history is kept here, from each poll.
import { createStore } from "zustand/vanilla";

export type PlatformKind = "mesosclusters" | "zkmigrations";
export const PLATFORM_PAGES: { kind: PlatformKind; title: string }[] = [
  { kind: "mesosclusters", title: "Mesos clusters" },
  { kind: "zkmigrations", title: "ZooKeeper migrations" },
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

export const LAG_HISTORY = 120; // samples kept per migration (10 min at one poll every 5 s)

export interface PlatformState {
  page: PlatformKind | null;
  selected: string | null; // "namespace/name"
  mesosclusters: MesosClusterSummary[] | null;
  zkmigrations: ZkMigrationSummary[] | null;
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
    error: null,
    updatedAt: null,
    lag: {},
    open: (page) => set((s) => (s.page === page ? {} : { page, selected: null, error: null })),
    select: (selected) => set({ selected }),
    received: (kind, items, now) =>
      set((s) => {
        if (kind === "mesosclusters") return { mesosclusters: items as MesosClusterSummary[], error: null, updatedAt: now };
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

export function conditionHealth(c: Condition): Health {
  return c.status === "True" ? "ok" : c.status === "False" ? "bad" : "unknown";
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
