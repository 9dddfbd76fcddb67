import { base } from "./api";
import type { UiStore } from "./store";
import { serverQuery } from "./url";
import type { Diff } from "./types";

/** Keeps one WebSocket on the current topology (with the current server-side filters) and
 * feeds its diffs into the store; reconnects with backoff and marks the app unreachable. */
export class LiveFeed {
  private ws: WebSocket | null = null;
  private key = "";
  private token = "";
  private retry = 0;
  private timer: number | undefined;
  private stopped = false;

  constructor(private store: UiStore) {}

  /** (Re)connects when the topology, filters or token changed. */
  sync(): void {
    const s = this.store.getState();
    if (!s.token) return this.close();
    const q = serverQuery(s.filters);
    // the token is not part of the URL (it goes in a subprotocol, see open()); a changed
    // token still reconnects
    const key = `${s.topology}?${q.toString()}`;
    if (key === this.key && s.token === this.token && this.ws) return;
    this.token = s.token;
    this.key = key;
    this.retry = 0;
    this.open();
  }

  private open(): void {
    this.closeSocket();
    if (this.stopped) return;
    const url = base().replace(/^http/, "ws") + `/api/topology/${this.key.replace("?", "/ws?")}`;
    const s = this.store.getState();
    if (s.conn !== "live") s.setConn("connecting");
    // Browsers cannot set an Authorization header on a WebSocket: the token travels as a
    // subprotocol (base64url), never in the URL; the app answers with the first one.
    const ws = new WebSocket(url, ["orchestrator.monitor.v1", "base64url.bearer.orchestrator.dev." + base64url(this.token)]);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      performance.mark("ui:ws-open");
      this.store.getState().setConn("live");
    };
    ws.onmessage = (ev) => {
      const diff = JSON.parse(ev.data as string) as Diff;
      if (diff.reset) performance.mark("ui:reset-received");
      this.store.getState().receive(diff);
      (window as unknown as { __uiLastDiffAt?: number }).__uiLastDiffAt = performance.now();
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const st = this.store.getState();
      if (ev.code === 1006 || ev.code === 1011 || ev.code === 1000 || ev.code === 1001) {
        st.setConn("unreachable", "the monitoring app cannot be reached; retrying");
      }
      const delay = Math.min(10_000, 500 * 2 ** this.retry++);
      this.timer = window.setTimeout(() => this.open(), delay);
    };
  }

  private closeSocket(): void {
    window.clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
    }
  }

  close(): void {
    this.key = "";
    this.token = "";
    this.closeSocket();
  }

  stop(): void {
    this.stopped = true;
    this.close();
  }
}

/** base64url of a string's UTF-8 bytes, without padding (a valid subprotocol token). */
function base64url(text: string): string {
  let bin = "";
  for (const b of new TextEncoder().encode(text)) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
