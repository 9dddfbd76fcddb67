"""Pure: the next move of a MarathonApp's traffic shift from Marathon to Kubernetes.

A MarathonApp with `spec.kubernetes.shift` runs beside its Marathon app a Deployment and a
Service (operator/builders/marathonapp_kubernetes.py); the cluster's load balancer puts the
Service's ready pods (its EndpointSlices) in the Marathon app's backend and splits the
requests by the traffic ConfigMap `<name>-traffic` (lb/weights.py's `kubernetes` entry).
Each reconcile passes what Marathon and Kubernetes run, the share the ConfigMap gives
Kubernetes and the previous `status.offramp`; `decide` returns the share to write, the
Marathon instance count the sync should keep (the spec's, or 0 once Kubernetes serves
everything) and the new `status.offramp`.

The steps are the canary's (`setWeight`, `pause`, `analysis`; the analysis judged by
analysis.py over the Kubernetes side's requests at the load balancer). Weight moves to
Kubernetes only while all its replicas are ready. After the last step Kubernetes has
100 %; `settle_seconds` later (the load balancer has applied it) the Marathon app is scaled
to zero (`scaleMarathonToZero`), phase Shifted, once the load balancer shows no weight on the
Marathon tasks (or, when it cannot be read, `UNCONFIRMED_SECONDS` after the weights were
written, and the status says it was not confirmed).

Rollback (`spec.abort: true` at any step, or a failed analysis): the Marathon app is scaled
back to the spec's instances first if it was scaled down, and only once all of them are
ready does the weight go back to Marathon (100 %): phase RolledBack (abort) or Failed (the
analysis; the reason in `message`). Setting abort back to false, or changing the steps,
starts the shift again from its first step.

Everything the shift must remember is in `status.offramp`, so an operator restarted at any
point resumes; the actions are idempotent (a share the ConfigMap already holds is not
written again, the instance count is a level, not a command).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from orchestrator_operator.operator.marathonapp.analysis import AnalysisConfig, Sample, evaluate

SETTLE_SECONDS = 2.0
# How long after Kubernetes got 100 % Marathon waits for the load balancer to confirm its
# tasks get no request, when the load balancer cannot be read, before it is scaled to zero.
UNCONFIRMED_SECONDS = 20.0
MAX_ANALYSIS_RESULTS = 50


class Stage(StrEnum):
    WAITING = "Waiting"  # Kubernetes not ready yet; no traffic on it
    STEPS = "Steps"  # running the steps from status.offramp.step
    DRAINING = "Draining"  # Kubernetes has 100 %; Marathon is scaled to zero after the settle
    SHIFTED = "Shifted"  # done
    ROLLING_BACK = "RollingBack"  # Marathon scaled back up, then all traffic back on it
    ROLLED_BACK = "RolledBack"  # done rolling back (abort); waits for abort: false
    FAILED = "Failed"  # done rolling back after a failed analysis; waits for new steps


@dataclass(frozen=True)
class Side:
    """One side's replicas: how many are wanted now and how many are ready (Marathon:
    healthy, or running without health checks; Kubernetes: ready endpoints)."""

    desired: int
    ready: int
    present: bool = True  # the Marathon app, or the Kubernetes Service, exists

    @property
    def all_ready(self) -> bool:
        return self.present and self.ready >= self.desired


@dataclass(frozen=True)
class Inputs:
    shift: dict[str, Any]  # spec.kubernetes.shift (camelCase, as stored)
    promote: int
    abort: bool
    marathon: Side  # desired = the instances Marathon has now
    marathon_spec_instances: int  # what spec.app (or the autoscaler) asks Marathon for
    kubernetes: Side
    weight: int | None  # the Kubernetes share the ConfigMap holds; None when it is absent
    offramp: dict[str, Any]  # the previous status.offramp ({} at first)
    now: datetime
    sample: Sample | None = None  # an analysis reading, when analysis_due() asked for one
    # The HAProxy weight the load balancer still gives the Marathon app's ready servers
    # (summed), read before Marathon is scaled to zero; None: the load balancer could not
    # be read (or was not asked).
    marathon_lb_weight: int | None = None


@dataclass(frozen=True)
class Decision:
    weight: int | None  # the Kubernetes share to write, None: the ConfigMap already holds it
    marathon_instances: int  # what the sync keeps the Marathon app at
    offramp: dict[str, Any]
    requeue_seconds: float | None = None


def shift_revision(shift: dict[str, Any]) -> str:
    """The digest of the steps and analysis: new steps start the shift again."""
    data = {k: v for k, v in shift.items() if k in ("steps", "analysis")}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_steps() -> list[dict[str, Any]]:
    return [{"setWeight": w} for w in (10, 25, 50, 75, 100)]


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _since(now: datetime, value: Any) -> float:
    if not isinstance(value, str) or not value:
        return float("inf")
    try:
        then = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (now - then).total_seconds()


def analysis_due(offramp: dict[str, Any], now: datetime) -> bool:
    """Whether the shift waits for an analysis reading now (offramp.py then takes one)."""
    run = offramp.get("analysisRun")
    if offramp.get("stage") != Stage.STEPS.value or not isinstance(run, dict):
        return False
    return _since(now, run.get("nextAt")) >= 0


@dataclass
class _Ctx:
    inp: Inputs
    settle: float
    write: int | None = None
    requeue: float | None = None
    marathon_instances: int = 0

    def wait(self, seconds: float) -> None:
        seconds = max(0.5, seconds)
        self.requeue = seconds if self.requeue is None else min(self.requeue, seconds)

    def set_weight(self, weight: int, st: dict[str, Any]) -> None:
        """Kubernetes gets `weight` % (written unless the ConfigMap holds it already)."""
        held = self.inp.weight or 0
        if weight > held and not self.inp.kubernetes.all_ready:
            weight = held  # a lost write is not made up while a pod is not ready
        st["kubernetesWeight"], st["marathonWeight"] = weight, 100 - weight
        self.write = None if self.inp.weight == weight else weight
        if self.write is not None:
            st["weightsAt"] = _ts(self.inp.now)
            self.wait(self.settle)

    def settled(self, st: dict[str, Any]) -> bool:
        left = self.settle - _since(self.inp.now, st.get("weightsAt"))
        if left > 0 or self.write is not None:
            self.wait(max(left, self.settle))
            return False
        return True


def decide(inp: Inputs, settle_seconds: float = SETTLE_SECONDS) -> Decision:
    st: dict[str, Any] = {k: v for k, v in inp.offramp.items() if k not in ("phase", "message")}
    st.setdefault("analysis", [])
    st.setdefault("kubernetesWeight", inp.weight or 0)
    st.setdefault("marathonWeight", 100 - int(st["kubernetesWeight"]))
    ctx = _Ctx(inp, settle_seconds, marathon_instances=inp.marathon_spec_instances)
    stage = Stage(st["stage"]) if st.get("stage") in Stage._value2member_map_ else None
    revision = shift_revision(inp.shift)
    if stage is None or (
        st.get("revision") != revision and stage not in (Stage.ROLLING_BACK, Stage.SHIFTED)
    ):
        stage = _restart(st, revision, inp)
    phase, message = _step(ctx, st, stage)
    st["phase"], st["message"] = phase, message
    if st.get("marathonScaledDown"):
        ctx.marathon_instances = 0
    return Decision(ctx.write, ctx.marathon_instances, st, ctx.requeue)


def _restart(st: dict[str, Any], revision: str, inp: Inputs) -> Stage:
    st.update(
        stage=Stage.WAITING.value,
        revision=revision,
        step=0,
        stepStartedAt=_ts(inp.now),
        promotedGeneration=inp.promote,
        analysis=[],
    )
    for key in ("analysisRun", "reason"):
        st.pop(key, None)
    return Stage.WAITING


def _step(ctx: _Ctx, st: dict[str, Any], stage: Stage) -> tuple[str, str]:
    inp = ctx.inp
    if stage == Stage.ROLLING_BACK:
        return _rolling_back(ctx, st)
    if stage == Stage.ROLLED_BACK:
        if inp.abort:
            return _rolled_back(ctx, st)
        stage = _restart(st, str(st["revision"]), inp)
    if stage == Stage.FAILED:
        return _rolled_back(ctx, st)
    if inp.abort:
        return _roll_back(ctx, st, "spec.abort is set", Stage.ROLLED_BACK)
    if stage == Stage.SHIFTED:
        if st.get("revision") != shift_revision(inp.shift):
            st["revision"] = shift_revision(inp.shift)  # done: new steps change nothing
        return _draining(ctx, st)
    if stage == Stage.DRAINING:
        return _draining(ctx, st)
    if stage == Stage.WAITING:
        return _waiting(ctx, st)
    return _steps(ctx, st)


def _waiting(ctx: _Ctx, st: dict[str, Any]) -> tuple[str, str]:
    kube = ctx.inp.kubernetes
    ctx.set_weight(0, st)
    if not kube.all_ready or kube.desired <= 0:
        ctx.wait(1)
        what = "no Service yet" if not kube.present else f"{kube.ready}/{kube.desired} ready"
        return (
            "NotStarted",
            f"waiting for the Kubernetes pods ({what}); all traffic on Marathon",
        )
    st.update(stage=Stage.STEPS.value, step=0, stepStartedAt=_ts(ctx.inp.now))
    return _steps(ctx, st)


def _steps(ctx: _Ctx, st: dict[str, Any]) -> tuple[str, str]:
    """The steps from status.offramp.step; several in one call when they do not wait
    (consecutive setWeight steps: only the last weight is written)."""
    inp = ctx.inp
    steps: list[dict[str, Any]] = list(inp.shift.get("steps") or default_steps())
    total = len(steps)
    kube = inp.kubernetes
    while True:
        index = int(st.get("step", 0))
        current = int(st.get("kubernetesWeight", 0))
        if index >= total:
            if current < 100 and not kube.all_ready:
                ctx.set_weight(current, st)
                ctx.wait(1)
                return (
                    "Shifting",
                    f"waiting for the Kubernetes pods ({kube.ready}/{kube.desired} ready)"
                    " before giving them 100%",
                )
            ctx.set_weight(100, st)
            st.update(stage=Stage.DRAINING.value)
            return _draining(ctx, st)
        step = steps[index]
        where = f"step {index + 1}/{total}"
        if step.get("setWeight") is not None:
            weight = int(step["setWeight"])
            if weight > current and not kube.all_ready:
                ctx.set_weight(current, st)
                ctx.wait(1)
                return (
                    "Shifting",
                    f"{where}: waiting for the Kubernetes pods ({kube.ready}/{kube.desired}"
                    f" ready) before giving them {weight}%",
                )
            st["kubernetesWeight"], st["marathonWeight"] = weight, 100 - weight
            _advance(st, inp.now)
            continue
        ctx.set_weight(current, st)
        if step.get("pause") is not None:
            duration = step["pause"].get("durationSeconds")
            if inp.promote != int(st.get("promotedGeneration", inp.promote)):
                st["promotedGeneration"] = inp.promote
                _advance(st, inp.now)
                continue
            if duration is None:
                return (
                    "Paused",
                    f"{where}: Kubernetes has {current}% of traffic; paused until spec.promote"
                    f" is bumped (now {inp.promote})",
                )
            left = float(duration) - _since(inp.now, st.get("stepStartedAt"))
            if left <= 0:
                _advance(st, inp.now)
                continue
            ctx.wait(left)
            return (
                "Paused",
                f"{where}: Kubernetes has {current}% of traffic; paused for {left:.0f} s more",
            )
        if step.get("analysis") is not None:
            outcome = _analysis(ctx, st, index, where, current)
            if outcome is None:
                _advance(st, inp.now)
                continue
            return outcome
        _advance(st, inp.now)  # an empty step (the schema refuses them) is passed over


def _advance(st: dict[str, Any], now: datetime) -> None:
    st["step"] = int(st.get("step", 0)) + 1
    st["stepStartedAt"] = _ts(now)
    st.pop("analysisRun", None)


def _analysis(
    ctx: _Ctx, st: dict[str, Any], index: int, where: str, weight: int
) -> tuple[str, str] | None:
    """`count` readings `intervalSeconds` apart, each over the interval before it; the
    first one interval after the step began. None: passed."""
    inp = ctx.inp
    spec = inp.shift.get("analysis")
    if not spec:
        return None
    config = AnalysisConfig.from_spec(spec)
    run = dict(st.get("analysisRun") or {"samples": 0})
    if "nextAt" not in run:
        run["nextAt"] = _ts(inp.now + timedelta(seconds=config.interval_seconds))
    elif inp.sample is not None and analysis_due(st | {"analysisRun": run}, inp.now):
        results = evaluate(config, index, inp.sample)
        history = list(st.get("analysis") or []) + [r.to_status() for r in results]
        st["analysis"] = history[-MAX_ANALYSIS_RESULTS:]
        failed = [r for r in results if not r.passed]
        if failed:
            return _roll_back(
                ctx,
                st,
                f"analysis failed at {where}: " + "; ".join(r.detail for r in failed),
                Stage.FAILED,
            )
        run["samples"] = int(run.get("samples", 0)) + 1
        run["last"] = "; ".join(r.detail for r in results)
        if run["samples"] >= config.count:
            st.pop("analysisRun", None)
            return None
        run["nextAt"] = _ts(inp.now + timedelta(seconds=config.interval_seconds))
    st["analysisRun"] = run
    ctx.wait(-_since(inp.now, run.get("nextAt")))
    last = f"; last: {run['last']}" if run.get("last") else ""
    return (
        "Analysing",
        f"{where}: Kubernetes has {weight}% of traffic; analysis sample"
        f" {int(run['samples']) + 1} of {config.count}{last}",
    )


def _draining(ctx: _Ctx, st: dict[str, Any]) -> tuple[str, str]:
    """Kubernetes has everything; Marathon goes to zero once the weights have settled."""
    inp = ctx.inp
    ctx.set_weight(100, st)
    if st["kubernetesWeight"] != 100:
        ctx.wait(1)
        return (
            "Shifting",
            f"waiting for the Kubernetes pods ({inp.kubernetes.ready}/{inp.kubernetes.desired}"
            " ready) before giving them 100%",
        )
    if not inp.shift.get("scaleMarathonToZero", True):
        st["stage"] = Stage.SHIFTED.value
        return "Shifted", "Kubernetes serves all traffic; the Marathon app keeps its instances"
    if not st.get("marathonScaledDown"):
        if not ctx.settled(st):
            return "Shifting", "Kubernetes has 100% of traffic; Marathon is scaled to zero next"
        held = inp.marathon_lb_weight
        if held:
            ctx.wait(1)
            return (
                "Shifting",
                "Kubernetes has 100% of traffic; the load balancer still sends requests to the"
                f" Marathon tasks (weight {held}): Marathon is scaled to zero once it sends none",
            )
        if held is None and _since(inp.now, st.get("weightsAt")) < UNCONFIRMED_SECONDS:
            ctx.wait(1)
            return (
                "Shifting",
                "Kubernetes has 100% of traffic; waiting for the load balancer to confirm that"
                " the Marathon tasks get no requests before scaling Marathon to zero",
            )
        st["marathonScaledDown"] = True
        if held is None:
            st["scaleDownUnconfirmed"] = True
    if inp.marathon.present and inp.marathon.desired > 0:
        ctx.wait(1)
        st["stage"] = Stage.DRAINING.value
        return "Shifting", "Kubernetes has 100% of traffic; scaling the Marathon app to zero"
    st["stage"] = Stage.SHIFTED.value
    unconfirmed = (
        f" (the load balancer could not be read: scaled down {UNCONFIRMED_SECONDS:.0f} s after"
        " the weights were written, unconfirmed)"
        if st.get("scaleDownUnconfirmed")
        else ""
    )
    return (
        "Shifted",
        f"Kubernetes serves all traffic; the Marathon app is scaled to zero{unconfirmed}",
    )


def _roll_back(ctx: _Ctx, st: dict[str, Any], reason: str, final: Stage) -> tuple[str, str]:
    st.update(stage=Stage.ROLLING_BACK.value, final=final.value, reason=reason)
    st.pop("analysisRun", None)
    return _rolling_back(ctx, st)


def _rolling_back(ctx: _Ctx, st: dict[str, Any]) -> tuple[str, str]:
    """Marathon back to the spec's instances first (if it was scaled down), then all
    traffic back on it."""
    inp = ctx.inp
    reason = str(st.get("reason") or "rolled back")
    st["marathonScaledDown"] = False
    st.pop("scaleDownUnconfirmed", None)
    current = int(st.get("kubernetesWeight", 0))
    marathon = inp.marathon
    ready = (
        marathon.present
        and marathon.desired >= inp.marathon_spec_instances
        and marathon.ready >= inp.marathon_spec_instances
    )
    if current > 0 and not ready:
        ctx.set_weight(current, st)
        ctx.wait(1)
        return (
            "Shifting",
            f"rolling back ({reason}): scaling the Marathon app back to"
            f" {inp.marathon_spec_instances} ({marathon.ready} ready) before it takes the"
            f" traffic; Kubernetes keeps {current}% until then",
        )
    ctx.set_weight(0, st)
    if not ctx.settled(st):
        return "Shifting", f"rolling back ({reason}): all traffic back on Marathon"
    final = Stage(st.pop("final", Stage.ROLLED_BACK.value))
    st["stage"] = final.value
    return _rolled_back(ctx, st)


def _rolled_back(ctx: _Ctx, st: dict[str, Any]) -> tuple[str, str]:
    ctx.set_weight(0, st)
    reason = str(st.get("reason") or "")
    if st.get("stage") == Stage.FAILED.value:
        return (
            "Failed",
            f"rolled back: {reason}; Marathon serves all traffic (change the steps to try again)",
        )
    return (
        "RolledBack",
        f"rolled back: {reason}; Marathon serves all traffic (set spec.abort to false to"
        " shift again)",
    )
