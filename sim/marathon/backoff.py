"""Marathon's launch back-off (pure): the delay before an app's next task launch.

Marathon 1.11 `core/launchqueue/impl/RateLimiter.scala`: the first failure of an app's
configuration sets a delay of `backoffSeconds` (at most `maxLaunchDelaySeconds`) from that
moment; each further one multiplies the current delay by `backoffFactor`, capped at
`maxLaunchDelaySeconds`, again from that moment; a delay whose reference time is more than
`maxLaunchDelaySeconds` ago is dropped (`cleanUpOverdueDelays`). Delays are kept per app and
configuration (`RunSpecConfigRef`: id and lastConfigChangeAt), so a new configuration starts
without one and a scale does not reset it.
`core/task/update/impl/steps/NotifyRateLimiterStepImpl.scala`: a task becoming Failed, Error,
Finished (or Gone, Dropped) adds to the delay; becoming Staging, Starting or Running (or
Provisioned) `advances` it (the same delay from now); Killed and Unreachable do neither.
`core/launchqueue/LaunchStats.scala` `queueDelay`: `timeLeftSeconds` (whole seconds, >= 0) and
`overdue` (no delay, or its deadline passed). `api/v2/QueueResource.scala`:
`DELETE /v2/queue/{app}/delay` resets it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LIMIT_WORTHY = frozenset(
    {"TASK_FAILED", "TASK_ERROR", "TASK_FINISHED", "TASK_GONE", "TASK_DROPPED"}
)


@dataclass
class Delay:
    reference: float
    current: float
    max_delay: float

    @property
    def deadline(self) -> float:
        return self.reference + self.current


def config_ref(app: dict[str, Any]) -> tuple[str, str]:
    info = app.get("versionInfo") or {}
    return str(app["id"]), str(info.get("lastConfigChangeAt") or app.get("version") or "")


class RateLimiter:
    def __init__(self) -> None:
        self.delays: dict[tuple[str, str], Delay] = {}

    def add(self, app: dict[str, Any], now: float) -> float:
        backoff = float(app.get("backoffSeconds", 1))
        factor = float(app.get("backoffFactor", 1.15))
        max_delay = float(app.get("maxLaunchDelaySeconds", 300))
        key = config_ref(app)
        old = self.delays.get(key)
        if old is None:
            delay = Delay(now, min(backoff, max_delay), max_delay)
        else:
            delay = Delay(now, min(old.current * factor, max_delay), max_delay)
        self.delays[key] = delay
        return delay.deadline

    def advance(self, app: dict[str, Any], now: float) -> None:
        key = config_ref(app)
        old = self.delays.get(key)
        if old is not None:
            self.delays[key] = Delay(now, old.current, old.max_delay)

    def reset(self, app: dict[str, Any]) -> bool:
        return self.delays.pop(config_ref(app), None) is not None

    def clean_up(self, now: float) -> None:
        for key, delay in list(self.delays.items()):
            if now > delay.reference + delay.max_delay:
                del self.delays[key]

    def deadline(self, app: dict[str, Any]) -> float:
        delay = self.delays.get(config_ref(app))
        return 0.0 if delay is None else delay.deadline

    def forget(self, app_id: str) -> None:
        for key in [k for k in self.delays if k[0] == app_id]:
            del self.delays[key]

    def queue_delay(self, app: dict[str, Any], now: float) -> dict[str, Any]:
        delay = self.delays.get(config_ref(app))
        if delay is None:
            return {"timeLeftSeconds": 0, "overdue": True}
        left = delay.deadline - now
        return {"timeLeftSeconds": max(0, int(left)), "overdue": int(left) < 0}
