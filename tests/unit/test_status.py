from __future__ import annotations

from orchestrator_operator.common.conditions import make_condition, set_condition


def test_transition_time_kept_while_status_unchanged() -> None:
    first = make_condition("Ready", False, "Starting", "", 1, now="2026-01-01T00:00:00Z")
    again = make_condition("Ready", False, "Waiting", "still", 2, now="2026-01-01T00:05:00Z")
    conditions = set_condition(set_condition([], first), again)
    assert conditions == [{**again, "lastTransitionTime": "2026-01-01T00:00:00Z"}]


def test_transition_time_moves_when_status_flips() -> None:
    first = make_condition("Ready", False, "Starting", "", 1, now="2026-01-01T00:00:00Z")
    flipped = make_condition("Ready", True, "Ready", "", 1, now="2026-01-01T00:09:00Z")
    other = make_condition("Accepted", True, "SpecValid", "", 1)
    conditions = set_condition(set_condition([first, other], flipped), other)
    assert conditions[0]["lastTransitionTime"] == "2026-01-01T00:09:00Z"
    assert [c["type"] for c in conditions] == ["Ready", "Accepted"]
