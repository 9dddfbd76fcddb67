"""ZkMigration: moves a live MesosCluster from one ZooKeeper ensemble to another."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from orchestrator_operator.models.base import (
    ImageDigest,
    ImageName,
    ImageVersion,
    Model,
    ObjectName,
    ResourceRequirements,
    ResourceStatus,
    SecretKeyRef,
    StatusModel,
    Storage,
    ZkPath,
    ZooKeeperEndpoint,
    cel_rule,
)
from orchestrator_operator.models.mesoscluster import ZooKeeperTls
from orchestrator_operator.models.vocabulary import (
    SyncState,
    ZkMigrationPhase,
    ZkMigrationPhaseName,
    ZkMigrationPhaseState,
)

PHASES: tuple[ZkMigrationPhaseName, ...] = tuple(ZkMigrationPhaseName)  # phase N is PHASES[N-1]


# Who made a ZkMigration's last decision (spec.approval, spec.rollbackToPhase): the API
# server lets it name only the requesting user (k8s/admission/zkmigration-decisions.yaml).
DECIDED_BY_ANNOTATION = "orchestrator.dev/decided-by"


class ManagedEnsemble(Model):
    """An ensemble the operator creates for the migration."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.replicas % 2 == 1",
                    "target.managed.replicas must be odd (1, 3, 5 or 7)",
                    ".replicas",
                )
            ]
        }
    )

    replicas: Annotated[int, Field(ge=1, le=7)] = Field(default=3, json_schema_extra={"default": 3})
    image: ImageName = "zookeeper"
    version: ImageVersion = "3.8.4"
    digest: ImageDigest | None = None
    resources: ResourceRequirements | None = None
    storage: Storage = Field(default_factory=Storage)
    auth_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding 'user:password' lines (ZooKeeper digest) for the sync"
        " engine's sessions on this ensemble; default: ensemble A's credentials. The Secret"
        " must be labelled orchestrator.dev/credentials=zookeeper.",
    )
    tls: ZooKeeperTls | None = Field(
        default=None,
        description="B's own TLS, as spec.zookeeper.tls of a MesosCluster; its certificate"
        " names B's members (*.<migration>-zookeeper-headless.<namespace>.svc.cluster.local)."
        " Required when the cluster's ensemble has tls: B is not made plain text.",
    )


class MigrationTarget(Model):
    """Ensemble B: exactly one of `external` or `managed`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.external) != has(self.managed)",
                    "target needs exactly one of target.external or target.managed",
                )
            ]
        }
    )

    external: ZooKeeperEndpoint | None = None
    managed: ManagedEnsemble | None = None


class Approval(Model):
    """Automatic: phases advance on their own. Manual: each phase waits for approval."""

    mode: Literal["Automatic", "Manual"] = "Automatic"
    approved_through_phase: Annotated[int, Field(ge=0, le=6)] = Field(
        default=0,
        description="With mode Manual, phases up to and including this number may run.",
    )


class ZkMigrationSpec(Model):
    """What to migrate, where to, and how carefully."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.source) || !has(self.target.external)"
                    " || self.source.connectString != self.target.external.connectString",
                    "source and target must be different ZooKeeper ensembles",
                    ".target.external.connectString",
                )
            ]
        }
    )

    cluster_ref: ObjectName = Field(description="Name of the MesosCluster in this namespace.")
    source: ZooKeeperEndpoint | None = Field(
        default=None, description="Ensemble A. Default: the one the MesosCluster uses now."
    )
    target: MigrationTarget
    paths: Annotated[list[ZkPath], Field(min_length=1, max_length=16)] = Field(
        default_factory=lambda: ["/mesos", "/marathon"],
        json_schema_extra={"default": ["/mesos", "/marathon"], "x-kubernetes-list-type": "set"},
    )
    approval: Approval = Field(default_factory=Approval, json_schema_extra={"default": {}})
    conflict_strategy: Literal["SourceWins", "LastWriteWins", "Manual"] = "SourceWins"
    rollback_retention: Annotated[str, Field(pattern=r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$")] = Field(
        default="72h", description="How long ensemble A's archived data is kept for a rollback."
    )
    rollback_to_phase: Annotated[int, Field(ge=0, le=5)] | None = Field(
        default=None,
        description="Undo every phase after this one (0: all the way back to ensemble A)."
        " Unset: go forward.",
    )


class PhaseRecord(StatusModel):
    number: int
    name: ZkMigrationPhaseName
    state: ZkMigrationPhaseState = ZkMigrationPhaseState.PENDING
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str = ""


class SyncRequest(StatusModel):
    """What the migration asks of the sync controller (written by the operator's handlers)."""

    active: bool = False
    source: str
    target: str
    paths: list[str]
    strategy: Literal["SourceWins", "LastWriteWins", "Manual"] = "SourceWins"
    # which Secret keys (in this namespace) hold each side's digest credentials; the
    # controller reads them itself (common/zk_credentials.py), never through status
    source_auth_secret_ref: SecretKeyRef | None = None
    target_auth_secret_ref: SecretKeyRef | None = None
    # a side on TLS (a managed ensemble with spec.zookeeper.tls): its connect string names
    # the TLS client port, and the controller presents its own client certificate
    source_tls: bool = False
    target_tls: bool = False


class SyncStatus(StatusModel):
    """What the sync controller reports about the engine it runs for this migration."""

    state: SyncState = SyncState.STOPPED
    message: str = ""
    bootstrapped: bool = False
    bootstrap_znodes: int | None = None
    bootstrap_seconds: float | None = None
    lag_p99_seconds: float | None = None
    # how long the engine's last sweep of A's ACL versions took: ZooKeeper fires no watch
    # for setACL, so an ACL change reaches B within about this long
    acl_lag_seconds: float | None = None
    digests_equal: bool | None = None
    differences: int | None = None
    # znodes the engine cannot read (ACL, or an ACL that reads redacted) on either side at
    # the last verify: never synced, so no phase passes while there are any
    unreadable: int | None = None
    conflicts: int | None = None
    znodes_source: int | None = None
    znodes_target: int | None = None
    last_reconcile_time: datetime | None = None
    last_verify_time: datetime | None = None
    updated_at: datetime | None = None


class Baseline(StatusModel):
    """The cluster's tasks and frameworks when the migration started: what must survive it."""

    recorded_at: datetime
    task_count: int
    task_digest: str
    task_ids: list[str] = Field(default_factory=list, description="Up to 2,000 task ids.")
    framework_ids: list[str] = Field(default_factory=list)


class LeaderRecord(StatusModel):
    id: str | None = None
    address: str | None = None
    since: datetime | None = None
    changes: int = 0


class ZkMigrationStatus(ResourceStatus):
    phase: ZkMigrationPhase | None = None  # None: not yet seen by the operator
    current_phase: int | None = None
    rolling_back: bool = False
    phases: list[PhaseRecord] = Field(default_factory=list)
    source_connect_string: str | None = None
    target_connect_string: str | None = None
    baseline: Baseline | None = None
    leader: LeaderRecord | None = None
    checks: list[str] = Field(
        default_factory=list, description="Checks that hold the current phase, in words."
    )
    sync_request: SyncRequest | None = None
    sync: SyncStatus | None = None
    archive: list[str] = Field(
        default_factory=list, description="ConfigMaps holding ensemble A's archived data."
    )
    archive_expires_at: datetime | None = None
    report: str | None = None
