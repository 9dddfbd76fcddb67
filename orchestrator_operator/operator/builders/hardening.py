"""The security settings every workload of a MesosCluster (and a ZkMigration's ensemble B)
gets: the container runtime's default seccomp profile for the pod, and no privilege
escalation (no setuid gains, `no_new_privs`) for every container and init container that is
not privileged. The Mesos agent's container stays privileged (its containerizers mount,
create cgroups and start Docker containers), so these do not apply to it; what a builder set
explicitly wins."""

from __future__ import annotations

import copy

from orchestrator_operator.common.manifest import Manifest

WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")
POD_SECURITY: Manifest = {"seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY: Manifest = {"allowPrivilegeEscalation": False}


def harden(manifest: Manifest) -> Manifest:
    """`manifest` with the defaults above when it is a workload; other kinds as they are."""
    if manifest.get("kind") not in WORKLOAD_KINDS:
        return manifest
    hardened = copy.deepcopy(manifest)
    pod = hardened["spec"]["template"]["spec"]
    pod["securityContext"] = {**POD_SECURITY, **pod.get("securityContext", {})}
    for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
        own = container.get("securityContext", {})
        if not own.get("privileged"):
            container["securityContext"] = {**CONTAINER_SECURITY, **own}
    return hardened


def harden_all(manifests: list[Manifest]) -> list[Manifest]:
    return [harden(m) for m in manifests]
