"""What the operator writes into status is what the API server stores, so an unchanged
status is not re-sent every tick and Kopf finds no "inconsistencies" after a merge patch
(issue 18, point 3: null phase times and a condition's null observedGeneration)."""

from __future__ import annotations

from typing import Any

import kopf

from orchestrator_operator.models.zkmigration import PhaseRecord
from orchestrator_operator.operator.reconcile import patch_changed_status, stored_form


def _phases() -> list[dict[str, Any]]:
    return [
        PhaseRecord(number=1, name="SyncTarget", state="Running", started_at="2026-12-03T17:35:04Z")
        .model_dump(mode="json", by_alias=True),
        PhaseRecord(number=2, name="MastersOnTarget", state="Pending")
        .model_dump(mode="json", by_alias=True),
    ]  # fmt: skip


def test_list_items_are_written_without_the_nulls_the_server_drops() -> None:
    assert _phases()[1]["startedAt"] is None  # what the model dumps
    patch = kopf.Patch()
    patch_changed_status({}, {"phases": _phases()}, patch)
    written = patch["status"]["phases"]
    assert written[1] == {"number": 2, "name": "MastersOnTarget", "state": "Pending", "message": ""}
    assert "finishedAt" not in written[0]


def test_an_unchanged_status_as_stored_is_not_patched_again() -> None:
    stored = {"phases": stored_form(_phases()), "observedGeneration": 3}
    patch = kopf.Patch()
    patch_changed_status(stored, {"phases": _phases(), "observedGeneration": 3}, patch)
    assert dict(patch) == {}


def test_a_null_in_an_object_still_deletes_the_stored_field() -> None:
    patch = kopf.Patch()
    patch_changed_status(
        {"baseline": {"tasks": 3, "recordedAt": "t"}, "leader": "m-0"},
        {"baseline": {"tasks": 3, "recordedAt": None}, "leader": None},
        patch,
    )
    assert patch["status"] == {"baseline": {"tasks": 3, "recordedAt": None}, "leader": None}
