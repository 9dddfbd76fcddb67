"""get_reply: an overdue reply gets the session nudged with a cheap request, with growing
gaps, until it comes or the timeout passes (no server: a fake result and client)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from kazoo.handlers.threading import KazooTimeoutError

from orchestrator_operator.zk.wire import overdue
from orchestrator_operator.zk.wire.overdue import get_reply


@dataclass
class LateResult:
    """Answers once ``nudges_needed`` nudges were sent (as the server did, measured)."""

    client: NudgeCounter
    nudges_needed: int
    waits: list[float] = field(default_factory=list)

    def get(self, timeout: float | None = None) -> Any:
        assert timeout is not None
        self.waits.append(timeout)
        if self.client.nudges >= self.nudges_needed:
            return "reply"
        time.sleep(timeout)
        raise KazooTimeoutError()


@dataclass
class NudgeCounter:
    nudges: int = 0

    def exists_async(self, path: str) -> None:
        assert path == "/"
        self.nudges += 1


def test_a_prompt_reply_sends_no_nudge() -> None:
    client = NudgeCounter()
    assert get_reply(client, LateResult(client, 0), timeout=5) == "reply"
    assert client.nudges == 0


def test_an_overdue_reply_is_nudged_with_growing_gaps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overdue, "OVERDUE_AFTER", 0.01)
    client = NudgeCounter()
    result = LateResult(client, nudges_needed=3)
    assert get_reply(client, result, timeout=5) == "reply"
    assert client.nudges == 3
    assert result.waits[:3] == [0.01, 0.02, 0.04]


def test_gives_up_at_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overdue, "OVERDUE_AFTER", 0.01)
    client = NudgeCounter()
    t0 = time.monotonic()
    with pytest.raises(KazooTimeoutError):
        get_reply(client, LateResult(client, nudges_needed=10**6), timeout=0.2)
    assert 0.2 <= time.monotonic() - t0 < 1.0
    assert client.nudges >= 3
