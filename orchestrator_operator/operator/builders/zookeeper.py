"""The managed ZooKeeper ensemble of a MesosCluster.

With `scale_by_reconfig` (the operator has a super key: OperatorSettings), members are
added and removed with ZooKeeper's dynamic reconfiguration (operator.mesoscluster.zk_scale):
the StatefulSet's size is then the scaling's current step, not the spec's final size
(`with_replicas`, `held_replicas`). Each server keeps the dynamic configuration ZooKeeper
maintains on its volume; the ConfigMap's `server.N` lines only seed a server that has none
that lists it (its first start, or a start after it was reconfigured out): those lines plus
itself, which is how a new member joins a running ensemble before a `reconfig` makes it a
voter. `reconfig`
needs ZooKeeper's super user: its digest comes from a Secret the operator creates
(`super_secret`).
"""

from __future__ import annotations

import base64
import hashlib

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models.base import image_ref
from orchestrator_operator.models.mesoscluster import MesosClusterSpec, QuorumTls, ZooKeeperTls
from orchestrator_operator.models.zkmigration import ManagedEnsemble
from orchestrator_operator.operator.builders.hardening import harden_all
from orchestrator_operator.operator.builders.meta import (
    metadata,
    pod_defaults,
    pod_disruption_budget,
    resources,
    selector_labels,
    volume_claim,
)
from orchestrator_operator.operator.builders.meta import service as build_service

COMPONENT = "zookeeper"
CLIENT_PORT, PEER_PORT, ELECTION_PORT = 2181, 2888, 3888
# spec.zookeeper.tls: the TLS client port beside 2181 and where the Secret is mounted
TLS_CLIENT_PORT = 2281
TLS_DIR = "/tls"
# On the pod template of a member while TLS is being turned on (QuorumTls): each stage is a
# template revision of its own, so the roll restarts every member into it.
QUORUM_TLS_ANNOTATION = "orchestrator.dev/zookeeper-quorum-tls"
QUORUM_TLS_ORDER = list(QuorumTls)
ZOOKEEPER_USER: Manifest = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "runAsGroup": 1000,
    "fsGroup": 1000,
}
FOUR_LETTER_WORDS = "ruok,mntr,srvr,stat,conf,isro"


def client_address(owner: Owner) -> str:
    """The client Service of the ensemble the operator builds for `owner` (a MesosCluster,
    or a ZkMigration's managed ensemble B)."""
    return f"{owner.child_name(COMPONENT)}-client.{owner.namespace}.svc:{CLIENT_PORT}"


def connect_string(owner: Owner, spec: MesosClusterSpec) -> str:
    """What Mesos, Marathon and the operator connect to (without a chroot path)."""
    if spec.zookeeper.external:
        return spec.zookeeper.external.connect_string
    return client_address(owner)


def member_name(owner: Owner, ordinal: int) -> str:
    """A member's stable DNS name (its headless Service): what the servers' certificate
    names (spec.zookeeper.tls)."""
    sts = owner.child_name(COMPONENT)
    return f"{sts}-{ordinal}.{sts}-headless.{owner.namespace}.svc.cluster.local"


def tls_connect_string(owner: Owner, replicas: int) -> str:
    """The operator's (and the sync controller's) connect string to a managed ensemble with
    spec.zookeeper.tls: every member by the name its certificate carries, on the TLS client
    port (a member not created yet does not resolve, and kazoo skips it)."""
    return ",".join(f"{member_name(owner, i)}:{TLS_CLIENT_PORT}" for i in range(replicas))


def operator_tls_routes(owner: Owner, spec: MesosClusterSpec) -> dict[str, str]:
    """{the ensemble's connect string (2181, Mesos' and Marathon's): the TLS connect
    string the operator reaches it on instead} for a managed ensemble with
    spec.zookeeper.tls, or an external one with `tlsServers` (under its chroot); {}
    otherwise (zk/clients.py `zk_tls_routes`)."""
    external = spec.zookeeper.external
    if external is not None:
        if external.tls_servers is None:
            return {}
        _, slash, chroot = external.connect_string.partition("/")
        return {external.connect_string: external.tls_servers + slash + chroot}
    if spec.zookeeper.tls is None:
        return {}
    tls = tls_connect_string(owner, spec.zookeeper.managed_replicas)
    return {connect_string(owner, spec): tls}


def target_connect_string(external: str | None, migration: str, namespace: str) -> str:
    """A ZkMigration's ensemble B: its external connect string, or the client Service of
    the ensemble the operator builds for it (named after the migration)."""
    if external is not None:
        return external
    return client_address(Owner(name=migration, namespace=namespace, uid=""))


def server_lines(owner: Owner, replicas: int) -> list[str]:
    """`server.N=` lines; N = pod ordinal + 1, each peer by its stable headless DNS name."""
    sts, domain = owner.child_name(COMPONENT), f"{owner.namespace}.svc.cluster.local"
    return [
        f"server.{ordinal + 1}={sts}-{ordinal}.{sts}-headless.{domain}"
        f":{PEER_PORT}:{ELECTION_PORT};{CLIENT_PORT}"
        for ordinal in range(replicas)
    ]


SUPER_USER = "super"
# Scaling by dynamic reconfiguration (`build(..., scale_by_reconfig=True)`: the servers'
# start script and super digest here, the scaling step and the held StatefulSet size in
# operator.mesoscluster.quorum). Without it the StatefulSet and the ConfigMap follow
# spec.zookeeper.replicas directly and each server starts from the ConfigMap's zoo.cfg.


def super_secret_name(owner: Owner) -> str:
    return owner.child_name("zookeeper-super")


def super_digest(password: str) -> str:
    """`super:<base64 sha1>` as ZooKeeper's DigestAuthenticationProvider.superDigest wants."""
    raw = hashlib.sha1(f"{SUPER_USER}:{password}".encode()).digest()
    return f"{SUPER_USER}:{base64.b64encode(raw).decode()}"


def super_secret(owner: Owner, password: str) -> Manifest:
    """The digest of the super user's password, for the servers (which read it when they
    start). The password itself is derived from the operator's key, never stored here."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            **metadata(owner, COMPONENT, "zookeeper"),
            "name": super_secret_name(owner),
        },
        "type": "Opaque",
        "stringData": {"digest": super_digest(password)},
    }


def with_replicas(spec: MesosClusterSpec, replicas: int) -> MesosClusterSpec:
    """The same cluster with its managed ensemble at `replicas` pods."""
    zk = spec.zookeeper.model_copy(update={"replicas": replicas})
    return spec.model_copy(update={"zookeeper": zk})


def held_replicas(spec: MesosClusterSpec, statefulset: Manifest | None) -> int:
    """The size the reconcile applies: the live StatefulSet's (only the scaling step changes
    it, one member at a time), or the spec's for a StatefulSet not created yet."""
    if statefulset is None or spec.zookeeper.external:
        return spec.zookeeper.managed_replicas
    replicas = statefulset.get("spec", {}).get("replicas")
    return int(replicas) if replicas is not None else spec.zookeeper.managed_replicas


def start_script(owner: Owner, data: str = "/data", config: str = "/config") -> str:
    """The container's start: myid from the ordinal; the static configuration from the
    ConfigMap (plus the super digest); the dynamic one the server's own when it still lists
    the server, else the ConfigMap's `server.N` lines plus the server itself (a joiner)."""
    sts, domain = owner.child_name(COMPONENT), f"{owner.namespace}.svc.cluster.local"
    own = (
        f"server.$MYID=$HOSTNAME.{sts}-headless.{domain}:{PEER_PORT}:{ELECTION_PORT};{CLIENT_PORT}"
    )
    return "\n".join(
        [
            f"MYID=$(( ${{HOSTNAME##*-}} + 1 )); echo $MYID > {data}/myid",
            f"DYN=$(sed -n 's/^dynamicConfigFile=//p' {data}/zoo.cfg 2>/dev/null)",
            f"grep -v '^server\\.' {config}/zoo.cfg > {data}/zoo.cfg.next",
            'if [ -n "$ZK_SUPER_DIGEST" ]; then',
            '  echo "DigestAuthenticationProvider.superDigest=$ZK_SUPER_DIGEST"'
            f" >> {data}/zoo.cfg.next",
            "fi",
            'if [ -n "$DYN" ] && grep -q "^server\\.$MYID=" "$DYN" 2>/dev/null; then',
            f'  echo "dynamicConfigFile=$DYN" >> {data}/zoo.cfg.next',
            "else",
            f"  grep '^server\\.' {config}/zoo.cfg | grep -v \"^server\\.$MYID=\""
            f" >> {data}/zoo.cfg.next",
            f'  echo "{own}" >> {data}/zoo.cfg.next',
            "fi",
            f"mv {data}/zoo.cfg.next {data}/zoo.cfg",
            f"exec zkServer.sh start-foreground {data}/zoo.cfg",
        ]
    )


def tls_lines(tls: ZooKeeperTls | None, stage: QuorumTls = QuorumTls.ON) -> list[str]:
    """zoo.cfg's TLS settings (ZooKeeper 3.8's administrator's guide, "Quorum TLS" and
    "Communication using the Netty framework"): quorum TLS, and a TLS client port beside
    2181, both from the Secret's PEM files, reloaded by the server when they change.

    `stage` short of On is a step of turning TLS on in a running ensemble (QuorumTls): the
    same files and client port, with `sslQuorum` and `portUnification` as that step has them.
    """
    if tls is None or stage == QuorumTls.OFF:
        return []
    key_store, trust_store = f"{TLS_DIR}/tls-combined.pem", f"{TLS_DIR}/ca.crt"
    quorum = [f"sslQuorum={'false' if stage == QuorumTls.PORT_UNIFICATION else 'true'}"]
    if stage != QuorumTls.ON:
        quorum.append("portUnification=true")
    return [
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        f"secureClientPort={TLS_CLIENT_PORT}",
        *quorum,
        "sslQuorumReloadCertFiles=true",
        f"ssl.quorum.keyStore.location={key_store}",
        "ssl.quorum.keyStore.type=PEM",
        f"ssl.quorum.trustStore.location={trust_store}",
        "ssl.quorum.trustStore.type=PEM",
        f"ssl.keyStore.location={key_store}",
        "ssl.keyStore.type=PEM",
        f"ssl.trustStore.location={trust_store}",
        "ssl.trustStore.type=PEM",
        f"ssl.clientAuth={tls.client_auth}",
    ]


def live_quorum_tls(statefulset: Manifest) -> QuorumTls:
    """The stage a live StatefulSet's template is at: its annotation while TLS is being
    turned on, else On when it mounts the TLS Secret, Off when it does not."""
    template = statefulset.get("spec", {}).get("template", {})
    annotated = template.get("metadata", {}).get("annotations", {}).get(QUORUM_TLS_ANNOTATION)
    if annotated in QUORUM_TLS_ORDER:
        return QuorumTls(annotated)
    volumes = template.get("spec", {}).get("volumes", [])
    return QuorumTls.ON if any(v.get("name") == "tls" for v in volumes) else QuorumTls.OFF


def rolled(statefulset: Manifest) -> bool:
    """Every member runs the StatefulSet's current template and is ready."""
    spec, status = statefulset.get("spec", {}), statefulset.get("status", {})
    replicas = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration") == statefulset.get("metadata", {}).get("generation")
        and status.get("updatedReplicas", 0) == replicas
        and status.get("readyReplicas", 0) == replicas
    )


def held_quorum_tls(spec: MesosClusterSpec, statefulset: Manifest | None) -> QuorumTls:
    """The stage to apply: the spec's for an ensemble not created yet; for a running one,
    the live stage, moved one step towards the spec's once every member runs it and is
    ready (a member restarted straight into TLS could not talk to the plain ones)."""
    wanted = spec.zookeeper.quorum_tls
    if statefulset is None or spec.zookeeper.external:
        return wanted
    live = live_quorum_tls(statefulset)
    if live == wanted or not rolled(statefulset):
        return live
    step = 1 if QUORUM_TLS_ORDER.index(wanted) > QUORUM_TLS_ORDER.index(live) else -1
    return QUORUM_TLS_ORDER[QUORUM_TLS_ORDER.index(live) + step]


def with_quorum_tls(spec: MesosClusterSpec, stage: QuorumTls) -> MesosClusterSpec:
    """The same cluster with its managed ensemble built at `stage`."""
    zk = spec.zookeeper.model_copy(update={"held_quorum_tls": stage})
    return spec.model_copy(update={"zookeeper": zk})


def zoo_cfg(
    owner: Owner,
    replicas: int,
    tls: ZooKeeperTls | None = None,
    stage: QuorumTls = QuorumTls.ON,
) -> str:
    lines = [
        "tickTime=2000",
        "initLimit=10",
        "syncLimit=5",
        "dataDir=/data",
        f"clientPort={CLIENT_PORT}",
        "standaloneEnabled=false",
        "reconfigEnabled=true",
        "admin.enableServer=false",
        f"4lw.commands.whitelist={FOUR_LETTER_WORDS}",
        "autopurge.snapRetainCount=5",
        "autopurge.purgeInterval=1",
        *tls_lines(tls, stage),
        *server_lines(owner, replicas),
    ]
    return "\n".join(lines) + "\n"


def build(
    owner: Owner, spec: MesosClusterSpec, *, scale_by_reconfig: bool = False
) -> list[Manifest]:
    """ConfigMap (zoo.cfg), headless and client Services, PDB and the StatefulSet;
    `scale_by_reconfig`: servers that keep ZooKeeper's dynamic configuration (see above)."""
    zk = spec.zookeeper
    if zk.external:
        return []
    replicas = zk.managed_replicas
    name = owner.child_name(COMPONENT)
    # Held at Off (TLS asked for, not started yet): nothing of TLS on the members yet.
    tls = zk.tls if zk.quorum_tls != QuorumTls.OFF else None
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, COMPONENT, "zookeeper", zk.version),
        "data": {"zoo.cfg": zoo_cfg(owner, replicas, tls, zk.quorum_tls)},
    }
    ports = [("client", CLIENT_PORT), ("peer", PEER_PORT), ("election", ELECTION_PORT)]
    client_ports = [("client", CLIENT_PORT)]
    if tls is not None:
        ports.append(("client-tls", TLS_CLIENT_PORT))
        client_ports.append(("client-tls", TLS_CLIENT_PORT))
    headless = build_service(owner, COMPONENT, "zookeeper", ports, headless=True)
    client = build_service(owner, COMPONENT, "zookeeper", client_ports)
    client["metadata"]["name"] = f"{name}-client"
    # The server id comes from the pod ordinal, so a rescheduled pod keeps its identity.
    start = (
        "echo $(( ${HOSTNAME##*-} + 1 )) > /data/myid && "
        "cp /config/zoo.cfg /data/zoo.cfg && exec zkServer.sh start-foreground /data/zoo.cfg"
    )
    env: list[Manifest] = []
    if scale_by_reconfig:
        start = start_script(owner)
        # Optional: a server without it simply has no super user.
        secret = {"name": super_secret_name(owner), "key": "digest", "optional": True}
        env = [{"name": "ZK_SUPER_DIGEST", "valueFrom": {"secretKeyRef": secret}}]
    tls_mounts: list[Manifest] = []
    tls_volumes: list[Manifest] = []
    if tls is not None:
        tls_mounts = [{"name": "tls", "mountPath": TLS_DIR, "readOnly": True}]
        tls_volumes = [{"name": "tls", "secret": {"secretName": tls.secret_name}}]
    stage_annotation: Manifest = {}
    if zk.quorum_tls not in (QuorumTls.OFF, QuorumTls.ON):
        stage_annotation = {"annotations": {QUORUM_TLS_ANNOTATION: str(zk.quorum_tls)}}
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(owner, COMPONENT, "zookeeper", zk.version),
        "spec": {
            "serviceName": f"{name}-headless",
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            # The operator rolls members itself, followers first, leader last.
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": spec.pvc_retention_policy,
                "whenScaled": "Retain",
            },
            "selector": {"matchLabels": selector_labels(owner, COMPONENT)},
            "template": {
                "metadata": {
                    "labels": metadata(owner, COMPONENT, "zookeeper", zk.version)["labels"],
                    **stage_annotation,
                },
                "spec": {
                    **pod_defaults(spec.service_account_name),
                    # Non-root: the official image's user (zookeeper, 1000:1000 in
                    # docker-library's Dockerfile, which owns /conf, /data, /datalog and
                    # /logs); fsGroup makes the data volume writable to it, also one that
                    # an earlier version wrote as root. Another image must run as 1000 too.
                    "securityContext": ZOOKEEPER_USER,
                    "containers": [
                        {
                            "name": "zookeeper",
                            "securityContext": {"capabilities": {"drop": ["ALL"]}},
                            "image": image_ref(zk.image, zk.version, zk.digest),
                            "command": ["sh", "-c", start],
                            "ports": [{"name": n, "containerPort": p} for n, p in ports],
                            **({"env": env} if env else {}),
                            "readinessProbe": {
                                "exec": {"command": ["zkServer.sh", "status", "/data/zoo.cfg"]},
                                "periodSeconds": 10,
                                "timeoutSeconds": 5,
                            },
                            "livenessProbe": {
                                "tcpSocket": {"port": CLIENT_PORT},
                                "initialDelaySeconds": 30,
                            },
                            "resources": resources(zk.resources),
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/data"},
                                {"name": "config", "mountPath": "/config"},
                                *tls_mounts,
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": name}}, *tls_volumes],
                },
            },
            "volumeClaimTemplates": [volume_claim("data", zk.storage)],
        },
    }
    pdb = pod_disruption_budget(owner, COMPONENT, "zookeeper")
    return [config_map, headless, client, pdb, statefulset]


def migration_target_spec(managed: ManagedEnsemble, cluster: MesosClusterSpec) -> MesosClusterSpec:
    """The MesosCluster's spec with its ZooKeeper replaced by a ZkMigration's managed
    ensemble B: the migration's image, version, size, resources, storage and TLS (B's
    own: its members have other names than A's, which A's certificate does not carry)."""
    ensemble = cluster.zookeeper.model_copy(
        update={
            "external": None,
            "replicas": managed.replicas,
            "image": managed.image,
            "version": managed.version,
            "digest": managed.digest,
            "resources": managed.resources,
            "storage": managed.storage,
            "tls": managed.tls,
            "held_quorum_tls": None,  # B starts at its final stage, not where A's roll is
        }
    )
    return cluster.model_copy(update={"zookeeper": ensemble})


def build_migration_target(
    owner: Owner,
    managed: ManagedEnsemble,
    cluster: MesosClusterSpec,
    *,
    scale_by_reconfig: bool = False,
) -> list[Manifest]:
    """A ZkMigration's managed ensemble B (`migration_target_spec`), named after and owned
    by the migration (`owner`), which keeps it until phase 6 hands it to the cluster."""
    on_b = migration_target_spec(managed, cluster)
    return harden_all(build(owner, on_b, scale_by_reconfig=scale_by_reconfig))


def migration_target_tls_routes(owner: Owner, managed: ManagedEnsemble) -> dict[str, str]:
    """{B's client Service on 2181: its members on the TLS port} for a managed ensemble B
    with `tls` (as `operator_tls_routes` for a cluster's); {} otherwise."""
    if managed.tls is None:
        return {}
    return {client_address(owner): tls_connect_string(owner, managed.replicas)}
