"""The order in which a reconcile writes its children (common/kube_api.py)."""

from orchestrator_operator.common.kube_api import apply_waves
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.operator.builders import loadbalancer
from orchestrator_operator.operator.builders.probefleet import build_children, fleet_owner


def _kinds(wave: list[dict[str, object]]) -> set[object]:
    return {manifest["kind"] for manifest in wave}


def test_the_load_balancer_role_is_written_before_its_binding() -> None:
    # The API server's escalation check for a RoleBinding reads the Role it names and answers
    # 404 while it does not exist (kubernetes pkg/registry/rbac/rolebinding/policybased).
    owner = Owner(name="demo", namespace="ns", uid="u")
    children = loadbalancer.build(owner, loadbalancer.enabled(MesosClusterSpec()))
    first, rest = apply_waves(children)
    assert _kinds(first) == {"ServiceAccount", "Role"}
    assert "RoleBinding" in _kinds(rest) and not _kinds(rest) & {"Role", "ServiceAccount"}


def test_a_fleet_cluster_role_is_written_before_its_binding_and_nothing_is_dropped() -> None:
    children = build_children(fleet_owner("scope", "ns", "u"), ProbeFleetSpec())
    waves = apply_waves(children)
    assert "ClusterRole" in _kinds(waves[0]) and "ClusterRoleBinding" in _kinds(waves[1])
    assert sorted(str(m["metadata"]) for wave in waves for m in wave) == sorted(
        str(m["metadata"]) for m in children
    )


def test_objects_without_roles_are_one_wave() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}}
    assert apply_waves([service]) == [[service]]
    assert apply_waves([]) == []
