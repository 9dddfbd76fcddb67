"""The words written into the custom resources' status: phases, condition types, condition
reasons and the states of status entries.

Each is an `enum.StrEnum` (through `StatusWord`): a member *is* its word (a `str`), so it
prints, formats, compares and serializes as the plain word: in JSON, status patches,
Prometheus labels, f-strings and `model_dump(mode="json")`, and in YAML too (PyYAML's
dumpers are taught the words below). The status models type their fields with these enums,
so the CRDs list the words (`enum:`). The docstrings end up in the CRDs as the
fields' descriptions (`kubectl explain`); the comments above each class say where in the code
the words are written.
"""

from __future__ import annotations

import enum
from typing import Final

import yaml
from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# The phase of any kind whose spec is rejected (written by operator/reconcile.py for every
# kind); each kind's phase enum has it under the same word.
INVALID_PHASE: Final = "Invalid"


class StatusWord(enum.StrEnum):
    """Base of the enums below (it has no members of its own)."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """The docstring as the field's description (in the CRD), on one line."""
        schema = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        if cls.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        return schema


def _represent_word(dumper: yaml.representer.SafeRepresenter, word: StatusWord) -> yaml.Node:
    return dumper.represent_str(str(word))


# yaml.safe_dump would refuse a str subclass and yaml.dump would tag it as a Python object.
yaml.representer.SafeRepresenter.add_multi_representer(StatusWord, _represent_word)
yaml.representer.Representer.add_multi_representer(StatusWord, _represent_word)


# operator/reconcile.py (Invalid; Progressing when the children are applied) and
# operator/mesoscluster/status.py, operator/probefleet/status.py (the observers' verdicts).
class WorkloadPhase(StatusWord):
    """Written by the operator: Progressing (children applied, not all ready yet), Ready
    (every condition is true), Degraded (running, but something it needs is broken) or
    Invalid (the spec is rejected; see the Accepted condition)."""

    PROGRESSING = "Progressing"
    READY = "Ready"
    DEGRADED = "Degraded"
    INVALID = INVALID_PHASE


# operator/reconcile.py (Invalid), operator/zkmigration/handlers.py (Pending) and
# operator/zkmigration/machine.py (the rest).
class ZkMigrationPhase(StatusWord):
    """Written by the operator: Pending (accepted, not started: the pre-migration checks in
    status.checks say what it waits for), Running, AwaitingApproval (Manual approval: the
    next phase waits for approvedThroughPhase), RollingBack, RolledBack, Succeeded (the
    cluster runs on ensemble B), Failed (it cannot go on: its MesosCluster was deleted) or
    Invalid (the spec is rejected)."""

    PENDING = "Pending"
    RUNNING = "Running"
    AWAITING_APPROVAL = "AwaitingApproval"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    INVALID = INVALID_PHASE


# operator/zkmigration/machine.py (one record per phase, in this order).
class ZkMigrationPhaseName(StatusWord):
    """The phase's name; the six phases in order (written by the operator)."""

    SYNC_TARGET = "SyncTarget"  # 1. deploy or attach B, sync A and B, wait for bootstrap
    MASTERS_ON_TARGET = "MastersOnTarget"  # 2. masters pointed at B join the same Mesos cluster
    RETIRE_SOURCE_MASTERS = "RetireSourceMasters"  # 3. remove the masters on A one by one
    AGENTS_ON_TARGET = "AgentsOnTarget"  # 4. roll the agents to B
    DRAIN_SOURCE = "DrainSource"  # 5. drain what must leave A
    RETIRE_SOURCE = "RetireSource"  # 6. stop syncing, archive A, mark the cluster as using B


# operator/zkmigration/machine.py.
class ZkMigrationPhaseState(StatusWord):
    """The state of this phase of the migration (written by the operator)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


# sync/controller (the sync controller's report in a ZkMigration's status.sync).
class SyncState(StatusWord):
    """The state of the migration's sync engine (written by the sync controller): Stopped,
    Starting, Running, Retrying (a start failed and is retried with backoff: the message says
    why) or Failed (it cannot run and is not retried: the message says why)."""

    STOPPED = "Stopped"
    STARTING = "Starting"
    RUNNING = "Running"
    RETRYING = "Retrying"
    FAILED = "Failed"


# mesos/maintenance.py (the report the MesosCluster observer puts in status.maintenance).
class MaintenanceState(StatusWord):
    """Draining: Mesos drains the agent on this cordoned node; Down: no task is left on it
    (written by the operator)."""

    DRAINING = "Draining"
    DOWN = "Down"


# operator/marathonapp/strategy.py (a MarathonApp's status.rollout.phase).
class RolloutPhase(StatusWord):
    """The state of a MarathonApp's blue-green or canary rollout (written by the operator):
    Idle (nothing to roll out), Progressing, Paused (waits for a duration or spec.promote),
    Analyzing, Promoted (the new version takes all traffic), RolledBack (health or analysis
    failed) or Aborted (spec.abort)."""

    IDLE = "Idle"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    ANALYZING = "Analyzing"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


# operator/reconcile.py (Accepted, every kind); operator/mesoscluster/status.py (Ready and
# the five component conditions); operator/probefleet/status.py (AppReady, ProbesReady,
# ProbesReporting); operator/zkmigration/handlers.py (Progressing, Completed).
class ConditionType(StatusWord):
    """The type of a status condition (written by the operator)."""

    ACCEPTED = "Accepted"
    # MesosCluster
    READY = "Ready"
    ZOOKEEPER_READY = "ZookeeperReady"
    MASTERS_READY = "MastersReady"
    LEADER_ELECTED = "LeaderElected"
    AGENTS_READY = "AgentsReady"
    MARATHON_READY = "MarathonReady"
    # ProbeFleet
    APP_READY = "AppReady"
    PROBES_READY = "ProbesReady"
    PROBES_REPORTING = "ProbesReporting"
    # ZkMigration (Progressing: MarathonApp too)
    PROGRESSING = "Progressing"
    COMPLETED = "Completed"
    # MarathonApp (operator/marathonapp/status.py)
    AVAILABLE = "Available"
    DEGRADED = "Degraded"


# The same modules as ConditionType. Not listed here: a ZkMigration's Progressing condition
# has the migration's phase (a ZkMigrationPhase) as its reason.
class Reason(StatusWord):
    """The reason of a status condition (written by the operator)."""

    # Accepted
    SPEC_VALID = "SpecValid"
    INVALID_SPEC = "InvalidSpec"
    NOT_ALLOWED = "NotAllowed"  # the operator's allow-list refuses it (operator/allowlist.py)
    # MesosCluster: ZookeeperReady
    SERVING = "Serving"
    NO_QUORUM = "NoQuorum"
    UNREACHABLE = "Unreachable"
    # MesosCluster: LeaderElected (NotElected, Unknown: MarathonReady too)
    ELECTED = "Elected"
    NO_LEADER = "NoLeader"
    NOT_ELECTED = "NotElected"
    RECOVERING = "Recovering"
    UNKNOWN = "Unknown"  # also MastersReady, AgentsReady: what Mesos reports cannot be read
    # MesosCluster: MastersReady, AgentsReady, MarathonReady; ProbeFleet: AppReady, ProbesReady
    READY = "Ready"
    NOT_READY = "NotReady"
    NONE_SCHEDULED = "NoneScheduled"
    UNSCHEDULABLE = "Unschedulable"  # and ZookeeperReady: the scheduler cannot place pods
    NOT_REGISTERED = "NotRegistered"  # MarathonReady: elected, not a framework of the leader
    # MesosCluster: Ready
    ALL_COMPONENTS_READY = "AllComponentsReady"
    COMPONENTS_NOT_READY = "ComponentsNotReady"
    # ProbeFleet: ProbesReporting
    ALL_REPORTING = "AllReporting"
    MISSING = "Missing"
    APP_UNREACHABLE = "AppUnreachable"
    # ZkMigration: Completed
    SUCCEEDED = "Succeeded"
    NOT_FINISHED = "NotFinished"
    FAILED = "Failed"
    # MarathonApp: Accepted (Conflict: another MarathonApp manages the same Marathon app;
    # SecretRefused: an env secretKeyRef the operator may not read)
    CONFLICT = "Conflict"
    SECRET_REFUSED = "SecretRefused"
    # MarathonApp: Available, Progressing, Degraded
    CLUSTER_NOT_FOUND = "ClusterNotFound"
    NO_MARATHON = "NoMarathon"
    MARATHON_UNREACHABLE = "MarathonUnreachable"
    MARATHON_REFUSED = "MarathonRefused"
    MINIMUM_INSTANCES_HEALTHY = "MinimumInstancesHealthy"
    INSTANCES_UNAVAILABLE = "InstancesUnavailable"
    DEPLOYING = "Deploying"
    DEPLOYED = "Deployed"
    SCALED_TO_ZERO = "ScaledToZero"
    FLAPPING = "Flapping"
    UNHEALTHY = "Unhealthy"
    DRIFT_REPORTED = "DriftReported"
    STRATEGY_PENDING = "StrategyPending"
    HEALTHY = "Healthy"
