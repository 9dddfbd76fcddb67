import { useEffect, useMemo, useRef, useState } from "react";
import { useStore } from "zustand";
import { ApiError, search, signIn, type SearchResult } from "./api";
import { GraphView } from "./graph";
import { LiveFeed } from "./live";
import { Panel } from "./Panel";
import { createUiStore, visibleNodes } from "./store";
import { TOPOLOGIES, type TopologyName } from "./types";
import { parseUrl, toUrl } from "./url";
import { createPlatformStore, parsePlatformUrl, PLATFORM_PAGES, withPlatform } from "./platform";
import { PlatformPage } from "./PlatformPage";

const store = createUiStore(parseUrl(window.location.search));
const platform = createPlatformStore();
platform.setState(parsePlatformUrl(window.location.search));
const TOKEN_KEY = "orchestrator.monitor.token";

const METRICS = ["cpu_percent", "memory_usage_bytes", "memory_used_bytes", "rss_bytes", "connections", "open_files", "containers", "processes", "pods", "load1"];

function SignIn() {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (t: string) => {
    setBusy(true);
    setError("");
    try {
      const role = await signIn(t);
      performance.mark("ui:signed-in");
      sessionStorage.setItem(TOKEN_KEY, t);
      store.getState().setToken(t, role);
    } catch (e) {
      const err = e as ApiError;
      setError(err.status === 401 ? "this token is not accepted" : err.message);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) void submit(saved);
  }, []);
  return (
    <main className="signin">
      <form onSubmit={(e) => { e.preventDefault(); void submit(token); }} aria-label="sign in">
        <h1>orchestrator monitoring</h1>
        <label htmlFor="token">App token</label>
        <input id="token" type="password" autoFocus value={token} onChange={(e) => setToken(e.target.value)} autoComplete="current-password" />
        <button type="submit" disabled={busy || !token}>Sign in</button>
        {error && <p role="alert" className="error">{error}</p>}
      </form>
    </main>
  );
}

function SearchBox() {
  const token = useStore(store, (s) => s.token)!;
  const q = useStore(store, (s) => s.filters.q);
  const [results, setResults] = useState<SearchResult[]>([]);
  const [text, setText] = useState(q);
  useEffect(() => setText(q), [q]);
  useEffect(() => {
    if (text.length < 2) return setResults([]);
    const t = window.setTimeout(() => search(token, text).then((r) => setResults(r.results), () => setResults([])), 250);
    return () => window.clearTimeout(t);
  }, [text, token]);
  return (
    <div className="search">
      <input
        id="search" type="search" placeholder="search (/)" aria-label="search nodes"
        value={text} onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter") { store.getState().setFilters({ q: text }); setResults([]); }
          if (e.key === "Escape") { setResults([]); (e.target as HTMLInputElement).blur(); }
        }}
      />
      {results.length > 0 && (
        <ul className="results" role="listbox" aria-label="search results">
          {results.map((r) => (
            <li key={r.id}>
              <button onClick={() => {
                const s = store.getState();
                s.setTopology(r.topology as TopologyName);
                s.select(r.id);
                setResults([]);
              }}>{r.label} <span className="muted">{r.topology} · {r.host}</span></button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function Filters() {
  const f = useStore(store, (s) => s.filters);
  const set = store.getState().setFilters;
  const input = (k: keyof typeof f, label: string, w = 90) => (
    <input aria-label={label} placeholder={label} style={{ width: w }} defaultValue={f[k]} key={`${k}${f[k]}`}
      onKeyDown={(e) => e.key === "Enter" && set({ [k]: (e.target as HTMLInputElement).value })}
      onBlur={(e) => e.target.value !== f[k] && set({ [k]: e.target.value })} />
  );
  return (
    <div className="filters" aria-label="filters">
      {input("host", "host")}
      {input("state", "state", 70)}
      {input("namespace", "namespace")}
      {input("meta", "label.k=v", 110)}
      <select aria-label="threshold metric" value={f.metric} onChange={(e) => set({ metric: e.target.value })}>
        <option value="">metric ≥</option>
        {METRICS.map((m) => <option key={m}>{m}</option>)}
      </select>
      {input("min", "min", 50)}
      <button onClick={() => set({ q: "", host: "", state: "", namespace: "", meta: "", metric: "", min: "" })}>clear</button>
    </div>
  );
}

function NodeList({ onPick }: { onPick(id: string): void }) {
  const nodes = useStore(store, (s) => s.nodes);
  const filters = useStore(store, (s) => s.filters);
  const selected = useStore(store, (s) => s.selected);
  const list = useMemo(
    () => visibleNodes(nodes, filters).sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)).slice(0, 300),
    [nodes, filters],
  );
  const ref = useRef<HTMLUListElement>(null);
  const move = (d: number) => {
    const i = list.findIndex((n) => n.id === selected);
    const next = list[Math.max(0, Math.min(list.length - 1, i + d))];
    if (next) onPick(next.id);
  };
  return (
    <nav className="nodelist" aria-label="nodes">
      <ul ref={ref} role="listbox" tabIndex={0} aria-activedescendant={selected ? `n-${selected}` : undefined}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown" || e.key === "j") { move(1); e.preventDefault(); }
          if (e.key === "ArrowUp" || e.key === "k") { move(-1); e.preventDefault(); }
        }}>
        {list.map((n) => (
          <li key={n.id} id={`n-${n.id}`} role="option" aria-selected={n.id === selected} data-node={n.id}
            className={n.id === selected ? "sel" : ""} onClick={() => onPick(n.id)}>
            {n.label}<span className="muted"> {n.metadata?.state ?? n.label_minor ?? ""}</span>
          </li>
        ))}
      </ul>
      {nodes.size > list.length && <p className="muted">{list.length} of {nodes.size} listed</p>}
    </nav>
  );
}

/** What an empty view says: why it can be empty and what fills it. */
export const EMPTY_HINTS: Record<TopologyName, string> = {
  hosts: "Hosts appear when a probe (orchestrator probe --app URL) sends its reports to this app.",
  containers: "Containers appear when a probe can reach its host's Docker Engine (--docker-host).",
  processes: "Processes appear when a probe reports them (not started with --no-processes).",
  pods: "Pods appear when the probes run with --kubernetes (the ProbeFleet's DaemonSet does).",
  services: "Services appear when the probes run with --kubernetes (the ProbeFleet's DaemonSet does).",
};

function EmptyView() {
  const topology = useStore(store, (s) => s.topology);
  const filters = useStore(store, (s) => s.filters);
  const filtered = Object.values(filters).some((v) => v);
  return (
    <div className="empty" role="status" data-empty={topology}>
      <h2>{filtered ? `No ${topology} match the filters` : `No ${topology} reported`}</h2>
      <p>{filtered ? "Clear the filters to see every node of this view." : EMPTY_HINTS[topology]}</p>
      {filtered && <button onClick={() => store.getState().setFilters({ q: "", host: "", state: "", namespace: "", meta: "", metric: "", min: "" })}>clear filters</button>}
    </div>
  );
}

function Main() {
  const s = useStore(store);
  const page = useStore(platform, (p) => p.page);
  const pageItem = useStore(platform, (p) => p.selected);
  const graphEl = useRef<HTMLDivElement>(null);
  const view = useRef<GraphView | null>(null);
  const feed = useRef<LiveFeed | null>(null);

  // the URL follows the view (shareable)
  useEffect(() => {
    const url = withPlatform(toUrl({ topology: s.topology, filters: s.filters, selected: s.selected, sizeBy: s.sizeBy, grouped: s.grouped, layout: s.layout }), page, pageItem);
    if (url !== window.location.search) window.history.replaceState(null, "", url);
  }, [s.topology, s.filters, s.selected, s.sizeBy, s.grouped, s.layout, page, pageItem]);

  useEffect(() => {
    const onPop = () => {
      const v = parseUrl(window.location.search);
      store.setState({ ...v });
      platform.setState(parsePlatformUrl(window.location.search));
    };
    window.addEventListener("popstate", onPop);
    return () => window.removeEventListener("popstate", onPop);
  }, []);

  useEffect(() => {
    const f = new LiveFeed(store);
    feed.current = f;
    return () => f.stop();
  }, []);
  useEffect(() => feed.current?.sync(), [s.token, s.topology, s.filters]);

  useEffect(() => {
    const st = store.getState();
    const v = new GraphView(graphEl.current!, {
      sizeBy: st.sizeBy, grouped: st.grouped, selected: st.selected, layout: st.layout,
      onSelect: (id) => store.getState().select(id),
    });
    view.current = v;
    let lastSeq = 0;
    let lastFilterKey = "";
    const unsub = store.subscribe((state) => {
      const ch = state.change;
      const fk = `${state.filters.metric}|${state.filters.min}`;
      const shown = () => new Map(visibleNodes(state.nodes, state.filters).map((n) => [n.id, n]));
      if (fk !== lastFilterKey) {
        lastFilterKey = fk;
        v.rebuild(shown(), true);
        lastSeq = state.seq;
        return;
      }
      if (!ch || ch.seq === lastSeq) return;
      lastSeq = ch.seq;
      if (ch.reset) {
        performance.mark("ui:build-start");
        v.rebuild(shown(), true);
        performance.mark("ui:graph-built");
      }
      else if (state.filters.metric && state.filters.min) v.rebuild(shown(), true);
      else v.applyChange(state.nodes, ch.added, ch.updated, ch.removed, ch.metricsOnly);
    });
    lastFilterKey = `${st.filters.metric}|${st.filters.min}`;
    return () => {
      unsub();
      v.kill();
    };
  }, []);
  useEffect(() => view.current?.setOptions({ sizeBy: s.sizeBy, grouped: s.grouped, selected: s.selected }), [s.sizeBy, s.grouped, s.selected]);
  useEffect(() => {
    if (s.topology && view.current && s.nodes.size === 0) view.current.rebuild(new Map(), false);
  }, [s.topology]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const t = e.target as HTMLElement;
      if (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") return;
      if (e.key === "/") { document.getElementById("search")?.focus(); e.preventDefault(); }
      const i = Number(e.key);
      if (i >= 1 && i <= TOPOLOGIES.length) { platform.getState().open(null); store.getState().setTopology(TOPOLOGIES[i - 1]); }
      if (i > TOPOLOGIES.length && i <= TOPOLOGIES.length + PLATFORM_PAGES.length) platform.getState().open(PLATFORM_PAGES[i - TOPOLOGIES.length - 1].kind);
      if (e.key === "Escape" && platform.getState().page) { platform.getState().select(null); return; }
      if (e.key === "+" || e.key === "=") view.current?.zoom(1.5);
      if (e.key === "-") view.current?.zoom(1 / 1.5);
      if (e.key === "0") view.current?.zoom(0);
      if (e.key === "g") store.getState().setGrouped(!store.getState().grouped);
      if (e.key === "Escape") store.getState().select(null);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const node = s.selected ? s.nodes.get(s.selected) ?? null : null;
  const visibleCount = useMemo(() => (s.filters.metric && s.filters.min ? visibleNodes(s.nodes, s.filters).length : s.nodes.size), [s.nodes, s.filters]);
  const pick = (id: string) => {
    store.getState().select(id);
    view.current?.focus(id);
  };

  return (
    <div className="app">
      <header className="top">
        <h1>orchestrator</h1>
        <nav aria-label="topologies" className="views">
          {TOPOLOGIES.map((t, i) => (
            <button key={t} aria-pressed={!page && s.topology === t} data-view={t} title={`${t} (${i + 1})`}
              onClick={() => { platform.getState().open(null); store.getState().setTopology(t); }}>{t}</button>
          ))}
        </nav>
        <span className="sep" aria-hidden="true" />
        <nav aria-label="platform" className="views">
          {PLATFORM_PAGES.map((p, i) => (
            <button key={p.kind} aria-pressed={page === p.kind} data-page-link={p.kind} title={`${p.title} (${TOPOLOGIES.length + i + 1})`}
              onClick={() => platform.getState().open(p.kind)}>{p.title}</button>
          ))}
        </nav>
        <SearchBox />
        <span className={`conn conn-${s.conn}`} role="status" aria-live="polite" data-conn={s.conn}>
          {s.conn === "live" ? `live · ${s.nodes.size} nodes` : s.conn}
        </span>
        <span className="muted">{s.role === "reader" ? "read-only" : ""}</span>
        <button onClick={() => { sessionStorage.removeItem(TOKEN_KEY); feed.current?.close(); store.getState().setToken(null); }}>sign out</button>
      </header>
      <div className="bar" hidden={page != null}>
        <Filters />
        <label>size by{" "}
          <select aria-label="size by" value={s.sizeBy} onChange={(e) => store.getState().setSizeBy(e.target.value)}>
            {METRICS.map((m) => <option key={m}>{m}</option>)}
          </select>
        </label>
        <label><input type="checkbox" checked={s.grouped} onChange={(e) => store.getState().setGrouped(e.target.checked)} /> group (g)</label>
        <span className="zoom">
          <button aria-label="zoom in" onClick={() => view.current?.zoom(1.5)}>+</button>
          <button aria-label="zoom out" onClick={() => view.current?.zoom(1 / 1.5)}>−</button>
          <button aria-label="reset zoom" onClick={() => view.current?.zoom(0)}>⟲</button>
        </span>
      </div>
      {s.conn === "unreachable" && (
        <div role="alert" className="banner" data-unreachable>The monitoring app cannot be reached — showing the last known state; reconnecting…</div>
      )}
      {page && s.token && <PlatformPage store={platform} token={s.token} page={page} />}
      {/* the graph stays mounted with a size (sigma needs one) while a platform page shows */}
      <div className={page ? "body off" : "body"} aria-hidden={page != null} inert={page != null}>
        <NodeList onPick={pick} />
        <div className="graph-wrap">
          <div className="graph" ref={graphEl} aria-label={`${s.topology} graph`} role="img" />
          {s.conn === "live" && s.change !== null && visibleCount === 0 && <EmptyView />}
        </div>
        {node && s.token && (
          <Panel node={node} topology={s.topology} token={s.token} role={s.role} nodes={s.nodes}
            onSelect={pick} onClose={() => store.getState().select(null)} />
        )}
      </div>
    </div>
  );
}

export function App() {
  const token = useStore(store, (s) => s.token);
  return token ? <Main /> : <SignIn />;
}
