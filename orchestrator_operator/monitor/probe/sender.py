"""Report sender: gzip-compressed JSON POSTs with a bearer token, exponential backoff with
jitter, and only ever the newest report held (older unsent ones are dropped)."""

from __future__ import annotations

import gzip
import logging
import random

import aiohttp

from orchestrator_operator.common.tls import ReloadingTls

log = logging.getLogger(__name__)


class Backoff:
    """Exponential backoff with full jitter: delay() grows until reset()."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.failures = 0

    def delay(self) -> float:
        ceiling = min(self.maximum, self.initial * self.factor**self.failures)
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


class SendError(RuntimeError):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def compress(body: bytes, level: int = 5) -> bytes:
    return gzip.compress(body, compresslevel=level, mtime=0)


class ReportSender:
    def __init__(
        self, app_url: str, token: str, timeout: float = 10.0, tls: ReloadingTls | None = None
    ) -> None:
        self.url = app_url.rstrip("/") + "/api/report"
        self.token = token
        self.tls = tls  # None: aiohttp's default (the system's CAs for https://)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed = 0
        self.bytes_sent = 0

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def send(self, body: bytes) -> None:
        """POST one encoded report; raises SendError on any failure."""
        payload = compress(body)
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        session = await self._get_session()
        try:
            ssl_context = self.tls.current() if self.tls is not None else True
            async with session.post(
                self.url, data=payload, headers=headers, ssl=ssl_context
            ) as resp:
                if resp.status >= 300:
                    text = (await resp.text())[:300]
                    self.failed += 1
                    raise SendError(f"app answered {resp.status}: {text}", resp.status)
        except aiohttp.ClientError as exc:
            self.failed += 1
            raise SendError(f"cannot reach {self.url}: {exc}") from exc
        except TimeoutError as exc:
            self.failed += 1
            raise SendError(f"timed out sending to {self.url}") from exc
        self.sent += 1
        self.bytes_sent += len(payload)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
