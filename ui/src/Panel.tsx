import { useEffect, useRef, useState } from "react";
import { control, nodeDetail, type ApiError } from "./api";
import { Sparkline } from "./Sparkline";
import type { NodeDetail, Role, TopoNode } from "./types";

const fmt = (k: string, v: number): string => {
  if (k.endsWith("_bytes")) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) (v /= 1024), i++;
    return `${v.toFixed(1)} ${u[i]}`;
  }
  if (k.endsWith("_percent")) return `${v.toFixed(1)} %`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
};

interface Props {
  node: TopoNode;
  topology: string;
  token: string;
  role: Role | null;
  nodes: Map<string, TopoNode>;
  onSelect(id: string): void;
  onClose(): void;
}

export function Panel({ node, topology, token, role, nodes, onSelect, onClose }: Props) {
  const [detail, setDetail] = useState<NodeDetail | null>(null);
  const [confirm, setConfirm] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const [logs, setLogs] = useState<string | null>(null);
  const [follow, setFollow] = useState(false);
  const ref = useRef<HTMLElement>(null);
  const logRef = useRef<HTMLPreElement>(null);

  useEffect(() => {
    let live = true;
    const load = () =>
      nodeDetail(token, topology, node.id).then((d) => live && setDetail(d), () => undefined);
    load();
    const t = window.setInterval(load, 15_000);
    return () => {
      live = false;
      window.clearInterval(t);
    };
  }, [token, topology, node.id]);

  useEffect(() => {
    setLogs(null);
    setFollow(false);
    setConfirm(null);
    setStatus("");
    ref.current?.focus();
  }, [node.id]);

  useEffect(() => {
    if (!follow) return;
    let live = true;
    const pull = () =>
      control(token, node.id, "logs", { tail: 200 }).then(
        (r) => {
          if (!live) return;
          setLogs(String(r.result.logs ?? ""));
          requestAnimationFrame(() => logRef.current?.scrollTo(0, logRef.current.scrollHeight));
        },
        (e: ApiError) => live && setStatus(`logs: ${e.message}`),
      );
    pull();
    const t = window.setInterval(pull, 2000);
    return () => {
      live = false;
      window.clearInterval(t);
    };
  }, [follow, token, node.id]);

  const run = async (action: string) => {
    setConfirm(null);
    setStatus(`${action}…`);
    try {
      await control(token, node.id, action, action === "stop" || action === "restart" ? { timeout: 5 } : {});
      setStatus(`${action}: done`);
    } catch (e) {
      setStatus(`${action} failed: ${(e as ApiError).message}`);
    }
  };

  const md = Object.entries(node.metadata ?? {});
  const labels = md.filter(([k]) => k.startsWith("label."));
  const plain = md.filter(([k, v]) => !k.startsWith("label.") && v !== "");
  const conns = node.adjacency ?? [];
  const incoming = [...nodes.values()].filter((n) => n.adjacency?.includes(node.id)).map((n) => n.id);
  const actions = (node.controls ?? []).filter((c) => c !== "logs");
  const canLogs = (node.controls ?? []).includes("logs") || node.topology === "containers";

  return (
    <aside
      className="panel"
      aria-label={`details of ${node.label}`}
      ref={ref}
      tabIndex={-1}
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          if (confirm) setConfirm(null);
          else onClose();
          e.stopPropagation();
        }
      }}
    >
      <header>
        <h2>{node.label}</h2>
        <button onClick={onClose} aria-label="close panel" title="close (Esc)">×</button>
      </header>
      <p className="muted">{node.label_minor} · <code>{node.id}</code></p>

      {role === "writer" && actions.length > 0 && (
        <section aria-label="controls" className="controls">
          {actions.map((a) => (
            <button key={a} data-control={a} onClick={() => setConfirm(a)} className={a === "remove" || a === "stop" ? "danger" : ""}>
              {a}
            </button>
          ))}
          {confirm && (
            <div role="alertdialog" aria-label={`confirm ${confirm}`} className="confirm">
              <span>{confirm} <b>{node.label}</b>?</span>
              <button autoFocus data-confirm={confirm} onClick={() => run(confirm)}>yes, {confirm}</button>
              <button onClick={() => setConfirm(null)}>cancel</button>
            </div>
          )}
        </section>
      )}
      {status && <p role="status" className="status">{status}</p>}

      <section>
        <h3>Metrics</h3>
        <table>
          <tbody>
            {Object.entries(node.metrics ?? {}).map(([k, v]) => (
              <tr key={k}>
                <th>{k}</th>
                <td>
                  {fmt(k, v)}
                  {detail?.series?.[k] ? <div><Sparkline points={detail.series[k]} label={k} /></div> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section>
        <h3>Metadata</h3>
        <table>
          <tbody>
            {plain.map(([k, v]) => (
              <tr key={k}><th>{k}</th><td className="wrap">{v}</td></tr>
            ))}
          </tbody>
        </table>
      </section>

      {labels.length > 0 && (
        <section>
          <h3>Labels</h3>
          <ul className="chips">
            {labels.map(([k, v]) => <li key={k}>{k.slice(6)}={v}</li>)}
          </ul>
        </section>
      )}

      <section>
        <h3>Connections ({conns.length} out, {incoming.length} in)</h3>
        <ul className="links">
          {conns.map((id) => (
            <li key={`o${id}`}>→ <button className="link" onClick={() => onSelect(id)}>{nodes.get(id)?.label ?? id}</button></li>
          ))}
          {incoming.map((id) => (
            <li key={`i${id}`}>← <button className="link" onClick={() => onSelect(id)}>{nodes.get(id)?.label ?? id}</button></li>
          ))}
        </ul>
      </section>

      {detail && Object.entries(detail.children).some(([, v]) => v.length) && (
        <section>
          <h3>Children</h3>
          {Object.entries(detail.children).map(([t, ids]) => <p key={t}>{t}: {ids.length}</p>)}
        </section>
      )}

      {role === "writer" && canLogs && (
        <section>
          <h3>Logs</h3>
          <label>
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> follow
          </label>
          {logs !== null && <pre ref={logRef} className="logs" aria-label="container logs">{logs || "(empty)"}</pre>}
        </section>
      )}
    </aside>
  );
}
