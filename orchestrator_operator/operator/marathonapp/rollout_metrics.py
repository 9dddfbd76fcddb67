"""A MarathonApp's rollout phase as a Prometheus series (what the MarathonAppCanaryRolledBack and
MarathonAppDeploymentStuck alerts and the dashboard's row read).

`orchestrator_marathonapp_rollout_phase{namespace, name, phase}` is 1 for the phase in
`status.rollout.phase` and 0 for every other RolloutPhase, for every MarathonApp (a rolling
app, with no rollout, has all zeros), so the alerts' expressions read live series. It follows
the watch's events (any change of the object, status included), so it is current whoever
wrote the status (strategy.py writes status.rollout); a deleted app's series go.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kopf
from prometheus_client import Gauge

from orchestrator_operator.models import API_GROUP, API_VERSION
from orchestrator_operator.models.vocabulary import RolloutPhase

ROLLOUT_PHASE = Gauge(
    "orchestrator_marathonapp_rollout_phase",
    "1 for the MarathonApp's rollout phase (status.rollout.phase: Idle, Progressing, Paused,"
    " Analyzing, Promoted, RolledBack, Aborted), 0 for the others; all 0 without a rollout.",
    ["namespace", "name", "phase"],
)
PHASES = tuple(str(phase.value) for phase in RolloutPhase)


def export(namespace: str, name: str, status: Any) -> None:
    rollout = status.get("rollout") if isinstance(status, dict) else None
    current = rollout.get("phase") if isinstance(rollout, dict) else None
    for phase in PHASES:
        ROLLOUT_PHASE.labels(namespace, name, phase).set(1 if phase == current else 0)


def forget(namespace: str, name: str) -> None:
    for phase in PHASES:
        with contextlib.suppress(KeyError):
            ROLLOUT_PHASE.remove(namespace, name, phase)


@kopf.on.event(API_GROUP, API_VERSION, "marathonapps")
def rollout_changed(event: kopf.RawEvent, **_: Any) -> None:
    # named *_changed: its routine successes are logged at DEBUG (common/logs.py)
    body = event.get("object") or {}
    meta = body.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    if not name:
        return
    if event.get("type") == "DELETED":
        forget(namespace, name)
    else:
        export(namespace, name, body.get("status") or {})
