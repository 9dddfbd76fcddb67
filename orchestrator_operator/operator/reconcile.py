"""What every kind's handler does first: validate the spec and record it in status."""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import kopf
from pydantic import ValidationError

from orchestrator_operator.common.conditions import make_condition, set_condition
from orchestrator_operator.models import ResourceKind
from orchestrator_operator.models.vocabulary import (
    INVALID_PHASE,
    ConditionType,
    Reason,
    WorkloadPhase,
    ZkMigrationPhase,
)
from orchestrator_operator.operator.metrics import RECONCILE_SECONDS, RECONCILES

Handler = TypeVar("Handler", bound=Callable[..., Any])


def counted(kind: ResourceKind) -> Callable[[Handler], Handler]:
    """Count a handler's failures as `orchestrator_reconcile_total{result="error"}` (an
    invalid spec is counted as `invalid` where it is found)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def counting(*args: Any, **kwargs: Any) -> Any:
            try:
                return handler(*args, **kwargs)
            except kopf.PermanentError:
                raise
            except Exception:
                RECONCILES.labels(kind.kind, "error").inc()
                raise

        return cast(Handler, counting)

    return decorate


def validation_message(error: ValidationError) -> str:
    """One line per problem, naming the field the way the user wrote it (camelCase path)."""
    lines = []
    for item in error.errors():
        where = "spec." + ".".join(str(part) for part in item["loc"])
        lines.append(f"{where}: {item['msg']}")
    return "; ".join(lines)


def accept_spec(
    kind: ResourceKind,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    generation: int | None,
    patch: kopf.Patch,
    accepted_message: str,
    phase: WorkloadPhase | ZkMigrationPhase | None = ZkMigrationPhase.PENDING,
    refusal: Callable[[Any], str | None] | None = None,
) -> Any:
    """Validate `spec` against the kind's model and patch status: `phase`, or Invalid.

    Returns the parsed spec. Invalid input raises kopf.PermanentError: retrying cannot help,
    the user must change the resource; the condition says what to change. `refusal`, given
    the parsed spec, names the allow-list rule it breaks (operator/admission.py): then the
    same, with the reason NotAllowed, before anything is created.
    """
    started = time.perf_counter()
    conditions = copy.deepcopy(list(status.get("conditions") or []))
    try:
        parsed = kind.spec.model_validate(copy.deepcopy(dict(spec)))
    except ValidationError as error:
        message = validation_message(error)
        patch.status["phase"] = INVALID_PHASE
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = stored_form(
            set_condition(
                conditions,
                make_condition(
                    ConditionType.ACCEPTED, False, Reason.INVALID_SPEC, message, generation
                ),
            )
        )
        RECONCILES.labels(kind.kind, "invalid").inc()
        raise kopf.PermanentError(f"invalid {kind.kind} spec: {message}") from error
    refused = refusal(parsed) if refusal is not None else None
    if refused:
        patch.status["phase"] = INVALID_PHASE
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = stored_form(
            set_condition(
                conditions,
                make_condition(
                    ConditionType.ACCEPTED, False, Reason.NOT_ALLOWED, refused, generation
                ),
            )
        )
        RECONCILES.labels(kind.kind, "invalid").inc()  # refused counts as invalid
        raise kopf.PermanentError(f"{kind.kind} refused: {refused}")
    if phase:
        patch.status["phase"] = phase
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = stored_form(
        set_condition(
            conditions,
            make_condition(
                ConditionType.ACCEPTED, True, Reason.SPEC_VALID, accepted_message, generation
            ),
        )
    )
    RECONCILES.labels(kind.kind, "ok").inc()
    RECONCILE_SECONDS.labels(kind.kind).observe(time.perf_counter() - started)
    return parsed


def refused(status: Mapping[str, Any]) -> bool:
    """The allow-list refused the spec (Accepted=False, reason NotAllowed). Timers and
    observers act on nothing then (no ZooKeeper session, no Marathon request) whatever the
    phase says: a tick that raced the refusal may have written another phase, which the
    caller puts back to Invalid."""
    return any(
        condition.get("type") == ConditionType.ACCEPTED
        and condition.get("status") == "False"
        and condition.get("reason") == Reason.NOT_ALLOWED
        for condition in status.get("conditions") or []
    )


def accept_for_children(
    kind: ResourceKind,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    patch: kopf.Patch,
    refusal: Callable[[Any], str | None] | None = None,
) -> Any:
    """accept_spec for kinds whose children get applied next: the phase becomes Progressing
    unless the observer has already said Ready or Degraded (it will say so again)."""
    return accept_spec(
        kind,
        spec,
        status,
        meta.get("generation"),
        patch,
        "spec is valid; children applied",
        phase=(
            None
            if status.get("phase") in (WorkloadPhase.READY, WorkloadPhase.DEGRADED)
            else WorkloadPhase.PROGRESSING
        ),
        refusal=refusal,
    )


def stored_form(value: Any) -> Any:
    """`value` as the API server stores it: without null fields at any depth. Our CRD
    schemas are not nullable, so the server drops a null it is sent (and a merge patch's
    null deletes the field): writing a list of objects with null fields (a phase's
    `finishedAt`, a condition's `observedGeneration`) stores them without those fields."""
    if isinstance(value, Mapping):
        return {key: stored_form(item) for key, item in value.items() if item is not None}
    if isinstance(value, list | tuple):
        return [stored_form(item) for item in value]
    return value


def patch_changed_status(
    status: Mapping[str, Any], new_status: Mapping[str, Any], patch: kopf.Patch
) -> None:
    """Patch only the fields that changed: an unchanged status costs no API request.

    Compared in their stored form, and written without the nulls a list's items would lose,
    so what the operator believes it wrote is what the object holds (else every tick
    re-sends the nulls, and Kopf warns "Merge-patching finished with inconsistencies").
    A null in an object, a top-level one included, still deletes its field.
    """
    for key, value in new_status.items():
        if status.get(key) != stored_form(value):
            patch.status[key] = _nulls_out_of_lists(value)


def _nulls_out_of_lists(value: Any, in_list: bool = False) -> Any:
    """A merge patch's value: a list replaces the stored one whole, so the nulls in its
    items only differ from what gets stored; an object's null deletes a stored field."""
    if isinstance(value, Mapping):
        return {
            key: _nulls_out_of_lists(item, in_list)
            for key, item in value.items()
            if item is not None or not in_list
        }
    if isinstance(value, list | tuple):
        return [_nulls_out_of_lists(item, True) for item in value]
    return value
