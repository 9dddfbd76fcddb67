// The platform pages: MesosClusters, ZkMigrations and MarathonApps, list + detail, read through the app
// (/api/platform/...) every 5 s.
import { useEffect, useRef } from "react";
import { useStore } from "zustand";
import type { StoreApi } from "zustand/vanilla";
import { ApiError, platformList, platformOne } from "./api";
import {
  appHealth, COMPONENT_CONDITIONS, componentHealth, conditionHealth, deploymentText, duration, formatLag, formatTime, keyOf, metricText,
  phaseHealth, PLATFORM_PAGES, readinessHealth, syncStateHealth, weightsText, withSyncState,
  type Condition, type MarathonAppSummary, type MesosClusterSummary, type PlatformKind, type PlatformState, type ZkMigrationSummary,
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

/** The traffic split as bars: one per Marathon app of the rollout, its share of requests. */
function Weights({ weights }: { weights: Record<string, number> }) {
  const entries = Object.entries(weights).sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]));
  return (
    <table className="grid" aria-label="traffic weights">
      <thead><tr><th>Marathon app</th><th>traffic</th></tr></thead>
      <tbody>
        {entries.map(([app, w]) => (
          <tr key={app} data-weight={app}>
            <td className="nowrap">{app}</td>
            <td><span className="wbar"><span style={{ width: `${Math.max(0, Math.min(100, w))}%` }} /></span> {w}%</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AppDetail({ a }: { a: MarathonAppSummary }) {
  const h = appHealth(a);
  const n = a.instances;
  return (
    <section className="detail" aria-label={`MarathonApp ${keyOf(a)}`} data-detail={keyOf(a)}>
      <h2>{a.name} <span className="muted">{a.namespace} · cluster {a.cluster ?? "—"}</span> <Badge health={h.health}>{h.word}</Badge></h2>
      <table className="kv">
        <tbody>
          <tr><th>Marathon app</th><td data-field="appId">{a.appId ?? "—"}</td></tr>
          <tr><th>strategy</th><td>{a.strategy}</td></tr>
          <tr><th>version</th><td>{a.version ?? "—"}</td></tr>
          <tr><th>instances</th><td data-field="instances">
            {n.running} running of {n.desired} · <Badge health={n.healthy >= n.desired && n.desired > 0 ? "ok" : n.healthy > 0 ? "warn" : n.desired === 0 ? "unknown" : "bad"}>{n.healthy} healthy</Badge>
            {n.unhealthy ? <> · <Badge health="bad">{n.unhealthy} unhealthy</Badge></> : null}{n.staged ? ` · ${n.staged} staged` : ""}
          </td></tr>
          <tr><th>relaunches</th><td data-field="relaunches">{a.relaunches}{a.flapping ? <> <Badge health="bad">flapping</Badge></> : null}{a.launchDelaySeconds ? ` · launch delay ${a.launchDelaySeconds.toFixed(1)} s` : ""}</td></tr>
          {a.drift.detected && <tr><th>drift</th><td><Badge health="warn">drift</Badge> <Words text={a.drift.fields.join(", ")} /></td></tr>}
        </tbody>
      </table>
      {a.readiness && (
        <>
          <h3>Readiness for Kubernetes</h3>
          <p data-field="readiness"><Badge health={readinessHealth(a.readiness.verdict)}>{a.readiness.verdict}</Badge> <Words text={a.readiness.summary} /></p>
          {a.readiness.findings.length > 0 && (
            <table className="grid" aria-label="readiness findings">
              <thead><tr><th>feature</th><th>severity</th><th>what</th></tr></thead>
              <tbody>
                {a.readiness.findings.map((f, i) => (
                  <tr key={i} data-finding={f.feature}>
                    <td className="nowrap">{f.feature}</td>
                    <td className="nowrap"><Badge health={f.severity === "Blocker" ? "bad" : f.severity === "Review" ? "warn" : "ok"}>{f.severity}</Badge></td>
                    <td><Words text={f.message} /></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      <h3>Deployment</h3>
      {a.deployment ? (
        <ol className="steps" aria-label="deployment steps" data-field="deployment">
          {a.deployment.steps.map((step, i) => (
            <li key={i} aria-current={a.deployment!.currentStep === i + 1 ? "step" : undefined}><Words text={step} /></li>
          ))}
        </ol>
      ) : <p className="muted">no deployment in progress</p>}
      {a.rollout && (
        <>
          <h3>Rollout</h3>
          <table className="kv" aria-label="rollout">
            <tbody>
              <tr><th>phase</th><td data-field="rolloutPhase"><Badge health={a.rollout.phase === "RolledBack" || a.rollout.phase === "Aborted" ? "bad" : a.rollout.phase === "Promoted" || a.rollout.phase === "Idle" ? "ok" : "warn"}>{a.rollout.phase ?? "—"}</Badge> {a.rollout.strategy} · step {a.rollout.step ?? "—"}</td></tr>
              {a.rollout.message && <tr><th>message</th><td><Words text={a.rollout.message} /></td></tr>}
              <tr><th>versions</th><td>stable {a.rollout.stableVersion ?? "—"} · new {a.rollout.canaryVersion ?? "—"}</td></tr>
            </tbody>
          </table>
          {Object.keys(a.rollout.weights).length > 0 && <Weights weights={a.rollout.weights} />}
          {a.rollout.analysis.length > 0 && (
            <table className="grid" aria-label="analysis">
              <thead><tr><th>step</th><th>metric</th><th>value</th><th>limit</th><th>result</th></tr></thead>
              <tbody>
                {a.rollout.analysis.map((r, i) => (
                  <tr key={i} data-analysis={i}>
                    <td>{r.step ?? "—"}</td><td className="nowrap">{r.metric}</td><td>{r.value ?? "—"}</td><td>{r.limit ?? "—"}</td>
                    <td><Badge health={r.result === "Pass" ? "ok" : "bad"}>{r.result}</Badge></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {a.autoscaling && (
        <>
          <h3>Autoscaling</h3>
          <table className="kv" aria-label="autoscaling">
            <tbody>
              <tr><th>desired</th><td data-field="desired">{a.autoscaling.desiredInstances ?? "—"}</td></tr>
              <tr><th>metric</th><td>{metricText(a.autoscaling.metric)}</td></tr>
              <tr><th>decision</th><td data-field="reason"><Words text={a.autoscaling.reason ?? "—"} /></td></tr>
              <tr><th>last scale</th><td>{formatTime(a.autoscaling.lastScaleAt)}</td></tr>
            </tbody>
          </table>
        </>
      )}
      <h3>Conditions</h3>
      <Conditions conditions={a.conditions} />
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
  const items = (page === "mesosclusters" ? s.mesosclusters : page === "zkmigrations" ? s.zkmigrations : s.marathonapps) as
    (MesosClusterSummary | ZkMigrationSummary | MarathonAppSummary)[] | null;
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
                : page === "zkmigrations"
                  ? <tr><th>name</th><th>namespace</th><th>phase</th><th>step</th><th>lag p99</th><th>conflicts</th></tr>
                  : <tr><th>name</th><th>namespace</th><th>health</th><th>app</th><th>instances</th><th>healthy</th><th>deployment</th><th>traffic</th><th>readiness</th></tr>}
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
                const ma = i as MarathonAppSummary;
                if (page === "marathonapps") {
                  const h = appHealth(ma);
                  return (
                    <tr key={k} tabIndex={0} data-item={k} aria-selected={k === s.selected} className={k === s.selected ? "sel" : ""}
                      onClick={pick} onKeyDown={(e) => rowKeys(e, pick)}>
                      <td className="nowrap">{ma.name}</td>
                      <td className="nowrap">{ma.namespace}</td>
                      <td className="nowrap" data-field="health"><Badge health={h.health}>{h.word}</Badge></td>
                      <td><Words text={ma.appId ?? "—"} /></td>
                      <td className="nowrap" data-field="instances">{ma.instances.running}/{ma.instances.desired}</td>
                      <td className="nowrap" data-field="healthy">{ma.instances.healthy}{ma.instances.unhealthy ? ` (${ma.instances.unhealthy} unhealthy)` : ""}</td>
                      <td className="nowrap" data-field="deployment">{deploymentText(ma.deployment) || "—"}</td>
                      <td data-field="weights"><Words text={weightsText(ma.rollout?.weights) || "—"} /></td>
                      <td className="nowrap" data-field="readiness">{ma.readiness ? <Badge health={readinessHealth(ma.readiness.verdict)}>{ma.readiness.verdict}</Badge> : "—"}</td>
                    </tr>
                  );
                }
                return (
                  <tr key={k} tabIndex={0} data-item={k} aria-selected={k === s.selected} className={k === s.selected ? "sel" : ""}
                    onClick={pick} onKeyDown={(e) => rowKeys(e, pick)}>
                    <td className="nowrap">{i.name}</td>
                    <td className="nowrap">{i.namespace}</td>
                    <td className="nowrap"><Badge health={phaseHealth(mc.phase)}>{mc.phase ?? "—"}</Badge></td>
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
            : page === "zkmigrations"
              ? <MigrationDetail m={selected as ZkMigrationSummary} lag={s.lag[keyOf(selected)] ?? []} />
              : <AppDetail a={selected as MarathonAppSummary} />}
        </div>
      )}
    </main>
  );
}
