"""A ZkMigration's routing, as the MesosCluster builders turn it into children."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, ZkRouting, parse_routing
from orchestrator_operator.operator.builders.cluster import build_children, stale_children
from orchestrator_operator.operator.zkmigration.machine import routing_for

OWNER = Owner(name="demo", namespace="default", uid="u-1")
A, B = "a1:2181,a2:2181,a3:2181", "b1:2181,b2:2181,b3:2181"
SPEC = MesosClusterSpec.model_validate({"zookeeper": {"external": {"connectString": A}}})


def _by_name(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def _args(child: dict[str, Any]) -> list[str]:
    args: list[str] = child["spec"]["template"]["spec"]["containers"][0]["args"]
    return args


def test_without_routing_nothing_changes() -> None:
    assert build_children(OWNER, SPEC) == build_children(OWNER, SPEC, ZkRouting())
    # Only the managed ensemble an external cluster might once have had; no masters set.
    # (The egress policy of the masters, off by default, is always stale: see
    # test_builders_networkpolicy.)
    assert {
        kind
        for _, kind, name in stale_children(OWNER, SPEC)
        if "master" in name and not name.endswith("-egress")
    } == set()


def test_masters_on_both_ensembles_during_phase_two() -> None:
    children = _by_name(build_children(OWNER, SPEC, routing_for(2, "m", B, 3, "master")))
    source, target = (
        children["StatefulSet", "demo-master"],
        children["StatefulSet", "demo-master-b"],
    )
    # After phase 2 a quorum of the masters runs on B (moved one for one), each set with
    # the cluster's quorum.
    assert (source["spec"]["replicas"], target["spec"]["replicas"]) == (1, 2)
    assert "--quorum=2" in _args(source)
    assert f"--zk=zk://{A}/mesos" in _args(source)
    assert f"--zk=zk://{B}/mesos" in _args(target)
    assert "--quorum=2" in _args(target)
    assert target["spec"]["serviceName"] == "demo-master-b-headless"
    assert ("Service", "demo-master-b-headless") in children
    assert f"--master=zk://{A}/mesos" in _args(children["DaemonSet", "demo-agent"])


def test_an_emptied_set_keeps_the_full_quorum() -> None:
    third = routing_for(3, "m", B, 3, "master").model_copy(update={"source_masters": 1})
    source = _by_name(build_children(OWNER, SPEC, third))["StatefulSet", "demo-master"]
    assert source["spec"]["replicas"] == 1
    assert "--quorum=2" in _args(source)


def test_agents_and_marathon_move_in_phase_four() -> None:
    children = _by_name(build_children(OWNER, SPEC, routing_for(4, "m", B, 3, "master")))
    assert f"--master=zk://{B}/mesos" in _args(children["DaemonSet", "demo-agent"])
    marathon = _args(children["Deployment", "demo-marathon"])
    assert marathon[marathon.index("--master") + 1] == f"zk://{B}/mesos"
    assert marathon[marathon.index("--zk") + 1] == f"zk://{B}/marathon"


def test_after_the_migration_the_old_set_is_stale_and_the_new_one_unchanged() -> None:
    during = _by_name(build_children(OWNER, SPEC, routing_for(5, "m", B, 3, "master")))
    on_b = MesosClusterSpec.model_validate({"zookeeper": {"external": {"connectString": B}}})
    final = routing_for(6, "m", B, 3, "master")
    after = _by_name(build_children(OWNER, on_b, final))
    assert (
        after["StatefulSet", "demo-master-b"]["spec"]["template"]
        == (during["StatefulSet", "demo-master-b"]["spec"]["template"])
    )
    assert after["DaemonSet", "demo-agent"] == during["DaemonSet", "demo-agent"]
    stale = {(kind, name) for _, kind, name in stale_children(OWNER, on_b, final)}
    assert ("StatefulSet", "demo-master") in stale
    assert ("StatefulSet", "demo-master-b") not in stale


def test_routing_annotation_round_trip_and_bad_json() -> None:
    routing = routing_for(4, "move", B, 3, "master")
    assert parse_routing({ROUTING_ANNOTATION: routing.to_annotation()}) == routing
    assert parse_routing({}) == ZkRouting()
    with pytest.raises(ValueError, match=r"migration\.orchestrator\.dev/zk-routing is not valid"):
        parse_routing({ROUTING_ANNOTATION: '{"targetMasters": -1}'})


def test_routing_annotation_is_outside_kopfs_own_prefix() -> None:
    """Kopf leaves annotations under its storage prefix out of the diffs that trigger the
    MesosCluster's reconcile: a routing there would never be applied."""
    from orchestrator_operator.operator.main import ANNOTATION_PREFIX

    assert not ROUTING_ANNOTATION.startswith(f"{ANNOTATION_PREFIX}/")


# Issue 16, point 3: the sync engine copies ACLs with their digest ids, so on ensemble B the
# components need the same ZooKeeper credentials as on A (they connected without any).
def test_components_moved_to_b_keep_the_zookeeper_credentials() -> None:
    auth = {"name": "zk", "key": "auth"}
    spec = MesosClusterSpec.model_validate(
        {"zookeeper": {"external": {"connectString": A, "authSecretRef": auth}}}
    )
    children = _by_name(build_children(OWNER, spec, routing_for(4, "m", B, 3, "master")))
    for kind, name in (("StatefulSet", "demo-master-b"), ("DaemonSet", "demo-agent")):
        pod = children[kind, name]["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        urls = next(e["value"] for e in init["env"] if e["name"] == "ZK_URLS")
        assert urls == f"mesos={B}/mesos", name
        (volume,) = [v for v in pod["volumes"] if v["name"] == "zk-auth"]
        assert volume["secret"]["secretName"] == "zk"
