"""spec.zookeeper.tls (issue 17, point 7): quorum TLS between the managed servers and a TLS
client port beside 2181, from a cert-manager Secret; 2181 stays for Mesos and Marathon,
whose ZooKeeper clients (C client 3.4.8 in Mesos 1.11's 3rdparty/versions.am, Java client
3.4.11 in Marathon 1.11's project/Dependencies.scala) have no TLS."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.operator.builders.cluster import build_children

OWNER = Owner(name="prod", namespace="mesos", uid="1234")
TLS = {"zookeeper": {"tls": {"secretName": "zk-tls"}}}


def _by_kind_name(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def test_tls_configures_quorum_and_a_second_client_port_from_the_secret() -> None:
    children = _by_kind_name(build_children(OWNER, MesosClusterSpec.model_validate(TLS)))
    cfg = children[("ConfigMap", "prod-zookeeper")]["data"]["zoo.cfg"].splitlines()
    for line in (
        "sslQuorum=true",
        "sslQuorumReloadCertFiles=true",
        "secureClientPort=2281",
        "clientPort=2181",
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.quorum.keyStore.location=/tls/tls-combined.pem",
        "ssl.quorum.trustStore.location=/tls/ca.crt",
        "ssl.keyStore.location=/tls/tls-combined.pem",
        "ssl.trustStore.location=/tls/ca.crt",
        "ssl.clientAuth=need",
    ):
        assert line in cfg, line
    pod = children[("StatefulSet", "prod-zookeeper")]["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "zk-tls"}} in pod["volumes"]
    (container,) = pod["containers"]
    assert {"name": "tls", "mountPath": "/tls", "readOnly": True} in container["volumeMounts"]
    assert {"name": "client-tls", "containerPort": 2281} in container["ports"]
    client = children[("Service", "prod-zookeeper-client")]["spec"]["ports"]
    assert {p["port"] for p in client} == {2181, 2281}

    policy = children[("NetworkPolicy", "prod-zookeeper")]["spec"]["ingress"]
    with_tls = [rule for rule in policy if {"port": 2281, "protocol": "TCP"} in rule["ports"]]
    (rule,) = with_tls  # the operator's namespace only: no node, no Mesos or Marathon pod
    assert [peer.get("namespaceSelector") for peer in rule["from"]] == [
        {"matchLabels": {"kubernetes.io/metadata.name": "orchestrator-system"}}
    ]


def test_without_tls_nothing_changes() -> None:
    children = build_children(OWNER, MesosClusterSpec.model_validate({}))
    text = str(children)
    assert "2281" not in text and "ssl" not in text and "/tls" not in text
