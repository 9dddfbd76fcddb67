"""Every child object of a MesosCluster, in the order they should be applied."""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.base import ZooKeeperEndpoint
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator.builders import (
    addons,
    agents,
    loadbalancer,
    marathon,
    masters,
    networkpolicy,
    zookeeper,
)
from orchestrator_operator.operator.builders.hardening import harden_all


def on_ensemble(spec: MesosClusterSpec, connect: str) -> MesosClusterSpec:
    """The same cluster pointed at another (external) ensemble, with the same ZooKeeper
    credentials (a ZkMigration copies the ACLs with their digest ids)."""
    auth = spec.zookeeper.external.auth_secret_ref if spec.zookeeper.external else None
    external = ZooKeeperEndpoint(connect_string=connect, auth_secret_ref=auth)
    return spec.model_copy(
        update={
            "zookeeper": spec.zookeeper.model_copy(update={"external": external, "replicas": None})
        }
    )


def with_masters(spec: MesosClusterSpec, replicas: int) -> MesosClusterSpec:
    # The quorum stays the full set's: a set being emptied or filled must not lower it. The
    # migration moves masters one for one, so both sets together never run more than the
    # 2*quorum-1 log replicas Mesos sizes the log for (zkmigration.machine.next_masters).
    quorum = spec.masters.effective_quorum
    return spec.model_copy(
        update={"masters": spec.masters.model_copy(update={"replicas": replicas, "quorum": quorum})}
    )


def build_children(
    owner: Owner,
    spec: MesosClusterSpec,
    routing: ZkRouting | None = None,
    *,
    scale_by_reconfig: bool = False,
) -> list[Manifest]:
    """ZooKeeper first (the others need it), then masters, agents and Marathon;
    `scale_by_reconfig` as for `zookeeper.build`.

    While a ZkMigration runs, `routing` splits the cluster across ensembles A (the spec's)
    and B: a second masters set on B, and agents and Marathon on whichever side it says.
    """
    routing = routing or ZkRouting()
    source_masters = spec.masters.replicas
    if routing.source_masters is not None:
        source_masters = routing.source_masters
    children = [
        *zookeeper.build(owner, spec, scale_by_reconfig=scale_by_reconfig),
        *masters.build(owner, with_masters(spec, source_masters), routing.masters_component),
    ]
    on_target = on_ensemble(spec, routing.target) if routing.target else spec
    if routing.target:
        target_set = with_masters(on_target, routing.target_masters)
        children += masters.build(owner, target_set, routing.target_masters_component)
    children += agents.build(owner, on_target if routing.agents_on_target else spec)
    children += marathon.build(owner, on_target if routing.marathon_on_target else spec)
    # The addons follow Marathon to its ensemble; Mesos-DNS falls back to that side's masters.
    if routing.marathon_on_target:
        children += addons.build(owner, on_target, routing.target_masters_component)
    else:
        children += addons.build(owner, spec, routing.masters_component)
    # The load balancer follows Marathon's leader latch, on Marathon's side too.
    children += loadbalancer.build(owner, on_target if routing.marathon_on_target else spec)
    children += networkpolicy.build(owner, spec, routing)
    return harden_all(children)


def stale_children(
    owner: Owner, spec: MesosClusterSpec, routing: ZkRouting | None = None
) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of children an earlier spec or routing may have made that
    this one does not want: the managed ensemble once the cluster moves to an external one,
    and, on a cluster a migration has touched (it has a routing), the masters set that the
    finished or rolled-back migration no longer uses; and every addon the spec does not
    enable (also when a GitOps user removes the whole `addons` block), and the
    NetworkPolicies the spec no longer asks for."""
    wanted = {(c["kind"], c["metadata"]["name"]) for c in build_children(owner, spec, routing)}
    managed = spec.model_copy(
        update={"zookeeper": spec.zookeeper.model_copy(update={"external": None})}
    )
    candidates = zookeeper.build(owner, managed)
    if routing is not None:
        candidates += masters.build(owner, spec, "master") + masters.build(owner, spec, "master-b")
    candidates += addons.build(owner, addons.all_enabled(spec))
    candidates += loadbalancer.build(owner, loadbalancer.enabled(spec))
    candidates += networkpolicy.all_policies(owner, spec)
    return [
        (c["apiVersion"], c["kind"], c["metadata"]["name"])
        for c in candidates
        if (c["kind"], c["metadata"]["name"]) not in wanted
    ]
