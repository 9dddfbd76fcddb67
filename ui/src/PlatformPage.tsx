// The platform pages: MesosClusters and ZkMigrations, list + detail, read through the app
// (/api/platform/...) every 5 s.
import { useEffect, useRef } from "react";
import { useStore } from "zustand";
import type { StoreApi } from "zustand/vanilla";
import { ApiError, platformList, platformOne } from "./api";
import {
  COMPONENT_CONDITIONS, componentHealth, conditionHealth, duration, formatLag, formatTime, keyOf, phaseHealth, PLATFORM_PAGES,
  syncStateHealth, withSyncState,
  type Condition, type MesosClusterSummary, type PlatformKind, type PlatformState, type ZkMigrationSummary,
} from "./platform";
import { Sparkline } from "./Sparkline";

export const POLL_MS = 5000;

function Badge({ health, children }: { health: string; children: React.ReactNode }) {
  return <span className={`badge h-${health}`}>{children}</span>;
}

/** Longest word kept on one line; a longer token (an id, a URL) may break where it must. */
export const LONG_WORD = 40;

/** Text that wraps between words only: each word is unbreakable (a hyphen or a dot inside a
 * host name is not a place to wrap), except a token too long for any cell. */
function Words({ text }: { text: string }) {
  const parts = text.split(/(\s+)/);
  return (
    <span className="words">
      {parts.map((p, i) => (/\s/.test(p) || p === "" ? p : <span key={i} className={p.length > LONG_WORD ? "w long" : "w"}>{p}</span>))}
    </span>
  );
}

function Conditions({ conditions }: { conditions: Condition[] }) {
  if (!conditions.length) return <p className="muted">no conditions reported</p>;
  return (
    <table className="grid" aria-label="conditions">
      <thead><tr><th>type</th><th>status</th><th>reason</th><th>message</th><th>since</th></tr></thead>
      <tbody>
        {conditions.map((c) => (
          <tr key={c.type} data-condition={c.type}>
            <td className="nowrap">{c.type}</td>
            <td className="nowrap"><Badge health={conditionHealth(c)}>{c.status}</Badge></td>
            <td className="nowrap">{c.reason}</td>
            <td><Words text={c.message} /></td>
            <td className="nowrap">{formatTime(c.lastTransitionTime)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ClusterDetail({ c }: { c: MesosClusterSummary }) {
  return (
    <section className="detail" aria-label={`MesosCluster ${keyOf(c)}`} data-detail={keyOf(c)}>
      <h2>{c.name} <span className="muted">{c.namespace}</span> <Badge health={phaseHealth(c.phase)}>{c.phase ?? "no phase"}</Badge></h2>
      <table className="kv">
        <tbody>
          <tr><th>leading master</th><td data-field="leadingMaster">{c.leadingMaster ?? "none elected"}</td></tr>
          <tr><th>ZooKeeper</th><td>{c.zookeeperConnectString ?? "—"}</td></tr>
          {c.rollout && <tr><th>rollout</th><td>{c.rollout}</td></tr>}
          {c.mesos && (
            <tr><th>Mesos</th><td>{c.mesos.agentsActive} agents active · {c.mesos.frameworksActive} frameworks · {c.mesos.tasksRunning} tasks running</td></tr>
          )}
        </tbody>
      </table>
      <h3>Components</h3>
      <table className="grid" aria-label="components">
        <thead><tr><th>component</th><th>ready / desired</th><th>condition</th></tr></thead>
        <tbody>
          {["zookeeper", "masters", "agents", "marathon"].map((k) => {
            const n = c.components[k];
            const cond = c.conditions.find((x) => x.type === COMPONENT_CONDITIONS[k]);
            const health = componentHealth(n, cond);
            return (
              <tr key={k} data-component={k} data-health={health}>
                <td className="nowrap">{k}</td>
                <td className="nowrap">{n ? <Badge health={health}>{n.ready} / {n.desired}</Badge> : <span className="muted">not reported</span>}</td>
                <td>
                  {cond ? <Words text={`${cond.type} ${cond.status}${cond.reason ? ` (${cond.reason})` : ""}${cond.status !== "True" && cond.message ? `: ${cond.message}` : ""}`} /> : <span className="muted">no condition reported</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h3>Conditions</h3>
      <Conditions conditions={c.conditions} />
      <h3>Maintenance</h3>
      {c.maintenance.length ? (
        <table className="grid" aria-label="maintenance">
          <thead><tr><th>node</th><th>state</th><th>tasks left</th></tr></thead>
          <tbody>{c.maintenance.map((m) => <tr key={m.node}><td>{m.node}</td><td>{m.state}</td><td>{m.tasks}</td></tr>)}</tbody>
        </table>
      ) : <p className="muted">no node in maintenance</p>}
    </section>
  );
}

function MigrationDetail({ m, lag }: { m: ZkMigrationSummary; lag: [number, number][] }) {
  const now = Date.now();
  return (
    <section className="detail" aria-label={`ZkMigration ${keyOf(m)}`} data-detail={keyOf(m)}>
      <h2>{m.name} <span className="muted">{m.namespace} · cluster {m.clusterRef ?? "—"}</span> <Badge health={phaseHealth(m.phase)}>{m.phase ?? "no phase"}</Badge></h2>
      <h3>Phases</h3>
      <ol className="timeline" aria-label="phase timeline">
        {m.phases.map((p) => (
          <li key={p.number} className={`ph-${p.state}`} data-phase={p.number} aria-current={m.currentPhase === p.number ? "step" : undefined}>
            <span className="num">{p.number}</span>
            <span className="name">{p.name}</span>
            <Badge health={p.state === "Succeeded" ? "ok" : p.state === "Running" ? "warn" : p.state === "Pending" ? "unknown" : "bad"}>{p.state}</Badge>
            <span className="muted">
              {p.startedAt ? `${formatTime(p.startedAt)} → ${p.finishedAt ? formatTime(p.finishedAt) : "running"} (${duration(p.startedAt, p.finishedAt, now)})` : "not started"}
            </span>
            {p.message && <span className="msg"><Words text={p.message} /></span>}
          </li>
        ))}
      </ol>
      <h3>Sync</h3>
      {m.sync ? (
        <table className="kv" aria-label="sync">
          <tbody>
            <tr><th>state</th><td data-field="syncState">
              {m.sync.state ? <Badge health={syncStateHealth(m.sync.state)}>{m.sync.state}</Badge> : <span className="muted">—</span>}
              {m.sync.message ? <> <Words text={m.sync.message} /></> : null}
            </td></tr>
            <tr><th>lag p99</th><td data-field="lag"><span className="lag">{formatLag(m.sync.lagP99Seconds)} <Sparkline points={lag} label="sync lag p99 (s)" span="sampled while this page is open" /></span></td></tr>
            <tr><th>digests</th><td>{m.sync.digestsEqual == null ? "—" : m.sync.digestsEqual ? <Badge health="ok">equal</Badge> : <Badge health="bad">differ</Badge>}</td></tr>
            <tr><th>differences</th><td data-field="differences">{m.sync.differences ?? "—"}</td></tr>
            <tr><th>conflicts</th><td data-field="conflicts">{m.sync.conflicts ? <Badge health="bad">{m.sync.conflicts}</Badge> : m.sync.conflicts ?? "—"}</td></tr>
            <tr><th>last reconcile</th><td>{formatTime(m.sync.lastReconcileTime)}</td></tr>
          </tbody>
        </table>
      ) : <p className="muted">no sync status yet</p>}
      <p className="muted">The status holds the current p99 lag only; the chart is sampled from it at each poll ({POLL_MS / 1000} s) while the page is open.</p>
      <h3>Conditions</h3>
      <Conditions conditions={m.conditions} />
    </section>
  );
}

function rowKeys(e: React.KeyboardEvent<HTMLTableRowElement>, select: () => void) {
  if (e.key === "Enter" || e.key === " ") { select(); e.preventDefault(); }
  if (e.key === "ArrowDown") { (e.currentTarget.nextElementSibling as HTMLElement | null)?.focus(); e.preventDefault(); }
  if (e.key === "ArrowUp") { (e.currentTarget.previousElementSibling as HTMLElement | null)?.focus(); e.preventDefault(); }
}

export function PlatformPage({ store, token, page }: { store: StoreApi<PlatformState>; token: string; page: PlatformKind }) {
  const s = useStore(store);
  const title = PLATFORM_PAGES.find((p) => p.kind === page)!.title;
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => {
    let alive = true;
    const poll = async () => {
      try {
        const r = await platformList<unknown>(token, page);
        let items = r.items;
        // the sync engine's state is in the migration's own status (the list leaves it out)
        const sel = store.getState().selected;
        if (page === "zkmigrations" && sel) {
          const [ns, name] = sel.split("/", 2);
          const one = await platformOne(token, page, ns, name).catch(() => null);
          items = withSyncState(items as ZkMigrationSummary[], sel, one);
        }
        if (alive) store.getState().received(page, items, Date.now());
      } catch (e) {
        const err = e as ApiError;
        if (alive) store.getState().failed(err.status ? `${err.message} (HTTP ${err.status})` : err.message);
      }
      if (alive) timer.current = window.setTimeout(poll, POLL_MS);
    };
    void poll();
    return () => { alive = false; window.clearTimeout(timer.current); };
  }, [page, token, store]);

  const refreshOne = async (key: string) => {
    const [ns, name] = key.split("/", 2);
    const one = await platformOne(token, "zkmigrations", ns, name).catch(() => null);
    const cur = store.getState().zkmigrations;
    if (cur && one) store.setState({ zkmigrations: withSyncState(cur, key, one) });
  };
  const items = (page === "mesosclusters" ? s.mesosclusters : s.zkmigrations) as (MesosClusterSummary | ZkMigrationSummary)[] | null;
  const selected = items?.find((i) => keyOf(i) === s.selected) ?? null;
  return (
    <main className="platform" aria-label={title} data-page={page}>
      <div className="plist">
        <h2>{title} <span className="muted">{items ? items.length : "…"}</span></h2>
        {s.error && (
          <div role="alert" className="perror" data-platform-error>
            The platform API failed: {s.error}{items ? " — showing the last answer." : ""}
          </div>
        )}
        {items && items.length === 0 && <p className="muted">none in the cluster</p>}
        {items && items.length > 0 && (
          <table className="grid rows" aria-label={`${title} list`}>
            <thead>
              {page === "mesosclusters"
                ? <tr><th>name</th><th>namespace</th><th>phase</th><th>leading master</th><th>masters</th><th>agents</th></tr>
                : <tr><th>name</th><th>namespace</th><th>phase</th><th>step</th><th>lag p99</th><th>conflicts</th></tr>}
            </thead>
            <tbody>
              {items.map((i) => {
                const k = keyOf(i);
                const pick = () => {
                  store.getState().select(k);
                  if (page === "zkmigrations") void refreshOne(k);
                };
                const mc = i as MesosClusterSummary;
                const zm = i as ZkMigrationSummary;
                return (
                  <tr key={k} tabIndex={0} data-item={k} aria-selected={k === s.selected} className={k === s.selected ? "sel" : ""}
                    onClick={pick} onKeyDown={(e) => rowKeys(e, pick)}>
                    <td className="nowrap">{i.name}</td>
                    <td className="nowrap">{i.namespace}</td>
                    <td className="nowrap"><Badge health={phaseHealth(i.phase)}>{i.phase ?? "—"}</Badge></td>
                    {page === "mesosclusters" ? (
                      <>
                        <td><Words text={mc.leadingMaster ?? "—"} /></td>
                        <td>{mc.components.masters ? `${mc.components.masters.ready}/${mc.components.masters.desired}` : "—"}</td>
                        <td>{mc.components.agents ? `${mc.components.agents.ready}/${mc.components.agents.desired}` : "—"}</td>
                      </>
                    ) : (
                      <>
                        <td>{zm.currentPhase ? `${zm.currentPhase}/6 ${zm.phases[zm.currentPhase - 1]?.name ?? ""}` : "—"}</td>
                        <td>{formatLag(zm.sync?.lagP99Seconds)}</td>
                        <td>{zm.sync?.conflicts ?? "—"}</td>
                      </>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        {s.updatedAt && <p className="muted">read {new Date(s.updatedAt).toLocaleTimeString()} · every {POLL_MS / 1000} s</p>}
      </div>
      {selected && (
        <div className="pdetail">
          <button className="close" aria-label="close details" onClick={() => store.getState().select(null)}>×</button>
          {page === "mesosclusters"
            ? <ClusterDetail c={selected as MesosClusterSummary} />
            : <MigrationDetail m={selected as ZkMigrationSummary} lag={s.lag[keyOf(selected)] ?? []} />}
        </div>
      )}
    </main>
  );
}
