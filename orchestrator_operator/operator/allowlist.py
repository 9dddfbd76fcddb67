"""The operator's allow-list (issue 17 points 1, 4, 10): what a custom resource may make it
run, checked before anything is created.

A MesosCluster, ProbeFleet, ZkMigration or MarathonApp makes the operator create workloads
with the operator's rights: privileged agents with a host path as work dir, probes with the
Docker socket, ZooKeeper sessions to the ensembles named in the spec. The allow-list bounds
what a namespace user can reach that way: the namespaces served, the image registries (or
digests) run (and, apart, those of the platform's own pods: the privileged agents, the
probes with the host's PIDs, ZooKeeper), the host path prefixes mounted, whether
control-plane nodes may be used, and the ZooKeeper ensembles the operator (and the workloads
it makes) may connect to.

Pure: the settings come from the operator's flags or environment at start-up
(`operator/main.py`, kept in `OperatorSettings.allowlist`) and are passed in. Each check
returns the first violated rule as a message that names the rule, or None. An empty rule
allows everything (the default of `orchestrator run` by hand); `k8s/base` and the chart set
the rules no site has to answer (platform images, host paths, control-plane nodes) and ship
a restrictive example for the rest (docs/security.md).
"""

from __future__ import annotations

import argparse
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator_operator.common.zk_endpoints import (
    check_entries,
    first_refused_server,
    parse_entries,
)

# The labels and taints kubeadm (and most distributions) put on control-plane nodes.
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")

DEFAULT_REGISTRY = "docker.io"

# Rule names as written in the flags' help, the chart's values and the refusal messages.
RULE_NAMESPACES = "namespaces"
RULE_IMAGE_REGISTRIES = "imageRegistries"
RULE_PLATFORM_IMAGE_REGISTRIES = "platformImageRegistries"
RULE_REQUIRE_DIGEST = "requireDigest"
RULE_HOST_PATH_PREFIXES = "hostPathPrefixes"
RULE_CONTROL_PLANE = "controlPlaneNodes"
RULE_ZOOKEEPER = "zookeeperEndpoints"


@dataclass(frozen=True)
class AllowList:
    """Empty tuples allow everything; see the module docstring."""

    # Namespaces whose resources the operator acts on.
    namespaces: tuple[str, ...] = ()
    # Registries or repository prefixes (`registry.example.com`, `docker.io/mesosphere`):
    # an image is allowed if its repository is one of them or below one.
    image_registries: tuple[str, ...] = ()
    # The same for the images of the platform's own pods only (a MesosCluster's, a
    # ProbeFleet's, a migration's ensemble B), on top of image_registries; a MarathonApp's
    # images are its authors' apps and are not checked against it.
    platform_image_registries: tuple[str, ...] = ()
    # Digests (`sha256:<64 hex>`) allowed whatever their repository.
    image_digests: tuple[str, ...] = ()
    # Every image must be pinned by a digest.
    require_digest: bool = False
    # Absolute host paths; a hostPath volume must be one of them or below one.
    host_path_prefixes: tuple[str, ...] = ()
    # False: pods the operator makes never run on control-plane nodes.
    control_plane_nodes: bool = True
    # ZooKeeper servers `host:port`, `host` (any port) or `*.domain[:port]` (any host in it).
    zookeeper_endpoints: tuple[str, ...] = ()

    @property
    def restricts_images(self) -> bool:
        return bool(self.image_registries or self.image_digests or self.require_digest)

    def describe(self) -> dict[str, Any]:
        """The rules in force, for the start-up log line (nothing secret in them)."""
        return {
            RULE_NAMESPACES: list(self.namespaces) or "any",
            RULE_IMAGE_REGISTRIES: list(self.image_registries) or "any",
            RULE_PLATFORM_IMAGE_REGISTRIES: list(self.platform_image_registries) or "any",
            "imageDigests": len(self.image_digests),
            RULE_REQUIRE_DIGEST: self.require_digest,
            RULE_HOST_PATH_PREFIXES: list(self.host_path_prefixes) or "any",
            RULE_CONTROL_PLANE: self.control_plane_nodes,
            RULE_ZOOKEEPER: list(self.zookeeper_endpoints) or "any",
        }


ALLOW_ALL = AllowList()


def validate(allow: AllowList) -> AllowList:
    """The allow-list itself checked at start-up: a typo must not open or close everything
    silently. Raises ValueError naming the rule and the entry."""
    for entry in allow.host_path_prefixes:
        if not entry.startswith("/") or ".." in entry.split("/") or entry != _norm(entry):
            raise ValueError(
                f"{RULE_HOST_PATH_PREFIXES}: {entry!r} is not a normalized absolute path"
            )
    for rule, entries in (
        (RULE_IMAGE_REGISTRIES, allow.image_registries),
        (RULE_PLATFORM_IMAGE_REGISTRIES, allow.platform_image_registries),
    ):
        for entry in entries:
            if not entry or entry != entry.strip().rstrip("/") or "@" in entry or " " in entry:
                raise ValueError(f"{rule}: {entry!r} is not a registry or repository")
    for entry in allow.image_digests:
        algorithm, _, hexdigest = entry.partition(":")
        if algorithm != "sha256" or len(hexdigest) != 64:
            raise ValueError(f"imageDigests: {entry!r} is not sha256:<64 hex>")
    try:
        check_entries(allow.zookeeper_endpoints)
    except ValueError as error:
        raise ValueError(f"{RULE_ZOOKEEPER}: {error}") from None
    return allow


# --- images -------------------------------------------------------------------------------


def image_repository(image: str) -> tuple[str, str | None]:
    """(`registry/path`, digest or None) of a Docker image reference, in the form the
    runtime pulls: `zookeeper:3.8` is `docker.io/library/zookeeper`."""
    name, _, digest = image.partition("@")
    head, slash, last = name.rpartition("/")
    if ":" in last:
        last = last.split(":", 1)[0]
    name = f"{head}{slash}{last}"
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0].lower(), "/".join(parts[1:])
    else:
        registry, path = DEFAULT_REGISTRY, name
    if registry == DEFAULT_REGISTRY and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}", (digest or None)


def _entry_repository(entry: str) -> str:
    """A registry entry in the normalized form: `docker.io/mesosphere` stays, `mesosphere`
    (a Docker Hub user) becomes `docker.io/mesosphere`; a bare host stays a host."""
    first = entry.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        return entry.lower() if "/" not in entry else f"{first.lower()}/{entry.split('/', 1)[1]}"
    return f"{DEFAULT_REGISTRY}/{entry}"


def _under(value: str, prefix: str) -> bool:
    return value == prefix or value.startswith(prefix + "/")


def _registry_refusal(
    rule: str, registries: tuple[str, ...], allow: AllowList, image: str
) -> str | None:
    repository, digest = image_repository(image)
    if not (registries or allow.image_digests):
        return None
    if digest and digest in allow.image_digests:
        return None
    if any(_under(repository, _entry_repository(entry)) for entry in registries):
        return None
    allowed = ", ".join(registries) or "none"
    return (
        f"allow-list rule {rule}: image {image!r} ({repository}) is not from an"
        f" allowed registry ({allowed}) nor pinned by an allowed digest"
    )


def check_image(allow: AllowList, image: str, platform: bool = False) -> str | None:
    """`platform`: the image of one of the platform's own pods (not a Marathon app's)."""
    _, digest = image_repository(image)
    if allow.require_digest and not digest:
        return (
            f"allow-list rule {RULE_REQUIRE_DIGEST}: image {image!r} is not pinned by a digest"
            " (add @sha256:... or the field's `digest`)"
        )
    message = _registry_refusal(RULE_IMAGE_REGISTRIES, allow.image_registries, allow, image)
    if message or not (platform and allow.platform_image_registries):
        return message
    return _registry_refusal(
        RULE_PLATFORM_IMAGE_REGISTRIES, allow.platform_image_registries, allow, image
    )


def check_images(allow: AllowList, images: Iterable[str], platform: bool = False) -> str | None:
    """The first image the allow-list refuses, as a message naming the rule; or None."""
    for image in images:
        message = check_image(allow, image, platform)
        if message:
            return message
    return None


# --- namespaces ---------------------------------------------------------------------------


def check_namespace(allow: AllowList, namespace: str) -> str | None:
    if not allow.namespaces or namespace in allow.namespaces:
        return None
    return (
        f"allow-list rule {RULE_NAMESPACES}: namespace {namespace!r} is not served by this"
        f" operator (served: {', '.join(allow.namespaces)})"
    )


# --- host paths ---------------------------------------------------------------------------


def _norm(path: str) -> str:
    normalized = posixpath.normpath(path)
    # POSIX keeps a leading '//' as is; a host path has no use for it
    return "/" + normalized.lstrip("/") if normalized.startswith("//") else normalized


def check_host_path(allow: AllowList, path: str) -> str | None:
    if ".." in path.split("/") or not path.startswith("/"):
        return (
            f"allow-list rule {RULE_HOST_PATH_PREFIXES}: host path {path!r} must be absolute,"
            " without '..'"
        )
    if not allow.host_path_prefixes:
        return None
    normalized = _norm(path)
    if any(_under(normalized, prefix) or prefix == "/" for prefix in allow.host_path_prefixes):
        return None
    return (
        f"allow-list rule {RULE_HOST_PATH_PREFIXES}: host path {path!r} is not under an allowed"
        f" prefix ({', '.join(allow.host_path_prefixes)})"
    )


def check_host_paths(allow: AllowList, paths: Iterable[str]) -> str | None:
    for path in paths:
        message = check_host_path(allow, path)
        if message:
            return message
    return None


# --- ZooKeeper ----------------------------------------------------------------------------


def check_zk_endpoints(allow: AllowList, connect_string: str) -> str | None:
    """Every server of the connect string must be allowed (the client may pick any)."""
    refused = first_refused_server(allow.zookeeper_endpoints, connect_string)
    return f"allow-list rule {RULE_ZOOKEEPER}: {refused}" if refused else None


# --- control-plane nodes ------------------------------------------------------------------


def check_tolerations(allow: AllowList, tolerations: Iterable[Mapping[str, Any]]) -> str | None:
    """With controlPlaneNodes false, no toleration naming the control-plane taints. A
    toleration of every taint (`operator: Exists` without a key, the ProbeFleet's default,
    so that probes run on tainted worker nodes) stays allowed: the required node affinity
    of `exclude_control_plane` keeps those pods off nodes labelled as control plane."""
    if allow.control_plane_nodes:
        return None
    for toleration in tolerations:
        if (toleration.get("key") or "") in CONTROL_PLANE_LABELS:
            return (
                f"allow-list rule {RULE_CONTROL_PLANE}: toleration {dict(toleration)!r} would"
                " schedule onto control-plane nodes, which this operator does not use"
            )
    return None


def check_node_selector(allow: AllowList, selector: Mapping[str, str]) -> str | None:
    if allow.control_plane_nodes:
        return None
    for key in selector:
        if key in CONTROL_PLANE_LABELS:
            return (
                f"allow-list rule {RULE_CONTROL_PLANE}: nodeSelector {key!r} selects"
                " control-plane nodes, which this operator does not use"
            )
    return None


CONTROL_PLANE_EXCLUSION: dict[str, Any] = {
    "matchExpressions": [
        {"key": label, "operator": "DoesNotExist"} for label in CONTROL_PLANE_LABELS
    ]
}


def exclude_control_plane(allow: AllowList, manifests: Sequence[Any]) -> list[Any]:
    """With controlPlaneNodes false, every pod template gets a required node affinity that
    keeps it off nodes labelled as control plane (a copy; the input is not changed).
    A cluster whose control-plane nodes are neither labelled nor tainted is not protected:
    docs/security.md says so."""
    if allow.control_plane_nodes:
        return list(manifests)
    out = []
    for manifest in manifests:
        copied = _deep_copy(manifest)
        for pod_spec in pod_specs(copied):
            affinity = pod_spec.setdefault("affinity", {})
            node = affinity.setdefault("nodeAffinity", {})
            required = node.setdefault(
                "requiredDuringSchedulingIgnoredDuringExecution", {"nodeSelectorTerms": []}
            )
            terms = required.setdefault("nodeSelectorTerms", [])
            if not terms:
                terms.append(_deep_copy(CONTROL_PLANE_EXCLUSION))
            else:  # terms are ORed: the exclusion goes into each
                for term in terms:
                    expressions = term.setdefault("matchExpressions", [])
                    for expression in CONTROL_PLANE_EXCLUSION["matchExpressions"]:
                        if expression not in expressions:
                            expressions.append(dict(expression))
        out.append(copied)
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


# --- rendered children --------------------------------------------------------------------

_TEMPLATE_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


def pod_specs(manifest: Mapping[str, Any]) -> Iterator[Any]:
    """The pod specs in one manifest (a Pod, a workload's template, a CronJob's)."""
    kind = manifest.get("kind")
    spec = manifest.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind in _TEMPLATE_KINDS:
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        yield (job.get("template") or {}).get("spec") or {}


def manifest_images(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    images: list[str] = []
    for manifest in manifests:
        for pod_spec in pod_specs(manifest):
            for group in ("initContainers", "containers", "ephemeralContainers"):
                images.extend(
                    str(container.get("image", "")) for container in pod_spec.get(group) or []
                )
    return images


def manifest_host_paths(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        str(volume["hostPath"].get("path", ""))
        for manifest in manifests
        for pod_spec in pod_specs(manifest)
        for volume in pod_spec.get("volumes") or []
        if volume.get("hostPath")
    ]


def check_manifests(
    allow: AllowList, manifests: Sequence[Mapping[str, Any]], platform: bool = False
) -> str | None:
    """Everything the operator is about to create, checked as it would run: every pod
    template's images (`platform`: the platform's own pods), host paths, tolerations and
    node selector. The first violated rule, or None."""
    message = check_images(allow, manifest_images(manifests), platform) or check_host_paths(
        allow, manifest_host_paths(manifests)
    )
    if message:
        return message
    for manifest in manifests:
        for pod_spec in pod_specs(manifest):
            message = check_tolerations(
                allow, pod_spec.get("tolerations") or []
            ) or check_node_selector(allow, pod_spec.get("nodeSelector") or {})
            if message:
                return message
    return None


# --- settings from flags and environment --------------------------------------------------

# flag dest -> environment variable; a flag given wins over its variable
ENVIRONMENT = {
    "allow_namespaces": "ORCHESTRATOR_ALLOW_NAMESPACES",
    "allow_image_registries": "ORCHESTRATOR_ALLOW_IMAGE_REGISTRIES",
    "allow_platform_image_registries": "ORCHESTRATOR_ALLOW_PLATFORM_IMAGE_REGISTRIES",
    "allow_image_digests": "ORCHESTRATOR_ALLOW_IMAGE_DIGESTS",
    "require_image_digest": "ORCHESTRATOR_REQUIRE_IMAGE_DIGEST",
    "allow_host_path_prefixes": "ORCHESTRATOR_ALLOW_HOST_PATH_PREFIXES",
    "allow_control_plane_nodes": "ORCHESTRATOR_ALLOW_CONTROL_PLANE_NODES",
    "allow_zookeeper_endpoints": "ORCHESTRATOR_ALLOW_ZOOKEEPER_ENDPOINTS",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`orchestrator run`'s allow-list flags (docs/security.md, "The allow-list")."""
    group = parser.add_argument_group(
        "allow-list (each: comma-separated; unset = anything; or the environment variable)"
    )
    lists = {
        "allow_namespaces": "namespaces whose custom resources are served",
        "allow_image_registries": "registries or repository prefixes images may come from"
        " (registry.example.com, docker.io/mesosphere)",
        "allow_platform_image_registries": "the same for the platform's own pods only"
        " (Mesos, Marathon, ZooKeeper, addons, probes, app; not Marathon apps)",
        "allow_image_digests": "sha256:... digests allowed from any registry",
        "allow_host_path_prefixes": "host path prefixes hostPath volumes (agents' workDir,"
        " the Docker socket) must be under",
        "allow_zookeeper_endpoints": "ZooKeeper servers (host:port, host, *.domain) that"
        " external ensembles and ZkMigration endpoints may name",
    }
    for dest, text in lists.items():
        group.add_argument(
            "--" + dest.replace("_", "-"), dest=dest, help=f"{text} (${ENVIRONMENT[dest]})"
        )
    group.add_argument(
        "--require-image-digest",
        dest="require_image_digest",
        choices=["true", "false"],
        help=f"every image pinned by a digest (${ENVIRONMENT['require_image_digest']})",
    )
    group.add_argument(
        "--allow-control-plane-nodes",
        dest="allow_control_plane_nodes",
        choices=["true", "false"],
        help="false: pods never on control-plane nodes, no toleration of their taint"
        f" (${ENVIRONMENT['allow_control_plane_nodes']}; default true)",
    )


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"not true or false: {value!r}")


def from_settings(flags: Mapping[str, str | None], environ: Mapping[str, str]) -> AllowList:
    """The allow-list from the flags (an argparse namespace's vars) over the environment,
    validated. Raises ValueError naming the rule for a malformed entry."""

    def value(dest: str) -> str | None:
        given = flags.get(dest)
        return given if given is not None else environ.get(ENVIRONMENT[dest])

    try:
        require = _flag(value("require_image_digest"), False)
    except ValueError as error:
        raise ValueError(f"{RULE_REQUIRE_DIGEST}: {error}") from None
    try:
        control_plane = _flag(value("allow_control_plane_nodes"), True)
    except ValueError as error:
        raise ValueError(f"{RULE_CONTROL_PLANE}: {error}") from None
    return validate(
        AllowList(
            namespaces=parse_entries(value("allow_namespaces")),
            image_registries=parse_entries(value("allow_image_registries")),
            platform_image_registries=parse_entries(value("allow_platform_image_registries")),
            image_digests=parse_entries(value("allow_image_digests")),
            require_digest=require,
            host_path_prefixes=parse_entries(value("allow_host_path_prefixes")),
            control_plane_nodes=control_plane,
            zookeeper_endpoints=parse_entries(value("allow_zookeeper_endpoints")),
        )
    )
