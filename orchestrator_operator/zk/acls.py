"""ACLs of many znodes: pipelined getACL on a raw session, kazoo for small batches.

Each ACL is checked against the data read it belongs to: an ACL from another incarnation
of the znode (czxid differs) or older than the data's stat (aversion lower: the raw
session's server was behind) is read again through the kazoo session.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.protocol.states import ZnodeStat

from orchestrator_operator.zk.model import Acl, acl_from_kazoo, redacted_ids
from orchestrator_operator.zk.wire.rawsession import RawSession, RawSessionError, get_acls, servers

log = logging.getLogger(__name__)

RAW_MIN = 200  # fewer ACLs than this go through kazoo (a session costs two quorum writes)
# One session's requests are served one at a time, so a big batch is split over several
# sessions spread over the servers (measured: 13k ACLs/s with one, 32k/s with 9 on 3).
RAW_SESSIONS_MAX = 9
PATHS_PER_SESSION = 1000
KAZOO_WINDOW = 500
UNREADABLE_ACL = "not authorized to read its ACL"
REDACTED_ACL = (
    "its ACL reads redacted ({ids}): the engine's credentials lack ADMIN on it, and a copy"
    " would lock that user out; give the engine a digest user with ADMIN (or the super user)"
)

# path -> (ACL, ACL version), a reason it is unreadable, or None when the znode is gone
AclOutcome = tuple[Acl, int] | str | None


class AclReader:
    """Opened once per bulk read; the raw session, if any, is made on first need."""

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self._raw: list[RawSession] = []
        self._raw_failed = False

    def __enter__(self) -> AclReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for session in self._raw:
            session.close()
        self._raw = []

    def read(self, items: Sequence[tuple[str, ZnodeStat]]) -> dict[str, AclOutcome]:
        """The ACL of each (path, stat of its data read)."""
        out: dict[str, AclOutcome] = {}
        again: list[str] = []
        results = self._read_raw([p for p, _ in items]) if len(items) >= RAW_MIN else None
        if results is None:
            again = [p for p, _ in items]
        else:
            for (path, stat), res in zip(items, results, strict=True):
                if isinstance(res, NoAuthError):
                    out[path] = UNREADABLE_ACL
                elif isinstance(res, Exception):
                    again.append(path)  # NoNode on a server behind ours, or any other error
                elif res[1].czxid != stat.czxid or res[1].aversion < stat.aversion:
                    again.append(path)
                else:
                    out[path] = _checked(res[0], int(res[1].aversion))
        out.update(self._read_kazoo(again))
        return out

    def _read_raw(self, paths: list[str]) -> list[Any] | None:
        if self._raw_failed:
            return None
        try:
            self._open_sessions(min(RAW_SESSIONS_MAX, max(1, len(paths) // PATHS_PER_SESSION)))
            return get_acls(self._raw, self.client, paths)
        except RawSessionError as exc:
            log.warning("raw session for ACL reads failed (%s): using kazoo", exc)
            self.close()
            self._raw_failed = True
            return None

    def _open_sessions(self, wanted: int) -> None:
        """Up to ``wanted`` sessions: the first on any server (required), the others
        round-robin over the servers, the kazoo client's first (optional: a server that is
        down or behind is skipped)."""
        if not self._raw:
            self._raw.append(RawSession.open(self.client, timeout=self.timeout))
        hosts = servers(self.client)
        attempts = 0
        while len(self._raw) < wanted and attempts < 2 * wanted:
            attempts += 1
            host = hosts[attempts % len(hosts)] if hosts else ("", 0)
            try:
                self._raw.append(RawSession.open(self.client, self.timeout, only=host))
            except RawSessionError as exc:
                log.info("no extra raw session on %s:%d (%s)", *host, exc)

    def _read_kazoo(self, paths: list[str]) -> dict[str, AclOutcome]:
        out: dict[str, AclOutcome] = {}
        for start in range(0, len(paths), KAZOO_WINDOW):
            chunk = paths[start : start + KAZOO_WINDOW]
            pending = [(p, self.client.get_acls_async(p)) for p in chunk]
            for path, res in pending:
                try:
                    acl, stat = res.get(timeout=self.timeout)
                except NoNodeError:
                    out[path] = None
                    continue
                except NoAuthError:
                    out[path] = UNREADABLE_ACL
                    continue
                out[path] = _checked(acl_from_kazoo(acl), int(stat.aversion))
        return out


def _checked(acl: Acl, aversion: int) -> AclOutcome:
    """The ACL as read, or why it cannot be copied (redacted digest ids)."""
    redacted = redacted_ids(acl)
    if redacted:
        return REDACTED_ACL.format(ids=", ".join(redacted))
    return acl, aversion
