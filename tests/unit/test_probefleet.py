"""ProbeFleet builders and status."""

from __future__ import annotations

from orchestrator_operator.builders.probefleet import build_children, fleet_owner, token_ref
from orchestrator_operator.fleet_health import FleetObservation, build_fleet_status
from orchestrator_operator.models.probefleet import ProbeFleetSpec

OWNER = fleet_owner("scope", "monitoring", "u1")


def _kinds(spec: ProbeFleetSpec) -> dict[str, dict[str, object]]:
    return {c["kind"]: c for c in build_children(OWNER, spec)}


def test_collectors_map_to_probe_flags() -> None:
    spec = ProbeFleetSpec.model_validate({"probe": {"collectors": {"containers": False}}})
    args = _kinds(spec)["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[index]
    assert "--no-docker" in args and "--kubernetes" in args
    volumes = _kinds(spec)["DaemonSet"]["spec"]["template"]["spec"]["volumes"]  # type: ignore[index]
    assert volumes == []


def test_own_token_secret_is_used_as_given() -> None:
    spec = ProbeFleetSpec.model_validate({"tokenSecretRef": {"name": "mine", "key": "t"}})
    assert token_ref(OWNER, spec) == ("mine", "t")
    assert token_ref(OWNER, ProbeFleetSpec()) == ("scope-token", "token")


def test_cluster_scoped_rbac_has_no_owner_reference() -> None:
    kinds = _kinds(ProbeFleetSpec())
    assert "ownerReferences" not in kinds["ClusterRole"]["metadata"]  # type: ignore[operator]
    assert kinds["ClusterRoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "scope-probe", "namespace": "monitoring"}
    ]


def _status(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"probes_desired": 3, "probes_ready": 3, "app_desired": 1,
                               "app_ready": 1, "app_url": "http://app", "reporting": 3}  # fmt: skip
    base.update(changes)
    return build_fleet_status(FleetObservation(**base), 1, [], "2026-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_phase_follows_what_reports() -> None:
    assert _status()["phase"] == "Ready"
    assert _status(reporting=2)["phase"] == "Degraded"
    assert _status(reporting=None, app_error="refused")["phase"] == "Progressing"
    assert _status(app_ready=0, reporting=None)["appReady"] is False
