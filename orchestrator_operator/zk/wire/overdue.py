"""Waiting for a reply that is overdue: ask the same session something cheap.

Measured on two ZooKeeper 3.8 ensembles at 1,000 changes/s: now and then (about one
20-second run in five) the reply to one of the engine's requests came only after 3.0-3.5 s,
the ping interval of a 10 s session, although the request had left at once. With a
cheap request (``exists /``) sent on the same session when a reply was 250 ms late, the
late reply came 3 ms after it; waking kazoo's connection loop without sending anything
did not help (the reply came 3 s later), so the reply was held by the server. So when a
reply is overdue (OVERDUE_AFTER) the engine sends such a request, and again with growing
gaps while it keeps waiting; they cost the server next to nothing and their answers are
ignored.
"""

from __future__ import annotations

import time
from typing import Any

from kazoo.handlers.threading import KazooTimeoutError

# Seconds without a reply before the first nudge: above most replies' time on a busy
# machine, short enough that a held reply costs little (a nudge is one cheap read).
OVERDUE_AFTER = 0.05
NUDGE_GAP_MAX = 2.0


def get_reply(client: Any, result: Any, timeout: float) -> Any:
    """``result.get(timeout)`` for a request sent on ``client``'s session, nudging the
    session while the reply is overdue. Raises what ``get`` raises (KazooTimeoutError
    once ``timeout`` has passed)."""
    deadline = time.monotonic() + timeout
    wait = OVERDUE_AFTER
    while True:
        left = deadline - time.monotonic()
        try:
            return result.get(timeout=max(0.0, min(wait, left)))
        except KazooTimeoutError:
            if time.monotonic() >= deadline:
                raise
        client.exists_async("/")
        wait = min(2 * wait, NUDGE_GAP_MAX)
