"""Which children's names another holds (operator/ownership.py), and why the check is
needed: the names the builders give can be another resource's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestrator_operator.common.manifest import Manifest, Owner, owner_reference
from orchestrator_operator.models import ZK_MIGRATION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.builders.cluster import build_children
from orchestrator_operator.operator.ownership import first_taken, names_taken, whose

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _live(name: str, *owners: Owner) -> Manifest:
    return {"metadata": {"name": name, "ownerReferences": [owner_reference(o) for o in owners]}}


def _wanted(kind: str, name: str) -> Manifest:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}}


def _names(children: list[Manifest]) -> set[tuple[str, str]]:
    return {(c["kind"], c["metadata"]["name"]) for c in children}


def _cluster_spec(**changes: Any) -> MesosClusterSpec:
    spec = yaml.safe_load((EXAMPLES / "mesoscluster.yaml").read_text())["spec"] | changes
    return MesosClusterSpec.model_validate(spec)


def test_a_zkmigration_named_after_its_cluster_names_ensemble_b_as_the_clusters_zookeeper() -> None:
    cluster = _cluster_spec()
    migration = ZkMigrationSpec.model_validate(
        yaml.safe_load((EXAMPLES / "zkmigration.yaml").read_text())["spec"]
    )
    assert migration.target.managed is not None
    a = build_children(Owner("demo", "ns", "c"), cluster, None)
    b = zookeeper.build_migration_target(
        Owner("demo", "ns", "m", kind=ZK_MIGRATION.kind), migration.target.managed, cluster
    )
    assert {("StatefulSet", "demo-zookeeper"), ("ConfigMap", "demo-zookeeper")} <= (
        _names(a) & _names(b)
    )


def test_one_clusters_marathon_lb_is_another_clusters_load_balancer() -> None:
    x = build_children(
        Owner("x", "ns", "1"), _cluster_spec(addons={"marathonLb": {"enabled": True}}), None
    )
    x_marathon = build_children(
        Owner("x-marathon", "ns", "2"), _cluster_spec(loadBalancer={"enabled": True}), None
    )
    assert ("Deployment", "x-marathon-lb") in _names(x) & _names(x_marathon)


def test_absent_or_own_objects_are_not_taken_and_anothers_is_named_with_its_holder() -> None:
    mine = Owner("demo", "ns", "uid-mine")
    theirs = Owner("x", "ns", "uid-theirs")
    wanted = [_wanted("ConfigMap", "a"), _wanted("Service", "b"), _wanted("StatefulSet", "c")]
    assert first_taken(wanted, [None, _live("b", mine), None], {"uid-mine"}, "MesosCluster") is None
    refusal = first_taken(
        wanted, [None, _live("b", mine), _live("c", theirs)], {"uid-mine"}, "MesosCluster"
    )
    assert refusal is not None
    assert refusal.startswith("StatefulSet c exists and is MesosCluster x's")
    assert "rename this MesosCluster (or remove that StatefulSet)" in refusal


def test_an_object_no_resource_owns_is_taken_and_so_said() -> None:
    refusal = first_taken([_wanted("ConfigMap", "a")], [_live("a")], {"u"}, "ProbeFleet")
    assert refusal is not None and "ConfigMap a exists and is no resource's" in refusal


def test_any_of_the_owners_will_do_as_at_a_zkmigrations_handover() -> None:
    migration = Owner("m", "ns", "uid-m", kind=ZK_MIGRATION.kind)
    cluster = Owner("demo", "ns", "uid-c")
    wanted = [_wanted("StatefulSet", "m-zookeeper"), _wanted("Service", "m-zookeeper-client")]
    live = [_live("m-zookeeper", cluster), _live("m-zookeeper-client", migration)]
    assert first_taken(wanted, live, {"uid-m", "uid-c"}, "ZkMigration") is None
    assert first_taken(wanted, live, {"uid-m"}, "ZkMigration") is not None


def test_the_holder_is_the_controller_reference_when_there_are_several() -> None:
    live = _live("a", Owner("first", "ns", "1"), Owner("second", "ns", "2"))
    live["metadata"]["ownerReferences"][0]["controller"] = False
    assert whose(live) == "MesosCluster second's"


class _Api:
    """What names_taken reads: the live metadata under each name, counted."""

    def __init__(self, live: dict[str, Manifest]) -> None:
        self.live = live
        self.asked: list[str] = []

    def metadata_of(self, manifests: list[Manifest]) -> list[Manifest | None]:
        self.asked += [m["metadata"]["name"] for m in manifests]
        return [self.live.get(m["metadata"]["name"]) for m in manifests]


def test_a_name_found_to_be_the_resources_own_is_not_asked_again() -> None:
    mine = Owner("demo", "ns", "uid-mine")
    api = _Api({"a": _live("a", mine)})
    wanted = [_wanted("ConfigMap", "a"), _wanted("Service", "b")]
    known: set[tuple[str, str, str]] = set()
    assert names_taken(api, wanted, {"uid-mine"}, "ZkMigration", known) is None  # type: ignore[arg-type]
    assert names_taken(api, wanted, {"uid-mine"}, "ZkMigration", known) is None  # type: ignore[arg-type]
    # "a" is remembered; "b" (absent, not yet made) is asked every time
    assert api.asked == ["a", "b", "b"]
    api.live["b"] = _live("b", Owner("x", "ns", "uid-theirs"))
    refusal = names_taken(api, wanted, {"uid-mine"}, "ZkMigration", known)  # type: ignore[arg-type]
    assert refusal is not None and "Service b exists and is MesosCluster x's" in refusal
