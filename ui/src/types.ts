export type TopologyName = "hosts" | "containers" | "processes" | "pods" | "services";
export const TOPOLOGIES: TopologyName[] = ["hosts", "containers", "processes", "pods", "services"];

export interface TopoNode {
  id: string;
  topology: string;
  label: string;
  label_minor?: string;
  host?: string;
  probe?: string;
  parents?: Record<string, string>;
  metadata?: Record<string, string>;
  metrics?: Record<string, number>;
  adjacency?: string[];
  controls?: string[];
}

export interface Diff {
  topology?: string;
  reset?: boolean;
  add?: TopoNode[];
  update?: TopoNode[];
  remove?: string[];
  metrics?: { id: string; metrics: Record<string, number> }[];
}

export interface NodeDetail {
  node: TopoNode;
  series: Record<string, [number, number][]> | null;
  children: Record<string, string[]>;
}

export type Role = "writer" | "reader";
export type Conn = "idle" | "connecting" | "live" | "unreachable" | "unauthorized";
