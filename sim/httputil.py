"""Small HTTP helpers shared by the simulated processes (aiohttp server and client)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from aiohttp import web

JSON = dict[str, Any]


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def error(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


async def read_json(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"Failed to parse JSON: {exc}") from exc


class Client:
    """A JSON client that never raises for HTTP status; `(status, body)` or raises OSError-like."""

    def __init__(self, timeout: float = 3.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _s(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request(
        self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"allow_redirects": False}
        if body is not None:
            kwargs["json"] = body
        if headers:
            kwargs["headers"] = headers
        async with self._s().request(method, url, **kwargs) as resp:
            text = await resp.text()
            try:
                data = json.loads(text) if text else None
            except json.JSONDecodeError:
                data = text
            return resp.status, data

    async def get(self, url: str) -> tuple[int, Any]:
        return await self.request("GET", url)

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        return await self.request("POST", url, body, headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


CLIENT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


async def run_app(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner
