"""Pure helpers for status conditions, following the Kubernetes API conventions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Condition = dict[str, Any]
Verdict = tuple[bool | None, str, str]  # status (None: Unknown), reason, message


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


def merge_conditions(
    previous: list[Condition] | None,
    verdicts: Mapping[str, Verdict],
    generation: int | None,
    now: str,
) -> list[Condition]:
    """`previous` with one condition per verdict set (transition times kept)."""
    conditions = list(previous or [])
    for type_, (ok, reason, message) in verdicts.items():
        conditions = set_condition(
            conditions, make_condition(type_, ok, reason, message, generation, now)
        )
    return conditions
