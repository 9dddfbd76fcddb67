"""Scaling a managed ZooKeeper ensemble: the I/O around zk_scale_plan.

One call of `scale_step` reads where things stand (the StatefulSet's size, the ensemble's
dynamic configuration from `/zookeeper/config`, each pod's readiness and `srvr` mode), asks
the planner for the one next action and performs it: a `reconfig` through an authenticated
ZooKeeper client, or a new StatefulSet size. Nothing is remembered between calls: the next
call (the MesosCluster observer's next tick) re-reads everything, so a step that failed or
was interrupted is simply planned again from what is observed.

Where the pods live is a `Fleet`: the StatefulSet (`StatefulSetFleet`) in the operator, plain
server processes in the integration test.

`reconfig` is a privileged operation in ZooKeeper >= 3.5.3: only the super user may write
`/zookeeper/config`. The managed ensemble's servers get a super digest from a Secret the
operator generates (builders.zookeeper.super_secret), and the reconfig runs on a short-lived
client authenticated with its password; reads use the operator's shared, unauthenticated
client. The reconfig is conditional on the configuration version that was read (kazoo's
`from_config`): a configuration that changed in between is refused by ZooKeeper, not
overwritten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    KazooException,
    NewConfigNoQuorumError,
    NoAuthError,
    ReconfigInProcessError,
)
from kazoo.handlers.threading import KazooTimeoutError

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.tls import ReloadingTls
from orchestrator_operator.operator.mesoscluster.roll import member_from_pod
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import (
    Action,
    Done,
    EnsembleConfig,
    PodState,
    Reconfig,
    ScaleStatefulSet,
    Wait,
    next_scale_action,
    parse_config,
)
from orchestrator_operator.operator.workloads import WorkloadSummary
from orchestrator_operator.zk.four_letter import server_mode
from orchestrator_operator.zk.handler import PollHandler

CONFIG_PATH = "/zookeeper/config"


class Fleet(Protocol):
    """The pods of an ensemble, ordinal i running server i + 1."""

    def replicas(self) -> int | None:
        """How many pods the ensemble should have now (None: not created yet)."""

    def pods(self, count: int) -> dict[int, PodState]:
        """The pods of ordinals 0..count-1 that exist."""

    def scale(self, replicas: int) -> None:
        """Make the ensemble have `replicas` pods."""


Reconfigure = Callable[[Reconfig, int | None], None]


class ReconfigUnavailable(Exception):
    """A `Reconfigure` could not even try (e.g. no credentials); the message says why."""


@dataclass(frozen=True)
class ScaleResult:
    action: Action
    message: str  # for status; empty once the ensemble has its desired size
    # The servers refused the super user: they were started without its digest (before
    # the Secret existed); the rolling restart that gives it to them must not wait.
    auth_refused: bool = False

    @property
    def done(self) -> bool:
        return isinstance(self.action, Done)


def read_config(client: Any) -> EnsembleConfig:
    data, _ = client.get(CONFIG_PATH)
    return parse_config(data.decode())


def scale_step(
    client: Any,
    fleet: Fleet,
    desired: int,
    server_line: Callable[[int], str],
    reconfigure: Reconfigure,
) -> ScaleResult:
    """Perform at most one step towards `desired` voting members (see zk_scale_plan)."""
    replicas = fleet.replicas()
    if replicas is None:
        return ScaleResult(Wait("the ZooKeeper StatefulSet does not exist yet"), "")
    try:
        config = read_config(client)
    except (KazooException, KazooTimeoutError) as error:
        unread = Wait(f"cannot read {CONFIG_PATH}: {type(error).__name__} {error}".strip())
        return ScaleResult(unread, f"zookeeper scaling: {unread.reason}")
    # The common case costs one read: no pod is looked at while nothing is to be done.
    if replicas == desired and config.voters == frozenset(range(1, desired + 1)):
        return ScaleResult(Done(), "")
    action = next_scale_action(desired, replicas, config, fleet.pods(replicas), server_line)
    if isinstance(action, Done):
        return ScaleResult(action, "")
    if isinstance(action, Wait):
        return ScaleResult(action, f"zookeeper scaling to {desired}: waiting: {action.reason}")
    if isinstance(action, ScaleStatefulSet):
        fleet.scale(action.replicas)
        return ScaleResult(action, f"zookeeper scaling to {desired}: {action.reason}")
    assert isinstance(action, Reconfig)
    try:
        reconfigure(action, config.version)
    except BadVersionError:
        return ScaleResult(action, "zookeeper scaling: the configuration changed; re-planning")
    except (NewConfigNoQuorumError, ReconfigInProcessError) as error:
        return ScaleResult(action, f"zookeeper scaling: reconfig refused ({type(error).__name__})")
    except ConnectionLoss:
        # A removed member drops its clients; whether it took effect is read next time.
        return ScaleResult(action, f"zookeeper scaling to {desired}: {action.reason} (sent)")
    except ReconfigUnavailable as error:
        return ScaleResult(action, f"zookeeper scaling: cannot reconfig: {error}")
    except NoAuthError:
        message = "zookeeper scaling: reconfig refused (NoAuthError): not the super user"
        return ScaleResult(action, message, auth_refused=True)
    except (KazooException, KazooTimeoutError) as error:
        return ScaleResult(action, f"zookeeper scaling: reconfig failed ({type(error).__name__})")
    return ScaleResult(action, f"zookeeper scaling to {desired}: {action.reason}")


def kazoo_reconfigure(
    hosts: str,
    auth: tuple[str, str] | None,
    timeout: float = 10.0,
    tls: ReloadingTls | None = None,
) -> Reconfigure:
    """A `reconfig` on a short-lived client of `hosts`, authenticated with `auth` (scheme,
    credential), e.g. ("digest", "super:<password>"); over TLS with `tls` (`hosts` then
    name the TLS client port)."""

    def reconfigure(action: Reconfig, version: int | None) -> None:
        handler = PollHandler(tls) if tls is not None else None
        client = KazooClient(hosts=hosts, timeout=timeout, handler=handler, use_ssl=tls is not None)
        client.start(timeout=timeout)
        try:
            if auth is not None:
                client.add_auth(*auth)
            client.reconfig(
                joining=",".join(action.joining) or None,
                leaving=",".join(str(i) for i in action.leaving) or None,
                new_members=None,
                from_config=version if version is not None else -1,
            )
        finally:
            with contextlib.suppress(Exception):
                client.stop()
                client.close()

    return reconfigure


class StatefulSetFleet:
    """The ZooKeeper StatefulSet: its size from Kopf's index, pods read by name (only while
    a step is pending), each server's mode from `srvr` on its pod IP; scaling calls
    `before_scale(n)` (the handler applies the ConfigMap for n members) and then patches
    `spec.replicas`. The reconcile applies the StatefulSet at its live size, so the two
    never disagree for long (see builders.zookeeper.held_replicas)."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        summary: WorkloadSummary | None,
        client_port: int,
        before_scale: Callable[[int], None] | None = None,
    ) -> None:
        self._api, self._namespace, self._name = api, namespace, name
        self._summary, self._port = summary, client_port
        self._before_scale = before_scale

    def replicas(self) -> int | None:
        return self._summary.desired if self._summary else None

    def pods(self, count: int) -> dict[int, PodState]:
        result: dict[int, PodState] = {}
        for ordinal in range(count):
            name = f"{self._name}-{ordinal}"
            pod = self._api.get("v1", "Pod", self._namespace, name)
            if pod is None:
                continue
            member = member_from_pod(name, ordinal, pod)
            mode = server_mode(member.ip, self._port, timeout=0.5) if member.ip else None
            result[ordinal] = PodState(ordinal, ready=member.ready, mode=mode)
        return result

    def scale(self, replicas: int) -> None:
        if self._before_scale is not None:
            self._before_scale(replicas)
        self._api.merge_patch(
            "apps/v1", "StatefulSet", self._namespace, self._name, {"spec": {"replicas": replicas}}
        )
