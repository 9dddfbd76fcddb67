"""ui_assets.add_ui_routes: index, hashed assets, SPA fallback, API paths left alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator_operator.monitor.app.ui_assets import add_ui_routes


def _dist(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>ui</title>")
    (dist / "assets" / "index-abc.js").write_text("console.log(1)")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("nope")
    return dist


async def _check(dist: Path) -> None:
    app = web.Application()

    async def api(request: web.Request) -> web.Response:
        return web.json_response({"api": True})

    app.router.add_get("/api/topology", api)
    add_ui_routes(app, dist)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/")
        assert r.status == 200 and "<title>ui</title>" in await r.text()
        assert r.headers["Cache-Control"] == "no-cache"
        r = await client.get("/assets/index-abc.js")
        assert r.status == 200 and await r.text() == "console.log(1)"
        assert "immutable" in r.headers["Cache-Control"]
        assert (await client.get("/assets/missing.js")).status == 404
        r = await client.get("/favicon.svg")
        assert r.status == 200 and await r.text() == "<svg/>"
        r = await client.get("/containers/some/client/route?view=hosts")
        assert r.status == 200 and "<title>ui</title>" in await r.text()
        assert (await client.get("/api/topology")).status == 200
        assert (await client.get("/api/nope")).status == 404
        for escape in ("/assets/%2e%2e/%2e%2e/secret.txt", "/%2e%2e/secret.txt"):
            r = await client.get(escape)
            assert "nope" not in await r.text()


def test_ui_routes(tmp_path: Path) -> None:
    asyncio.run(_check(_dist(tmp_path)))


def test_missing_build_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="build the UI first"):
        add_ui_routes(web.Application(), tmp_path)
