"""The allow-list (operator/allowlist.py) applied to each kind before anything is made.

Pure: each function takes the parsed spec and what the operator is about to create, and
returns the first violated rule's message (naming the rule) or None. The handlers pass the
result to `reconcile.accept_spec(..., refusal=...)`, which refuses with the condition
Accepted=False, reason NotAllowed, phase Invalid, before any child object is applied and
before any ZooKeeper session is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.models.base import image_ref
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.allowlist import (
    AllowList,
    check_images,
    check_manifests,
    check_namespace,
    check_zk_endpoints,
)


def children_refusal(allow: AllowList, namespace: str, children: Sequence[Manifest]) -> str | None:
    """A MesosCluster's or ProbeFleet's (or a managed ensemble's) children as they would
    run: the namespace, every image (the platform's own), host path, toleration and node
    selector."""
    return check_namespace(allow, namespace) or check_manifests(allow, children, platform=True)


def mesoscluster_refusal(
    allow: AllowList,
    namespace: str,
    spec: MesosClusterSpec,
    children: Sequence[Manifest],
    own_ensemble: Callable[[str], bool] = lambda _: False,
) -> str | None:
    """Also an external ensemble (its connect string and TLS servers): the masters,
    Marathon and the operator connect to it. A connect string the rule refuses passes
    when `own_ensemble` says it is the cluster's own (a migration's B handed to it,
    ownership.owned_ensemble: asked only then, as it reads the API)."""
    message = children_refusal(allow, namespace, children)
    external = spec.zookeeper.external
    if message or external is None:
        return message
    for servers in filter(None, (external.connect_string, external.tls_servers)):
        refused = check_zk_endpoints(allow, servers)
        if refused and not own_ensemble(servers):
            return refused
    return None


def zkmigration_refusal(allow: AllowList, namespace: str, spec: ZkMigrationSpec) -> str | None:
    """Ensembles A and B as the spec names them (a managed B is the operator's own, its
    image checked; a source left out is the MesosCluster's, checked on every tick in
    zkmigration/handlers.py), so a user cannot make the operator copy from, write to, or
    archive any reachable ensemble."""
    message = check_namespace(allow, namespace)
    if message:
        return message
    if spec.source is not None:
        message = check_zk_endpoints(allow, spec.source.connect_string)
        if message:
            return f"spec.source: {message}"
    if spec.target.external is not None:
        message = check_zk_endpoints(allow, spec.target.external.connect_string)
        if message:
            return f"spec.target.external: {message}"
    managed = spec.target.managed
    if managed is not None:
        image = image_ref(managed.image, managed.version, managed.digest)
        message = check_images(allow, [image], platform=True)
        if message:
            return f"spec.target.managed: {message}"
    return None


def marathonapp_images(spec: MarathonAppSpec) -> list[str]:
    """The images a MarathonApp makes run: the app's Docker image on the Mesos agents and
    spec.kubernetes.image (or the Docker image) in the translated Deployment."""
    images: list[str] = []
    container = spec.app.container
    docker = container.docker if container is not None else None
    if docker is not None:
        images.append(docker.image)
    if spec.kubernetes is not None and spec.kubernetes.image:
        images.append(spec.kubernetes.image)
    return images


def marathonapp_refusal(
    allow: AllowList,
    namespace: str,
    spec: MarathonAppSpec,
    kubernetes_children: Sequence[Manifest] = (),
) -> str | None:
    return (
        check_namespace(allow, namespace)
        or check_images(allow, marathonapp_images(spec))
        or check_manifests(allow, kubernetes_children)
    )
