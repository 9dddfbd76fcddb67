"""Pure helpers for status conditions, following the Kubernetes API conventions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

Condition = dict[str, Any]


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_condition(
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int | None,
    now: str | None = None,
) -> Condition:
    """A condition; `status` None means Unknown."""
    return {
        "type": type_,
        "status": "Unknown" if status is None else ("True" if status else "False"),
        "reason": reason,
        "message": message,
        "lastTransitionTime": now or now_rfc3339(),
        "observedGeneration": generation,
    }


def set_condition(conditions: list[Condition] | None, new: Condition) -> list[Condition]:
    """Replace or add `new` by type; keep lastTransitionTime when the status did not change."""
    result: list[Condition] = []
    replaced = False
    for existing in conditions or []:
        if existing.get("type") != new["type"]:
            result.append(existing)
            continue
        merged = dict(new)
        if existing.get("status") == new["status"]:
            merged["lastTransitionTime"] = existing.get(
                "lastTransitionTime", new["lastTransitionTime"]
            )
        result.append(merged)
        replaced = True
    if not replaced:
        result.append(new)
    return result
