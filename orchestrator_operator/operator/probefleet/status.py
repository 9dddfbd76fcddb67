"""Pure: what a ProbeFleet's status says, given what the operator observed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator_operator.common.conditions import Condition, Verdict, merge_conditions
from orchestrator_operator.models.vocabulary import ConditionType, Reason, WorkloadPhase


@dataclass(frozen=True)
class FleetObservation:
    probes_desired: int
    probes_ready: int
    app_desired: int
    app_ready: int
    app_url: str
    reporting: int | None  # probes the app has an unexpired report from; None: app unreachable
    app_error: str | None = None


def conditions_for(obs: FleetObservation) -> dict[str, Verdict]:
    app = (
        (True, Reason.READY, f"{obs.app_ready}/{obs.app_desired} app replicas ready")
        if obs.app_ready >= 1
        else (False, Reason.NOT_READY, f"{obs.app_ready}/{obs.app_desired} app replicas ready")
    )
    if obs.probes_desired == 0:
        probes: Verdict = (
            False, Reason.NONE_SCHEDULED, "no node runs a probe (check the nodeSelector)",
        )  # fmt: skip
    else:
        probes = (
            obs.probes_ready == obs.probes_desired,
            Reason.READY if obs.probes_ready == obs.probes_desired else Reason.NOT_READY,
            f"{obs.probes_ready}/{obs.probes_desired} probe pods ready",
        )
    if obs.reporting is None:
        reporting: Verdict = (
            None, Reason.APP_UNREACHABLE,
            f"cannot ask the app at {obs.app_url}: {obs.app_error or 'no answer'}",
        )  # fmt: skip
    else:
        enough = obs.reporting >= obs.probes_desired > 0
        reporting = (
            enough,
            Reason.ALL_REPORTING if enough else Reason.MISSING,
            f"{obs.reporting} of {obs.probes_desired} expected probes reporting",
        )
    return {
        ConditionType.APP_READY: app,
        ConditionType.PROBES_READY: probes,
        ConditionType.PROBES_REPORTING: reporting,
    }


def build_fleet_status(
    obs: FleetObservation, generation: int | None, previous: list[Condition] | None, now: str
) -> dict[str, Any]:
    computed = conditions_for(obs)
    conditions = merge_conditions(previous, computed, generation, now)
    oks = [ok for ok, _, _ in computed.values()]
    if all(ok is True for ok in oks):
        phase = WorkloadPhase.READY
    elif (
        computed[ConditionType.APP_READY][0]
        and computed[ConditionType.PROBES_READY][0]
        and oks[2] is False
    ):
        phase = WorkloadPhase.DEGRADED  # everything runs, yet probes are not getting through
    else:
        phase = WorkloadPhase.PROGRESSING
    return {
        "phase": phase,
        "conditions": conditions,
        "probesExpected": obs.probes_desired,
        "probesReporting": obs.reporting,
        "appReady": obs.app_ready >= 1,
    }
