"""The status vocabulary: enum members are the plain words users see, wherever they go."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from orchestrator_operator.models import MESOS_CLUSTER, PROBE_FLEET, ZK_MIGRATION, ResourceKind
from orchestrator_operator.models.vocabulary import (
    ConditionType,
    MaintenanceState,
    StatusWord,
    SyncState,
    WorkloadPhase,
    ZkMigrationPhase,
    ZkMigrationPhaseName,
    ZkMigrationPhaseState,
)
from orchestrator_operator.models.zkmigration import PHASES, ZkMigrationStatus
from orchestrator_operator.operator.builders.crd import build_crd


def test_the_words_are_the_ones_written_so_far() -> None:
    assert list(WorkloadPhase) == ["Progressing", "Ready", "Degraded", "Invalid"]
    assert list(ZkMigrationPhase) == [
        "Pending", "Running", "AwaitingApproval", "RollingBack", "RolledBack", "Succeeded",
        "Failed", "Invalid",
    ]  # fmt: skip
    assert PHASES == (
        "SyncTarget", "MastersOnTarget", "RetireSourceMasters", "AgentsOnTarget", "DrainSource",
        "RetireSource",
    )  # fmt: skip
    assert list(ZkMigrationPhaseState) == [
        "Pending", "Running", "Succeeded", "Failed", "RolledBack",
    ]  # fmt: skip
    assert list(SyncState) == ["Stopped", "Starting", "Running", "Retrying", "Failed"]
    assert list(MaintenanceState) == ["Draining", "Down"]
    assert ConditionType("ZookeeperReady") is ConditionType.ZOOKEEPER_READY


@pytest.mark.parametrize("word", [WorkloadPhase.READY, ZkMigrationPhaseName.SYNC_TARGET])
def test_a_member_prints_and_serializes_as_its_word(word: StatusWord) -> None:
    plain = word.value
    assert type(plain) is str
    assert str(word) == f"{word}" == "%s" % word == plain  # noqa: UP031
    assert json.dumps({word: [word]}) == f'{{"{plain}": ["{plain}"]}}'
    assert yaml.safe_dump({word: word}) == yaml.dump({word: word}) == f"{plain}: {plain}\n"
    registry = CollectorRegistry()
    Gauge("g", "a gauge", ["w"], registry=registry).labels(word).set(1)
    assert f'g{{w="{plain}"}} 1.0' in generate_latest(registry).decode()


def test_status_models_dump_plain_strings() -> None:
    status = ZkMigrationStatus.model_validate(
        {
            "phase": "Running",
            "phases": [{"number": 1, "name": "SyncTarget", "state": "Running"}],
            "sync": {"state": "Starting"},
        }
    )
    assert status.phase == ZkMigrationPhase.RUNNING
    dumped = status.model_dump(mode="json", by_alias=True)
    words = [dumped["phase"], dumped["phases"][0]["name"], dumped["phases"][0]["state"]]
    assert [*words, dumped["sync"]["state"]] == ["Running", "SyncTarget", "Running", "Starting"]
    assert {type(w) for w in words} == {str}


def test_the_crds_list_the_words() -> None:
    def status_of(kind: ResourceKind) -> Any:
        crd = build_crd(kind)
        return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]

    for kind in (MESOS_CLUSTER, PROBE_FLEET):
        assert status_of(kind)["properties"]["phase"]["enum"] == list(WorkloadPhase)
    zkm = status_of(ZK_MIGRATION)["properties"]
    assert zkm["phase"]["enum"] == list(ZkMigrationPhase)
    assert zkm["sync"]["properties"]["state"]["enum"] == list(SyncState)
    record = zkm["phases"]["items"]["properties"]
    assert record["name"]["enum"] == list(PHASES)
    assert record["state"]["enum"] == list(ZkMigrationPhaseState)
