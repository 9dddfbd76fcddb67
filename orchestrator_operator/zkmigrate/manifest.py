"""What `orchestrator zk-migrate` writes: the ZkMigration it submits (`start`), the checks
the CRD cannot make, and the spec patches of `advance` and `rollback`. Pure: `main.py` does
the I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models import ZK_MIGRATION
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.models.vocabulary import ZkMigrationPhase
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.zkmigration.machine import plain_target_refusal

TERMINAL_PHASES = (
    ZkMigrationPhase.SUCCEEDED,
    ZkMigrationPhase.ROLLED_BACK,
    ZkMigrationPhase.FAILED,
    ZkMigrationPhase.INVALID,
)
SAME_ENSEMBLE = "source and target must be different ZooKeeper ensembles"


class InputError(ValueError):
    """Bad input from the user: one clear sentence, exit code 2."""


@dataclass(frozen=True)
class StartRequest:
    name: str
    namespace: str
    cluster: str
    target_connect: str | None = None
    target_managed_replicas: int | None = None
    target_managed_tls_secret: str | None = None
    source_connect: str | None = None
    paths: tuple[str, ...] = ()
    manual: bool = False
    strategy: str = "SourceWins"
    retention: str | None = None


def _pydantic_words(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"


def migration_manifest(request: StartRequest) -> Manifest:
    """The ZkMigration object; refuses what the CRD schema would refuse, in its words."""
    if (request.target_connect is None) == (request.target_managed_replicas is None):
        raise InputError("give exactly one of --target-connect or --target-managed-replicas")
    replicas = request.target_managed_replicas
    if replicas is not None and not (1 <= replicas <= 7 and replicas % 2 == 1):
        raise InputError("target.managed.replicas must be odd (1, 3, 5 or 7)")
    spec: dict[str, Any] = {"clusterRef": request.cluster}
    if request.source_connect is not None:
        spec["source"] = {"connectString": request.source_connect}
    if request.target_managed_tls_secret is not None and replicas is None:
        raise InputError("--target-managed-tls-secret is for --target-managed-replicas")
    managed: dict[str, Any] = {"replicas": replicas}
    if request.target_managed_tls_secret is not None:
        managed["tls"] = {"secretName": request.target_managed_tls_secret}
    spec["target"] = (
        {"external": {"connectString": request.target_connect}}
        if request.target_connect is not None
        else {"managed": managed}
    )
    if request.paths:
        spec["paths"] = list(dict.fromkeys(request.paths))
    spec["approval"] = {"mode": "Manual" if request.manual else "Automatic"}
    if request.manual:
        spec["approval"]["approvedThroughPhase"] = 0
    spec["conflictStrategy"] = request.strategy
    if request.retention is not None:
        spec["rollbackRetention"] = request.retention
    try:
        ZkMigrationSpec.model_validate(spec)
    except ValidationError as error:
        raise InputError(_pydantic_words(error)) from None
    return {
        "apiVersion": ZK_MIGRATION.api_version,
        "kind": ZK_MIGRATION.kind,
        "metadata": {"name": request.name, "namespace": request.namespace},
        "spec": spec,
    }


def cluster_connect_string(cluster: Manifest) -> str:
    """The ensemble a MesosCluster object uses now (what the operator calls ensemble A)."""
    meta = cluster["metadata"]
    spec = MesosClusterSpec.model_validate(cluster.get("spec") or {})
    owner = Owner(name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))
    return zookeeper.connect_string(owner, spec)


def target_connect_string(manifest: Manifest) -> str:
    """Ensemble B as the operator will name it."""
    target = manifest["spec"]["target"]
    external = str(target["external"]["connectString"]) if "external" in target else None
    meta = manifest["metadata"]
    return zookeeper.target_connect_string(external, meta["name"], meta["namespace"])


def check_start(manifest: Manifest, cluster: Manifest, routing: ZkRouting) -> None:
    """What the CRD cannot see: B equal to the cluster's own ensemble, a second migration,
    a plain managed B for a cluster whose ensemble has TLS (the operator would hold it)."""
    check_ensembles(manifest, cluster)
    plain = plain_target_refusal(
        ZkMigrationSpec.model_validate(manifest["spec"]),
        MesosClusterSpec.model_validate(cluster.get("spec") or {}),
    )
    if plain:
        flag = "give --target-managed-tls-secret"
        raise InputError(plain.replace("set target.managed.tls", flag))
    busy = cluster_busy(manifest, cluster, routing)
    if busy:
        raise InputError(busy)


def check_ensembles(manifest: Manifest, cluster: Manifest) -> None:
    """B must not be the ensemble the cluster uses now (the CEL rule sees only `source`)."""
    source = manifest["spec"].get("source", {}).get("connectString") or cluster_connect_string(
        cluster
    )
    if source == target_connect_string(manifest):
        raise InputError(f"{SAME_ENSEMBLE} (both are {source})")


def cluster_busy(manifest: Manifest, cluster: Manifest, routing: ZkRouting) -> str | None:
    """Why the cluster cannot take this migration now (another one moves it), or None."""
    if routing.migrating and routing.migration != manifest["metadata"]["name"]:
        return (
            f"MesosCluster {cluster['metadata']['name']} is being migrated by ZkMigration"
            f" {routing.migration}"
        )
    return None


def advance_patch(obj: Manifest, through: int | None) -> tuple[Manifest | None, str]:
    """The merge patch approving phases up to `through` (default: the current phase), or
    None with why nothing would change (already approved that far)."""
    name = obj["metadata"]["name"]
    approval = (obj.get("spec") or {}).get("approval") or {}
    if approval.get("mode", "Automatic") != "Manual":
        raise InputError(
            f"ZkMigration {name} has approval mode Automatic: its phases advance on their own"
        )
    status = obj.get("status") or {}
    if status.get("phase") in TERMINAL_PHASES:
        raise InputError(f"ZkMigration {name} is {status['phase']}: nothing to approve")
    wanted = through if through is not None else status.get("currentPhase") or 1
    if not 1 <= wanted <= 6:
        raise InputError(f"--through must be a phase number from 1 to 6, not {wanted}")
    was = int(approval.get("approvedThroughPhase") or 0)
    if wanted == was:
        return None, (
            f"ZkMigration {name}: already approved through phase {wanted}; nothing changed"
            + ("" if through is not None else " (--through N approves later phases)")
        )
    patch = {"spec": {"approval": {"approvedThroughPhase": wanted}}}
    note = f"ZkMigration {name}: approved through phase {wanted} (was {was})"
    if wanted < was:
        note += "; phases already started keep running"
    return patch, note


def rollback_patch(obj: Manifest, to: int | None, cancel: bool) -> tuple[Manifest, str]:
    name = obj["metadata"]["name"]
    if cancel:
        return {"spec": {"rollbackToPhase": None}}, f"ZkMigration {name}: rollback cancelled"
    assert to is not None
    if not 0 <= to <= 5:
        raise InputError(f"--to must be a phase number from 0 to 5, not {to}")
    status = obj.get("status") or {}
    if status.get("phase") == ZkMigrationPhase.SUCCEEDED:
        raise InputError(
            f"ZkMigration {name} has finished: rolling back now means a new ZkMigration from B to A"
        )
    current = status.get("currentPhase")
    if not current:
        raise InputError(f"ZkMigration {name} has not started a phase: nothing to roll back")
    if to >= current:
        raise InputError(
            f"--to {to} must be below the current phase {current} (phases after K are undone)"
        )
    return (
        {"spec": {"rollbackToPhase": to}},
        f"ZkMigration {name}: rolling back phases {current}..{to + 1} to the state after"
        f" phase {to}",
    )
