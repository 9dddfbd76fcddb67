"""Pure: the Marathon app a MarathonApp asks for, what differs in Marathon (drift), and what
its status says given what the operator observed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator_operator.common.conditions import Condition, Verdict, merge_conditions
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.models.vocabulary import ConditionType, Reason, WorkloadPhase
from orchestrator_operator.operator.marathonapp.readiness import assess

# Fields of the spec that are the operator's, not Marathon's.
_NOT_SENT = {"privileged", "parameters"}
# Maps compared whole: a key added in Marathon is drift too.
_EXACT_MAPS = {"env", "labels"}
# A port of 0 asks Marathon to pick one: any value it picked matches.
_PICKED_PORTS = {"port", "servicePort", "hostPort"}
_ABSENT = object()
# Fields inside the container, port mappings and volumes whose absence from Marathon's
# answer means Marathon's default (its RAML: docker.forcePullImage false, portMappings[].protocol
# "tcp", containerPort 0, volumes[].mode "RW", the legacy docker.network HOST): the same as
# sending the default, not drift (an app created by hand, then imported, is adopted as is).
_MARATHON_DEFAULTS: dict[str, Any] = {
    "forcePullImage": False,
    "protocol": "tcp",
    "containerPort": 0,
    "mode": "RW",
    "network": "HOST",
}
# A launch delayed longer than this (Marathon's back-off after failed tasks) is flapping.
FLAPPING_DELAY_SECONDS = 0.0


def desired_instances(spec: MarathonAppSpec, status: Mapping[str, Any]) -> int:
    """spec.app.instances, or with spec.autoscaling the autoscaler's decision
    (status.autoscaling.desiredInstances) clamped to min/max."""
    scaling = spec.autoscaling
    if scaling is None:
        return spec.app.instances
    decided = (status.get("autoscaling") or {}).get("desiredInstances")
    wanted = spec.app.instances if not isinstance(decided, int) else decided
    return max(scaling.min_instances, min(scaling.max_instances, wanted))


def app_definition(spec: MarathonAppSpec, env: Mapping[str, str], instances: int) -> dict[str, Any]:
    """The Marathon JSON for PUT /v2/apps/{id}: the spec's app with the Secret values of
    `env` (name -> value) in place of their secretKeyRefs, and `instances`."""
    body = spec.app.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["id"] = spec.app.id
    body["instances"] = instances
    docker = (body.get("container") or {}).get("docker")
    if isinstance(docker, dict):
        for key in _NOT_SENT:
            docker.pop(key, None)
    if spec.app.env is not None:
        body["env"] = {
            name: value if isinstance(value, str) else env[name]
            for name, value in spec.app.env.items()
        }
    return body


def _same(desired: Any, actual: Any, key: str | None = None) -> bool:
    if isinstance(desired, bool) or isinstance(actual, bool):
        return bool(desired == actual)
    if isinstance(desired, int | float) and isinstance(actual, int | float):
        if key in _PICKED_PORTS and desired == 0:
            return True
        return math.isclose(float(desired), float(actual), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return False
        if key in _EXACT_MAPS:
            return set(desired) == set(actual) and all(
                _same(v, actual[k]) for k, v in desired.items()
            )
        return all(
            _same(v, actual[k], k) if k in actual else _MARATHON_DEFAULTS.get(k, _ABSENT) == v
            for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(_same(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)


def drift_fields(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> list[str]:
    """The app's top-level fields whose value in Marathon differs from what the operator
    sends (fields it does not send are Marathon's own, and never drift)."""
    return sorted(
        key
        for key, value in desired.items()
        if key != "id" and not _same(value, actual.get(key), key if key in _EXACT_MAPS else None)
    )


def only_instances_differ(fields: Iterable[str]) -> bool:
    return set(fields) == {"instances"}


@dataclass(frozen=True)
class MarathonObservation:
    """What the operator learned about the app from the leading Marathon, or why not."""

    app_id: str
    app: Mapping[str, Any] | None = None  # None: Marathon has no such app
    deployment: Mapping[str, Any] | None = None  # the running deployment of the app
    queue_entry: Mapping[str, Any] | None = None  # the app's entry in /v2/queue
    problem: tuple[str, str] | None = None  # (Reason, message): no observation possible
    drift: list[str] = field(default_factory=list)
    drift_reverted_at: str | None = None
    relaunches: int = 0


def _steps(deployment: Mapping[str, Any]) -> list[str]:
    steps = []
    for step in deployment.get("steps") or []:
        actions = step.get("actions") if isinstance(step, Mapping) else None
        steps.append(
            ", ".join(
                f"{a.get('action', '?')} {a.get('app', '')}".strip()
                for a in actions or []
                if isinstance(a, Mapping)
            )
        )
    return steps


def launch_delay(queue_entry: Mapping[str, Any] | None) -> float | None:
    """Seconds Marathon still waits before it launches the app's next task (its back-off
    after failures), from /v2/queue's `delay.timeLeftSeconds`."""
    if not queue_entry:
        return None
    delay = queue_entry.get("delay") or {}
    left = delay.get("timeLeftSeconds") if isinstance(delay, Mapping) else None
    return float(left) if isinstance(left, int | float) else None


def marathon_state(obs: MarathonObservation, instances: int) -> dict[str, Any]:
    app = obs.app or {}
    deployment = obs.deployment
    delay = launch_delay(obs.queue_entry)
    return {
        "appId": obs.app_id,
        "version": app.get("version"),
        "instances": app.get("instances", instances if obs.app else None),
        "staged": int(app.get("tasksStaged") or 0),
        "running": int(app.get("tasksRunning") or 0),
        "healthy": int(app.get("tasksHealthy") or 0),
        "unhealthy": int(app.get("tasksUnhealthy") or 0),
        "relaunches": obs.relaunches,
        "flapping": delay is not None and delay > FLAPPING_DELAY_SECONDS,
        "deployment": (
            {
                "id": str(deployment.get("id")),
                "currentStep": int(deployment.get("currentStep") or 0),
                "totalSteps": int(deployment.get("totalSteps") or 0),
                "steps": _steps(deployment),
            }
            if deployment
            else None
        ),
        "launchDelaySeconds": delay,
    }


def needed_available(spec: MarathonAppSpec, instances: int) -> int:
    """Instances that must be up for the app to be Available: its upgrade strategy's
    minimumHealthCapacity share (at least one)."""
    share = spec.app.upgrade_strategy.minimum_health_capacity
    return max(1, math.ceil(instances * share - 1e-9))


def conditions_for(
    spec: MarathonAppSpec,
    obs: MarathonObservation,
    state: Mapping[str, Any],
    instances: int,
    strategy_available: bool = False,
) -> dict[str, Verdict]:
    if obs.problem is not None:
        reason, message = obs.problem
        unknown = reason in (Reason.MARATHON_UNREACHABLE,)
        return {
            ConditionType.AVAILABLE: (None if unknown else False, reason, message),
            ConditionType.PROGRESSING: (None if unknown else False, reason, message),
            ConditionType.DEGRADED: (True, reason, message),
        }
    checked = bool(spec.app.health_checks)
    up = int(state["healthy"] if checked else state["running"])
    word = "healthy" if checked else "running"
    if obs.app is None:
        available: Verdict = (False, Reason.INSTANCES_UNAVAILABLE, "the app is not in Marathon")
    elif instances == 0:
        available = (True, Reason.SCALED_TO_ZERO, "scaled to 0 instances")
    else:
        needed = needed_available(spec, instances)
        available = (
            up >= needed,
            Reason.MINIMUM_INSTANCES_HEALTHY if up >= needed else Reason.INSTANCES_UNAVAILABLE,
            f"{up} of {instances} instances {word} (at least {needed} needed)",
        )
    deployment = state.get("deployment")
    if deployment:
        steps = deployment.get("steps") or []
        current = int(deployment.get("currentStep") or 0)
        doing = steps[current - 1] if 0 < current <= len(steps) else ""
        progressing: Verdict = (
            True,
            Reason.DEPLOYING,
            f"deployment {deployment['id']} at step {current} of"
            f" {deployment.get('totalSteps', len(steps))}" + (f": {doing}" if doing else ""),
        )
    elif obs.app is None:
        progressing = (True, Reason.DEPLOYING, "creating the app in Marathon")
    else:
        progressing = (
            False,
            Reason.DEPLOYED,
            f"version {state.get('version')} deployed, {state['running']} of {instances}"
            " instances running",
        )
    if spec.strategy.type != "rolling" and not strategy_available:
        progressing = (
            True,
            Reason.STRATEGY_PENDING,
            f"strategy {spec.strategy.type} is not available in this operator yet:"
            " rolled out as rolling (Marathon's upgrade strategy)",
        )
    if state.get("flapping"):
        degraded: Verdict = (
            True,
            Reason.FLAPPING,
            f"tasks keep failing: Marathon delays the next launch by"
            f" {state.get('launchDelaySeconds') or 0:.0f} s ({state['relaunches']} relaunches"
            " seen)",
        )
    elif int(state.get("unhealthy") or 0) > 0:
        degraded = (True, Reason.UNHEALTHY, f"{state['unhealthy']} instances unhealthy")
    elif obs.drift and spec.drift == "Report":
        degraded = (
            True,
            Reason.DRIFT_REPORTED,
            "Marathon runs something else than the spec (drift: Report): " + ", ".join(obs.drift),
        )
    else:
        degraded = (False, Reason.HEALTHY, "no failing or unhealthy instances")
    return {
        ConditionType.AVAILABLE: available,
        ConditionType.PROGRESSING: progressing,
        ConditionType.DEGRADED: degraded,
    }


def phase_of(verdicts: Mapping[str, Verdict]) -> WorkloadPhase:
    if verdicts[ConditionType.DEGRADED][0] is True:
        return WorkloadPhase.DEGRADED
    if verdicts[ConditionType.AVAILABLE][0] is True and verdicts[ConditionType.PROGRESSING][0] in (
        False,
        None,
    ):
        return WorkloadPhase.READY
    return WorkloadPhase.PROGRESSING


def build_status(
    spec: MarathonAppSpec,
    obs: MarathonObservation,
    instances: int,
    previous: list[Condition] | None,
    generation: int | None,
    now: str,
    previous_drift: Mapping[str, Any] | None = None,
    strategy_available: bool = False,
) -> dict[str, Any]:
    state = marathon_state(obs, instances)
    verdicts = conditions_for(spec, obs, state, instances, strategy_available)
    reverted = obs.drift_reverted_at or (previous_drift or {}).get("lastRevertedAt")
    new: dict[str, Any] = {
        "phase": phase_of(verdicts),
        "conditions": merge_conditions(previous, verdicts, generation, now),
        "drift": {
            "detected": bool(obs.drift),
            "fields": list(obs.drift),
            "lastRevertedAt": reverted,
        },
    }
    if obs.problem is None:
        new["marathon"] = state
    new["readiness"] = readiness_status(spec)
    return new


def readiness_status(spec: MarathonAppSpec) -> dict[str, Any]:
    """status.readiness: the readiness report for spec.app (spec.kubernetes.image answers a
    missing image and fetched files)."""
    app = spec.app.model_dump(by_alias=True, exclude_none=True, mode="json")
    image = spec.kubernetes.image if spec.kubernetes is not None else None
    return assess(app, image=image).as_status()


def settled(status: Mapping[str, Any]) -> bool:
    """Nothing moving: the timer may observe this app less often."""
    marathon = status.get("marathon") or {}
    # A rollout's pauses, analysis samples and settling weights need the every-second tick.
    rollout = (status.get("rollout") or {}).get("phase")
    moving = rollout in ("Progressing", "Paused", "Analyzing")
    return (
        status.get("phase") == WorkloadPhase.READY and not marathon.get("deployment") and not moving
    )


def claim_winner(claims: Iterable[tuple[str, str]]) -> str | None:
    """Of the MarathonApps claiming one Marathon app ((creationTimestamp, name) each), the
    one that manages it: the oldest, then the first by name."""
    ranked = sorted(claims)
    return ranked[0][1] if ranked else None
