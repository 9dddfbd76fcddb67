"""The operator's allow-list (issue 17 points 1, 4, 10): each rule allows what it names
and refuses the rest with a message naming the rule; the default allows everything; the
children the builders make for a default MesosCluster and ProbeFleet are what the shipped
restrictive example (k8s/ and the chart) must allow."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.admission import (
    children_refusal,
    marathonapp_refusal,
    mesoscluster_refusal,
    zkmigration_refusal,
)
from orchestrator_operator.operator.allowlist import (
    ALLOW_ALL,
    AllowList,
    check_host_path,
    check_image,
    check_manifests,
    check_namespace,
    check_tolerations,
    check_zk_endpoints,
    exclude_control_plane,
    from_settings,
    image_repository,
)
from orchestrator_operator.operator.builders import cluster, probefleet
from tests.deploy_settings import operator_environment

OWNER = Owner(name="prod", namespace="mesos", uid="u1")
DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("image", "repository", "digest"),
    [
        ("zookeeper", "docker.io/library/zookeeper", None),
        ("zookeeper:3.8.4", "docker.io/library/zookeeper", None),
        ("mesosphere/marathon:v1.11", "docker.io/mesosphere/marathon", None),
        ("registry.example.com:5000/a/b:1@" + DIGEST, "registry.example.com:5000/a/b", DIGEST),
        ("localhost/x", "localhost/x", None),
        ("Quay.IO/team/app", "quay.io/team/app", None),
    ],
)
def test_image_repository_is_what_the_runtime_pulls(
    image: str, repository: str, digest: str | None
) -> None:
    assert image_repository(image) == (repository, digest)


def test_default_allows_everything() -> None:
    assert check_image(ALLOW_ALL, "evil.io/root:latest") is None
    assert check_namespace(ALLOW_ALL, "anything") is None
    assert check_host_path(ALLOW_ALL, "/") is None
    assert check_zk_endpoints(ALLOW_ALL, "anywhere:2181") is None
    assert check_tolerations(ALLOW_ALL, [{"operator": "Exists"}]) is None


def test_registries_match_whole_path_components() -> None:
    allow = AllowList(image_registries=("registry.example.com", "mesosphere"))
    assert check_image(allow, "registry.example.com/team/app:1") is None
    assert check_image(allow, "mesosphere/mesos-master:1.11") is None  # Docker Hub user
    for refused in (
        "registry.example.com.evil.io/team/app",  # a longer host is another registry
        "evil.io/registry.example.com/app",
        "mesosphere-evil/mesos-master",
        "zookeeper",
    ):
        message = check_image(allow, refused)
        assert message is not None and "allow-list rule imageRegistries" in message, refused


def test_digests_allow_an_image_from_any_registry_and_can_be_required() -> None:
    allow = AllowList(image_registries=("registry.example.com",), image_digests=(DIGEST,))
    assert check_image(allow, f"evil.io/x:1@{DIGEST}") is None
    assert check_image(allow, "evil.io/x:1@sha256:" + "b" * 64) is not None
    required = AllowList(require_digest=True)
    message = check_image(required, "registry.example.com/x:1")
    assert message is not None and "requireDigest" in message
    assert check_image(required, f"registry.example.com/x:1@{DIGEST}") is None


def test_namespaces() -> None:
    allow = AllowList(namespaces=("team-a",))
    assert check_namespace(allow, "team-a") is None
    message = check_namespace(allow, "team-b")
    assert message is not None and "allow-list rule namespaces" in message and "team-b" in message


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/var/lib/mesos", True),
        ("/var/lib/mesos/agent-1", True),
        ("/var/lib/mesos-evil", False),
        ("/var/lib/mesos/../../../etc", False),
        ("/etc", False),
        ("/", False),
        ("/var/run/docker.sock", True),
        ("relative/path", False),
    ],
)
def test_host_paths_are_under_a_prefix(path: str, allowed: bool) -> None:
    allow = AllowList(host_path_prefixes=("/var/lib/mesos", "/var/run/docker.sock"))
    message = check_host_path(allow, path)
    assert (message is None) is allowed, message
    if message:
        assert "allow-list rule hostPathPrefixes" in message


@pytest.mark.parametrize(
    ("connect", "allowed"),
    [
        ("zk-0.zk.svc:2181,zk-1.zk.svc:2181/mesos", True),
        ("zk-0.zk.svc:2182", False),  # the entry names a port
        ("ensemble-a:2181", True),
        ("ensemble-a:9999", True),  # an entry without a port allows any
        ("ensemble-a:2181,evil:2181", False),  # every server must be allowed
        ("zk.svc:2181", False),  # *.zk.svc is a subdomain, not the domain itself
        ("ZK-0.ZK.SVC", True),  # the default port, case-insensitive
    ],
)
def test_zookeeper_endpoints(connect: str, allowed: bool) -> None:
    allow = AllowList(zookeeper_endpoints=("*.zk.svc:2181", "ensemble-a"))
    message = check_zk_endpoints(allow, connect)
    assert (message is None) is allowed, message
    if message:
        assert "allow-list rule zookeeperEndpoints" in message


def test_control_plane_tolerations_refused_and_pods_kept_off() -> None:
    allow = AllowList(control_plane_nodes=False)
    for toleration in (
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"},
        {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"},
    ):
        message = check_tolerations(allow, [toleration])
        assert message is not None and "controlPlaneNodes" in message
    assert check_tolerations(allow, [{"key": "dedicated", "operator": "Exists"}]) is None
    # every taint (the ProbeFleet's default): kept off by the affinity below instead
    assert check_tolerations(allow, [{"operator": "Exists"}]) is None
    children = cluster.build_children(OWNER, MesosClusterSpec())
    kept_off = exclude_control_plane(allow, children)
    daemonsets = [c for c in kept_off if c["kind"] in ("DaemonSet", "StatefulSet", "Deployment")]
    assert daemonsets
    for workload in daemonsets:
        terms = workload["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        for term in terms:
            assert {
                "key": "node-role.kubernetes.io/control-plane",
                "operator": "DoesNotExist",
            } in term["matchExpressions"]
    assert exclude_control_plane(ALLOW_ALL, children) == children


EXAMPLE = from_settings({}, operator_environment("restricted"))
BASE = from_settings({}, operator_environment())


def test_the_shipped_example_restricts_every_rule() -> None:
    assert EXAMPLE.namespaces and EXAMPLE.image_registries and EXAMPLE.host_path_prefixes
    assert EXAMPLE.zookeeper_endpoints and not EXAMPLE.control_plane_nodes


def _cluster_refusal(allow: AllowList, namespace: str, raw: dict[str, Any]) -> str | None:
    """A MesosCluster spec as written, checked as the operator checks it: with its children."""
    spec = MesosClusterSpec.model_validate(raw)
    return mesoscluster_refusal(allow, namespace, spec, cluster.build_children(OWNER, spec))


def _assert_agents_kept_to_their_paths_and_off_the_control_plane(
    allow: AllowList, namespace: str
) -> None:
    message = _cluster_refusal(allow, namespace, {"agents": {"workDir": "/etc"}})
    assert message is not None and "hostPathPrefixes" in message and "'/etc'" in message
    tolerant = {"agents": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane"}]}}
    message = _cluster_refusal(allow, namespace, tolerant)
    assert message is not None and "controlPlaneNodes" in message


def test_the_base_install_keeps_agents_to_their_paths_images_and_off_the_control_plane() -> None:
    """What every install gets without choosing: the rules that need no site's answer."""
    assert BASE.host_path_prefixes and not BASE.control_plane_nodes
    assert BASE.platform_image_registries
    assert not (BASE.namespaces or BASE.image_registries or BASE.zookeeper_endpoints)
    _assert_agents_kept_to_their_paths_and_off_the_control_plane(BASE, "team-a")
    full = {
        "addons": {"mesosDns": {"enabled": True}, "marathonLb": {"enabled": True}},
        "loadBalancer": {"enabled": True},
        "agents": {"workDir": "/var/lib/mesos/agent"},
    }
    assert _cluster_refusal(BASE, "team-a", full) is None
    fleet_owner = probefleet.fleet_owner("fleet", "team-a", "u2")
    assert (
        children_refusal(BASE, "team-a", probefleet.build_children(fleet_owner, ProbeFleetSpec()))
        is None
    )
    # The privileged agents' image is the platform's: a namespace user cannot choose it.
    message = _cluster_refusal(BASE, "team-a", {"agents": {"image": "evil.io/agent"}})
    assert message is not None and "platformImageRegistries" in message
    assert "evil.io/agent" in message
    prober = ProbeFleetSpec.model_validate({"probe": {"image": "evil.io/probe"}})
    message = children_refusal(BASE, "team-a", probefleet.build_children(fleet_owner, prober))
    assert message is not None and "platformImageRegistries" in message
    ensemble_b = _migration(target={"managed": {"image": "evil.io/zk"}})
    message = zkmigration_refusal(BASE, "team-a", ensemble_b)
    assert message is not None and "platformImageRegistries" in message
    # ...while a Marathon app's image is its author's application, from any registry.
    app = MarathonAppSpec.model_validate(
        {
            "cluster": "prod",
            "app": {"id": "/web", "container": {"type": "DOCKER", "docker": {"image": "nginx"}}},
            "kubernetes": {"image": "registry.example.com/web:1"},
        }
    )
    assert marathonapp_refusal(BASE, "team-a", app) is None
    # A digest the site lists is allowed from anywhere, as for imageRegistries.
    pinned = "sha256:" + "a" * 64
    digests = AllowList(
        platform_image_registries=("docker.io/mesosphere",), image_digests=(pinned,)
    )
    assert check_image(digests, f"evil.io/agent@{pinned}", platform=True) is None
    assert check_image(digests, "evil.io/agent:1", platform=True) is not None
    platform_only = AllowList(platform_image_registries=("docker.io/mesosphere",))
    assert check_image(platform_only, "evil.io/agent:1") is None


def test_a_default_mesoscluster_and_probefleet_run_under_the_example() -> None:
    spec = MesosClusterSpec.model_validate(
        {
            "addons": {"mesosDns": {"enabled": True}, "marathonLb": {"enabled": True}},
            "loadBalancer": {"enabled": True},
        }
    )
    assert mesoscluster_refusal(EXAMPLE, "mesos", spec, cluster.build_children(OWNER, spec)) is None
    fleet_owner = probefleet.fleet_owner("fleet", "mesos", "u2")
    fleet = ProbeFleetSpec()
    assert children_refusal(EXAMPLE, "mesos", probefleet.build_children(fleet_owner, fleet)) is None


def test_a_namespace_users_mesoscluster_is_refused_naming_the_rule() -> None:
    foreign = {"agents": {"image": "evil.io/agent", "version": "1"}}
    message = _cluster_refusal(EXAMPLE, "mesos", foreign)
    assert message is not None and "imageRegistries" in message and "evil.io/agent" in message
    _assert_agents_kept_to_their_paths_and_off_the_control_plane(EXAMPLE, "mesos")
    external = MesosClusterSpec.model_validate(
        {"zookeeper": {"external": {"connectString": "other-team-zk:2181"}}}
    )
    allow = AllowList(zookeeper_endpoints=("*.zk.svc",))
    message = mesoscluster_refusal(allow, "team-a", external, [])
    assert message is not None and "zookeeperEndpoints" in message


def _migration(**spec: Any) -> ZkMigrationSpec:
    return ZkMigrationSpec.model_validate({"clusterRef": "prod", **spec})


def test_zkmigration_ensembles_and_managed_image() -> None:
    allow = AllowList(zookeeper_endpoints=("*.zk.svc",), image_registries=("docker.io/library",))
    ok = _migration(target={"external": {"connectString": "b-0.zk.svc:2181"}})
    assert zkmigration_refusal(allow, "team-a", ok) is None
    target = _migration(target={"external": {"connectString": "10.0.0.9:2181"}})
    message = zkmigration_refusal(allow, "team-a", target)
    assert message is not None and message.startswith("spec.target.external: allow-list rule")
    source = _migration(
        source={"connectString": "other-team:2181"},
        target={"external": {"connectString": "b-0.zk.svc:2181"}},
    )
    message = zkmigration_refusal(allow, "team-a", source)
    assert message is not None and message.startswith("spec.source: allow-list rule zookeeper")
    managed = _migration(target={"managed": {"image": "evil.io/zookeeper"}})
    message = zkmigration_refusal(allow, "team-a", managed)
    assert message is not None and "spec.target.managed" in message


def test_marathonapp_images_include_spec_kubernetes() -> None:
    allow = AllowList(image_registries=("registry.example.com",))
    app = MarathonAppSpec.model_validate(
        {
            "cluster": "prod",
            "app": {"id": "/web", "cmd": "serve", "instances": 1},
            "kubernetes": {"image": "evil.io/web:1"},
        }
    )
    message = marathonapp_refusal(allow, "team-a", app)
    assert message is not None and "evil.io/web:1" in message
    docker = MarathonAppSpec.model_validate(
        {
            "cluster": "prod",
            "app": {"id": "/web", "container": {"type": "DOCKER", "docker": {"image": "nginx"}}},
        }
    )
    message = marathonapp_refusal(allow, "team-a", docker)
    assert message is not None and "docker.io/library/nginx" in message


def test_settings_from_flags_over_environment() -> None:
    environ = {
        "ORCHESTRATOR_ALLOW_NAMESPACES": "team-a, team-b",
        "ORCHESTRATOR_ALLOW_CONTROL_PLANE_NODES": "false",
        "ORCHESTRATOR_ALLOW_HOST_PATH_PREFIXES": "/var/lib/mesos",
    }
    allow = from_settings({"allow_host_path_prefixes": "/srv/mesos"}, environ)
    assert allow.namespaces == ("team-a", "team-b")
    assert allow.control_plane_nodes is False
    assert allow.host_path_prefixes == ("/srv/mesos",)
    mirror = from_settings({"allow_platform_image_registries": "mirror.example.com/mesos"}, {})
    assert mirror.platform_image_registries == ("mirror.example.com/mesos",)
    assert from_settings({}, {}) == ALLOW_ALL
    for bad in (
        {"ORCHESTRATOR_ALLOW_HOST_PATH_PREFIXES": "/var/../etc"},
        {"ORCHESTRATOR_ALLOW_IMAGE_DIGESTS": "sha256:short"},
        {"ORCHESTRATOR_ALLOW_PLATFORM_IMAGE_REGISTRIES": "mirror.example.com/"},
        {"ORCHESTRATOR_ALLOW_CONTROL_PLANE_NODES": "maybe"},
        {"ORCHESTRATOR_ALLOW_ZOOKEEPER_ENDPOINTS": "zk:port"},
    ):
        with pytest.raises(ValueError):
            from_settings({}, bad)


def test_check_manifests_reads_init_containers_and_volumes() -> None:
    pod: dict[str, Any] = {
        "kind": "Deployment",
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "i", "image": "evil.io/init"}],
                    "containers": [{"name": "c", "image": "registry.example.com/c"}],
                    "volumes": [{"name": "h", "hostPath": {"path": "/root"}}],
                }
            }
        },
    }
    message = check_manifests(AllowList(image_registries=("registry.example.com",)), [pod])
    assert message is not None and "evil.io/init" in message
    message = check_manifests(AllowList(host_path_prefixes=("/var/lib/mesos",)), [pod])
    assert message is not None and "/root" in message
