"""The leading Marathon, its apps with their tasks, and its event stream (I/O).

Marathon is found as the operator's observer finds it (operator/mesoscluster/observe.py):
the lowest member of its Curator leader latch, `<zk path>/leader-curator/
_c_<uuid>-latch-NNNNNNNNNN`, whose data is the leader's `host:port` (Marathon 1.11
CuratorElectionService.scala); or a fixed `--marathon` URL. Marathon's HTTP credentials
(`user:password`, its --http_credentials format) come from a file, never from argv.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

LATCH_DIR = "leader-curator"
LATCH_MARK = "-latch-"
MAX_APPS_BYTES = 64 * 1024 * 1024
MAX_EVENT_BYTES = 4 * 1024 * 1024
# The events the LB follows (Marathon's `event_type` filter, HttpEventStreamServlet.scala).
EVENT_TYPES = (
    "status_update_event",
    "health_status_changed_event",
    "deployment_info",
    "deployment_success",
    "deployment_failed",
    "deployment_step_success",
    "deployment_step_failure",
    "app_terminated_event",
    "api_post_event",
)
_ZK_URL = re.compile(r"^zk://(?:[^@/]+@)?(?P<hosts>[^/]+)(?P<path>/.*)$")


class MarathonUnavailable(RuntimeError):
    pass


def read_credentials(path: Path | None) -> httpx.BasicAuth | None:
    """`user:password` from a file (one line; the Secret key the operator mounts)."""
    if path is None:
        return None
    text = path.read_text("utf-8")[:4096].strip()
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise ValueError(f"{path}: Marathon credentials must be 'user:password'")
    return httpx.BasicAuth(user, password)


def parse_zk_url(url: str) -> tuple[str, str, tuple[str, str] | None]:
    """`zk://[user:password@]host:port[,host:port]/path` -> (hosts, path, digest auth);
    `file:///path` reads the URL from that file (as Mesos' flags do)."""
    if url.startswith("file://"):
        url = Path(url[len("file://") :]).read_text("utf-8")[:4096].strip()
    match = _ZK_URL.match(url)
    if not match:
        raise ValueError("the Marathon ZooKeeper URL must look like zk://host:port/path")
    auth = None
    netloc = urlsplit(url).netloc
    if "@" in netloc:
        user, _, password = netloc.split("@", 1)[0].partition(":")
        auth = (user, password)
    return match["hosts"], match["path"].rstrip("/"), auth


def latch_leader(children: list[str]) -> str | None:
    ranked = []
    for child in children:
        _, mark, sequence = child.rpartition(LATCH_MARK)
        if mark and sequence.isdigit():
            ranked.append((int(sequence), child))
    return min(ranked)[1] if ranked else None


class LeaderFinder:
    """The leading Marathon's URL from ZooKeeper (kept open), or a fixed URL."""

    def __init__(self, zk_url: str | None, url: str | None, scheme: str = "http") -> None:
        if (zk_url is None) == (url is None):
            raise ValueError("give exactly one of --marathon-zk and --marathon")
        self.url = url.rstrip("/") if url else None
        self.scheme = scheme
        self._zk: Any = None
        self._path = ""
        if zk_url is not None:
            from kazoo.client import KazooClient

            hosts, self._path, auth = parse_zk_url(zk_url)
            auth_data = [("digest", f"{auth[0]}:{auth[1]}")] if auth else None
            self._zk = KazooClient(hosts=hosts, auth_data=auth_data, read_only=True, timeout=10)

    def start(self) -> None:
        if self._zk is not None:
            self._zk.start(timeout=30)

    def stop(self) -> None:
        if self._zk is not None:
            self._zk.stop()
            self._zk.close()

    def leader(self) -> str:
        if self.url is not None:
            return self.url
        from kazoo.exceptions import KazooException

        latch = f"{self._path}/{LATCH_DIR}"
        try:
            leader = latch_leader(self._zk.get_children(latch))
            if leader is None:
                raise MarathonUnavailable(f"no Marathon leader in ZooKeeper at {latch}")
            data, _ = self._zk.get(f"{latch}/{leader}")
        except KazooException as error:
            raise MarathonUnavailable(f"ZooKeeper: {type(error).__name__} at {latch}") from None
        address = data.decode("utf-8", "replace").strip()
        if not re.match(r"^[A-Za-z0-9_.:-]+:\d+$", address):
            raise MarathonUnavailable(f"Marathon's leader latch holds {address[:100]!r}")
        return f"{self.scheme}://{address}"


class MarathonClient:
    def __init__(self, finder: LeaderFinder, auth: httpx.BasicAuth | None) -> None:
        self.finder = finder
        self.http = httpx.Client(auth=auth, timeout=httpx.Timeout(10.0), follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def apps(self) -> list[dict[str, Any]]:
        """Every app with its tasks (`/v2/apps?embed=apps.tasks`)."""
        base = self.finder.leader()
        try:
            response = self.http.get(f"{base}/v2/apps", params={"embed": "apps.tasks"})
        except httpx.HTTPError as error:
            raise MarathonUnavailable(f"GET {base}/v2/apps: {type(error).__name__}") from None
        if response.status_code != 200:
            raise MarathonUnavailable(f"GET {base}/v2/apps: HTTP {response.status_code}")
        if len(response.content) > MAX_APPS_BYTES:
            raise MarathonUnavailable(f"/v2/apps is larger than {MAX_APPS_BYTES} bytes")
        apps = response.json().get("apps")
        if not isinstance(apps, list):
            raise MarathonUnavailable("/v2/apps: no 'apps' list")
        return [a for a in apps if isinstance(a, dict)]

    def events(self) -> Iterator[dict[str, Any]]:
        """Marathon's event stream (server-sent events), until it ends or fails."""
        base = self.finder.leader()
        params: dict[str, list[str]] = {"event_type": list(EVENT_TYPES)}
        timeout = httpx.Timeout(10.0, read=None)
        with self.http.stream(
            "GET",
            f"{base}/v2/events",
            params=params,
            headers={"Accept": "text/event-stream"},
            timeout=timeout,
        ) as response:
            if response.status_code != 200:
                raise MarathonUnavailable(f"GET {base}/v2/events: HTTP {response.status_code}")
            data: list[str] = []
            size = 0
            for line in response.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                    size += len(line)
                    if size > MAX_EVENT_BYTES:
                        raise MarathonUnavailable("an event larger than 4 MiB")
                elif not line.strip() and data:
                    text, data, size = "\n".join(data), [], 0
                    try:
                        event = json.loads(text)
                    except ValueError:
                        log.warning("an event that is not JSON, skipped")
                        continue
                    if isinstance(event, dict):
                        yield event
