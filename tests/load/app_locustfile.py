"""Locust: the monitoring app's REST API and its topology WebSocket, with the app's token auth.

    LOAD_APP_TOKEN=... locust -f tests/load/app_locustfile.py -H https://app.example --headless

- ``ApiUser``: what the UI reads: the topology list, whole topologies (containers, hosts,
  processes), one node, a search; ``Authorization: Bearer <token>`` (a read-only token is
  enough).
- ``ViewerUser``: holds the containers topology's WebSocket open, as the UI does: the token
  in the subprotocol ``base64url.bearer.orchestrator.dev.<base64url(token)>`` beside
  ``orchestrator.monitor.v1`` (never in the URL); "WS connect+snapshot" is the time from
  the upgrade request to the first (reset) diff; "WS diff" is each later message, its time
  the gap since the previous one (the push cadence, not a latency: no threshold on it).
- ``ProbeUser`` (only with ``LOAD_PROBE_REPORTS=1``, and then needing the read-write token;
  name the classes to run, e.g. ``locust -f ... ApiUser ViewerUser``, to leave it out):
  posts synthetic probe reports so that the topologies have something in them; off by default,
  so a run against a staging app never injects fake hosts.

Environment: ``LOAD_APP_TOKEN`` (required), ``LOAD_PROBE_REPORTS`` (0/1),
``LOAD_PROBES`` (distinct synthetic hosts, default 20), ``LOAD_WS_HOLD_SECONDS`` (default 15).
"""

from __future__ import annotations

import base64
import gzip
import os
import random
import ssl
import time

import websocket
from locust import HttpUser, User, between, task
from locust.exception import StopUser

WS_PROTOCOL = "orchestrator.monitor.v1"  # orchestrator_operator/monitor/app/server.py
WS_TOKEN_PREFIX = "base64url.bearer.orchestrator.dev."
TOPOLOGIES = ("containers", "hosts", "processes")


def _token() -> str:
    token = os.environ.get("LOAD_APP_TOKEN", "")
    if not token:
        raise SystemExit("LOAD_APP_TOKEN is not set (the app's token; never on the command line)")
    return token


class ApiUser(HttpUser):
    wait_time = between(0.2, 1.0)
    weight = 3

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Bearer {_token()}"
        self.nodes: dict[str, list[str]] = {}

    @task(2)
    def topology_list(self) -> None:
        with self.client.get("/api/topology", catch_response=True) as response:
            if response.status_code != 200 or not isinstance(response.json(), list):
                response.failure(f"status {response.status_code}")

    @task(6)
    def topology(self) -> None:
        name = random.choice(TOPOLOGIES)
        with self.client.get(
            f"/api/topology/{name}", name="/api/topology/[name]", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            nodes = response.json().get("nodes") or {}
            self.nodes[name] = list(nodes)[:200]

    @task(2)
    def node(self) -> None:
        name = random.choice(TOPOLOGIES)
        ids = self.nodes.get(name)
        if not ids:
            return
        node = random.choice(ids)
        with self.client.get(
            f"/api/topology/{name}/{node}", name="/api/topology/[name]/[node]", catch_response=True
        ) as response:
            # 404: the node went away between the listing and this read (churn), not an error
            if response.status_code not in (200, 404):
                response.failure(f"status {response.status_code}")
            else:
                response.success()

    @task(2)
    def search(self) -> None:
        query = random.choice(("host-1", "nginx", "python", "10.0", "web"))
        with self.client.get(
            "/api/search", params={"q": query}, name="/api/search", catch_response=True
        ) as response:
            if response.status_code != 200 or "results" not in response.json():
                response.failure(f"status {response.status_code}")

    @task(1)
    def health(self) -> None:
        self.client.get("/healthz")


class ViewerUser(User):
    """One WebSocket viewer of the containers topology at a time, reopened after a hold."""

    wait_time = between(0.5, 1.5)
    weight = 1

    def _ws_url(self) -> str:
        assert self.host, "no host (-H)"
        base = self.host.rstrip("/")
        scheme = "wss" if base.startswith("https://") else "ws"
        return f"{scheme}://{base.split('://', 1)[1]}/api/topology/containers/ws"

    def _fire(self, name: str, started: float, length: int, error: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type="WS",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=error,
            context={},
        )

    @task
    def watch(self) -> None:
        encoded = base64.urlsafe_b64encode(_token().encode()).decode().rstrip("=")
        hold = float(os.environ.get("LOAD_WS_HOLD_SECONDS", "15"))
        started = time.perf_counter()
        try:
            ws = websocket.create_connection(
                self._ws_url(),
                subprotocols=[WS_PROTOCOL, WS_TOKEN_PREFIX + encoded],
                suppress_origin=True,  # not a browser
                timeout=30,
                sslopt={"cert_reqs": ssl.CERT_REQUIRED},
            )
        except Exception as exc:
            self._fire("WS connect+snapshot", started, 0, exc)
            return
        try:
            if ws.getsubprotocol() != WS_PROTOCOL:
                raise RuntimeError(f"the app answered subprotocol {ws.getsubprotocol()!r}")
            first = ws.recv()
            if '"reset":true' not in str(first).replace(" ", ""):
                raise RuntimeError("the first message is not the reset snapshot")
            self._fire("WS connect+snapshot", started, len(first), None)
            until = time.monotonic() + hold
            previous = time.perf_counter()
            while time.monotonic() < until:
                ws.settimeout(max(0.1, until - time.monotonic()))
                try:
                    message = ws.recv()
                except websocket.WebSocketTimeoutException:
                    break
                self._fire("WS diff", previous, len(message), None)
                previous = time.perf_counter()
        except Exception as exc:
            self._fire("WS connect+snapshot", started, 0, exc)
        finally:
            ws.close()


class ProbeUser(HttpUser):
    """A synthetic probe posting a report every ~3 s (LOAD_PROBE_REPORTS=1 only)."""

    wait_time = between(2.5, 3.5)
    # LOAD_PROBES of them, started before the weighted users (0 when not enabled)
    fixed_count = (
        int(os.environ.get("LOAD_PROBES", "20"))
        if os.environ.get("LOAD_PROBE_REPORTS") == "1"
        else 0
    )
    _next_id = 0

    def on_start(self) -> None:
        if os.environ.get("LOAD_PROBE_REPORTS") != "1":
            raise StopUser  # never inject synthetic hosts unless asked to
        from orchestrator_operator.monitor.report import encode_report
        from testenv.synthetic_reports import synthetic_report

        fleet = int(os.environ.get("LOAD_PROBES", "20"))
        index = ProbeUser._next_id % fleet
        ProbeUser._next_id += 1
        self.bodies = [
            gzip.compress(encode_report(synthetic_report(index, fleet, seed=s)), 5) for s in (0, 1)
        ]
        self.turn = 0
        self.client.headers.update(
            {
                "Authorization": f"Bearer {_token()}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            }
        )

    @task
    def report(self) -> None:
        self.turn += 1
        with self.client.post(
            "/api/report", data=self.bodies[self.turn % 2], catch_response=True
        ) as response:
            if response.status_code not in (200, 202, 204):
                response.failure(f"status {response.status_code}: {response.text[:200]}")
