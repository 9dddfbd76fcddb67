"""The pure builders turn a MesosCluster spec into the manifests a user would expect."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import AgentResources, MesosClusterSpec
from orchestrator_operator.operator.builders import agents, masters, zookeeper
from orchestrator_operator.operator.builders.cluster import build_children, stale_children

OWNER = Owner(name="prod", namespace="mesos", uid="1234")


def _spec(raw: dict[str, Any]) -> MesosClusterSpec:
    return MesosClusterSpec.model_validate(raw)


def _by_kind_and_name(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def test_default_cluster_has_every_component_owned_by_the_cluster() -> None:
    children = build_children(OWNER, _spec({}))
    assert sorted(_by_kind_and_name(children)) == sorted([
        ("ConfigMap", "prod-zookeeper"), ("Service", "prod-zookeeper-headless"),
        ("Service", "prod-zookeeper-client"), ("PodDisruptionBudget", "prod-zookeeper"),
        ("StatefulSet", "prod-zookeeper"), ("Service", "prod-master-headless"),
        ("Service", "prod-master"), ("PodDisruptionBudget", "prod-master"),
        ("StatefulSet", "prod-master"), ("DaemonSet", "prod-agent"),
        ("Service", "prod-marathon"), ("Deployment", "prod-marathon"),
        ("NetworkPolicy", "prod-zookeeper"), ("NetworkPolicy", "prod-master"),
        ("NetworkPolicy", "prod-marathon"),
    ])  # fmt: skip
    for child in children:
        assert child["metadata"]["namespace"] == "mesos"
        (ref,) = child["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("MesosCluster", "1234", True)
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "orchestrator"


def test_zoo_cfg_lists_every_member_by_stable_dns_name() -> None:
    cfg = zookeeper.zoo_cfg(OWNER, 5)
    servers = [line for line in cfg.splitlines() if line.startswith("server.")]
    assert servers[0] == (
        "server.1=prod-zookeeper-0.prod-zookeeper-headless.mesos.svc.cluster.local:2888:3888;2181"
    )
    assert [s.split("=")[0] for s in servers] == [f"server.{i}" for i in range(1, 6)]
    assert "reconfigEnabled=true" in cfg
    assert "4lw.commands.whitelist=ruok,mntr,srvr,stat,conf,isro" in cfg


def test_external_zookeeper_builds_no_ensemble_and_points_everyone_at_it() -> None:
    spec = _spec({"zookeeper": {"external": {"connectString": "zk1:2181,zk2:2181"}}})
    children = _by_kind_and_name(build_children(OWNER, spec))
    assert not [key for key in children if "zookeeper" in key[1]]
    assert masters.mesos_zk_url(OWNER, spec) == "zk://zk1:2181,zk2:2181/mesos"


def test_master_flags_carry_quorum_and_zk_path() -> None:
    spec = _spec({"masters": {"replicas": 5, "zkPath": "/mesos-prod"}})
    args = masters.master_args(OWNER, spec)
    assert "--quorum=3" in args
    assert "--zk=zk://prod-zookeeper-client.mesos.svc:2181/mesos-prod" in args
    statefulset = _by_kind_and_name(build_children(OWNER, spec))[("StatefulSet", "prod-master")]
    assert statefulset["spec"]["updateStrategy"] == {"type": "OnDelete"}
    assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_agents_get_containerizers_isolation_checkpoints_and_placement() -> None:
    spec = _spec({
        "agents": {
            "isolation": ["cgroups/cpu", "cgroups/mem", "cgroups/pids"],
            "offered": {"cpus": 2.5, "memMb": 4096, "ports": "[31000-32000]"},
            "nodeSelector": {"mesos": "yes"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "mesos",
                             "effect": "NoSchedule"}],
            "attributes": {"rack": "r1", "zone": "a"},
        }
    })  # fmt: skip
    args = agents.agent_args(OWNER, spec)
    assert "--containerizers=docker,mesos" in args
    assert "--isolation=cgroups/cpu,cgroups/mem,cgroups/pids" in args
    assert "--recover=reconnect" in args
    assert "--resources=cpus:2.5;mem:4096;ports:[31000-32000]" in args
    assert "--attributes=rack:r1;zone:a" in args
    assert "--docker_mesos_image=mesosphere/mesos-slave:1.11.0" in args
    (daemonset,) = agents.build(OWNER, spec)
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"mesos": "yes"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"]}
    assert host_paths == {"/var/lib/mesos/agent", "/sys/fs/cgroup", "/var/run/docker.sock"}


def test_mesos_only_agents_do_not_mount_the_docker_socket() -> None:
    spec = _spec({"agents": {"containerizers": ["mesos"]}})
    (daemonset,) = agents.build(OWNER, spec)
    volumes = daemonset["spec"]["template"]["spec"]["volumes"]
    assert "/var/run/docker.sock" not in {v["hostPath"]["path"] for v in volumes}
    assert not [a for a in agents.agent_args(OWNER, spec) if a.startswith("--docker")]


def test_offered_resources_empty_means_autodetect() -> None:
    assert agents.offered_resources(AgentResources()) is None


def test_a_change_to_one_component_leaves_the_others_byte_for_byte() -> None:
    before = _by_kind_and_name(build_children(OWNER, _spec({})))
    after = _by_kind_and_name(build_children(OWNER, _spec({"agents": {"version": "1.11.1"}})))
    changed = sorted(key for key in before if before[key] != after[key])
    assert changed == [("DaemonSet", "prod-agent")]


def _stale_core(spec: MesosClusterSpec) -> list[tuple[str, str, str]]:
    """Stale children other than the disabled addons, load balancer and egress policies
    (always listed, see test_builders_addons, test_lb_builder, test_builders_networkpolicy)."""
    return [
        c
        for c in stale_children(OWNER, spec)
        if "mesos-dns" not in c[2]
        and "marathon-lb" not in c[2]
        and c[2] != "prod-lb"
        and not c[2].endswith("-egress")
    ]


def test_moving_to_an_external_ensemble_retires_the_managed_one() -> None:
    assert _stale_core(_spec({})) == []
    external = _spec({"zookeeper": {"external": {"connectString": "zk:2181"}}})
    assert sorted(kind for _, kind, _ in _stale_core(external)) == [
        "ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "Service", "Service", "StatefulSet",
    ]  # fmt: skip


def _pods(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Workload name -> its pod template spec."""
    return {
        c["metadata"]["name"]: c["spec"]["template"]["spec"]
        for c in children
        if c["kind"] in ("StatefulSet", "DaemonSet", "Deployment")
    }


# Issue 16, point 5: Kubernetes injects MARATHON_* variables from Services named marathon*
# (this cluster makes one), Marathon's Main.envToArgs turns each into an option and exits.
def test_every_pod_has_no_service_links_and_the_clusters_service_account() -> None:
    spec = _spec({
        "serviceAccountName": "mesos",
        "addons": {"mesosDns": {"enabled": True}, "marathonLb": {"enabled": True}},
    })  # fmt: skip
    pods = _pods(build_children(OWNER, spec))
    assert len(pods) == 6
    for name, pod in pods.items():
        assert pod["enableServiceLinks"] is False, name
        assert pod["serviceAccountName"] == "mesos", name
    assert all(
        "serviceAccountName" not in p for p in _pods(build_children(OWNER, _spec({}))).values()
    )


def test_every_mesos_container_names_its_binary() -> None:
    pods = _pods(build_children(OWNER, _spec({})))
    commands = {name: pod["containers"][0]["command"] for name, pod in pods.items()}
    assert commands["prod-master"] == ["mesos-master"]
    assert commands["prod-agent"] == ["mesos-agent"]
    assert commands["prod-marathon"] == ["/marathon/bin/marathon"]
    marathon = pods["prod-marathon"]["containers"][0]
    assert marathon["image"] == "mesosphere/marathon:v1.11.24"
    assert marathon["readinessProbe"]["httpGet"]["path"] == "/ping"


AUTHENTICATED = {
    "masters": {"credentialsSecretRef": {"name": "mesos", "key": "credentials"}},
    "agents": {"credentialSecretRef": {"name": "mesos-agent", "key": "credential"}},
    "marathon": {
        "mesosAuthentication": {
            "principal": "marathon",
            "secretRef": {"name": "mesos-marathon", "key": "secret"},
        },
        "credentialsSecretRef": {"name": "marathon-http", "key": "credentials"},
    },
}


def _mounted(pod: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str]:
    """(Secret name, key) of the file at `path` in `container`."""
    for mount in container.get("volumeMounts", []):
        if path.startswith(mount["mountPath"] + "/"):
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            (item,) = volume["secret"]["items"]
            assert path == f"{mount['mountPath']}/{item['path']}"
            return volume["secret"]["secretName"], item["key"]
    raise AssertionError(f"nothing mounted at {path}")


# Issue 16, point 3: masters that authenticate need agents and Marathon that do.
def test_authentication_gives_every_identity_its_credential_from_a_secret_file() -> None:
    pods = _pods(build_children(OWNER, _spec(AUTHENTICATED)))
    master = pods["prod-master"]["containers"][0]
    assert {"--authenticate_agents", "--authenticate_frameworks"} <= set(master["args"])
    (credentials,) = [a for a in master["args"] if a.startswith("--credentials=")]
    assert _mounted(pods["prod-master"], master, credentials.split("=", 1)[1]) == (
        "mesos", "credentials",
    )  # fmt: skip
    agent = pods["prod-agent"]["containers"][0]
    (credential,) = [a for a in agent["args"] if a.startswith("--credential=")]
    assert _mounted(pods["prod-agent"], agent, credential.split("=", 1)[1]) == (
        "mesos-agent", "credential",
    )  # fmt: skip
    marathon = pods["prod-marathon"]["containers"][0]
    args = marathon["args"]
    assert "--mesos_authentication" in args
    assert args[args.index("--mesos_authentication_principal") + 1] == "marathon"
    secret_file = args[args.index("--mesos_authentication_secret_file") + 1]
    assert _mounted(pods["prod-marathon"], marathon, secret_file) == ("mesos-marathon", "secret")
    # The image runs as nobody: the Secret's files are given its group.
    assert pods["prod-marathon"]["securityContext"]["fsGroup"] == 65534
    # HTTP credentials from the Secret, and a readiness probe that neither gets 401 nor
    # carries them.
    (http,) = [e for e in marathon["env"] if e["name"] == "MARATHON_HTTP_CREDENTIALS"]
    assert http["valueFrom"]["secretKeyRef"] == {"name": "marathon-http", "key": "credentials"}
    assert marathon["readinessProbe"] == {"tcpSocket": {"port": 8080}, "periodSeconds": 5}


ZK_AUTH = {
    "zookeeper": {
        "external": {
            "connectString": "zk1:2181,zk2:2181/chroot",
            "authSecretRef": {"name": "zk", "key": "digest"},
        }
    }
}


def _run_init(pod: dict[str, Any], tmp: Path) -> dict[str, str]:
    """Run the pod's zk-url init container's script for real, its paths moved under `tmp`."""
    (init,) = pod["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    tmp.mkdir()
    (tmp / "auth").write_text("bob:s3cret\n")  # kubectl create secret --from-file keeps a \n
    (tmp / "url").mkdir()
    env.update(ZK_AUTH_FILE=str(tmp / "auth"), ZK_URL_DIR=str(tmp / "url"), PATH="/usr/bin:/bin")
    subprocess.run(init["command"], env=env, check=True)
    return {f.name: f.read_text() for f in (tmp / "url").iterdir()}


# Issue 16, point 3: zookeeper.external.authSecretRef was accepted and used nowhere.
def test_zookeeper_credentials_reach_every_component_but_no_argv(tmp_path: Path) -> None:
    spec = _spec(ZK_AUTH)
    children = build_children(OWNER, spec)
    assert "s3cret" not in json.dumps(children) and "bob" not in json.dumps(children)
    pods = _pods(children)
    master, agent = pods["prod-master"]["containers"][0], pods["prod-agent"]["containers"][0]
    assert "--zk=file:///run/orchestrator/zk/mesos" in master["args"]
    assert "--master=file:///run/orchestrator/zk/mesos" in agent["args"]
    for name in ("prod-master", "prod-agent"):
        urls = _run_init(pods[name], tmp_path / name)
        assert urls == {"mesos": "zk://bob:s3cret@zk1:2181,zk2:2181/chroot/mesos"}
        volume = next(v for v in pods[name]["volumes"] if v["name"] == "zk-url")
        assert volume["emptyDir"]["medium"] == "Memory"

    # Marathon takes --zk and --master from MARATHON_ZK / MARATHON_MASTER (Main.envToArgs),
    # which its start command sets from the files: run it with a launcher that prints them.
    pod = pods["prod-marathon"]
    marathon = pod["containers"][0]
    assert not {"--zk", "--master"} & set(marathon["args"])
    urls = _run_init(pod, tmp_path / "marathon")
    assert urls["marathon"] == "zk://bob:s3cret@zk1:2181,zk2:2181/chroot/marathon"
    launcher = tmp_path / "launcher"
    launcher.write_text('#!/bin/sh\necho "$MARATHON_ZK $MARATHON_MASTER $*"\n')
    launcher.chmod(0o755)
    shell, flag, script, _ = marathon["command"]
    out = subprocess.run(
        [shell, flag, script, str(launcher), "--http_port", "8080"],
        env={"ZK_URL_DIR": str(tmp_path / "marathon" / "url"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [
        "zk://bob:s3cret@zk1:2181,zk2:2181/chroot/marathon",
        "zk://bob:s3cret@zk1:2181,zk2:2181/chroot/mesos",
        "--http_port",
        "8080",
    ]


def test_without_zookeeper_credentials_the_urls_are_flags() -> None:
    pods = _pods(
        build_children(OWNER, _spec({"zookeeper": {"external": {"connectString": "zk:1"}}}))
    )
    assert "--zk=zk://zk:1/mesos" in pods["prod-master"]["containers"][0]["args"]
    assert all("initContainers" not in pod for pod in pods.values())
    args = pods["prod-marathon"]["containers"][0]["args"]
    assert args[args.index("--zk") + 1] == "zk://zk:1/marathon"
