"""The Mesos master's operator endpoints the operator uses (maintenance and state)."""

from __future__ import annotations

from typing import Any

import httpx

from orchestrator_operator.mesos.maintenance import Machine


class MasterApiError(Exception):
    """The master refused or could not be reached; the message says which call."""


class MasterClient:
    def __init__(self, address: str, timeout: float = 2.0) -> None:
        self._http = httpx.Client(
            base_url=f"http://{address}", timeout=timeout, follow_redirects=True
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise MasterApiError(f"{method} {path}: {error}") from error
        if response.status_code >= 400:
            raise MasterApiError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json() if response.content else None

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/master/state")
        return result

    def schedule(self) -> dict[str, Any]:
        return self._request("GET", "/master/maintenance/schedule") or {}

    def set_schedule(self, schedule: dict[str, Any]) -> None:
        self._request("POST", "/master/maintenance/schedule", schedule)

    def maintenance_status(self) -> dict[str, Any]:
        return self._request("GET", "/master/maintenance/status") or {}

    def machines_down(self, machines: list[Machine]) -> None:
        self._request("POST", "/master/machine/down", machines)

    def machines_up(self, machines: list[Machine]) -> None:
        self._request("POST", "/master/machine/up", machines)
