"""The security settings every workload of a MesosCluster (and a ZkMigration's ensemble B)
gets: the container runtime's default seccomp profile for the pod, and no privilege
escalation (no setuid gains, `no_new_privs`) for every container and init container that is
not privileged. The Mesos agent's container stays privileged (its containerizers mount,
create cgroups and start Docker containers), so these do not apply to it; what a builder set
explicitly wins.

Read-only root file systems (issue 17, point 12) for the containers whose images write only
where a volume is mounted, each path they do write otherwise given an `emptyDir` of its own
(`READ_ONLY_ROOT`). Not for the Mesos agent (privileged: a read-only root is no bound on a
privileged container, and its containerizers write under the image's `/var/run/mesos` and
`/tmp` and the sandboxes) nor marathon-lb (its image rewrites `/marathon-lb/haproxy.cfg`
and keeps HAProxy's pid and socket files in the image's directories)."""

from __future__ import annotations

import copy

from orchestrator_operator.common.manifest import Manifest

WORKLOAD_KINDS = ("StatefulSet", "Deployment", "DaemonSet")
POD_SECURITY: Manifest = {"seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY: Manifest = {"allowPrivilegeEscalation": False}
# container name -> the paths outside its volumes it writes, each an emptyDir
READ_ONLY_ROOT: dict[str, tuple[str, ...]] = {
    "zookeeper": ("/tmp", "/logs"),  # the JVM's perf data; the image's ZOO_LOG_DIR
    "mesos-master": ("/tmp",),  # libprocess and glog's temporary files; state in work_dir
    "marathon": ("/tmp",),  # the JVM's perf data, JNA's extracted libraries
    "mesos-dns": (),  # reads /config, writes nothing
    "zk-url": (),  # the ZooKeeper credentials' init container: writes its own volume only
}


def _volume_name(container: str, path: str) -> str:
    return f"{container}-{path.strip('/').replace('/', '-')}"[:63]


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
        _read_only_root(pod, container)
    return hardened


def _read_only_root(pod: Manifest, container: Manifest) -> None:
    writes = READ_ONLY_ROOT.get(container["name"])
    security = container.get("securityContext", {})
    if writes is None or security.get("privileged") or "readOnlyRootFilesystem" in security:
        return
    container["securityContext"] = {**security, "readOnlyRootFilesystem": True}
    mounted = {m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = pod.setdefault("volumes", [])
    for path in writes:
        if path in mounted:
            continue
        name = _volume_name(container["name"], path)
        container.setdefault("volumeMounts", []).append({"name": name, "mountPath": path})
        if all(v["name"] != name for v in volumes):
            volumes.append({"name": name, "emptyDir": {"sizeLimit": "1Gi"}})


def harden_all(manifests: list[Manifest]) -> list[Manifest]:
    return [harden(m) for m in manifests]
