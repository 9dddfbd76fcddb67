"""A child's name: the operator writes an object only where nothing stands under that name
or what stands there is already the resource's own.

Server-side apply with force takes over whatever has the name: a ConfigMap a person
wrote, another custom resource's child (a ZkMigration named after its cluster names its
ensemble B's StatefulSet exactly as the cluster's own ZooKeeper, and a MesosCluster `x`'s
marathon-lb shares `x-marathon-lb` with cluster `x-marathon`'s load balancer). A
resource's author could so rewrite, and through garbage collection delete, objects their
kind was never meant to reach. The check reads metadata only (a Secret's data is never
fetched) and comes before the first write; a refusal names the object and its owner.
"""

from __future__ import annotations

from collections.abc import Collection, MutableSet, Sequence

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Manifest, owned_by
from orchestrator_operator.common.zk_endpoints import zk_servers


def whose(live: Manifest) -> str:
    """Who holds `live`, as a refusal says it: its controller (or first owner), or nobody."""
    refs = live.get("metadata", {}).get("ownerReferences") or []
    holder = next((ref for ref in refs if ref.get("controller")), refs[0] if refs else None)
    if holder is None:
        return "no resource's"
    return f"{holder.get('kind', '?')} {holder.get('name', '?')}'s"


def first_taken(
    wanted: Sequence[Manifest],
    live: Sequence[Manifest | None],
    owner_uids: Collection[str],
    resource_kind: str,
) -> str | None:
    """The refusal for the first of `wanted` whose name another holds (`live[i]`, its
    object or None), or None when each is absent or owned by one of `owner_uids`."""
    for manifest, found in zip(wanted, live, strict=True):
        if found is not None and not any(owned_by(found, uid) for uid in owner_uids):
            return (
                f"{manifest['kind']} {manifest['metadata']['name']} exists and is"
                f" {whose(found)}: the operator does not take over an object it did not"
                f" make for this {resource_kind}; rename this {resource_kind} (or remove"
                f" that {manifest['kind']})"
            )
    return None


def names_taken(
    api: KubeApi,
    wanted: Sequence[Manifest],
    owner_uids: Collection[str],
    resource_kind: str,
    known: MutableSet[tuple[str, str, str]] | None = None,
) -> str | None:
    """`first_taken` over the live objects. `known`, when given, remembers the
    (owner uid, kind, name) found to be the resource's own, so that a timer which applies
    the same children every tick asks once: an object already its own stays its own
    unless someone who may delete it does so first."""
    remembered = known if known is not None else set()
    asked = [
        manifest
        for manifest in wanted
        if not any(
            (uid, manifest["kind"], manifest["metadata"]["name"]) in remembered
            for uid in owner_uids
        )
    ]
    if not asked:
        return None
    live = api.metadata_of(asked)
    refusal = first_taken(asked, live, owner_uids, resource_kind)
    if refusal is None:
        for manifest, found in zip(asked, live, strict=True):
            for uid in owner_uids:
                if found is not None and owned_by(found, uid):
                    remembered.add((uid, manifest["kind"], manifest["metadata"]["name"]))
    return refusal


def owned_ensemble(api: KubeApi, owner_uid: str, namespace: str, connect_string: str) -> bool:
    """Every server of `connect_string` is a ZooKeeper ensemble's in `namespace` that
    `owner_uid` owns, by its client Service (`<x>-zookeeper-client.<ns>.svc`) or a member
    under its headless one (`<pod>.<x>-zookeeper-headless.<ns>.svc.cluster.local`, the TLS
    port): the managed ensemble B a ZkMigration built and handed to its cluster, which the
    cluster then names as external. Such an ensemble is the operator's own making, as a
    managed one is, and needs no allow-list entry; any other Service (an ExternalName may
    point anywhere) is not."""
    client = f"-zookeeper-client.{namespace}.svc"
    headless = f"-zookeeper-headless.{namespace}.svc.cluster.local"
    names = set()
    for host, _port in zk_servers(connect_string):
        if host.endswith(client) and "." not in host.removesuffix(client):
            names.add(host.removesuffix(f".{namespace}.svc"))
        elif host.endswith(headless) and host.count(".") == headless.count(".") + 1:
            names.add(host.split(".", 1)[1].removesuffix(f".{namespace}.svc.cluster.local"))
        else:
            return False
    return bool(names) and all(
        owned_by(api.get("v1", "Service", namespace, name, metadata_only=True), owner_uid)
        for name in names
    )
