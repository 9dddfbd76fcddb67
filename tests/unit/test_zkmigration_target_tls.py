"""A ZkMigration's managed ensemble B and TLS (issue 17, point 7): B has a tls of its own
(its members are named after the migration, which A's certificate does not carry), is
reached by the operator and the sync controller on its TLS port, is never made plain text
for a TLS cluster, and phase 6's handover leaves no `tls` beside `external`."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.zkmigration.machine import (
    handover_patch,
    plain_target_refusal,
    sync_request,
)

MIGRATION = Owner(name="move", namespace="mesos", uid="9")
TLS_CLUSTER = MesosClusterSpec.model_validate(
    {"zookeeper": {"replicas": 3, "tls": {"secretName": "a-tls"}}}
)
PLAIN_CLUSTER = MesosClusterSpec.model_validate({"zookeeper": {"replicas": 3}})


def _migration(managed: dict[str, Any]) -> ZkMigrationSpec:
    return ZkMigrationSpec.model_validate({"clusterRef": "prod", "target": {"managed": managed}})


def _b(spec: ZkMigrationSpec, cluster: MesosClusterSpec) -> dict[str, dict[str, Any]]:
    assert spec.target.managed is not None
    built = zookeeper.build_migration_target(MIGRATION, spec.target.managed, cluster)
    return {c["kind"]: c for c in built if c["metadata"]["name"] == "move-zookeeper"}


def test_b_runs_tls_from_its_own_secret_not_the_clusters() -> None:
    b = _b(_migration({"replicas": 3, "tls": {"secretName": "b-tls"}}), TLS_CLUSTER)
    volumes = b["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": "b-tls"}} in volumes
    assert "sslQuorum=true" in b["ConfigMap"]["data"]["zoo.cfg"].splitlines()


def test_b_without_tls_is_plain_and_refused_for_a_tls_cluster_only() -> None:
    plain_b = _migration({"replicas": 3})
    b = _b(plain_b, TLS_CLUSTER)
    assert "sslQuorum" not in b["ConfigMap"]["data"]["zoo.cfg"]
    refusal = plain_target_refusal(plain_b, TLS_CLUSTER)
    assert refusal is not None and "target.managed.tls" in refusal
    assert plain_target_refusal(plain_b, PLAIN_CLUSTER) is None
    tls_b = _migration({"replicas": 3, "tls": {"secretName": "b-tls"}})
    assert plain_target_refusal(tls_b, TLS_CLUSTER) is None


def test_the_sync_controller_is_asked_for_b_on_its_tls_port() -> None:
    spec = _migration({"replicas": 3, "tls": {"secretName": "b-tls"}})
    assert spec.target.managed is not None
    routes = zookeeper.migration_target_tls_routes(MIGRATION, spec.target.managed)
    target = zookeeper.client_address(MIGRATION)
    request = sync_request(True, "a:2181", target, routes, spec, None, None)
    assert request.target_tls and not request.source_tls
    assert request.target == ",".join(
        f"move-zookeeper-{i}.move-zookeeper-headless.mesos.svc.cluster.local:2281" for i in range(3)
    )
    plain = _migration({}).target.managed
    assert plain is not None
    assert zookeeper.migration_target_tls_routes(MIGRATION, plain) == {}


def test_phase_6_keeps_the_operator_on_bs_tls_port() -> None:
    members = ",".join(
        f"move-zookeeper-{i}.move-zookeeper-headless.mesos.svc.cluster.local:2281" for i in range(3)
    )
    body = handover_patch(ZkRouting(masters_component="master-b"), "b:2181", members)
    assert body["spec"]["zookeeper"]["external"] == {
        "connectString": "b:2181",
        "tlsServers": members,
    }
    # what the cluster then holds: the operator reaches B over TLS, Mesos on 2181
    handed = MesosClusterSpec.model_validate(
        {"zookeeper": {"external": body["spec"]["zookeeper"]["external"]}}
    )
    assert zookeeper.operator_tls_routes(Owner("demo", "mesos", "u"), handed) == {"b:2181": members}


def test_phase_6_hands_over_b_as_an_external_ensemble_without_tls() -> None:
    body = handover_patch(ZkRouting(masters_component="master-b"), "b:2181")
    assert body["spec"]["zookeeper"] == {
        "replicas": None,
        "tls": None,
        "external": {"connectString": "b:2181"},
    }
