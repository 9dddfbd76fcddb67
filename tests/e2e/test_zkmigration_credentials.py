"""A ZkMigration between digest-protected ensembles, with the credentials in a Kubernetes
Secret (common/zk_credentials.py): the operator and the sync controller (real processes
against testenv) read a Secret labelled orchestrator.dev/credentials=zookeeper, and the
znodes whose ACLs hold only a digest user arrive on B with their real digest ids; an
unlabelled Secret is refused, and the ZkMigration and the MesosCluster say why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kazoo.security import ACL, Id, make_digest_acl

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.simpods import SimPodRunner
from testenv.zookeeper import ZkEnsemble
from tests.e2e.support import eventually, get_json, temporary_namespace
from tests.fixtures.sync_controller import SyncControllerFactory
from tests.fixtures.zk_sync import zk_client
from tests.fixtures.zookeeper import ZkEnsembleFactory

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper]

USER, PASSWORD = "mesos", "e2e-Digest-pw-7f3"
AUTH = [("digest", f"{USER}:{PASSWORD}")]
DIGEST_ALL = make_digest_acl(USER, PASSWORD, all=True)
WORLD_READ = ACL(1, Id("world", "anyone"))
LABEL = "orchestrator.dev/credentials"


@pytest.fixture
def namespace(kube_env: KubeTestEnv) -> Iterator[str]:
    yield from temporary_namespace(kube_env, "zkcred", "zkmigrations,mesosclusters")


def _apply(env: KubeTestEnv, *manifests: dict[str, Any]) -> None:
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    assert result.returncode == 0, result.stderr


def _protected_data(source: ZkEnsemble) -> None:
    """Mesos and Marathon state as a digest user keeps it: readable by that user only, and
    world-readable but written by that user only."""
    with zk_client(source.connect_string, auth_data=AUTH) as client:
        client.create("/mesos/log/registry", b"registry", acl=[DIGEST_ALL], makepath=True)
        client.create("/marathon/state/app", b"app", acl=[DIGEST_ALL, WORLD_READ], makepath=True)


def _resources(
    namespace: str, source: ZkEnsemble, target: ZkEnsemble, labelled: bool
) -> list[dict[str, Any]]:
    ref = {"name": "zk-auth", "key": "digest"}
    secret: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "zk-auth", "namespace": namespace},
        "stringData": {"digest": f"{USER}:{PASSWORD}\n"},
    }
    if labelled:
        secret["metadata"]["labels"] = {LABEL: "zookeeper"}
    cluster = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "demo", "namespace": namespace},
        "spec": {
            "zookeeper": {
                "external": {"connectString": source.connect_string, "authSecretRef": ref}
            },
            # Real (simulated) masters and agents: a migration starts only on a Ready cluster.
            "masters": {"replicas": 1},
            "marathon": {"replicas": 0},
        },
    }
    migration = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ZkMigration",
        "metadata": {"name": "move", "namespace": namespace},
        "spec": {
            "clusterRef": "demo",
            "target": {"external": {"connectString": target.connect_string, "authSecretRef": ref}},
        },
    }
    return [secret, cluster, migration]


def _status(env: KubeTestEnv, kind: str, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (get_json(env, kind, name, "-n", namespace) or {}).get("status", {})
    return status


@pytest.fixture
def sim_pods(kube_env: KubeTestEnv, namespace: str, tmp_path: Path) -> Iterator[SimPodRunner]:
    """The simulator behind the cluster's master and agent pods, so that it becomes Ready."""
    with SimPodRunner(kube_env, namespace, base_dir=tmp_path / "simpods") as pods:
        yield pods


def test_digest_acls_arrive_with_real_ids_using_a_labelled_secret(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
    sim_pods: SimPodRunner,
) -> None:
    controller = sync_controller_factory("--namespace", namespace)
    source, target = zk_ensemble_factory(1), zk_ensemble_factory(1)
    _protected_data(source)
    _apply(kube_env, *_resources(namespace, source, target, labelled=True))

    with zk_client(target.connect_string, auth_data=AUTH) as b:

        def copied() -> bool:
            return (
                b.exists("/mesos/log/registry") is not None
                and b.exists("/marathon/state/app") is not None
            )

        eventually(copied, 120, "the digest-protected znodes on B")
        data, _ = b.get("/mesos/log/registry")
        assert data == b"registry"
        # the real digest ids (never `mesos:x`): the digest user keeps its rights on B
        assert b.get_acls("/mesos/log/registry")[0] == [DIGEST_ALL]
        assert sorted(b.get_acls("/marathon/state/app")[0], key=str) == sorted(
            [DIGEST_ALL, WORLD_READ], key=str
        )
        b.set("/mesos/log/registry", b"written on B by the digest user")

    def verified() -> dict[str, Any] | None:
        sync = _status(kube_env, "zkmigration", namespace, "move").get("sync") or {}
        return sync if sync.get("digestsEqual") is True else None

    sync = eventually(verified, 120, "status.sync digestsEqual")
    assert not sync.get("unreadable"), sync
    # the secret is in no status and no log line
    for kind, name in (("zkmigration", "move"), ("mesoscluster", "demo")):
        assert PASSWORD not in json.dumps(_status(kube_env, kind, namespace, name))
    assert PASSWORD not in controller.log_path.read_text()
    assert PASSWORD not in operator.log_path.read_text()


def test_an_unlabelled_secret_is_refused_and_the_resources_say_why(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    namespace: str,
    zk_ensemble_factory: ZkEnsembleFactory,
    sync_controller_factory: SyncControllerFactory,
    sim_pods: SimPodRunner,
) -> None:
    sync_controller_factory("--namespace", namespace)
    source, target = zk_ensemble_factory(1), zk_ensemble_factory(1)
    _protected_data(source)
    _apply(kube_env, *_resources(namespace, source, target, labelled=False))
    rule = f"Secret {namespace}/zk-auth is not labelled {LABEL}=zookeeper"

    def refused_by_migration() -> str | None:
        status = _status(kube_env, "zkmigration", namespace, "move")
        progressing: dict[str, Any] = next(
            (c for c in status.get("conditions", []) if c["type"] == "Progressing"), {}
        )
        message = str(progressing.get("message", ""))
        return message if rule in message else None

    message = eventually(refused_by_migration, 90, "the ZkMigration naming the rule")
    assert "own namespace" in message

    def refused_by_cluster() -> str | None:
        status = _status(kube_env, "mesoscluster", namespace, "demo")
        found = [c["message"] for c in status.get("conditions", []) if rule in c.get("message", "")]
        return found[0] if found else None

    eventually(refused_by_cluster, 90, "the MesosCluster naming the rule")
    # nothing was synced with credentials it may not use
    with zk_client(target.connect_string) as b:
        assert b.exists("/mesos/log/registry") is None
    # labelled, the same Secret serves: the migration goes on
    labelled = kube_env.kubectl_run(
        "label", "secret", "zk-auth", "-n", namespace, f"{LABEL}=zookeeper"
    )
    assert labelled.returncode == 0, labelled.stderr
    with zk_client(target.connect_string, auth_data=AUTH) as b:
        eventually(
            lambda: b.exists("/mesos/log/registry") is not None, 120, "the copy once labelled"
        )
