"""How a Marathon that does not lead answers: it proxies to the leader, as Marathon 1.11 does.

Follows `api/HttpBindings.scala` (the leader proxy filter is mapped to `/*`: every route,
`/ping` and `/v2/leader` included, is answered by the leader), `api/LeaderProxyFilter.scala`
and `api/forwarder/AsyncUrlConnectionRequestForwarder.scala` / `RequestForwarder.scala`:

- the leader answers itself and adds `X-Marathon-Leader: http://<its host:port>`,
  `X-Frame-Options: DENY` and `X-XSS-Protection: 1; mode=block`;
- a follower that knows no leader, or that the latch names but that has not finished taking
  over, waits for a consistent leadership state (11 checks 250 ms apart) and then answers
  502 "Could not determine the current leader";
- `/v2/events` is redirected (302) to the leader, never proxied;
- anything else is forwarded with `X-Marathon-Via: 1.1 <me>` and `X-Forwarded-For` (a request
  that already went through this Marathon is a loop: 502 "Detected proxying loop."); the
  leader's response comes back with its headers (its `X-Marathon-Leader` included) plus
  `X-Marathon-Via`;
- a leader that cannot be connected within `--leader_proxy_connection_timeout` (5000 ms), or
  refuses, gives 502 "Connection to leader refused."; any other failure, such as no byte
  within `--leader_proxy_read_timeout` (10000 ms), 500 (akka-http's idle timeout is not a
  `StreamTcpException`).

Errors are Jetty's `sendError` pages (`text/html`), not JSON.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
from aiohttp import web

log = logging.getLogger("sim.marathon.proxy")

EVENTS_PATH = "/v2/events"
NO_LEADER = "Could not determine the current leader"
LOOP = "Detected proxying loop."
REFUSED = "Connection to leader refused."
CONSISTENCY_CHECKS = 11  # LeaderProxyFilter.waitForConsistentLeadership: retries 10 down to 0
CONSISTENCY_SLEEP = 0.25
VIA = "X-Marathon-Via"
SERVED_BY_LEADER = web.RequestKey("sim_marathon_served_by_leader", bool)
LEADER_HEADER = "X-Marathon-Leader"
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
# Not forwarded (AsyncUrlConnectionRequestForwarder.proxiedRequestHeaders); the client sets
# content-type and content-length from the body.
REQUEST_DROPPED = {"connection", "host", "content-length", "keep-alive", "transfer-encoding"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Leadership(Protocol):
    me: str

    @property
    def elected(self) -> bool: ...

    @property
    def leader(self) -> str | None: ...


def error_page(status: int, message: str, path: str) -> web.Response:
    """Jetty 9.4's default error page for `response.sendError(status, message)`."""
    text = html.escape(message)
    body = (
        "<html>\n<head>\n"
        '<meta http-equiv="Content-Type" content="text/html;charset=ISO-8859-1"/>\n'
        f"<title>Error {status} {text}</title>\n</head>\n<body><h2>HTTP ERROR {status}</h2>\n"
        f"<p>Problem accessing {html.escape(path)}. Reason:\n<pre>    {text}</pre></p>\n"
        "</body>\n</html>\n"
    )
    return web.Response(
        status=status, body=body.encode("latin-1", "replace"), content_type="text/html"
    )


def leader_headers(me: str) -> dict[str, str]:
    return {
        LEADER_HEADER: f"http://{me}",
        "X-Frame-Options": "DENY",
        "X-XSS-Protection": "1; mode=block",
    }


class LeaderProxy:
    def __init__(
        self, state: Leadership, connection_timeout: float = 5.0, read_timeout: float = 10.0
    ) -> None:
        self.state = state
        self.connection_timeout = connection_timeout
        self.read_timeout = read_timeout
        self.session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def _consistent(self) -> bool:
        leader = self.state.leader
        return self.state.elected or (leader is not None and leader != self.state.me)

    async def dispatch(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._consistent():
            log.info(
                "Do not proxy to myself. Waiting for consistent leadership state. "
                "Are we leader?: false, leader: %s",
                self.state.leader,
            )
            for _ in range(CONSISTENCY_CHECKS):
                await asyncio.sleep(CONSISTENCY_SLEEP)
                if self._consistent():
                    break
            else:
                log.error(
                    "inconsistent leadership state, refusing request for ourselves at %s",
                    self.state.me,
                )
                return error_page(502, NO_LEADER, request.path)
        if self.state.elected:
            request[SERVED_BY_LEADER] = True  # its headers are added on response prepare
            return await handler(request)
        leader = self.state.leader
        assert leader is not None
        if request.path.startswith(EVENTS_PATH):
            raise web.HTTPFound(f"http://{leader}{request.path_qs}")
        return await self.forward(request, leader)

    async def forward(self, request: web.Request, leader: str) -> web.StreamResponse:
        via = f"1.1 {self.state.me}"
        if via in request.headers.getall(VIA, []):
            log.error("Prevent proxy cycle, rejecting request")
            return error_page(502, LOOP, request.path)
        if self.session is None:
            timeout = aiohttp.ClientTimeout(
                sock_connect=self.connection_timeout, sock_read=self.read_timeout
            )
            self.session = aiohttp.ClientSession(timeout=timeout, auto_decompress=False)
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in REQUEST_DROPPED]
        forwarded = [v for v in (request.headers.get("X-Forwarded-For"), request.remote) if v]
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        headers += [(VIA, via), ("X-Forwarded-For", ",".join(forwarded))]
        url = f"http://{leader}{request.path_qs}"
        log.info("Proxying request to %s %s from %s", request.method, url, self.state.me)
        try:
            async with self.session.request(
                request.method,
                url,
                data=await request.read(),
                headers=headers,
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                out = web.Response(body=body, status=upstream.status)
                for key, value in upstream.headers.items():
                    if key.lower() not in HOP_HEADERS:
                        out.headers.add(key, value)
                out.headers.add(VIA, via)
                return out
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            log.error("%s %s", REFUSED, exc)
            return error_page(502, REFUSED, request.path)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.error("Failed to successfully establish a connection to the leader. %s", exc)
            return error_page(500, "Server Error", request.path)
