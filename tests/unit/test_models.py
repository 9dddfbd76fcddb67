"""The models accept the examples and refuse what the CRDs refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from orchestrator_operator.models import KINDS
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ZkMigrationSpec

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_is_a_valid_spec(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    kind = next(k for k in KINDS if k.kind == document["kind"])
    kind.spec.model_validate(document["spec"])


def test_defaults_give_an_ha_platform() -> None:
    spec = MesosClusterSpec.model_validate({})
    assert spec.zookeeper.managed_replicas == 3
    assert spec.masters.replicas == 3
    assert spec.masters.effective_quorum == 2
    assert spec.agents.containerizers == ["docker", "mesos"]
    assert spec.agents.isolation == ["cgroups/cpu", "cgroups/mem"]
    assert spec.marathon.replicas == 2
    assert spec.marathon.zk_path == "/marathon"


def test_external_zookeeper_means_no_managed_members() -> None:
    spec = MesosClusterSpec.model_validate(
        {"zookeeper": {"external": {"connectString": "zk-1:2181,zk-2:2181/mesos-a"}}}
    )
    assert spec.zookeeper.managed_replicas == 0


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"agents": {"offered": {"cpus": -1}}}, "cpus"),
        ({"agents": {"containerizers": ["rkt"]}}, "containerizers"),
        ({"zookeeper": {"replicas": 9}}, "replicas"),
        ({"masters": {"resources": {"requests": {"cpu": "-500m"}}}}, "cpu"),
        ({"zookeeper": {"external": {"connectString": "not a connect string"}}}, "connectString"),
        ({"marathon": {"replcas": 2}}, "replcas"),
    ],
)
def test_bad_mesoscluster_spec_names_the_field(spec: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        MesosClusterSpec.model_validate(spec)
    assert field in str(caught.value)


def test_migration_needs_a_target() -> None:
    with pytest.raises(ValidationError, match="target"):
        ZkMigrationSpec.model_validate({"clusterRef": "demo"})
