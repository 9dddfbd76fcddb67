"""Turning spec.zookeeper.tls on in a running ensemble (issue 17, point 7): the stages of
ZooKeeper's administrator's guide, "Upgrading existing non-TLS cluster with no downtime"
(port unification, then TLS with port unification, then TLS only), one rolling restart each,
and the step the operator may take from what the live StatefulSet runs. The stages' settings
are run in a real ensemble by tests/integration/test_zookeeper_quorum_tls.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec, QuorumTls
from orchestrator_operator.models.zkmigration import ManagedEnsemble
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.builders.cluster import build_children

OWNER = Owner(name="prod", namespace="mesos", uid="1234")
PLAIN = MesosClusterSpec.model_validate({"zookeeper": {"replicas": 3}})
WITH_TLS = MesosClusterSpec.model_validate(
    {"zookeeper": {"replicas": 3, "tls": {"secretName": "zk-tls"}}}
)


def _zk(spec: MesosClusterSpec) -> dict[str, dict[str, Any]]:
    return {
        c["kind"]: c
        for c in build_children(OWNER, spec)
        if c["metadata"]["name"] in ("prod-zookeeper", "prod-zookeeper-headless")
        and c["kind"] in ("ConfigMap", "StatefulSet", "Service")
    }


def _settings(spec: MesosClusterSpec) -> dict[str, str]:
    cfg = _zk(spec)["ConfigMap"]["data"]["zoo.cfg"]
    return dict(line.split("=", 1) for line in cfg.splitlines() if "=" in line)


def _live(spec: MesosClusterSpec, *, rolled: bool) -> dict[str, Any]:
    """The StatefulSet as the API server returns it, its roll finished or not."""
    sts = copy.deepcopy(_zk(spec)["StatefulSet"])
    sts["metadata"]["generation"] = 4
    ready = 3 if rolled else 2
    sts["status"] = {"observedGeneration": 4, "updatedReplicas": ready, "readyReplicas": ready}
    return sts


@pytest.mark.parametrize(
    ("stage", "ssl_quorum", "port_unification"),
    [
        (QuorumTls.PORT_UNIFICATION, "false", "true"),
        (QuorumTls.TLS_WITH_PORT_UNIFICATION, "true", "true"),
        (QuorumTls.ON, "true", None),
    ],
)
def test_each_stage_has_the_guides_quorum_settings_and_the_tls_files(
    stage: QuorumTls, ssl_quorum: str, port_unification: str | None
) -> None:
    settings = _settings(zookeeper.with_quorum_tls(WITH_TLS, stage))
    assert settings["sslQuorum"] == ssl_quorum
    assert settings.get("portUnification") == port_unification
    assert settings["ssl.quorum.keyStore.location"] == "/tls/tls-combined.pem"
    assert settings["secureClientPort"] == "2281"


def test_tls_only_is_what_a_cluster_created_with_tls_runs() -> None:
    assert _zk(zookeeper.with_quorum_tls(WITH_TLS, QuorumTls.ON)) == _zk(WITH_TLS)


def test_held_at_off_the_members_get_nothing_of_tls_yet() -> None:
    held = _zk(zookeeper.with_quorum_tls(WITH_TLS, QuorumTls.OFF))
    plain = _zk(PLAIN)
    assert held["StatefulSet"]["spec"]["template"] == plain["StatefulSet"]["spec"]["template"]
    assert held["ConfigMap"]["data"] == plain["ConfigMap"]["data"]


def test_every_stage_is_a_template_revision_of_its_own() -> None:
    templates = [
        _zk(zookeeper.with_quorum_tls(WITH_TLS, stage))["StatefulSet"]["spec"]["template"]
        for stage in QuorumTls
    ]
    assert len({repr(t) for t in templates}) == len(QuorumTls)


@pytest.mark.parametrize("stage", list(QuorumTls))
def test_the_live_stage_is_read_back_from_the_statefulset(stage: QuorumTls) -> None:
    live = _live(zookeeper.with_quorum_tls(WITH_TLS, stage), rolled=True)
    assert zookeeper.live_quorum_tls(live) == stage


@pytest.mark.parametrize(
    ("live", "rolled", "held"),
    [
        (QuorumTls.OFF, True, QuorumTls.PORT_UNIFICATION),
        (QuorumTls.OFF, False, QuorumTls.OFF),
        (QuorumTls.PORT_UNIFICATION, True, QuorumTls.TLS_WITH_PORT_UNIFICATION),
        (QuorumTls.PORT_UNIFICATION, False, QuorumTls.PORT_UNIFICATION),
        (QuorumTls.TLS_WITH_PORT_UNIFICATION, True, QuorumTls.ON),
        (QuorumTls.TLS_WITH_PORT_UNIFICATION, False, QuorumTls.TLS_WITH_PORT_UNIFICATION),
        (QuorumTls.ON, True, QuorumTls.ON),
    ],
)
def test_a_running_ensemble_moves_one_stage_once_every_member_runs_the_last(
    live: QuorumTls, rolled: bool, held: QuorumTls
) -> None:
    statefulset = _live(zookeeper.with_quorum_tls(WITH_TLS, live), rolled=rolled)
    assert zookeeper.held_quorum_tls(WITH_TLS, statefulset) == held


def test_a_new_ensemble_starts_at_its_specs_stage() -> None:
    assert zookeeper.held_quorum_tls(WITH_TLS, None) == QuorumTls.ON
    assert zookeeper.held_quorum_tls(PLAIN, None) == QuorumTls.OFF


def test_a_migrations_ensemble_b_starts_at_the_final_stage_not_where_a_is() -> None:
    moving = zookeeper.with_quorum_tls(WITH_TLS, QuorumTls.PORT_UNIFICATION)
    managed = ManagedEnsemble.model_validate({"replicas": 3, "tls": {"secretName": "b-tls"}})
    target = zookeeper.build_migration_target(Owner("move", "mesos", "9"), managed, moving)
    (config,) = [c for c in target if c["kind"] == "ConfigMap"]
    assert "sslQuorum=true" in config["data"]["zoo.cfg"].splitlines()
    assert "portUnification=true" not in config["data"]["zoo.cfg"]
