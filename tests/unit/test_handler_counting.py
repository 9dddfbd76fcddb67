"""A failing handler counts as a reconcile error; an invalid spec does not (it is counted
as invalid where it is found)."""

from __future__ import annotations

import kopf
import pytest
from prometheus_client import REGISTRY

from orchestrator_operator.models import MESOS_CLUSTER
from orchestrator_operator.operator.metrics import create_reconcile_series
from orchestrator_operator.operator.reconcile import counted


def _errors() -> float:
    value = REGISTRY.get_sample_value(
        "orchestrator_reconcile_total", {"kind": MESOS_CLUSTER.kind, "result": "error"}
    )
    return value or 0.0


def test_failures_are_counted_and_permanent_errors_are_not() -> None:
    create_reconcile_series([MESOS_CLUSTER.kind])
    before = _errors()

    @counted(MESOS_CLUSTER)
    def broken(**_: object) -> None:
        raise RuntimeError("the API server said no")

    @counted(MESOS_CLUSTER)
    def invalid(**_: object) -> None:
        raise kopf.PermanentError("spec.masters.replicas: must be odd")

    @counted(MESOS_CLUSTER)
    def fine(spec: dict[str, int], **_: object) -> int:
        return spec["n"]

    with pytest.raises(RuntimeError):
        broken(spec={})
    with pytest.raises(kopf.PermanentError):
        invalid(spec={})
    assert fine(spec={"n": 3}) == 3
    assert _errors() == before + 1
    assert fine.__name__ == "fine"  # Kopf names handlers after the function
