"""What every kind's handler does first: validate the spec and record it in status."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from ..metrics import RECONCILE_SECONDS, RECONCILES
from ..models import ResourceKind
from ..status import make_condition, set_condition

ACCEPTED = "Accepted"


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
    phase: str | None = "Pending",
) -> Any:
    """Validate `spec` against the kind's model and patch status: `phase`, or Invalid.

    Returns the parsed spec. Invalid input raises kopf.PermanentError: retrying cannot help,
    the user must change the resource; the condition says what to change.
    """
    started = time.perf_counter()
    conditions = copy.deepcopy(list(status.get("conditions") or []))
    try:
        parsed = kind.spec.model_validate(copy.deepcopy(dict(spec)))
    except ValidationError as error:
        message = validation_message(error)
        patch.status["phase"] = "Invalid"
        patch.status["observedGeneration"] = generation
        patch.status["conditions"] = set_condition(
            conditions, make_condition(ACCEPTED, False, "InvalidSpec", message, generation)
        )
        RECONCILES.labels(kind.kind, "invalid").inc()
        raise kopf.PermanentError(f"invalid {kind.kind} spec: {message}") from error
    if phase:
        patch.status["phase"] = phase
    patch.status["observedGeneration"] = generation
    patch.status["conditions"] = set_condition(
        conditions, make_condition(ACCEPTED, True, "SpecValid", accepted_message, generation)
    )
    RECONCILES.labels(kind.kind, "ok").inc()
    RECONCILE_SECONDS.labels(kind.kind).observe(time.perf_counter() - started)
    return parsed
