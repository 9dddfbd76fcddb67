"""The ProbeFleet status timer (operator/probefleet/handlers.py, `observe`) and the change
handler's answer: a tick that reads the status before the handler has answered the spec
writes nothing, so it cannot replace the conditions list without the Accepted condition (a
refusal by the allow-list lost, seen once in CI: the fleet never became Invalid)."""

from typing import Any, cast

import kopf

from orchestrator_operator.operator.probefleet.handlers import observe

REFUSED = {
    "type": "Accepted", "status": "False", "reason": "NotAllowed",
    "message": "allow-list rule namespaces", "observedGeneration": 1,
}  # fmt: skip


def _tick(status: dict[str, Any]) -> kopf.Patch:
    patch = kopf.Patch()
    meta = {"name": "fleet", "namespace": "team-b", "uid": "u", "generation": 1}
    # the timer's Kopf signature wants every kwarg Kopf passes; these are what it reads
    cast(Any, observe)(spec={}, status=status, meta=meta, patch=patch, memo=kopf.Memo())
    return patch


def test_a_tick_before_the_spec_is_answered_writes_nothing() -> None:
    assert _tick({}) == {}
    assert _tick({"observedGeneration": 0, "phase": "Ready"}) == {}


def test_a_tick_after_a_refusal_keeps_the_fleet_invalid() -> None:
    raced = {"observedGeneration": 1, "phase": "Pending", "conditions": [REFUSED]}
    assert _tick(raced) == {"status": {"phase": "Invalid"}}
    assert _tick({**raced, "phase": "Invalid"}) == {}
