"""Marathon's REST API, the part a MarathonApp needs, and its leader from ZooKeeper.

The leader: Marathon 1.11 elects with a Curator LeaderLatch under `<zk path>/leader-curator`
(`ZookeeperConf.scala` zooKeeperLeaderCuratorUrl, `CuratorElectionService.scala`): each
contender holds an ephemeral sequential `_c_<uuid>-latch-NNNNNNNNNN` whose data is its
`host:port`; the lowest sequence leads. Asking the leader directly saves the followers'
proxy hop (`LeaderProxyFilter.scala`).

The calls: `GET/PUT/DELETE /v2/apps/{id}` (PUT creates or updates; `force=true` overrides
the lock a running deployment holds), `GET /v2/deployments`, `GET /v2/queue`,
`GET /v2/tasks`. HTTP credentials go in an Authorization header (httpx.BasicAuth), never
in the URL, and errors never quote a header or the credentials.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from kazoo.exceptions import ConnectionLoss, NoNodeError, SessionExpiredError

from orchestrator_operator.zk.clients import ZkUnreachable

LATCH_DIR = "leader-curator"
LATCH_PREFIX = "_c_"
LATCH_MARK = "-latch-"
MAX_ERROR_CHARS = 300
# GET /v2/apps/{id}: the tasks, counts, deployments and last failure beside the definition
# (Marathon's AppsResource embed parameters).
APP_EMBEDS = ("app.tasks", "app.counts", "app.deployments", "app.lastTaskFailure")


class MarathonError(Exception):
    """Marathon refused a call; the message names the call, the status and Marathon's
    own message (never the credentials)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MarathonUnreachable(MarathonError):
    """No answer (connection refused, timeout): the call may be retried."""


class MarathonLocked(MarathonError):
    """409: the app is locked by a running deployment (retry with force, or wait)."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # never the password, whatever prints it
        return f"Credentials(user={self.user!r}, password=***)"


def parse_credentials(text: str) -> Credentials:
    """`user:password` as Marathon's --http_credentials takes it (`(.+):(.+)`; Marathon's
    match is greedy, so the password is what follows the LAST colon: a password with ':'
    could never log in, and is refused here). ValueError never quotes the value."""
    value = text.strip()
    user, sep, password = value.rpartition(":")
    if not sep or not user or not password or "\n" in value:
        raise ValueError("expected one line user:password (no ':' in the password)")
    return Credentials(user, password)


def latch_sequence(name: str) -> int | None:
    if not name.startswith(LATCH_PREFIX) or LATCH_MARK not in name:
        return None
    suffix = name.rsplit(LATCH_MARK, 1)[1]
    return int(suffix) if suffix.isdigit() else None


def read_marathon_leader(client: Any, zk_path: str) -> str | None:
    """The leading Marathon's `host:port`, or None when no Marathon contends.
    A connection lost meanwhile raises ZkUnreachable."""
    latch = f"{zk_path.rstrip('/')}/{LATCH_DIR}"
    try:
        for _ in range(3):
            try:
                children = client.get_children(latch)
            except NoNodeError:
                return None
            ranked = sorted((s, c) for c in children if (s := latch_sequence(c)) is not None)
            if not ranked:
                return None
            try:
                data, _ = client.get(f"{latch}/{ranked[0][1]}")
            except NoNodeError:
                continue  # the leader just left; look again
            address = bytes(data or b"").decode("utf-8", "replace").strip()
            return address or None
        return None
    except (ConnectionLoss, SessionExpiredError) as error:
        raise ZkUnreachable(f"lost the ZooKeeper connection while reading {latch}") from error


def app_path(app_id: str) -> str:
    """`/v2/apps/<id>` with each segment quoted (ids are validated, this is belt and braces)."""
    return "/v2/apps/" + "/".join(quote(part, safe="") for part in app_id.strip("/").split("/"))


class MarathonClient:
    """One Marathon (the leader, normally). Thread-safe; reuse it (see `client_for`)."""

    def __init__(
        self, address: str, credentials: Credentials | None = None, timeout: float = 5.0
    ) -> None:
        base = address if "://" in address else f"http://{address}"
        self.base_url = base.rstrip("/")
        auth = httpx.BasicAuth(credentials.user, credentials.password) if credentials else None
        self._http = httpx.Client(
            base_url=self.base_url, auth=auth, timeout=timeout, follow_redirects=False
        )

    def close(self) -> None:
        self._http.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: list[tuple[str, str]] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        try:
            pairs: list[tuple[str, str | int | float | bool | None]] = list(params or [])
            query = httpx.QueryParams(pairs)
            response = self._http.request(method, path, json=body, params=query)
        except httpx.HTTPError as error:
            raise MarathonUnreachable(
                f"{method} {path} at {self.base_url}: {type(error).__name__}: {error}"
            ) from error
        if missing_ok and response.status_code == 404:
            return None
        if response.status_code >= 400:
            message = _message(response)
            text = f"{method} {path}: {response.status_code} {message}"
            if response.status_code == 409:
                raise MarathonLocked(text, 409)
            if response.status_code in (502, 503):  # a leader changing hands
                raise MarathonUnreachable(text, response.status_code)
            raise MarathonError(text, response.status_code)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as error:
            raise MarathonError(f"{method} {path}: not JSON: {response.text[:80]!r}") from error

    def get_app(self, app_id: str) -> dict[str, Any] | None:
        """The app with its tasks, counts and deployments; None when Marathon has none."""
        params = [("embed", embed) for embed in APP_EMBEDS]
        found = self._request("GET", app_path(app_id), params=params, missing_ok=True)
        if found is None:
            return None
        app = found.get("app") if isinstance(found, dict) else None
        if not isinstance(app, dict):
            raise MarathonError(f"GET {app_path(app_id)}: no app in the answer")
        return app

    def list_apps(self, embed: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        params = [("embed", item) for item in embed] or None
        found = self._request("GET", "/v2/apps", params=params) or {}
        return list(found.get("apps") or [])

    def put_app(self, app_id: str, definition: dict[str, Any], force: bool = False) -> str | None:
        """Create or update the app; the deployment id (None when nothing changed)."""
        params = [("force", "true")] if force else None
        answer = self._request("PUT", app_path(app_id), body=definition, params=params) or {}
        deployment = answer.get("deploymentId") if isinstance(answer, dict) else None
        return str(deployment) if deployment else None

    def create_app(self, definition: dict[str, Any]) -> dict[str, Any]:
        """POST /v2/apps (409 when it exists): what a plain Marathon client does."""
        return dict(self._request("POST", "/v2/apps", body=definition) or {})

    def delete_app(self, app_id: str, force: bool = False) -> bool:
        """False when Marathon had no such app."""
        params = [("force", "true")] if force else None
        gone = self._request("DELETE", app_path(app_id), params=params, missing_ok=True)
        return gone is not None

    def deployments(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/v2/deployments") or [])

    def queue(self) -> list[dict[str, Any]]:
        """The launch queue (apps waiting for offers, and their back-off delay)."""
        found = self._request("GET", "/v2/queue", missing_ok=True) or {}
        return list(found.get("queue") or [])

    def tasks(self, app_id: str | None = None) -> list[dict[str, Any]]:
        path = f"{app_path(app_id)}/tasks" if app_id else "/v2/tasks"
        found = self._request("GET", path, missing_ok=app_id is not None) or {}
        return list(found.get("tasks") or [])


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:MAX_ERROR_CHARS] or response.reason_phrase
    if isinstance(body, dict):
        text = str(body.get("message") or "")
        details = body.get("details")
        if details:
            text += f" {details}"
        return text[:MAX_ERROR_CHARS] or response.reason_phrase
    return str(body)[:MAX_ERROR_CHARS]


_CLIENTS: dict[tuple[str, Credentials | None], MarathonClient] = {}
_CLIENTS_LOCK = threading.Lock()
_MAX_CLIENTS = 256


def client_for(address: str, credentials: Credentials | None) -> MarathonClient:
    """A shared client per (address, credentials): connections are kept alive across the
    operator's ticks; a changed leader or password gets a new one."""
    key = (address, credentials)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            if len(_CLIENTS) >= _MAX_CLIENTS:
                _, oldest = next(iter(_CLIENTS.items()))
                _CLIENTS.pop(next(iter(_CLIENTS)))
                oldest.close()
            client = _CLIENTS[key] = MarathonClient(address, credentials)
        return client
