"""Pure: the next move of a MarathonApp's blue-green or canary rollout.

Each reconcile passes what Marathon runs (the apps of the MarathonApp's deployment group),
the weights the load balancer was last given, the spec and the previous `status.rollout`;
`decide` returns the actions to take (PUT or scale or DELETE a Marathon app, write the
weights) and the new `status.rollout`. Everything the rollout must remember (its stage, the
apps' roles, when a step, a pause or the switch began, the analysis' last reading) lives in
that status, so an operator restarted at any point resumes where the previous one stopped;
actions are idempotent (a PUT of what already runs, weights already written, a DELETE of an
app already gone change nothing).

Apps. The stable app keeps the MarathonApp's `spec.app.id`; a canary runs as `<id>-canary`
and, once every step passed, the stable app takes the new definition (Marathon's rolling
upgrade, while the canary serves all traffic) before traffic returns to it and the canary
is removed. Blue-green alternates `<id>-blue` and `<id>-green`: the new colour starts beside
the stable one, takes all traffic once all its instances are healthy, and the previous
colour is kept (without traffic) for `rollbackWindowSeconds`, then removed. All of them
carry `HAPROXY_DEPLOYMENT_GROUP` and the same `HAPROXY_0_PORT`, so the load balancer puts
them in one backend, and `ORCHESTRATOR_REVISION`, the digest of `spec.app` (instances
aside), which tells which version each runs.

Safety. Traffic moves to an app only when all its instances are healthy; an app loses its
last traffic `settle_seconds` before it is changed or removed, so the load balancer has
applied the weights before a task is killed. Rolling back sends all traffic to the stable
app, then removes the new one: on spec.abort, when the new app's tasks are unhealthy or
failing or not all healthy within `progress_deadline_seconds`, or when an analysis fails.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from orchestrator_operator.operator.marathonapp.analysis import AnalysisConfig, Sample, evaluate

REVISION_LABEL = "ORCHESTRATOR_REVISION"
GROUP_LABEL = "HAPROXY_DEPLOYMENT_GROUP"
PORT_LABEL = "HAPROXY_0_PORT"

SETTLE_SECONDS = 2.0
PROGRESS_DEADLINE_SECONDS = 600.0
MAX_ANALYSIS_RESULTS = 50  # status.rollout.analysis keeps the latest ones


class Stage(StrEnum):
    """Where a rollout is (status.rollout.stage); the phase users read follows from it."""

    IDLE = "Idle"  # the stable app runs the spec's revision (or nothing runs yet)
    STARTING = "Starting"  # the new app is deploying; no traffic on it
    STEPS = "Steps"  # canary: running spec.strategy.canary.steps from status.rollout.step
    PROMOTING = "Promoting"  # canary: the stable app takes the new revision (canary at 100%)
    FINISHING = "Finishing"  # canary: traffic back on the stable app; the canary is removed
    WINDOW = "Window"  # blue-green: switched; the previous colour kept for the rollback window
    ROLLING_BACK = "RollingBack"  # traffic back on the stable app; the new app is removed
    ROLLED_BACK = "RolledBack"  # done rolling back after a failure; waits for a new spec.app
    ABORTED = "Aborted"  # done rolling back on spec.abort; waits for abort: false


@dataclass(frozen=True)
class AppState:
    """One Marathon app of the group, as Marathon reports it."""

    id: str
    revision: str | None  # its ORCHESTRATOR_REVISION label
    instances: int
    running: int = 0
    healthy: int = 0
    unhealthy: int = 0
    health_checks: bool = False
    deploying: bool = False
    version: str | None = None
    failure: str | None = None  # tasks failing (launch delayed, a task failed), in words
    service_port: int | None = None  # its HAPROXY_0_PORT label, else servicePorts[0]

    @property
    def ready(self) -> bool:
        """All instances running (and healthy when it has health checks), no deployment."""
        return (
            not self.deploying
            and self.running >= self.instances
            and self.unhealthy == 0
            and (not self.health_checks or self.healthy >= self.instances)
        )

    def counts(self) -> str:
        if self.health_checks:
            return f"{self.healthy}/{self.instances} healthy"
        return f"{self.running}/{self.instances} running"


@dataclass(frozen=True)
class PutApp:
    """Create or update the app (PUT /v2/apps/<id>)."""

    definition: dict[str, Any]

    @property
    def app_id(self) -> str:
        return str(self.definition["id"])


@dataclass(frozen=True)
class ScaleApp:
    """Change only its instances (PUT of {instances}: Marathon scales without restarting)."""

    app_id: str
    instances: int


@dataclass(frozen=True)
class DeleteApp:
    app_id: str


@dataclass(frozen=True)
class SetWeights:
    """Write the traffic ConfigMap: each app's share of the group's requests."""

    weights: dict[str, int]


Action = PutApp | ScaleApp | DeleteApp | SetWeights


@dataclass(frozen=True)
class Inputs:
    strategy: dict[str, Any]  # spec.strategy (camelCase, as stored)
    definition: dict[str, Any]  # the Marathon app definition to run (id = spec.app.id)
    revision: str  # revision_of(spec.app)
    promote: int  # spec.promote
    abort: bool  # spec.abort
    apps: dict[str, AppState]  # the group's apps that exist in Marathon
    weights: dict[str, int] | None  # the traffic ConfigMap's weights, None when absent
    rollout: dict[str, Any]  # the previous status.rollout ({} at first)
    now: datetime
    sample: Sample | None = None  # an analysis reading, when analysis_due() asked for one


@dataclass(frozen=True)
class Decision:
    actions: list[Action]
    rollout: dict[str, Any]  # the new status.rollout
    requeue_seconds: float | None = None  # look again this soon (a pause, a sample, a settle)


def revision_of(spec_app: dict[str, Any]) -> str:
    """The digest of spec.app without instances (scaling is not a new version). spec.app
    names Secrets, never holds their values, so the digest reveals nothing secret; a changed
    Secret value alone does not start a rollout."""
    data = {k: v for k, v in spec_app.items() if k != "instances"}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def group_of(app_id: str) -> str:
    """HAPROXY_DEPLOYMENT_GROUP: the app id without slashes (the contract's choice)."""
    return app_id.replace("/", "")


def candidate_ids(base: str) -> list[str]:
    """Every Marathon app id a rollout of `base` may use."""
    return [base, f"{base}-canary", f"{base}-blue", f"{base}-green"]


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _since(now: datetime, value: Any) -> float:
    """Seconds since a stored timestamp; a missing one counts as long ago."""
    then = _parse(value)
    return (now - then).total_seconds() if then else float("inf")


def desired_port(definition: dict[str, Any], stable: AppState | None) -> int | None:
    """The port every app of the group shares: the spec's HAPROXY_0_PORT label, else its
    first fixed service port, else what the stable app has (Marathon assigned it)."""
    labels = definition.get("labels") or {}
    if str(labels.get(PORT_LABEL, "")).isdigit():
        return int(labels[PORT_LABEL])
    for port in definition.get("portDefinitions") or []:
        if int(port.get("port") or 0) > 0:
            return int(port["port"])
        break
    docker = (definition.get("container") or {}).get("docker") or {}
    for mapping in docker.get("portMappings") or []:
        if int(mapping.get("servicePort") or 0) > 0:
            return int(mapping["servicePort"])
        break
    return stable.service_port if stable else None


def definition_for(
    definition: dict[str, Any], app_id: str, revision: str, port: int | None
) -> dict[str, Any]:
    """The definition the app `app_id` runs: the spec's, relabelled for the group."""
    out = copy.deepcopy(definition)
    base = str(definition["id"])
    out["id"] = app_id
    labels = dict(out.get("labels") or {})
    labels[REVISION_LABEL] = revision
    labels[GROUP_LABEL] = group_of(base)
    if port is not None:
        labels[PORT_LABEL] = str(port)
    out["labels"] = labels
    return out


def analysis_due(rollout: dict[str, Any], now: datetime) -> bool:
    """Whether the rollout (status.rollout) waits for an analysis reading now: strategy.py
    then takes one and passes it in Inputs.sample."""
    run = rollout.get("analysisRun")
    if rollout.get("stage") != Stage.STEPS.value or not isinstance(run, dict):
        return False
    at = _parse(run.get("nextAt"))
    return at is not None and now >= at


@dataclass
class _Ctx:
    inp: Inputs
    base: str
    kind: str  # canary | blueGreen
    settle: float
    deadline: float
    actions: list[Action] = field(default_factory=list)
    requeue: float | None = None

    def wait(self, seconds: float) -> None:
        seconds = max(0.5, seconds)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def weights(self, weights: dict[str, int], ro: dict[str, Any]) -> None:
        """Write the weights unless the ConfigMap already holds them; note when traffic moved."""
        ro["weights"] = dict(weights)
        written = [a for a in self.actions if isinstance(a, SetWeights)]
        last = written[-1].weights if written else self.inp.weights
        if last != weights:
            self.actions[:] = [a for a in self.actions if not isinstance(a, SetWeights)]
            self.actions.append(SetWeights(dict(weights)))
            ro["weightsAt"] = _ts(self.inp.now)
            self.wait(self.settle)

    def settled(self, ro: dict[str, Any]) -> bool:
        left = self.settle - _since(self.inp.now, ro.get("weightsAt"))
        if left > 0:
            self.wait(left)
            return False
        return True

    def put(self, app_id: str, stable: AppState | None) -> None:
        port = desired_port(self.inp.definition, stable)
        self.actions.append(
            PutApp(definition_for(self.inp.definition, app_id, self.inp.revision, port))
        )

    @property
    def instances(self) -> int:
        return int(self.inp.definition.get("instances", 1))


def _new_app_id(kind: str, base: str, stable_id: str | None) -> str:
    if kind == "canary":
        return f"{base}-canary"
    return f"{base}-green" if stable_id == f"{base}-blue" else f"{base}-blue"


def _stable_id(inp: Inputs, base: str, kind: str) -> str | None:
    """The app that serves while nothing is rolled out: the one status names, else (first
    reconcile, or status lost) the one holding most traffic, else the spec's id."""
    named = inp.rollout.get("stableApp")
    if isinstance(named, str) and named in inp.apps:
        return named
    if kind == "canary" and base in inp.apps:
        return base
    present = [a for a in candidate_ids(base) if a in inp.apps and not a.endswith("-canary")]
    if not present:
        return None
    weights = inp.weights or {}
    return max(present, key=lambda a: (weights.get(a, 0), a == base))


def decide(
    inp: Inputs,
    settle_seconds: float = SETTLE_SECONDS,
    progress_deadline_seconds: float = PROGRESS_DEADLINE_SECONDS,
) -> Decision:
    kind = str(inp.strategy.get("type", "canary"))
    base = str(inp.definition["id"])
    ctx = _Ctx(inp, base, kind, settle_seconds, progress_deadline_seconds)
    ro: dict[str, Any] = {k: v for k, v in inp.rollout.items() if k not in ("phase", "message")}
    ro["strategy"] = kind
    ro.setdefault("analysis", [])
    stage = Stage(ro["stage"]) if ro.get("stage") in Stage._value2member_map_ else Stage.IDLE
    ro["stage"] = stage.value
    phase, message = _step(ctx, ro, stage)
    ro["phase"] = phase
    ro["message"] = message
    if "weights" not in ro:
        ro["weights"] = dict(inp.weights or {})
    stable = inp.apps.get(ro.get("stableApp") or "")
    new = inp.apps.get(ro.get("newApp") or "")
    ro["stableVersion"] = stable.version if stable else None
    ro["canaryVersion"] = new.version if new and ro.get("stage") != Stage.IDLE.value else None
    return Decision(ctx.actions, ro, ctx.requeue)


def _step(ctx: _Ctx, ro: dict[str, Any], stage: Stage) -> tuple[str, str]:
    inp = ctx.inp
    if stage == Stage.ROLLING_BACK:
        return _rolling_back(ctx, ro)
    if stage == Stage.FINISHING:
        return _finishing(ctx, ro)
    if stage == Stage.PROMOTING:
        return _promoting(ctx, ro)
    if stage in (Stage.STARTING, Stage.STEPS):
        # A newer spec.app replaces the one being rolled out; the stable one cancels it.
        if ro.get("revision") != inp.revision:
            stable = inp.apps.get(ro.get("stableApp") or "")
            if stable is not None and stable.revision == inp.revision:
                return _roll_back(ctx, ro, "spec.app is the stable version again", Stage.IDLE)
            return _start(ctx, ro, ro.get("stableApp"), restarted=True)
        if inp.abort:
            return _roll_back(ctx, ro, "spec.abort is set", Stage.ABORTED)
        return _starting(ctx, ro) if stage == Stage.STARTING else _steps(ctx, ro)
    if stage == Stage.WINDOW:
        return _window(ctx, ro)
    return _settled(ctx, ro, stage)


def _settled(ctx: _Ctx, ro: dict[str, Any], stage: Stage) -> tuple[str, str]:
    """Nothing in flight (Idle, RolledBack, Aborted): keep the stable app as the spec says,
    or start a rollout."""
    inp = ctx.inp
    stable_id = _stable_id(inp, ctx.base, ctx.kind)
    stable = inp.apps.get(stable_id) if stable_id else None
    if stable is None:
        return _first(ctx, ro)
    ro["stableApp"] = stable_id
    if stable.revision == inp.revision:
        if stable.instances != ctx.instances:
            ctx.actions.append(ScaleApp(stable.id, ctx.instances))
        ctx.weights({stable.id: 100}, ro)
        # Apps of the group left without traffic (an operator stopped between two steps).
        for app_id in candidate_ids(ctx.base):
            if app_id != stable.id and app_id in inp.apps and ctx.settled(ro):
                ctx.actions.append(DeleteApp(app_id))
        if stage in (Stage.ROLLED_BACK, Stage.ABORTED) and ro.get("revision") != inp.revision:
            stage = Stage.IDLE
        ro["stage"] = stage.value if stage != Stage.ABORTED or inp.abort else Stage.IDLE.value
        if ro["stage"] == Stage.IDLE.value:
            ro["revision"] = inp.revision
            if not stable.ready and inp.rollout.get("phase") in (None, "Progressing"):
                # The first deployment (or a scaling) is still under way.
                ctx.wait(1)
                return "Progressing", f"deploying {stable.id} ({stable.counts()})"
            phase = "Promoted" if inp.rollout.get("phase") == "Promoted" else "Idle"
            state = "ready" if stable.ready else stable.counts()
            return phase, f"{stable.id} runs revision {inp.revision} ({state})"
        return _kept(ro)
    # The stable app runs another revision.
    if stage == Stage.ROLLED_BACK and ro.get("revision") == inp.revision:
        ctx.weights({stable.id: 100}, ro)
        return _kept(ro)
    if inp.abort:
        ctx.weights({stable.id: 100}, ro)
        if stage == Stage.ABORTED:
            return _kept(ro)
        return (
            "Aborted",
            f"spec.abort is set: revision {inp.revision} is not rolled out; {stable.id} keeps"
            " all traffic",
        )
    return _start(ctx, ro, stable_id, restarted=False)


def _kept(ro: dict[str, Any]) -> tuple[str, str]:
    phase = "Aborted" if ro["stage"] == Stage.ABORTED.value else "RolledBack"
    return phase, str(ro.get("outcome") or "rolled back")


def _first(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    """Nothing runs yet: the first version goes straight in (there is no traffic to shift)."""
    inp = ctx.inp
    app_id = ctx.base if ctx.kind == "canary" else f"{ctx.base}-blue"
    app = inp.apps.get(app_id)
    if app is None or app.revision != inp.revision or app.instances != ctx.instances:
        ctx.put(app_id, None)
    ro.update(stage=Stage.IDLE.value, stableApp=app_id, revision=inp.revision, step=0)
    ro.pop("newApp", None)
    ctx.weights({app_id: 100}, ro)
    if app is not None and app.revision == inp.revision and app.ready:
        return "Idle", f"{app_id} runs revision {inp.revision} (ready)"
    ctx.wait(1)
    counts = app.counts() if app is not None and app.revision == inp.revision else "deploying"
    return "Progressing", f"creating {app_id} at revision {inp.revision} ({counts})"


def _start(
    ctx: _Ctx, ro: dict[str, Any], stable_id: str | None, *, restarted: bool
) -> tuple[str, str]:
    inp = ctx.inp
    stable = inp.apps.get(stable_id) if stable_id else None
    if stable is None:
        return _first(ctx, ro)
    new_id = ro.get("newApp") if restarted else None
    new_id = new_id or _new_app_id(ctx.kind, ctx.base, stable.id)
    ctx.put(new_id, stable)
    ctx.weights({stable.id: 100, new_id: 0}, ro)
    ro.update(
        stage=Stage.STARTING.value,
        revision=inp.revision,
        stableApp=stable.id,
        newApp=new_id,
        step=0,
        startedAt=_ts(inp.now),
        stepStartedAt=_ts(inp.now),
        promotedGeneration=inp.promote,
        analysis=[],
    )
    for key in ("analysisRun", "outcome", "switchedAt", "previousApp"):
        ro.pop(key, None)
    ctx.wait(1)
    verb = "restarting" if restarted else "starting"
    return (
        "Progressing",
        f"{verb} revision {inp.revision} as {new_id} beside {stable.id}; no traffic on it"
        " until all its instances are healthy",
    )


def _health_failure(ctx: _Ctx, ro: dict[str, Any], new: AppState | None) -> str | None:
    if new is None or new.revision != ctx.inp.revision:
        return None
    if new.failure:
        return f"{new.id}: {new.failure}"
    if new.unhealthy > 0:
        return f"{new.id}: {new.unhealthy} of {new.instances} instances fail their health checks"
    return None


def _starting(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    inp = ctx.inp
    stable = inp.apps.get(ro["stableApp"])
    new_id = str(ro["newApp"])
    new = inp.apps.get(new_id)
    if stable is None:
        return _first(ctx, ro)
    if stable.instances != ctx.instances:
        ctx.actions.append(ScaleApp(stable.id, ctx.instances))
    failure = _health_failure(ctx, ro, new)
    if failure:
        return _roll_back(ctx, ro, failure, Stage.ROLLED_BACK)
    if new is None or new.revision != inp.revision or new.instances != ctx.instances:
        ctx.put(new_id, stable)
    if _since(inp.now, ro.get("startedAt")) > ctx.deadline:
        counts = new.counts() if new else "not created"
        return _roll_back(
            ctx,
            ro,
            f"{new_id} was not ready within {ctx.deadline:.0f} s ({counts})",
            Stage.ROLLED_BACK,
        )
    ctx.weights({stable.id: 100, new_id: 0}, ro)
    if new is None or new.revision != inp.revision or not new.ready:
        ctx.wait(1)
        counts = new.counts() if new is not None and new.revision == inp.revision else "deploying"
        return "Progressing", f"waiting for {new_id} at revision {inp.revision} ({counts})"
    if ctx.kind == "blueGreen":
        ctx.weights({new_id: 100, stable.id: 0}, ro)
        ro.update(
            stage=Stage.WINDOW.value,
            stableApp=new_id,
            previousApp=stable.id,
            switchedAt=_ts(inp.now),
        )
        ro.pop("newApp", None)
        return _window_message(ctx, ro)
    ro.update(stage=Stage.STEPS.value, step=0, stepStartedAt=_ts(inp.now))
    return _steps(ctx, ro)


def _window_seconds(ctx: _Ctx) -> float:
    blue_green = ctx.inp.strategy.get("blueGreen") or {}
    return float(blue_green.get("rollbackWindowSeconds", 300))


def _window_message(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    left = _window_seconds(ctx) - _since(ctx.inp.now, ro.get("switchedAt"))
    ctx.wait(left)
    return (
        "Promoted",
        f"switched all traffic to {ro['stableApp']} (revision {ro.get('revision')});"
        f" {ro['previousApp']} is kept without traffic for rollback for {max(0, left):.0f} s",
    )


def _window(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    """Blue-green after the switch: the previous colour stays for the rollback window."""
    inp = ctx.inp
    current = inp.apps.get(ro.get("stableApp") or "")
    previous_id = ro.get("previousApp")
    previous = inp.apps.get(previous_id) if previous_id else None
    if previous is None or current is None:
        ro["stage"] = Stage.IDLE.value
        ro.pop("previousApp", None)
        return _settled(ctx, ro, Stage.IDLE)
    failure = _health_failure(ctx, ro, current) if ro.get("revision") == inp.revision else None
    reason = "spec.abort is set" if inp.abort else failure
    if reason is not None and previous.ready:
        # Back to the previous colour, which still runs: it becomes stable again.
        ro.update(stableApp=previous.id, newApp=current.id)
        ro.pop("previousApp", None)
        ro.pop("switchedAt", None)
        stage = Stage.ABORTED if inp.abort else Stage.ROLLED_BACK
        return _roll_back(ctx, ro, reason, stage)
    if ro.get("revision") != inp.revision or _since(inp.now, ro.get("switchedAt")) >= (
        _window_seconds(ctx)
    ):
        # The window is over (or a newer version comes: it takes the previous colour's place).
        ctx.weights({current.id: 100}, ro)
        if ctx.settled(ro):
            ctx.actions.append(DeleteApp(previous.id))
        if ro.get("revision") != inp.revision:
            return (
                "Progressing",
                f"removing {previous.id} before rolling out revision {inp.revision}",
            )
        return "Promoted", f"{current.id} serves all traffic; removing {previous.id}"
    ctx.weights({current.id: 100, previous.id: 0}, ro)
    return _window_message(ctx, ro)


def _steps(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    """Canary: run the steps from status.rollout.step; several in one call when they do not
    wait (consecutive setWeight steps: only the last weights are written)."""
    inp = ctx.inp
    stable = inp.apps.get(ro["stableApp"])
    new_id = str(ro["newApp"])
    new = inp.apps.get(new_id)
    if stable is None:
        return _first(ctx, ro)
    if new is None or new.revision != inp.revision:
        # The canary app vanished or was changed behind our back: deploy it again, no traffic.
        return _start(ctx, ro, stable.id, restarted=True)
    failure = _health_failure(ctx, ro, new)
    if failure:
        return _roll_back(ctx, ro, failure, Stage.ROLLED_BACK)
    if stable.instances != ctx.instances:
        ctx.actions.append(ScaleApp(stable.id, ctx.instances))
    if new.instances != ctx.instances:
        ctx.actions.append(ScaleApp(new.id, ctx.instances))
    canary = inp.strategy.get("canary") or {}
    steps: list[dict[str, Any]] = list(canary.get("steps") or _default_steps())
    total = len(steps)
    while True:
        index = int(ro.get("step", 0))
        if index >= total:
            ctx.weights({stable.id: 0, new_id: 100}, ro)
            ro.update(stage=Stage.PROMOTING.value)
            return _promoting(ctx, ro)
        step = steps[index]
        where = f"step {index + 1}/{total}"
        if "setWeight" in step and step["setWeight"] is not None:
            weight = int(step["setWeight"])
            if weight > 0 and not new.ready:
                current = _current(ro, new_id)
                ctx.weights({stable.id: 100 - current, new_id: current}, ro)
                ctx.wait(1)
                return (
                    "Progressing",
                    f"{where}: waiting for {new_id} to be ready ({new.counts()}) before"
                    f" giving it {weight}%",
                )
            ro["weights"] = {stable.id: 100 - weight, new_id: weight}
            _advance(ro, inp.now)
            continue
        current = _current(ro, new_id)
        ctx.weights({stable.id: 100 - current, new_id: current}, ro)
        if "pause" in step and step["pause"] is not None:
            duration = step["pause"].get("durationSeconds")
            bumped = inp.promote != int(ro.get("promotedGeneration", inp.promote))
            if bumped:
                ro["promotedGeneration"] = inp.promote
                _advance(ro, inp.now)
                continue
            if duration is None:
                return (
                    "Paused",
                    f"{where}: {new_id} has {current}% of traffic; paused until spec.promote"
                    f" is bumped (now {inp.promote})",
                )
            left = float(duration) - _since(inp.now, ro.get("stepStartedAt"))
            if left <= 0:
                _advance(ro, inp.now)
                continue
            ctx.wait(left)
            return (
                "Paused",
                f"{where}: {new_id} has {current}% of traffic; paused for {left:.0f} s more",
            )
        if "analysis" in step:
            outcome = _analysis(ctx, ro, index, where, new_id, current)
            if outcome is None:
                _advance(ro, inp.now)
                continue
            return outcome
        _advance(ro, inp.now)  # an empty step (the schema refuses them) is passed over


def _current(ro: dict[str, Any], new_id: str) -> int:
    return int((ro.get("weights") or {}).get(new_id, 0))


def _default_steps() -> list[dict[str, Any]]:
    return [{"setWeight": w} for w in (10, 25, 50, 75, 100)]


def _advance(ro: dict[str, Any], now: datetime) -> None:
    ro["step"] = int(ro.get("step", 0)) + 1
    ro["stepStartedAt"] = _ts(now)
    ro.pop("analysisRun", None)


def _analysis(
    ctx: _Ctx, ro: dict[str, Any], index: int, where: str, new_id: str, weight: int
) -> tuple[str, str] | None:
    """One analysis step: `count` readings, each over the `intervalSeconds` before it, judged
    against the limits; the first one interval after the step began. None: passed, go on."""
    inp = ctx.inp
    spec = (inp.strategy.get("canary") or {}).get("analysis")
    if not spec:
        return None
    config = AnalysisConfig.from_spec(spec)
    run = dict(ro.get("analysisRun") or {"samples": 0})
    if "nextAt" not in run:
        run["nextAt"] = _ts(inp.now + timedelta(seconds=config.interval_seconds))
    elif inp.sample is not None and analysis_due(ro | {"analysisRun": run}, inp.now):
        results = evaluate(config, index, inp.sample)
        history = list(ro.get("analysis") or []) + [r.to_status() for r in results]
        ro["analysis"] = history[-MAX_ANALYSIS_RESULTS:]
        failed = [r for r in results if not r.passed]
        if failed:
            return _roll_back(
                ctx,
                ro,
                f"analysis failed at {where}: " + "; ".join(r.detail for r in failed),
                Stage.ROLLED_BACK,
            )
        run["samples"] = int(run.get("samples", 0)) + 1
        run["last"] = "; ".join(r.detail for r in results)
        if run["samples"] >= config.count:
            ro.pop("analysisRun", None)
            return None
        run["nextAt"] = _ts(inp.now + timedelta(seconds=config.interval_seconds))
    ro["analysisRun"] = run
    ctx.wait(-_since(inp.now, run.get("nextAt")))
    last = f"; last: {run['last']}" if run.get("last") else ""
    return (
        "Analyzing",
        f"{where}: {new_id} has {weight}% of traffic; analysis sample"
        f" {int(run['samples']) + 1} of {config.count}{last}",
    )


def _promoting(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    """Canary: all traffic on the canary; the stable app takes the new revision (Marathon's
    rolling upgrade, out of traffic), then traffic returns to it."""
    inp = ctx.inp
    stable = inp.apps.get(ro["stableApp"])
    new_id = str(ro["newApp"])
    new = inp.apps.get(new_id)
    revision = str(ro.get("revision"))
    if stable is None:
        return _first(ctx, ro)
    if stable.revision != revision and (revision != inp.revision or new is None):
        # A newer spec.app (or the canary gone) before the stable app was touched: the
        # analysed revision is not what the spec asks any more; back to the stable app.
        why = "spec.app changed" if revision != inp.revision else f"{new_id} disappeared"
        return _roll_back(ctx, ro, f"{why} before the promotion", Stage.IDLE)
    ctx.weights({stable.id: 0, new_id: 100} if new else {stable.id: 100}, ro)
    if new is not None and stable.revision != revision and not ctx.settled(ro):
        return (
            "Progressing",
            f"{new_id} has all traffic; {stable.id} takes revision {revision} next",
        )
    if revision == inp.revision and (
        stable.revision != revision or stable.instances != ctx.instances
    ):
        ctx.put(stable.id, stable)
        ctx.wait(1)
        return "Progressing", f"promoting: {stable.id} takes revision {revision}"
    if not stable.ready:
        ctx.wait(1)
        return (
            "Progressing",
            f"promoting: {stable.id} takes revision {revision} ({stable.counts()})",
        )
    ro["stage"] = Stage.FINISHING.value
    return _finishing(ctx, ro)


def _finishing(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    inp = ctx.inp
    stable = inp.apps.get(ro["stableApp"])
    new_id = str(ro.get("newApp") or "")
    if stable is None:
        return _first(ctx, ro)
    new = inp.apps.get(new_id)
    ctx.weights({stable.id: 100, new_id: 0} if new else {stable.id: 100}, ro)
    if new is not None:
        if ctx.settled(ro):
            ctx.actions.append(DeleteApp(new_id))
        return "Progressing", f"{stable.id} serves revision {ro['revision']}; removing {new_id}"
    ro["stage"] = Stage.IDLE.value
    ro.pop("newApp", None)
    ctx.weights({stable.id: 100}, ro)
    return "Promoted", f"promoted: {stable.id} runs revision {ro['revision']} with all traffic"


def _roll_back(ctx: _Ctx, ro: dict[str, Any], reason: str, final: Stage) -> tuple[str, str]:
    stable_id = str(ro["stableApp"])
    new_id = str(ro.get("newApp") or "")
    ro.update(stage=Stage.ROLLING_BACK.value, final=final.value, reason=reason)
    ro.pop("analysisRun", None)
    weights = {stable_id: 100}
    if new_id and new_id in ctx.inp.apps:
        weights[new_id] = 0
    ctx.weights(weights, ro)
    return _rolling_back(ctx, ro)


def _rolling_back(ctx: _Ctx, ro: dict[str, Any]) -> tuple[str, str]:
    inp = ctx.inp
    stable_id = str(ro["stableApp"])
    new_id = str(ro.get("newApp") or "")
    reason = str(ro.get("reason") or "rolled back")
    new = inp.apps.get(new_id) if new_id else None
    ctx.weights({stable_id: 100, new_id: 0} if new else {stable_id: 100}, ro)
    if new is not None:
        if ctx.settled(ro):
            ctx.actions.append(DeleteApp(new_id))
        return (
            "Progressing",
            f"rolling back ({reason}): all traffic on {stable_id}; removing {new_id}",
        )
    final = Stage(ro.pop("final", Stage.ROLLED_BACK.value))
    ro.pop("reason", None)
    ro.pop("newApp", None)
    ro["stage"] = final.value
    if final == Stage.IDLE:
        ro["revision"] = inp.revision
        ro.pop("outcome", None)
        return "Idle", f"rollout cancelled ({reason}); {stable_id} serves all traffic"
    ro["outcome"] = f"rolled back: {reason}; {stable_id} serves all traffic"
    return _kept(ro)
