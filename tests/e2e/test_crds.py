"""The CRDs installed in a real API server accept the examples and reject bad input
with a message that names the field."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv

pytestmark = pytest.mark.kube
REPO = Path(__file__).resolve().parents[2]


def test_examples_apply_and_list(kube_env: KubeTestEnv) -> None:
    applied = kube_env.kubectl_run("apply", "-f", str(REPO / "examples"))
    assert applied.returncode == 0, applied.stderr
    listed = kube_env.kubectl_run("get", "orchestrator", "-A", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    kinds = {item["kind"] for item in json.loads(listed.stdout)["items"]}
    assert kinds == {"MesosCluster", "ZkMigration", "ProbeFleet", "MarathonApp"}


def test_short_names_and_defaults_from_the_schema(kube_env: KubeTestEnv) -> None:
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": "defaults", "namespace": "default"},
        "spec": {},
    }
    created = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert created.returncode == 0, created.stderr
    got = kube_env.kubectl_run("get", "mc", "defaults", "-o", "json")
    spec = json.loads(got.stdout)["spec"]
    assert spec["masters"]["replicas"] == 3
    assert spec["agents"]["containerizers"] == ["docker", "mesos"]
    assert spec["marathon"]["zkPath"] == "/marathon"


def _mesoscluster(spec: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "orchestrator.dev/v1alpha1",
            "kind": "MesosCluster",
            "metadata": {"name": "invalid", "namespace": "default"},
            "spec": spec,
        }
    )


AUTH: dict[str, dict[str, Any]] = {
    "masters": {"credentialsSecretRef": {"name": "mesos", "key": "credentials"}},
    "marathon": {
        "mesosAuthentication": {"principal": "marathon", "secretRef": {"name": "m", "key": "s"}}
    },
}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"zookeeper": {"replicas": 4}}, "spec.zookeeper.replicas"),
        ({"agents": {"offered": {"cpus": -2}}}, "spec.agents.offered.cpus"),
        ({"masters": {"resources": {"requests": {"cpu": "-1"}}}}, "spec.masters.resources"),
        ({"masters": {"replicas": 3, "quorum": 1}}, "spec.masters.quorum"),
        ({"masters": {"replicas": 5, "quorum": 6}}, "spec.masters.quorum"),
        ({"zookeeper": {"replica": 3}}, 'unknown field "spec.zookeeper.replica"'),
        (
            {"zookeeper": {"replicas": 3, "external": {"connectString": "zk:2181"}}},
            "spec.zookeeper.external",
        ),
        # Issue 16, point 1 (the messages the API server gives, naming the field).
        ({"masters": {"replicas": 2}}, "spec.masters.replicas: Invalid value:"
         " masters.replicas must be odd"),
        ({"masters": {"replicas": 3, "quorum": 3}},
         "spec.masters.quorum: Invalid value: masters.quorum must be"
         " floor(masters.replicas/2)+1"),
        ({"masters": {"replicas": 5, "quorum": 4}}, "spec.masters.quorum: Invalid value"),
        # Issue 16, point 4.
        ({"zookeeper": {"external": {"connectString": "zk:2181/"}}},
         "spec.zookeeper.external.connectString: Invalid value: connectString"
         " must not end with '/'"),
        ({"agents": {"isolation": ["filesystem/linux", "filesystem/shared"]}},
         "spec.agents.isolation: Invalid value: agents.isolation: filesystem/linux"
         " and filesystem/shared cannot be used together"),
        ({"agents": {"isolation": ["namespaces/pid"]}},
         "agents.isolation: namespaces/pid and namespaces/ipc need filesystem/linux"),
        ({"agents": {"isolation": ["docker/volume"]}},
         "agents.isolation: docker/volume needs the dvdcli binary"),
        ({"agents": {"attributes": {"rack": "r1;os:evil"}}},
         "spec.agents.attributes: Invalid value: agents.attributes: names must"),
        ({"agents": {"attributes": {"zone:a": "b"}}}, "spec.agents.attributes: Invalid value"),
        # Issue 16, point 3: masters that authenticate agents need an agent credential.
        (AUTH, "spec.agents.credentialSecretRef: Invalid value:"
         " agents.credentialSecretRef is required"),
        ({"zookeeper": {"external": {"connectString": "zk:2181",
                                     "authSecretRef": {"name": "zk", "key": "auth"}}},
          "addons": {"mesosDns": {"enabled": True}}},
         "spec.addons.mesosDns.enabled: Invalid value: addons.mesosDns cannot be enabled"),
        # Issue 17, point 10: bounded quantities and sizes, digests only as sha256.
        ({"masters": {"resources": {"limits": {"cpu": "2000"}}}},
         "spec.masters.resources.limits.cpu: Invalid value: cpu is more than the most"
         " allowed, 1024"),
        ({"zookeeper": {"storage": {"size": "9Ei"}}},
         "spec.zookeeper.storage.size: Invalid value: size is more than the most allowed, 64Ti"),
        ({"agents": {"offered": {"memMb": 2**40}}}, "spec.agents.offered.memMb"),
        ({"marathon": {"digest": "sha256:abc"}}, "spec.marathon.digest"),
        # Issue 17, point 7: ZooKeeper TLS is built for a managed ensemble only.
        ({"zookeeper": {"external": {"connectString": "zk:2181"}, "tls": {"secretName": "t"}}},
         "spec.zookeeper.tls: Invalid value: zookeeper.tls is for a managed ensemble"),
    ],
    ids=[
        "even-zk",
        "negative-cpus",
        "negative-quantity",
        "minority-quorum",
        "quorum-above-replicas",
        "unknown-field",
        "managed-and-external",
        "even-masters",
        "quorum-3-of-3",
        "quorum-4-of-5",
        "connect-string-trailing-slash",
        "two-filesystem-isolators",
        "pid-namespace-without-filesystem-linux",
        "docker-volume-without-dvdcli",
        "attribute-value-injects",
        "attribute-name-with-colon",
        "authentication-without-agent-credential",
        "mesos-dns-with-zookeeper-credentials",
        "cpu-beyond-bound",
        "storage-beyond-bound",
        "agent-memory-beyond-bound",
        "digest-not-sha256",
        "zookeeper-tls-with-external",
    ],
)  # fmt: skip
def test_invalid_mesoscluster_is_rejected_naming_the_field(
    kube_env: KubeTestEnv, spec: dict[str, Any], expected: str
) -> None:
    result = kube_env.kubectl_run("apply", "-f", "-", input=_mesoscluster(spec))
    assert result.returncode != 0, "the API server accepted an invalid MesosCluster"
    assert expected in result.stderr, result.stderr
    assert kube_env.kubectl_run("get", "mc", "invalid").returncode != 0, "nothing is stored"


def test_values_mesos_accepts_are_stored(kube_env: KubeTestEnv) -> None:
    spec = {
        "zookeeper": {"external": {"connectString": "zk-1:2181,zk-2:2181/chroot"}},
        "masters": {"replicas": 5, "quorum": 3, **AUTH["masters"]},
        "agents": {
            "isolation": ["filesystem/linux", "namespaces/pid"],
            "attributes": {"rack": "r1", "url": "http://x:80"},
            "credentialSecretRef": {"name": "mesos-agent", "key": "credential"},
        },
        "marathon": {**AUTH["marathon"], "version": "1.11.24"},
    }
    result = kube_env.kubectl_run("apply", "-f", "-", input=_mesoscluster(spec))
    assert result.returncode == 0, result.stderr


def test_probefleet_mutual_tls_without_a_probe_certificate_is_rejected_naming_the_field(
    kube_env: KubeTestEnv,
) -> None:
    def fleet(tls: dict[str, Any]) -> str:
        return json.dumps({
            "apiVersion": "orchestrator.dev/v1alpha1", "kind": "ProbeFleet",
            "metadata": {"name": "tls-fleet", "namespace": "default"},
            "spec": {"app": {"tls": tls}},
        })  # fmt: skip

    refused = kube_env.kubectl_run(
        "apply", "--dry-run=server", "-f", "-",
        input=fleet({"secretName": "app-tls", "clientAuth": "required"}),
    )  # fmt: skip
    assert refused.returncode != 0
    assert "spec.app.tls.probeSecretName: Invalid value" in refused.stderr, refused.stderr
    assert "needs app.tls.probeSecretName" in refused.stderr
    accepted = kube_env.kubectl_run(
        "apply", "--dry-run=server", "-f", "-",
        input=fleet({"secretName": "app-tls", "clientAuth": "required",
                     "probeSecretName": "probe-tls"}),
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr


def test_probefleet_network_policy_defaults_and_malformed_peers_refused_naming_the_field(
    kube_env: KubeTestEnv,
) -> None:
    def fleet(policy: dict[str, Any]) -> str:
        return json.dumps({
            "apiVersion": "orchestrator.dev/v1alpha1", "kind": "ProbeFleet",
            "metadata": {"name": "policy-fleet", "namespace": "default"},
            "spec": {"app": {"networkPolicy": policy}},
        })  # fmt: skip

    def dry_run(policy: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return kube_env.kubectl_run(
            "apply", "--dry-run=server", "-o", "json", "-f", "-", input=fleet(policy)
        )

    accepted = dry_run({"allowFrom": [{"podSelector": {}}, {"ipBlock": {"cidr": "10.0.0.0/8"}}]})
    assert accepted.returncode == 0, accepted.stderr
    stored = json.loads(accepted.stdout)["spec"]["app"]["networkPolicy"]
    assert stored["enabled"] is True
    assert stored["operatorNamespace"] == "orchestrator-system"
    assert stored["monitoringNamespaceLabels"] == {"orchestrator.dev/monitoring": "true"}
    both = dry_run({"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]})
    assert both.returncode != 0
    assert "spec.app.networkPolicy.allowFrom[0]: Invalid value" in both.stderr, both.stderr
    assert "either an ipBlock or a namespaceSelector" in both.stderr
    value = dry_run({"monitoringNamespaceLabels": {"team": "not a value"}})
    assert value.returncode != 0
    assert "spec.app.networkPolicy.monitoringNamespaceLabels.team" in value.stderr, value.stderr


def test_migration_source_and_target_must_differ(kube_env: KubeTestEnv) -> None:
    manifest = {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ZkMigration",
        "metadata": {"name": "same", "namespace": "default"},
        "spec": {
            "clusterRef": "demo",
            "source": {"connectString": "zk-a:2181"},
            "target": {"external": {"connectString": "zk-a:2181"}},
        },
    }
    result = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode != 0
    assert "source and target must be different" in result.stderr, result.stderr
