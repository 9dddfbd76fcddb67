"""`orchestrator app --ui-dist DIR` serves the built UI beside the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp


def _fetch(config: AppConfig, *paths: str) -> list[tuple[int, str]]:
    async def run() -> list[tuple[int, str]]:
        client = TestClient(TestServer(MonitorApp(config).web_app()))
        await client.start_server()
        try:
            results = []
            for path in paths:
                response = await client.get(path)
                results.append((response.status, await response.text()))
            return results
        finally:
            await client.close()

    return asyncio.run(run())


def test_ui_served_when_built_and_api_untouched(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>orchestrator</title>")
    (tmp_path / "assets").mkdir()
    index, healthz = _fetch(AppConfig(token="t", ui_dist=tmp_path), "/", "/healthz")
    assert index == (200, "<!doctype html><title>orchestrator</title>")
    assert healthz[0] == 200 and '"ok":true' in healthz[1].replace(" ", "")


def test_without_a_ui_only_the_api_answers() -> None:
    ((status, _),) = _fetch(AppConfig(token="t"), "/")
    assert status == 404
