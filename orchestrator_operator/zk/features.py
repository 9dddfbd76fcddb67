"""What the server behind a kazoo client can do, probed once per client."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from orchestrator_operator.zk.wire.rawsession import RawSession, RawSessionError

log = logging.getLogger(__name__)

_multi_read: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def has_multi_read(client: Any) -> bool:
    """True when the ensemble answers multiRead (ZooKeeper >= 3.6), probed on a separate
    short session (an older server may drop the connection of an unknown request). A
    failed probe answers False without remembering it, so the next read probes again."""
    with _lock:
        known = _multi_read.get(client)
    if known is not None:
        return known
    try:
        with RawSession.open(client) as raw:
            supported = raw.has_multi_read()
    except RawSessionError as exc:
        log.warning("cannot probe ZooKeeper for multiRead (%s): one request per znode", exc)
        return False
    if not supported:
        log.warning(
            "ZooKeeper at %s has no multiRead (ZooKeeper >= 3.6): bulk reads send one "
            "request per znode (several times slower)",
            ",".join(f"{h}:{p}" for h, p in client.hosts),
        )
    set_multi_read(client, supported)
    return supported


def set_multi_read(client: Any, supported: bool) -> None:
    """Record (or, in tests, force) whether ``client``'s ensemble has multiRead."""
    with _lock:
        _multi_read[client] = supported
