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


# Issue 16, point 1: Mesos initializes a fresh replicated log only when all 2*quorum-1
# replicas answer (src/log/recover.cpp, auto-initialization), so an even count or a quorum
# above the majority never starts.
@pytest.mark.parametrize(
    ("masters", "message"),
    [
        ({"replicas": 2}, "masters.replicas must be odd"),
        ({"replicas": 4, "quorum": 3}, "masters.replicas must be odd"),
        ({"replicas": 3, "quorum": 3}, "masters.quorum must be floor(masters.replicas/2)+1"),
        ({"replicas": 5, "quorum": 4}, "masters.quorum must be floor(masters.replicas/2)+1"),
        ({"replicas": 3, "quorum": 1}, "masters.quorum must be floor(masters.replicas/2)+1"),
    ],
)
def test_masters_need_odd_replicas_and_a_bare_majority_quorum(
    masters: dict[str, int], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        MesosClusterSpec.model_validate({"masters": masters})
    assert message in str(caught.value)


@pytest.mark.parametrize(("replicas", "quorum"), [(1, 1), (3, 2), (5, 3), (7, 4)])
def test_the_quorum_is_derived_and_may_be_spelled_out(replicas: int, quorum: int) -> None:
    derived = MesosClusterSpec.model_validate({"masters": {"replicas": replicas}})
    assert derived.masters.effective_quorum == quorum
    explicit = {"masters": {"replicas": replicas, "quorum": quorum}}
    assert MesosClusterSpec.model_validate(explicit).masters.effective_quorum == quorum


# Issue 16, point 4: values Mesos refuses or misreads.
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"zookeeper": {"external": {"connectString": "zk:2181/"}}}, "must not end with '/'"),
        ({"zookeeper": {"external": {"connectString": "zk:2181/a/"}}}, "must not end with '/'"),
        ({"zookeeper": {"external": {"connectString": "zk:2181/a//b"}}}, "nor contain '//'"),
        (
            {"agents": {"isolation": ["filesystem/linux", "filesystem/shared"]}},
            "filesystem/linux and filesystem/shared cannot be used together",
        ),
        (
            {"agents": {"isolation": ["cgroups/cpu", "namespaces/pid"]}},
            "namespaces/pid and namespaces/ipc need filesystem/linux",
        ),
        (
            {"agents": {"isolation": ["namespaces/ipc", "filesystem/shared"]}},
            "namespaces/pid and namespaces/ipc need filesystem/linux",
        ),
        ({"agents": {"isolation": ["docker/volume"]}}, "docker/volume needs the dvdcli"),
        ({"agents": {"attributes": {"rack": "r1;zone:b"}}}, "agents.attributes"),
        ({"agents": {"attributes": {"zone:a": "b"}}}, "agents.attributes"),
        ({"agents": {"attributes": {"rack": ""}}}, "agents.attributes"),
        ({"agents": {"attributes": {"rack": "r1\nos:evil"}}}, "agents.attributes"),
        ({"agents": {"attributes": {"rack": "{a,b}"}}}, "agents.attributes"),
    ],
)
def test_values_mesos_refuses_are_rejected_with_the_reason(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        MesosClusterSpec.model_validate(spec)
    assert message in str(caught.value)


def test_values_mesos_accepts_pass() -> None:
    spec = MesosClusterSpec.model_validate({
        "zookeeper": {"external": {"connectString": "zk-1:2181,zk-2:2181/chroot"}},
        "agents": {
            "isolation": ["filesystem/linux", "namespaces/pid", "namespaces/ipc"],
            "attributes": {"rack": "r1", "url": "http://x:80"},  # ':' in a value is fine
        },
    })  # fmt: skip
    assert spec.agents.attributes["url"] == "http://x:80"
    custom = {"agents": {"image": "example/mesos-agent-dvdcli", "isolation": ["docker/volume"]}}
    assert MesosClusterSpec.model_validate(custom).agents.isolation == ["docker/volume"]


# Issue 16, point 5: Marathon's image tags are v-prefixed (mesosphere/marathon:v1.11.24).
@pytest.mark.parametrize("version", ["1.11.24", "v1.11.24"])
def test_marathon_version_means_the_v_prefixed_tag(version: str) -> None:
    spec = MesosClusterSpec.model_validate({"marathon": {"version": version}})
    assert spec.marathon.image_ref == "mesosphere/marathon:v1.11.24"
    assert MesosClusterSpec.model_validate({}).marathon.image_ref == (
        "mesosphere/marathon:v1.11.24"
    )


# Issue 16, point 3: a credential per identity; the masters' file alone registers nothing.
CREDENTIALS = {
    "masters": {"credentialsSecretRef": {"name": "mesos", "key": "credentials"}},
    "agents": {"credentialSecretRef": {"name": "mesos-agent", "key": "credential"}},
    "marathon": {
        "mesosAuthentication": {
            "principal": "marathon",
            "secretRef": {"name": "mesos-marathon", "key": "secret"},
        }
    },
}


@pytest.mark.parametrize(
    ("left_out", "message"),
    [
        ("agents", "agents.credentialSecretRef is required"),
        ("marathon", "marathon.mesosAuthentication is required"),
        ("masters", "agents.credentialSecretRef is required"),
    ],
)
def test_authentication_needs_a_credential_for_every_identity(left_out: str, message: str) -> None:
    spec = {k: v for k, v in CREDENTIALS.items() if k != left_out}
    with pytest.raises(ValidationError) as caught:
        MesosClusterSpec.model_validate(spec)
    assert message in str(caught.value)
    assert MesosClusterSpec.model_validate(CREDENTIALS).agents.credential_secret_ref is not None


# Issue 16, point 3: a field the operator does not honour is refused, not ignored. The probe
# and the app run under ServiceAccounts the operator makes with their RBAC (builders/probefleet).
def test_probefleet_has_no_service_account_field_nothing_reads() -> None:
    from orchestrator_operator.models.probefleet import ProbeFleetSpec

    with pytest.raises(ValidationError, match="serviceAccountName"):
        ProbeFleetSpec.model_validate({"serviceAccountName": "mine"})
