import type { NodeDetail, Role } from "./types";

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

/** The app's base URL: the page's origin (the app serves the UI). */
export const base = (): string => window.location.origin;

async function call<T>(token: string, path: string, init: RequestInit = {}): Promise<T> {
  let r: Response;
  try {
    r = await fetch(base() + path, {
      ...init,
      headers: { Authorization: `Bearer ${token}`, ...(init.body ? { "Content-Type": "application/json" } : {}) },
    });
  } catch (e) {
    throw new ApiError(0, `the app cannot be reached (${String(e)})`);
  }
  const text = await r.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  if (!r.ok) {
    const msg = (body as { error?: string } | null)?.error ?? r.statusText;
    throw new ApiError(r.status, msg);
  }
  return body as T;
}

/** Checks a token and finds its role. Controls on an unknown node answer 404 for the
 * read-write token and 403 for the read-only one; that probe changes nothing. */
export async function signIn(token: string): Promise<Role> {
  const check = call(token, "/api/control/ui%3Arole-check/logs", { method: "POST", body: "{}" }).then(
    (): Role => "writer",
    (e: unknown): Role => {
      if (e instanceof ApiError && e.status === 403) return "reader";
      if (e instanceof ApiError && e.status === 404) return "writer";
      throw e;
    },
  );
  check.catch(() => undefined); // its error, if any, is thrown by the await below
  await call(token, "/api/topology"); // a wrong token fails here first (401)
  return check;
}

export const nodeDetail = (token: string, topology: string, id: string): Promise<NodeDetail> =>
  call(token, `/api/topology/${topology}/${encodeURIComponent(id)}`);

export interface ControlResult {
  ok: boolean;
  result: { logs?: string } & Record<string, unknown>;
}

export const control = (
  token: string, id: string, action: string, args: Record<string, unknown> = {},
): Promise<ControlResult> =>
  call(token, `/api/control/${encodeURIComponent(id)}/${action}`, {
    method: "POST",
    body: JSON.stringify(args),
  });

export interface SearchResult {
  topology: string;
  id: string;
  label: string;
  host: string;
}

export const search = (token: string, q: string): Promise<{ results: SearchResult[] }> =>
  call(token, `/api/search?q=${encodeURIComponent(q)}&limit=20`);

/** The app's platform routes (MesosClusters, ZkMigrations from the Kubernetes API). */
export const platformList = <T>(token: string, kind: string): Promise<{ kind: string; items: T[] }> =>
  call(token, `/api/platform/${kind}`);

export const platformOne = (token: string, kind: string, namespace: string, name: string): Promise<Record<string, unknown>> =>
  call(token, `/api/platform/${kind}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
