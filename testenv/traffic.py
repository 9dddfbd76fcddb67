"""A steady client load through a load balancer and the traffic share per backend version,
for the load-balancer and MarathonApp strategy tests (docs/loadbalancer.md, "Testing").

    with SteadyLoad("http://127.44.0.1:10001/") as load:
        ...  # scale, roll, shift weights
    assert load.failures() == [], load.summary()

    shares = measure_shares("http://127.44.0.1:10001/", requests=1000)
    assert abs(shares["/web-canary"] - 0.10) <= 0.05

Each answer's body (stripped) names who answered: the tasks run testenv/echo_server.py with
`--text $MARATHON_APP_ID` (`echo_command`), so the body is the Marathon app id.
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ECHO_SERVER = Path(__file__).resolve().parent / "echo_server.py"


def echo_command(text: str = "$MARATHON_APP_ID", error_rate: float = 0.0) -> str:
    """A Marathon app `cmd` serving HTTP on its first port ($PORT0) and answering `text`."""
    extra = f" --error-rate {error_rate}" if error_rate else ""
    return f'exec {sys.executable} {ECHO_SERVER} --port "$PORT0" --text "{text}"{extra}'


def echo_app(app_id: str, port: int, *, version: str, cmd: str | None = None) -> dict[str, Any]:
    """Two instances of the echo server answering its app id, on the group's port `port`;
    HTTP health checks every second; Marathon kills with SIGTERM and 2 s before SIGKILL."""
    return {
        "id": app_id,
        "cmd": cmd or echo_command(),
        "cpus": 0.05,
        "mem": 32,
        "instances": 2,
        "env": {"VERSION": version},
        "portDefinitions": [{"port": port, "protocol": "tcp", "name": "http"}],
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": str(port)},
        "healthChecks": [
            {
                "protocol": "HTTP",
                "path": "/health",
                "portIndex": 0,
                "gracePeriodSeconds": 10,
                "intervalSeconds": 1,
                "timeoutSeconds": 1,
                "maxConsecutiveFailures": 2,
            }
        ],
        "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
        "taskKillGracePeriodSeconds": 2,
    }


@dataclass(frozen=True)
class Result:
    at: float
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)
    who: str
    error: str = ""


def _client(verify: ssl.SSLContext | bool, timeout: float) -> httpx.Client:
    # A new connection per request would measure connection set-up; keep-alive instead, as
    # browsers and services do (HAProxy balances each request of a connection).
    return httpx.Client(verify=verify, timeout=timeout)


class SteadyLoad:
    """`clients` threads sending GETs back to back (with `pause` seconds between a thread's
    requests) until stopped; every answer recorded."""

    def __init__(
        self,
        url: str,
        *,
        clients: int = 4,
        pause: float = 0.005,
        headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.clients = clients
        self.pause = pause
        self.headers = dict(headers or {})
        self.verify = verify
        self.timeout = timeout
        self.results: list[Result] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        for n in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"load-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        with _client(self.verify, self.timeout) as client:
            while not self._halt.is_set():
                result = request_once(client, self.url, self.headers)
                with self._lock:
                    self.results.append(result)
                if self.pause:
                    self._halt.wait(self.pause)

    def count(self) -> int:
        with self._lock:
            return len(self.results)

    def wait_for_requests(self, count: int, timeout: float = 120.0) -> None:
        """Block until `count` more requests have been answered (or failed)."""
        target = self.count() + count
        deadline = time.monotonic() + timeout
        while self.count() < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count()} of {target} requests after {timeout} s")
            time.sleep(0.05)

    def failures(self) -> list[Result]:
        """Requests without a 2xx answer."""
        with self._lock:
            return [r for r in self.results if r.status is None or not 200 <= r.status < 300]

    def shares(self, since: float = 0.0) -> dict[str, float]:
        with self._lock:
            return shares_of([r for r in self.results if r.at >= since])

    def measure(self, requests: int = 1000) -> tuple[dict[str, float], int]:
        """Who answered which share of the 2xx answers while `requests` more were sent to this
        load's URL, counting the load's own answers in that window with them, and how many
        answers that was. Round robin hands out servers in a fixed cycle, and closed-loop
        clients of equal latency fall into step with it, so one client's answers can keep
        landing on the same servers; all the requests of the window show the true split."""
        since = time.monotonic()
        extra = measure_shares(
            self.url, requests, headers=self.headers, verify=self.verify, clients=self.clients
        )
        with self._lock:
            window = [r for r in self.results if r.at >= since]
        answered = Counter(r.who for r in window if r.status is not None and 200 <= r.status < 300)
        total = sum(answered.values()) + requests
        who = set(answered) | set(extra)
        return {w: (answered[w] + extra.get(w, 0.0) * requests) / total for w in who}, total

    def summary(self) -> str:
        with self._lock:
            results = list(self.results)
        failed = [r for r in results if r.status is None or not 200 <= r.status < 300]
        kinds = Counter(f"{r.status} {r.error}".strip() for r in failed)
        who = Counter(r.who for r in results)
        return (
            f"{len(results)} requests, {len(failed)} failed {dict(kinds)}; answered by {dict(who)}"
        )


def request_once(client: httpx.Client, url: str, headers: Mapping[str, str]) -> Result:
    try:
        response = client.get(url, headers=dict(headers))
    except httpx.HTTPError as error:
        return Result(time.monotonic(), None, "", type(error).__name__)
    return Result(time.monotonic(), response.status_code, response.text.strip()[:200])


def shares_of(results: list[Result]) -> dict[str, float]:
    """Who answered -> the fraction of the 2xx answers."""
    answered = Counter(r.who for r in results if r.status is not None and 200 <= r.status < 300)
    total = sum(answered.values())
    return {who: n / total for who, n in answered.items()} if total else {}


def measure_shares(
    url: str,
    requests: int = 1000,
    *,
    headers: Mapping[str, str] | None = None,
    verify: ssl.SSLContext | bool = False,
    clients: int = 4,
) -> dict[str, float]:
    """Send `requests` GETs (from `clients` threads) and return who answered which share
    of the successful ones; a failed request raises AssertionError with the tally."""
    results: list[Result] = []
    lock = threading.Lock()
    per_client = [
        requests // clients + (1 if n < requests % clients else 0) for n in range(clients)
    ]

    def run(count: int) -> None:
        with _client(verify, 10.0) as client:
            for _ in range(count):
                result = request_once(client, url, headers or {})
                with lock:
                    results.append(result)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in per_client]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in results if r.status is None or not 200 <= r.status < 300]
    if failed:
        kinds = Counter(f"{r.status} {r.error}".strip() for r in failed)
        raise AssertionError(f"{len(failed)} of {len(results)} requests failed: {dict(kinds)}")
    return shares_of(results)
