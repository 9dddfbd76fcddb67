"""Kopf handlers for MarathonApp: keep the app in the cluster's leading Marathon as the spec
says, and write what Marathon really runs into status.

`reconcile` (create, a spec change, `kubectl scale`, operator start) validates the spec and
syncs at once; `observe`, a timer, syncs again every second while something moves (a
deployment, a pending apply, a problem) and every SETTLED_SECONDS once the app is Ready.
A sync: find the cluster's leading Marathon (observe.find_marathon), build the Marathon app
(status.app_definition, env values from labelled Secrets), compare it with Marathon's
(status.drift_fields) and PUT it when the spec has a generation not yet applied (unless
Marathon already runs that very definition: adoption, e.g. of an imported manifest, sends
nothing), when an autoscaler's decision changes the instances, or when someone changed the
app in Marathon and `spec.drift` is Revert (Report only reports); then observe the app and
write status (with status.readiness, the app's readiness for Kubernetes).
`status.observedGeneration` is the generation last applied to Marathon (or refused as
invalid): while it lags, the difference is an apply, not drift.

Two MarathonApps naming the same cluster and app id in a namespace: the oldest manages the
app; the others get Accepted=False (Conflict) and change nothing, not even on deletion.
For `strategy.type` other than rolling, the sync hands over to
`operator/marathonapp/strategy.py` (`reconcile_strategy`) when that module exists.
"""

from __future__ import annotations

import copy
import importlib
import logging
import time
from types import ModuleType
from typing import Any

import kopf
from pydantic import ValidationError

from orchestrator_operator.common.conditions import make_condition, now_rfc3339, set_condition
from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.mesos.marathon_api import MarathonError, MarathonUnreachable
from orchestrator_operator.models import API_GROUP, API_VERSION, MARATHON_APP
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.models.vocabulary import INVALID_PHASE, ConditionType, Reason
from orchestrator_operator.operator.admission import marathonapp_refusal
from orchestrator_operator.operator.allowlist import ALLOW_ALL
from orchestrator_operator.operator.marathonapp import kubernetes, metrics, offramp
from orchestrator_operator.operator.marathonapp.observe import (
    Unobservable,
    find_marathon,
    forget_leader,
    invalidate,
    observe_shared,
)
from orchestrator_operator.operator.marathonapp.secrets import SecretRefused, env_values
from orchestrator_operator.operator.marathonapp.status import (
    MarathonObservation,
    app_definition,
    build_status,
    claim_winner,
    desired_instances,
    drift_fields,
    only_instances_differ,
    settled,
)
from orchestrator_operator.operator.reconcile import (
    accept_spec,
    counted,
    patch_changed_status,
    refused,
    stored_form,
)

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
SETTLED_SECONDS = 10.0
# After the operator's own PUT, Marathon's answer may lag (the shared snapshot, a deployment
# starting): no drift is judged for this long.
DRIFT_GRACE_SECONDS = 3.0
# A failed apply is retried by the timer after this long (Marathon unreachable, no cluster,
# a conflict), or after REFUSED_RETRY_SECONDS when Marathon refused the definition.
RETRY_SECONDS = 2.0
REFUSED_RETRY_SECONDS = 30.0
STRATEGY_MODULE = "orchestrator_operator.operator.marathonapp.strategy"
# What a blue-green or canary rollout may have added beside the app (the contract with
# strategy.py): removed with the app.
STRATEGY_SUFFIXES = ("-canary", "-blue", "-green")
_strategy: ModuleType | None = None


def strategy_module() -> ModuleType | None:
    """operator/marathonapp/strategy.py when it exists (written separately), else None."""
    global _strategy
    if _strategy is None:
        try:
            _strategy = importlib.import_module(STRATEGY_MODULE)
        except ModuleNotFoundError as error:
            if error.name != STRATEGY_MODULE:
                raise
            return None
    return _strategy if hasattr(_strategy, "reconcile_strategy") else None


Claim = tuple[str, str]  # (creationTimestamp, name)


@kopf.index(API_GROUP, API_VERSION, "marathonapps")
def marathonapp_claims(
    namespace: str | None, name: str, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> dict[tuple[str, str, str], Claim]:
    """(namespace, cluster, app id) -> who claims it: finds two MarathonApps managing one
    Marathon app."""
    cluster = spec.get("cluster")
    app_id = (spec.get("app") or {}).get("id")
    if not isinstance(cluster, str) or not isinstance(app_id, str):
        return {}
    key = (namespace or "", cluster, "/" + app_id.strip("/"))
    return {key: (str(meta.get("creationTimestamp") or ""), name)}


def _conflicting_owner(
    kwargs: dict[str, Any], meta: kopf.Meta, parsed: MarathonAppSpec
) -> str | None:
    """The MarathonApp that manages this one's Marathon app instead, or None."""
    index = kwargs.get("marathonapp_claims")
    store = index.get((meta["namespace"], parsed.cluster, parsed.app.id)) if index else None
    own = (str(meta.get("creationTimestamp") or ""), meta["name"])
    winner = claim_winner([*(store or []), own])
    return None if winner == meta["name"] else winner


def _accepted(status: kopf.Status, patch: kopf.Patch, ok: bool, reason: str, text: str,
              generation: int | None) -> list[dict[str, Any]]:  # fmt: skip
    conditions = copy.deepcopy(
        list(patch.status.get("conditions") or status.get("conditions") or [])
    )
    conditions = set_condition(
        conditions, make_condition(ConditionType.ACCEPTED, ok, reason, text, generation)
    )
    return list(stored_form(conditions))


@kopf.on.resume(API_GROUP, API_VERSION, "marathonapps")
@kopf.on.create(API_GROUP, API_VERSION, "marathonapps")
@kopf.on.update(API_GROUP, API_VERSION, "marathonapps", field="spec")
@counted(MARATHON_APP)
def reconcile(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    body: kopf.Body,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    applied = status.get("observedGeneration")
    allow = memo["settings"].allowlist
    parsed: MarathonAppSpec = accept_spec(
        MARATHON_APP, spec, status, meta.get("generation"), patch,
        "spec is valid; kept in the cluster's Marathon",
        phase=None,
        refusal=lambda app: marathonapp_refusal(allow, meta["namespace"], app),
    )  # fmt: skip
    # observedGeneration means "applied to Marathon": the sync below sets it when it is.
    patch.status["observedGeneration"] = applied
    sync(parsed, body, status, meta, patch, memo, kwargs)


@kopf.timer(API_GROUP, API_VERSION, "marathonapps", interval=TICK_SECONDS)
@counted(MARATHON_APP)
def observe(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    body: kopf.Body,
    memo: kopf.Memo,
    **kwargs: Any,
) -> None:
    if status.get("phase") == INVALID_PHASE and _accepted_reason(status) == Reason.INVALID_SPEC:
        return
    if refused(status):  # by the allow-list: no Marathon request, whatever the phase says
        if status.get("phase") != INVALID_PHASE:
            patch.status["phase"] = INVALID_PHASE
        return
    try:
        parsed = MarathonAppSpec.model_validate(copy.deepcopy(dict(spec)))
    except ValidationError:
        return  # the reconcile handler reports it
    now = time.monotonic()
    pending = meta.get("generation") != status.get("observedGeneration")
    if pending and (
        memo.get("marathonapp_retry") != meta.get("generation")
        or now < memo.get("marathonapp_retry_at", 0.0)
    ):
        return  # the reconcile handler applies it (and asks the timer to retry if it fails)
    recent = now - memo.get("marathonapp_put_at", 0.0) < DRIFT_GRACE_SECONDS
    last = memo.get("marathonapp_observed_at", 0.0)
    moving = kubernetes.moving(parsed, status) or offramp.moving(parsed, status)
    if (
        settled(status)
        and not pending
        and not recent
        and not moving
        and now - last < SETTLED_SECONDS
    ):
        return
    sync(parsed, body, status, meta, patch, memo, kwargs)


def _retry_later(memo: kopf.Memo, generation: int | None, seconds: float) -> None:
    memo["marathonapp_retry"] = generation
    memo["marathonapp_retry_at"] = time.monotonic() + seconds


def _accepted_reason(status: kopf.Status) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == ConditionType.ACCEPTED:
            return str(condition.get("reason"))
    return None


def sync(
    parsed: MarathonAppSpec,
    body: kopf.Body,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    memo: kopf.Memo,
    kwargs: dict[str, Any],
) -> None:
    """Apply what needs applying, observe, and write status (see the module's docstring)."""
    memo["marathonapp_observed_at"] = time.monotonic()
    namespace, name = meta["namespace"], meta["name"]
    generation = meta.get("generation")
    owner = _conflicting_owner(kwargs, meta, parsed)
    if owner is not None:
        _retry_later(memo, generation, RETRY_SECONDS)  # the owner may go
        patch.status["phase"] = INVALID_PHASE
        patch.status["conditions"] = _accepted(
            status, patch, False, Reason.CONFLICT,
            f"MarathonApp {owner} already manages app {parsed.app.id} of cluster"
            f" {parsed.cluster}; this one changes nothing",
            generation,
        )  # fmt: skip
        return
    if _accepted_reason(status) == Reason.CONFLICT:
        patch.status["conditions"] = _accepted(
            status, patch, True, Reason.SPEC_VALID,
            "spec is valid; kept in the cluster's Marathon", generation,
        )  # fmt: skip
    instances = desired_instances(parsed, status)
    applied = patch.status.get("observedGeneration", status.get("observedGeneration"))
    pending = generation != applied
    strategy = strategy_module() if parsed.strategy.type != "rolling" else None
    drift_seen: list[str] = []
    reverted_at: str | None = None
    new_generation = applied
    rollout: dict[str, Any] | None = None
    shift: dict[str, Any] | None = None
    try:
        target = find_marathon(namespace, parsed.cluster)
        try:
            env = env_values(KubeApi.shared(), namespace, parsed.app.env)
        except SecretRefused as error:
            raise Unobservable(Reason.SECRET_REFUSED, str(error)) from None
        if strategy is None and offramp.shifting(parsed):
            # The traffic shift to Kubernetes decides how many instances Marathon keeps.
            shift, instances = offramp.reconcile_offramp(
                dict(body), parsed, target.client, KubeApi.shared(), instances
            )
        definition = app_definition(parsed, env, instances)
        if strategy is not None:
            rollout = strategy.reconcile_strategy(body, definition, target.client, KubeApi.shared())
            invalidate(target.client)
            new_generation = generation
            # Blue-green's stable app is <id>-blue or -green: status shows the one serving.
            serving = str((rollout or {}).get("stableApp") or parsed.app.id)
            observation = observe_shared(target.client, serving)
        else:
            # A generation not yet applied is PUT as it is (Marathon answers an unchanged
            # definition with an empty deployment). Otherwise the cluster's shared snapshot
            # tells what differs; our own change may not show in it yet (no drift then).
            recent = time.monotonic() - memo.get("marathonapp_put_at", 0.0) < DRIFT_GRACE_SECONDS
            observation = observe_shared(target.client, parsed.app.id)
            if pending:
                # Adoption: an app Marathon already runs as the spec says (an imported
                # manifest, `orchestrator marathon import`) gets no PUT: no new version.
                same = observation.app is not None and not drift_fields(definition, observation.app)
                fields = [] if same else ["(generation)"]
            elif recent:
                fields = []
            else:
                fields = (
                    drift_fields(definition, observation.app) if observation.app else ["(missing)"]
                )
            if fields:
                scaling = (
                    parsed.autoscaling is not None or shift is not None
                ) and only_instances_differ(fields)
                if pending or scaling or parsed.drift == "Revert":
                    target.client.put_app(parsed.app.id, definition, force=True)
                    memo["marathonapp_put_at"] = time.monotonic()
                    if not pending and not scaling:
                        drift_seen, reverted_at = fields, now_rfc3339()
                        metrics.drift_reverted(namespace, name)
                        log.info("MarathonApp %s/%s: reverted %s in Marathon", namespace, name,
                                 ", ".join(fields))  # fmt: skip
                else:
                    drift_seen = fields
            new_generation = generation
        observation = _with_relaunches(observation, status, memo, drift_seen, reverted_at)
    except Unobservable as error:
        _retry_later(memo, generation, RETRY_SECONDS)  # the timer tries again
        observation = MarathonObservation(parsed.app.id, problem=(error.reason, error.message))
    except MarathonError as error:
        # A definition Marathon refuses (422) will be refused again: ask less often.
        refused = not isinstance(error, MarathonUnreachable)
        _retry_later(memo, generation, REFUSED_RETRY_SECONDS if refused else RETRY_SECONDS)
        forget_leader(namespace, parsed.cluster)
        reason = (
            Reason.MARATHON_UNREACHABLE
            if isinstance(error, MarathonUnreachable)
            else Reason.MARATHON_REFUSED
        )
        observation = MarathonObservation(
            parsed.app.id, problem=(reason, f"Marathon of MesosCluster {parsed.cluster}: {error}")
        )
    conditions = copy.deepcopy(
        list(patch.status.get("conditions") or status.get("conditions") or [])
    )
    new_status = build_status(
        parsed, observation, instances, conditions, generation, now_rfc3339(),
        status.get("drift"), strategy_available=strategy is not None,
    )  # fmt: skip
    new_status["observedGeneration"] = new_generation
    new_status["kubernetes"] = _kubernetes(parsed, meta, status, memo)
    if rollout is not None:
        new_status["rollout"] = rollout
    if shift is not None:
        new_status["offramp"] = shift
    metrics.export_status(namespace, name, new_status, instances)
    patch_changed_status(status, new_status, patch)


def _kubernetes(
    parsed: MarathonAppSpec, meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo
) -> dict[str, Any] | None:
    """status.kubernetes after applying (or removing) the translated Deployment and Service."""
    try:
        allow = memo["settings"].allowlist if "settings" in memo else ALLOW_ALL
        return kubernetes.reconcile(KubeApi.shared(), parsed, meta, status, memo, allow)
    except ApiError as error:
        _retry_later(memo, meta.get("generation"), RETRY_SECONDS)
        return {"replicas": 0, "message": f"Kubernetes API: {error}"[:1000]}


def _with_relaunches(
    observation: MarathonObservation,
    status: kopf.Status,
    memo: kopf.Memo,
    drift: list[str],
    reverted_at: str | None,
) -> MarathonObservation:
    """Count a task failure Marathon reports (lastTaskFailure) once; the first one this
    operator process sees is only remembered (it may have been counted before a restart)."""
    previous = int((status.get("marathon") or {}).get("relaunches") or 0)
    failure = (observation.app or {}).get("lastTaskFailure") or {}
    task = failure.get("taskId") if isinstance(failure, dict) else None
    seen = memo.get("marathonapp_last_failure")
    relaunches = previous
    if task and seen is not None and task != seen:
        relaunches += 1
    if task:
        memo["marathonapp_last_failure"] = task
    elif seen is None:
        memo["marathonapp_last_failure"] = ""
    return MarathonObservation(
        app_id=observation.app_id,
        app=observation.app,
        deployment=observation.deployment,
        queue_entry=observation.queue_entry,
        drift=drift,
        drift_reverted_at=reverted_at,
        relaunches=relaunches,
    )


# Deleting waits at most about this long for an unreachable Marathon (retries 5 s apart),
# then lets the resource go (Kopf releases it once the handler has failed for good), so a
# broken cluster cannot hold a namespace's deletion forever.
DELETE_RETRIES = 36


@kopf.on.delete(API_GROUP, API_VERSION, "marathonapps", retries=DELETE_RETRIES)
def remove(spec: kopf.Spec, meta: kopf.Meta, **kwargs: Any) -> None:
    """deletionPolicy Delete: the app leaves Marathon (and a rollout's other apps); Orphan
    keeps it. A MarathonApp that never managed the app (invalid, in conflict) removes nothing;
    with no cluster or no Marathon there is nothing to remove it from."""
    metrics.forget(meta["namespace"], meta["name"])
    try:
        parsed = MarathonAppSpec.model_validate(copy.deepcopy(dict(spec)))
    except ValidationError:
        return
    if parsed.deletion_policy == "Orphan" or _conflicting_owner(kwargs, meta, parsed):
        return
    try:
        target = find_marathon(meta["namespace"], parsed.cluster)
    except Unobservable as error:
        if error.reason in (Reason.CLUSTER_NOT_FOUND, Reason.NO_MARATHON):
            log.warning("MarathonApp %s/%s: nothing to delete from: %s",
                        meta["namespace"], meta["name"], error.message)  # fmt: skip
            return
        raise kopf.TemporaryError(error.message, delay=5) from None
    ids = [parsed.app.id]
    if parsed.strategy.type != "rolling":
        ids += [parsed.app.id + suffix for suffix in STRATEGY_SUFFIXES]
    try:
        for app_id in ids:
            target.client.delete_app(app_id, force=True)
    except MarathonError as error:
        forget_leader(meta["namespace"], parsed.cluster)
        raise kopf.TemporaryError(f"cannot delete {parsed.app.id}: {error}", delay=5) from None
