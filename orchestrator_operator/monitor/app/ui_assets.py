"""Serve the built web UI (``ui/dist``) from the monitoring app.

``add_ui_routes(app, dist)`` adds ``GET /`` (index.html), ``/assets/*`` (hashed, cached for a
year) and an SPA fallback: any other GET outside ``/api/``, ``/metrics`` and ``/healthz``
that is not a file of ``dist`` gets index.html, so client routes and shared URLs load.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

_RESERVED = ("/api/", "/api", "/metrics", "/healthz")
_INDEX_HEADERS = {"Cache-Control": "no-cache"}
_ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable"}


def add_ui_routes(app: web.Application, dist: Path) -> None:
    """Serve the UI built into ``dist`` (``npm run build`` in ui/). Call after the API routes
    are added; fails at once when the build is missing."""
    dist = dist.resolve()
    index = dist / "index.html"
    if not index.is_file():
        raise FileNotFoundError(
            f"{index} not found: build the UI first (cd ui && npm ci && npm run build)"
        )
    assets = dist / "assets"

    async def handle_index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(index, headers=_INDEX_HEADERS)

    async def handle_asset(request: web.Request) -> web.StreamResponse:
        path = _inside(assets, request.match_info["path"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers=_ASSET_HEADERS)

    async def handle_fallback(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["path"]
        if request.path.startswith(_RESERVED):
            raise web.HTTPNotFound()
        path = _inside(dist, tail)
        if path is not None:
            return web.FileResponse(path)
        return web.FileResponse(index, headers=_INDEX_HEADERS)

    app.router.add_get("/", handle_index)
    app.router.add_get("/assets/{path:.+}", handle_asset)
    app.router.add_get("/{path:.*}", handle_fallback)


def _inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` under ``root``, or None when it is missing or escapes ``root``."""
    try:
        path = (root / relative).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
