import type { Diff, TopoNode } from "./types";

export type NodeMap = Map<string, TopoNode>;

export interface DiffResult {
  nodes: NodeMap;
  added: string[];
  updated: string[];
  removed: string[];
  /** true when only metrics changed (no edges, no new or removed nodes) */
  metricsOnly: boolean;
}

/** Apply one WebSocket message to a node map. The input map is not mutated; unchanged node
 * objects are shared. A `reset` message replaces the whole map. */
export function applyDiff(prev: NodeMap, diff: Diff): DiffResult {
  const nodes: NodeMap = diff.reset ? new Map() : new Map(prev);
  const added: string[] = [];
  const updated: string[] = [];
  const removed: string[] = [];
  if (diff.reset) {
    for (const id of prev.keys()) removed.push(id);
  }
  for (const n of diff.add ?? []) {
    const known = prev.has(n.id);
    nodes.set(n.id, n);
    if (diff.reset && known) {
      removed.splice(removed.indexOf(n.id), 1);
      updated.push(n.id);
    } else if (known) updated.push(n.id);
    else added.push(n.id);
  }
  for (const n of diff.update ?? []) {
    nodes.set(n.id, n);
    if (prev.has(n.id) && !diff.reset) updated.push(n.id);
    else added.push(n.id);
  }
  for (const id of diff.remove ?? []) {
    if (nodes.delete(id)) removed.push(id);
  }
  for (const m of diff.metrics ?? []) {
    const cur = nodes.get(m.id);
    if (cur) {
      nodes.set(m.id, { ...cur, metrics: { ...cur.metrics, ...m.metrics } });
      updated.push(m.id);
    }
  }
  const metricsOnly =
    !diff.reset && added.length === 0 && removed.length === 0 && !(diff.update?.length);
  return { nodes, added, updated, removed, metricsOnly };
}

export type Health = "ok" | "warn" | "bad" | "unknown";

/** Health of a node for its colour: container state, pod phase, CPU pressure. */
export function healthOf(n: TopoNode): Health {
  const md = n.metadata ?? {};
  const state = md.state;
  if (state) {
    if (state === "running") return (n.metrics?.cpu_percent ?? 0) > 90 ? "warn" : "ok";
    if (state === "paused" || state === "restarting" || state === "created") return "warn";
    return "bad";
  }
  const phase = md.phase;
  if (phase) {
    if (phase === "Running" || phase === "Succeeded") return "ok";
    if (phase === "Pending") return "warn";
    return "bad";
  }
  const cpu = n.metrics?.cpu_percent;
  if (cpu === undefined) return "unknown";
  if (cpu > 90) return "bad";
  if (cpu > 70) return "warn";
  return "ok";
}

export const HEALTH_COLOURS: Record<Health, string> = {
  ok: "#2e9d5b",
  warn: "#d99a1e",
  bad: "#d0413a",
  unknown: "#7a8694",
};

/** Key that groups a node in large graphs: containers by image, pods and services by
 * namespace, processes by host. Hosts are not grouped. */
export function groupKeyOf(n: TopoNode): string | null {
  const md = n.metadata ?? {};
  switch (n.topology) {
    case "containers":
      return `image:${md.image ?? "?"}`;
    case "pods":
    case "services":
      return `ns:${md.namespace ?? "?"}`;
    case "processes":
      return `host:${n.host ?? "?"}`;
    default:
      return null;
  }
}
