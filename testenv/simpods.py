"""Make the KWOK pods of Mesos components real: one `python -m sim` process per pod.

KWOK pods run nothing. `SimPodRunner` watches the pods of a namespace (it polls the API
server every 0.3 s) and, for every Running pod that is not being deleted and whose container
image is a Mesos master, a Mesos agent or Marathon, runs the matching simulator process
(`sim/`) with the pod's arguments translated. So a test can drive real workloads (or the real
operator): a StatefulSet scale-down stops a master, a DaemonSet rolling update replaces an
agent, which recovers its checkpoint, changed args start a process with the new args; and the
effect is real Mesos behaviour in a real ZooKeeper.

    with SimPodRunner(kube_env, namespace="default", base_dir=tmp_path) as pods:
        pods.wait_for(lambda: len(pods.master_urls()) == 3, 60, "3 masters")
        httpx.get(pods.leader_url() + "/master/state")

Which process a pod gets (the first container whose image matches):

- image name with `mesos-master`: `sim master --zk=<its --zk> --quorum=<its --quorum>
  --port=<free port> --zk_session_timeout=<its, else 4 s> --work_dir=<base_dir>/volumes/<pod>/
  work-dir` (the pod's PVC: kept for a pod of the same name) and its `--authenticate_agents`,
  `--authenticate_frameworks` and `--credentials`; `--ip`, `--hostname`, `--port`, `--cluster`,
  `--registry` are ignored.
- `mesos-slave` or `mesos-agent`: `sim agent --zk=<its --master> --hostname=<its --hostname
  with $(NODE_NAME) substituted, else the node name> --port=<one port per node, kept>
  --work-dir=<base_dir>/agents/<node> --recover=reconnect --resources=<its --resources, else
  agent_resources>` (the simulator keeps the scalar parts) and its `--credential`.
  The port and the work dir belong to the node, so an agent pod replaced on the same node
  (a DaemonSet rolling update) recovers its checkpoint: the same agent id and its tasks.
- `marathon` (not `marathon-lb`): `sim marathon --master <its --master> --zk <its --zk>
  --port=<free port> --zk_session_timeout=<its, else 4 s>` and its `--mesos_authentication*`
  flags.

Secrets and start commands, as the kubelet and the image would run them: the pod's `secret`
volumes are written as files (the items, mode `defaultMode`) and its `emptyDir` volumes made,
under `<base_dir>/pods/<pod uid>/volumes/<volume>`; every path under a container's mount
(in a flag value, also after `file://`, and in env values) is moved there. The container's
env is the process's (a `secretKeyRef` read from the Secret, e.g. Marathon's
`MARATHON_HTTP_CREDENTIALS`). Init containers whose command is a shell (`sh -c script`) run
for real first (the operator's `zk-url` one writes the zk:// URLs with ZooKeeper credentials),
and a main container started by `sh -c script <binary>` runs the script for real with
`python -m sim ...` as the binary (Marathon's start command exporting `MARATHON_ZK`). A Secret
or key that is missing keeps the process from starting, as the kubelet keeps the container
from starting (the error is in `errors`).

ZooKeeper pods, with `cluster_dns` (a hosts file, testenv/cluster_dns.py): a container whose
image name has `zookeeper` runs a real ZooKeeper server (`java ... QuorumPeerMain`, Debian's
`zookeeper` package, as testenv/zookeeper.py starts it), as the image's start command would:
myid from the pod's ordinal + 1, the zoo.cfg of the pod's ConfigMap volume with `dataDir` on
the pod's volume (`<base_dir>/volumes/<pod>/data`, kept for a pod of the same name) and
each `server.N` line's client port bound to that server's own address. Each ZooKeeper pod
gets its own loopback address (127.N.0.x, kept for its name) on the standard ports, and the
hosts file names it as the cluster's DNS would: `<pod>.<subdomain>.<namespace>.svc[.cluster.
local]`, and the Services whose selector matches the pod (`<service>.<namespace>.svc[...]`,
one line per live server). The processes resolve these names through the file (the Python
ones via testenv/site/sitecustomize.py, the servers via `-Djdk.net.hosts.file`). The start
script of scaling by reconfiguration (the operator's super key) is not reproduced.

Load-balancer pods (a MesosCluster's `spec.loadBalancer`, operator/builders/loadbalancer.py):
a pod with a container whose args start with `lb` runs that container as
`python -m orchestrator_operator lb <its args>` with `--haproxy-binary=/usr/sbin/haproxy`
(Debian's HAProxy, started by the lb as the pod's `haproxy` container would run it, in
master-worker mode), its paths moved to the pod's volumes (the TLS Secret), `--run-dir` a
short directory of its own under /tmp (HAProxy's unix sockets allow 97 characters), and
`--bind-address`/`--metrics-address` set to the pod's own loopback address (127.N.0.x, as
ZooKeeper pods get one), so a test reaches the frontends, HAProxy's
`/metrics` and the lb's endpoints at `pods.lb_addresses()[pod]` on the pod's ports
(8080, 8443, 9090, 9091, the apps' ports). It talks to the API server as the pod's
ServiceAccount (a TokenRequest kubeconfig), so its Role is what it gets.

Translated MarathonApp pods (issue 21, operator/builders/marathonapp_kubernetes.py): a pod
labelled `orchestrator.dev/marathonapp` runs its first container's command and args as they
are (`$(VAR)` expanded; no command, i.e. the image's entrypoint, cannot run here and is an
error) with the container's env only (values, fieldRefs such as `HOST` = the pod IP,
secretKeyRefs, `PORT0..n`) plus PATH, in a session of its own (stopping it stops what its
shell started). The pod's IP, as KWOK assigned it (`status.podIP`, from the node's podCIDR,
10.100.0.0/14 in testenv/kube.py), is put on `lo` as a /32 (`ip addr add`, root needed),
so the process answers at the address the EndpointSlices made by the real
kube-controller-manager list; the address is taken off when the pod's process has gone and
no other live pod has it (a machine killed mid-run keeps it until reboot or `ip addr del`).
An IP in a network of this machine's interfaces, or a loopback one, is refused (an error,
no process). The processes share this machine's network: they must bind `$HOST` (the pod
IP), as two pods binding 0.0.0.0 on one port would clash. Readiness is KWOK's: its
pod-ready stage sets Ready=True on every running pod whose Ready is not True (so the runner
cannot hold it False until the readinessProbe passes): the pod, and its endpoint, are ready
at once; a test waits for the process to answer, not for Ready. `processes()` gives each its `url`
(`http://<pod IP>:<first container port>`).

Agents' hosts, with `cluster_dns`: the agent's `--hostname` (the node name, which the
operator's maintenance uses as the MachineID) is written in the hosts file with a loopback
address of its own (127.N.x.y), so Marathon's HTTP health checks and the load balancer,
which connect to a task at its agent's hostname, reach the tasks (bound to all addresses)
in pod-based runs such as `make run`. Without `cluster_dns` the node name does not resolve.

Both `--flag=value` and `--flag value` are understood, and `$(VAR)` is expanded from the
container's env (`value` and `fieldRef`), with `NODE_NAME`, `POD_NAME`, `POD_NAMESPACE`,
`POD_IP` and `HOST_IP` as fallbacks. All processes but ZooKeeper's and the load balancer's
listen on 127.0.0.1.

A pod that gets a deletionTimestamp, disappears or is replaced by a pod with another uid
has its process SIGTERMed (it closes its ZooKeeper session), then SIGKILLed after `grace`
seconds. A process that exits while its pod still exists is restarted after
`restart_delay` seconds with the same arguments and port, as a kubelet restarts a
container (a crash loop backs off, doubling the delay up to 10 s). `stop()` stops
everything; the processes are started from the runner's own long-lived thread with
PR_SET_PDEATHSIG (sim/procs.py), so they die with the test process. Each process logs to
`<base_dir>/logs/<pod>.log`.

Limits: the ZooKeeper in `--zk`/`--master` must be reachable from the test process, so with
the operator use a MesosCluster with an external ZooKeeper (a real ensemble on loopback); a
cluster Service name does not resolve here and the process never comes up. Pods are matched by
image (translated MarathonApp pods by their label); readiness is KWOK's (the pod is Ready
before the process listens: wait on the process, e.g.
`wait_for(lambda: pods.leader_url() is not None)`).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from sim.procs import SimProcess, free_ports, kill_agent_tasks, wait_until
from testenv.cluster_dns import LoopbackSubnet, render_hosts, write_hosts
from testenv.kube import KubeTestEnv
from testenv.loopback import add_loopback_address, remove_loopback_address
from testenv.zookeeper import CLASSPATH, MAIN_CLASS, write_log4j_config

log = logging.getLogger(__name__)

MASTER = "master"
AGENT = "agent"
MARATHON = "marathon"
ZOOKEEPER = "zookeeper"
LB = "lb"
APP = "app"
NODE_ADDRESSES = "_nodes"  # the key of the nodes' loopback addresses (not a namespace)
APP_LABEL = "orchestrator.dev/marathonapp"  # a translated MarathonApp's pods (issue 21)
HAPROXY_BINARY = "/usr/sbin/haproxy"
ZK_CLIENT_PORT = 2181
DEFAULT_AGENT_RESOURCES = "cpus:4;mem:4096;disk:10240"
MAX_RESTART_DELAY = 10.0
STABLE_SECONDS = 10.0
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def component_of(image: str) -> str | None:
    """`master`, `agent`, `marathon` or `zookeeper` for a container image, else None."""
    name = image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0].lower()
    if "mesos-master" in name:
        return MASTER
    if "mesos-slave" in name or "mesos-agent" in name:
        return AGENT
    if "marathon" in name and "marathon-lb" not in name:
        return MARATHON
    if "zookeeper" in name:
        return ZOOKEEPER
    return None


def parse_flags(args: list[str]) -> dict[str, str]:
    """`--a=1 --b 2 --c` -> {"a": "1", "b": "2", "c": "true"}; the last one of a name wins."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("--"):
            continue
        name, sep, value = token[2:].partition("=")
        if not sep:
            if i < len(args) and not args[i].startswith("--"):
                value = args[i]
                i += 1
            else:
                value = "true"
        flags[name] = value
    return flags


def pod_variables(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The variables `$(VAR)` may name in a container's args, as the kubelet resolves them."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    fields = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    variables = {
        "NODE_NAME": fields["spec.nodeName"],
        "POD_NAME": fields["metadata.name"],
        "POD_NAMESPACE": fields["metadata.namespace"],
        "POD_IP": fields["status.podIP"],
        "HOST_IP": fields["status.hostIP"],
    }
    for env in container.get("env") or []:
        if "value" in env:
            variables[env["name"]] = expand(str(env["value"]), variables)
        elif (path := (env.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")) in fields:
            variables[env["name"]] = fields[path]
    return variables


def expand(text: str, variables: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: unknown names stay as they are, `$$` is a `$`."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return variables.get(match.group(1), match.group(0))

    return _VAR.sub(one, text)


SHELLS = ("/bin/sh", "sh", "/bin/bash", "bash")
MAX_SECRET_BYTES = 1024 * 1024  # a Secret holds at most 1 MiB


def shell_wrapper(command: list[str]) -> list[str]:
    """`[sh, -c, script]` of a container started by a shell script, else []."""
    if len(command) >= 3 and command[0] in SHELLS and command[1] == "-c":
        return command[:3]
    return []


def remap(value: str, mounts: dict[str, Path]) -> str:
    """`value` with a path under one of the container's mounts (mount path -> host dir) moved
    to where the runner keeps that volume; `file://` paths too."""
    if value.startswith("file://"):
        return "file://" + remap(value[len("file://") :], mounts)
    for mount_path in sorted(mounts, key=len, reverse=True):
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return str(mounts[mount_path]) + value[len(mount_path.rstrip("/")) :]
    return value


def remap_args(args: list[str], mounts: dict[str, Path]) -> list[str]:
    out = []
    for arg in args:
        name, sep, value = arg.partition("=")
        out.append(
            f"{name}={remap(value, mounts)}" if arg.startswith("--") and sep else remap(arg, mounts)
        )
    return out


def container_mounts(container: dict[str, Any], volumes: dict[str, Path]) -> dict[str, Path]:
    """Mount path -> directory of the volumes the runner keeps on disk."""
    return {
        m["mountPath"]: volumes[m["name"]]
        for m in container.get("volumeMounts") or []
        if m.get("name") in volumes
    }


def pod_ordinal(name: str) -> int:
    """A StatefulSet pod's ordinal: the number after its last `-`."""
    suffix = name.rpartition("-")[2]
    if not suffix.isdigit():
        raise ValueError(f"pod {name} has no StatefulSet ordinal")
    return int(suffix)


def pod_dns_names(pod: dict[str, Any]) -> list[str]:
    """The names the cluster's DNS gives a pod with a hostname and subdomain (StatefulSet)."""
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    hostname, subdomain = spec.get("hostname") or meta.get("name", ""), spec.get("subdomain")
    if not subdomain:
        return []
    base = f"{hostname}.{subdomain}.{meta.get('namespace', '')}.svc"
    return [f"{base}.cluster.local", base]


def service_dns_names(service: dict[str, Any]) -> list[str]:
    meta = service.get("metadata", {})
    base = f"{meta.get('name', '')}.{meta.get('namespace', '')}.svc"
    return [f"{base}.cluster.local", base]


def selects(service: dict[str, Any], pod: dict[str, Any]) -> bool:
    selector = service.get("spec", {}).get("selector") or {}
    labels = pod.get("metadata", {}).get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def zoo_cfg_for_pod(config: str, data_dir: Path, address_of: Callable[[str], str | None]) -> str:
    """The pod's zoo.cfg as the server runs it here: `dataDir` on the pod's volume, no
    `clientPort` (each `server.N` line's client part names the port, bound to that server's
    own address: `address_of(host)`, None leaves the line as it is)."""
    lines = []
    for line in config.splitlines():
        key, _, value = line.partition("=")
        key = key.strip()
        if key in ("dataDir", "dataLogDir", "clientPort", "clientPortAddress"):
            continue
        if key.startswith("server.") and ";" in value:
            peer, _, client = value.partition(";")
            host = peer.split(":", 1)[0].strip()
            port = client.rpartition(":")[2].strip() or str(ZK_CLIENT_PORT)
            address = address_of(host)
            if address is not None:
                line = f"{key}={peer};{address}:{port}"
        lines.append(line)
    lines.append(f"dataDir={data_dir}")
    return "\n".join(lines) + "\n"


class ZkPodProcess(SimProcess):
    """A real ZooKeeper server standing for a ZooKeeper pod (the SimProcess interface)."""

    def __init__(self, name: str, config_path: Path, hosts_file: Path, log_path: Path) -> None:
        super().__init__(name, [], log_path)
        self.config_path = config_path
        self.argv = [
            "java", "-Xmx256m", "-Xms32m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Xshare:auto", "-Djava.net.preferIPv4Stack=true",
            f"-Djdk.net.hosts.file={hosts_file}",
            "-Dsun.net.inetaddr.ttl=5", "-Dsun.net.inetaddr.negative.ttl=1",
            "-Dzookeeper.admin.enableServer=false", "-Dzookeeper.jmx.log4j.disable=true",
            f"-Dzookeeper.log.dir={config_path.parent}",
            "-Dlog4j.configuration=file:"
            f"{write_log4j_config(config_path.parent / 'log4j.properties')}",
            "-cp", CLASSPATH, MAIN_CLASS, str(config_path),
        ]  # fmt: skip

    def command(self) -> str:
        return " ".join(self.argv)

    def popen_args(self) -> tuple[list[str], dict[str, str] | None, Path]:
        return self.argv, None, self.config_path.parent


class AppPodProcess(SimProcess):
    """A translated MarathonApp's container: its command and args as they are (`argv`), in
    a session of its own so that stopping it stops what its shell started, with the
    container's environment only (and PATH, HOME), as a container does not inherit the
    host's; it runs in the pod's own directory."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path, env: dict[str, str], cwd: Path
    ) -> None:
        super().__init__(name, [], log_path, env=env)
        self.argv = argv
        self.cwd = cwd

    def command(self) -> str:
        return " ".join(self.argv)

    def popen_args(self) -> tuple[list[str], dict[str, str] | None, Path]:
        env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        return ["setsid", *self.argv], {**env, **self.env}, self.cwd

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)  # setsid: its pid is its group's
        super().signal(sig)


def host_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of this machine's interfaces other than loopback."""
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    nets = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[1] != "lo" and "inet" in parts:
            nets.append(ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network)
    return nets


def pod_ip_problem(ip: str, networks: list[ipaddress.IPv4Network]) -> str | None:
    """Why `ip` may not go on the loopback interface as a pod's address, or None."""
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        return f"pod IP {ip!r} is not an IPv4 address"
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        return f"pod IP {ip} is not a unicast address outside 127.0.0.0/8"
    for network in networks:
        if address in network:
            return f"pod IP {ip} is in this machine's network {network}: not put on lo"
    return None


class LbPodProcess(SimProcess):
    """`python -m orchestrator_operator <args>` standing for a load-balancer pod."""

    def popen_args(self) -> tuple[list[str], dict[str, str] | None, Path]:
        _argv, env, cwd = super().popen_args()
        return [sys.executable, "-m", "orchestrator_operator", *self.args], env, cwd


@dataclass(frozen=True)
class SimPodInfo:
    """One simulator process and the pod it stands for. `terminating`: its pod went away
    (deleted, gone or replaced) and the process was told to stop; `restarts`: how often it
    was restarted after exiting on its own while its pod lived."""

    pod: str
    uid: str
    component: str
    node: str
    pid: int | None
    port: int
    url: str
    args: list[str]
    alive: bool
    returncode: int | None
    restarts: int
    terminating: bool
    log_path: Path


@dataclass
class _Record:
    pod: str
    uid: str
    component: str
    node: str
    port: int
    args: list[str]
    process: SimProcess
    restarts: int = 0
    exited_at: float | None = None
    started_at: float = 0.0
    crash_loop: int = 0
    stop_deadline: float | None = None
    address: str = "127.0.0.1"

    @property
    def slot(self) -> str:
        """What two processes may not share at once: an agent's node, else the pod name."""
        return f"node/{self.node}" if self.component == AGENT else f"pod/{self.pod}"

    def info(self) -> SimPodInfo:
        popen = self.process.popen
        return SimPodInfo(
            pod=self.pod,
            uid=self.uid,
            component=self.component,
            node=self.node,
            pid=popen.pid if popen is not None else None,
            port=self.port,
            url=f"http://{self.address}:{self.port}",
            args=list(self.args),
            alive=self.process.running,
            returncode=self.process.returncode,
            restarts=self.restarts,
            terminating=self.stop_deadline is not None,
            log_path=self.process.log_path,
        )


@dataclass(frozen=True)
class _Wanted:
    pod: str
    uid: str
    component: str
    node: str
    pod_obj: dict[str, Any]
    container: dict[str, Any]


class SimPodRunner:
    """Runs a simulator process for every Mesos master, agent and Marathon pod of a namespace."""

    def __init__(
        self,
        env: KubeTestEnv,
        namespace: str = "default",
        base_dir: Path | None = None,
        *,
        interval: float = 0.3,
        grace: float = 5.0,
        restart_delay: float = 1.0,
        zk_session_timeout: float = 4.0,
        agent_resources: str = DEFAULT_AGENT_RESOURCES,
        cluster_dns: Path | None = None,
    ) -> None:
        self.env = env
        self.namespace = namespace
        self._owns_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="simpods-"))
        self.interval = interval
        self.grace = grace
        self.restart_delay = restart_delay
        self.zk_session_timeout = zk_session_timeout
        self.agent_resources = agent_resources
        self.errors: list[str] = []  # the last failures of the polling loop, newest last
        # ZooKeeper pods run real servers only with a hosts file to name them in.
        self.cluster_dns = cluster_dns
        self._subnet: LoopbackSubnet | None = None
        self._zk_addresses: dict[str, str] = {}  # "<namespace>/<pod>" -> its loopback address
        self._zk_names: dict[str, set[str]] = {}  # "<namespace>/<pod>" -> its DNS names
        self._lock = threading.RLock()
        self._running: dict[str, _Record] = {}
        self._stopping: list[_Record] = []
        self._stopped: list[SimPodInfo] = []
        self._node_ports: dict[str, int] = {}
        self._used_ports: set[int] = set()
        self._halt = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=3.0)
        self._lb_run_dirs: list[Path] = []  # short dirs for the LB pods' HAProxy sockets
        self._pod_ips: set[str] = set()  # translated MarathonApp pods' IPs put on lo
        self._networks: list[ipaddress.IPv4Network] | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> SimPodRunner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> SimPodRunner:
        """Start the polling thread; returns once the pods have been read once."""
        if self._thread is not None:
            return self
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._halt.clear()
        # The processes are started from this thread: PR_SET_PDEATHSIG fires when it exits.
        self._thread = threading.Thread(target=self._loop, name="simpods", daemon=True)
        self._thread.start()
        if not self._synced.wait(timeout):
            self.stop()
            raise TimeoutError(f"SimPodRunner could not list pods: {self.errors[-3:]}")
        return self

    def stop(self) -> None:
        """Stop polling and every process (SIGTERM, SIGKILL after `grace`)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=self.grace + 30.0)
            self._thread = None
        self._stop_all()  # anything the thread left (it normally leaves nothing)
        self._http.close()
        if self._subnet is not None:
            self._subnet.release()
            self._subnet = None
        for run_dir in self._lb_run_dirs:
            shutil.rmtree(run_dir, ignore_errors=True)
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # ------------------------------------------------------------------ queries
    @property
    def logs_dir(self) -> Path:
        return self.base_dir / "logs"

    def log_path(self, pod: str) -> Path:
        return self.logs_dir / f"{pod}.log"

    def processes(self) -> dict[str, SimPodInfo]:
        """Pod name -> its process, including processes still terminating."""
        with self._lock:
            infos = {r.pod: r.info() for r in self._stopping}
            infos.update((r.pod, r.info()) for r in self._running.values())
            return infos

    def stopped(self) -> list[SimPodInfo]:
        """Processes stopped because their pod went away, oldest first."""
        with self._lock:
            return list(self._stopped)

    def _live(self, component: str) -> list[SimPodInfo]:
        return sorted(
            (
                i
                for i in self.processes().values()
                if i.component == component and i.alive and not i.terminating
            ),
            key=lambda i: i.pod,
        )

    def master_urls(self) -> list[str]:
        """URLs of the live masters whose pods are not terminating, by pod name."""
        return [i.url for i in self._live(MASTER)]

    def agent_urls(self) -> dict[str, str]:
        """Node name -> URL of its live agent."""
        return {i.node: i.url for i in self._live(AGENT)}

    def agent_url(self, node: str) -> str:
        urls = self.agent_urls()
        if node not in urls:
            raise KeyError(f"no live agent on node {node!r} (agents on: {sorted(urls)})")
        return urls[node]

    def zookeeper_addresses(self) -> dict[str, str]:
        """Pod name -> `address:2181` of its live ZooKeeper server."""
        with self._lock:
            return {
                i.pod: f"{self._zk_addresses[f'{self.namespace}/{i.pod}']}:{ZK_CLIENT_PORT}"
                for i in self._live(ZOOKEEPER)
            }

    def lb_addresses(self) -> dict[str, str]:
        """Pod name -> the loopback address of its live load balancer (frontends, HAProxy's
        /metrics on 9090, the lb's endpoints on 9091)."""
        return {i.pod: i.url.split("//", 1)[1].rsplit(":", 1)[0] for i in self._live(LB)}

    def marathon_urls(self) -> list[str]:
        return [i.url for i in self._live(MARATHON)]

    def marathon_url(self) -> str:
        """A live Marathon that answers (followers proxy to the leader)."""
        urls = self.marathon_urls()
        for url in urls:
            with contextlib.suppress(httpx.HTTPError):
                if self._http.get(url + "/ping").status_code == 200:
                    return url
        raise RuntimeError(f"no Marathon answers (live processes: {urls})")

    def leader_url(self) -> str | None:
        """The elected master (`master/elected` 1 in its metrics), if any."""
        for url in self.master_urls():
            with contextlib.suppress(httpx.HTTPError, ValueError):
                snapshot = self._http.get(url + "/metrics/snapshot").json()
                if snapshot.get("master/elected"):
                    return url
        return None

    def logs(self, lines: int = 30) -> str:
        """The last lines of every process log (for failure messages)."""
        with self._lock:
            records = list(self._running.values()) + list(self._stopping)
        return "\n".join(f"--- {r.pod} ---\n{r.process.log_tail(lines)}" for r in records)

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition"
    ) -> None:
        """Poll `predicate` (exceptions count as False); TimeoutError with the logs."""
        try:
            wait_until(predicate, timeout, what)
        except TimeoutError as exc:
            errors = f"\nrunner errors: {self.errors[-5:]}" if self.errors else ""
            raise TimeoutError(f"{exc}{errors}\n{self.logs()}") from None

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        try:
            while not self._halt.is_set():
                try:
                    self._sync()
                    self._synced.set()
                except Exception as exc:  # the API server may be busy: try again
                    self.errors = [*self.errors[-19:], repr(exc)]
                    log.warning("simpods: %r", exc)
                self._halt.wait(self.interval)
        finally:
            self._stop_all()

    def _pods(self) -> dict[str, _Wanted]:
        pods = self.env.api("GET", f"/api/v1/namespaces/{self.namespace}/pods")["items"]
        wanted: dict[str, _Wanted] = {}
        for pod in pods:
            meta, spec = pod.get("metadata", {}), pod.get("spec", {})
            if meta.get("deletionTimestamp") or pod.get("status", {}).get("phase") != "Running":
                continue
            if APP_LABEL in (meta.get("labels") or {}) and spec.get("containers"):
                container = spec["containers"][0]
                wanted[meta["name"]] = _Wanted(
                    meta["name"], meta["uid"], APP, spec.get("nodeName", ""), pod, container
                )
                continue
            for container in spec.get("containers") or []:
                component = component_of(str(container.get("image", "")))
                if component is None and [str(a) for a in container.get("args") or []][:1] == [LB]:
                    component = LB
                if component == ZOOKEEPER and self.cluster_dns is None:
                    continue
                if component is not None:
                    wanted[meta["name"]] = _Wanted(
                        meta["name"],
                        meta["uid"],
                        component,
                        spec.get("nodeName", ""),
                        pod,
                        container,
                    )
                    break
        return wanted

    def _sync(self) -> None:
        try:
            wanted = self._pods()
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # a namespace not created yet has no pods
                raise
            wanted = {}
        now = time.monotonic()
        with self._lock:
            for name, record in list(self._running.items()):
                want = wanted.get(name)
                if want is None or want.uid != record.uid:
                    del self._running[name]
                    self._begin_stop(record, now)
            self._reap(now)
            # An agent's node (its port and work dir) holds one agent at a time: a new pod
            # waits until the process of the previous one (or of a surge twin) has gone.
            busy = {r.slot for r in self._stopping} | {r.slot for r in self._running.values()}
            if self.cluster_dns is not None:
                self._write_cluster_dns(wanted)
            for name, want in wanted.items():
                current = self._running.get(name)
                if current is not None:
                    self._restart_if_exited(current, now)
                    continue
                slot = f"node/{want.node}" if want.component == AGENT else f"pod/{name}"
                if slot in busy:
                    continue
                try:
                    self._running[name] = self._launch(want)
                    busy.add(slot)
                except ValueError as exc:
                    self.errors = [*self.errors[-19:], f"{name}: {exc}"]

    def _begin_stop(self, record: _Record, now: float) -> None:
        log.info("simpods: stopping %s (%s)", record.pod, record.component)
        record.process.signal(signal.SIGTERM)
        record.stop_deadline = now + self.grace
        self._stopping.append(record)

    def _reap(self, now: float) -> None:
        for record in list(self._stopping):
            deadline = record.stop_deadline or 0.0
            if record.process.running and now < deadline:
                continue
            record.process.kill()  # SIGKILL when still running; closes the log in any case
            self._stopping.remove(record)
            self._stopped.append(record.info())
        if self._pod_ips:
            self._release_pod_ips()

    def _restart_if_exited(self, record: _Record, now: float) -> None:
        if record.process.running:
            return
        if record.exited_at is None:
            record.exited_at = now
            log.info("simpods: %s exited with %s", record.pod, record.process.returncode)
            if now - record.started_at >= STABLE_SECONDS:
                record.crash_loop = 0  # it ran long enough: no back-off, as a kubelet resets it
            return
        # A crash loop backs off (restart_delay, doubling, at most MAX_RESTART_DELAY), e.g. a
        # --zk naming a cluster Service, which does not resolve outside the cluster.
        delay = min(self.restart_delay * 2**record.crash_loop, MAX_RESTART_DELAY)
        if now - record.exited_at >= delay:
            record.exited_at = None
            record.restarts += 1
            record.crash_loop += 1
            self._start_process(record, "restart")

    def _zk_address(self, namespace: str, pod: str) -> str:
        key = f"{namespace}/{pod}"
        if key not in self._zk_addresses:
            if self._subnet is None:
                self._subnet = LoopbackSubnet()
            self._zk_addresses[key] = self._subnet.address(len(self._zk_addresses) + 1)
        return self._zk_addresses[key]

    def _address_of_host(self, host: str) -> str | None:
        """The loopback address of `<pod>.<subdomain>.<namespace>.svc...`, else None."""
        host = host.lower().rstrip(".")
        labels = host.split(".")
        if len(labels) < 4 or labels[3] != "svc":
            return None
        self._zk_names.setdefault(f"{labels[2]}/{labels[0]}", set()).add(host)
        return self._zk_address(labels[2], labels[0])

    def _write_cluster_dns(self, wanted: dict[str, _Wanted]) -> None:
        """The hosts file: every ZooKeeper pod's names, and the Services that select them
        (with the addresses of the servers that run)."""
        assert self.cluster_dns is not None
        zk_pods = {n: w.pod_obj for n, w in wanted.items() if w.component == ZOOKEEPER}
        for pod in zk_pods.values():
            for host in pod_dns_names(pod):
                self._address_of_host(host)
        # Also the peers a server's zoo.cfg names before their pod exists.
        entries = [
            (self._zk_addresses[key], sorted(names))
            for key, names in sorted(self._zk_names.items())
        ]
        # Each agent's node name (its --hostname: Marathon's tasks' host, which health
        # checks and the load balancer connect to) resolves to a loopback address of its own,
        # where the tasks, bound to all addresses, answer.
        for node in sorted({w.node for w in wanted.values() if w.component == AGENT and w.node}):
            entries.append((self._zk_address(NODE_ADDRESSES, node), [node]))
        live = {
            r.pod for r in self._running.values() if r.component == ZOOKEEPER and r.process.running
        }
        if zk_pods:
            path = f"/api/v1/namespaces/{self.namespace}/services"
            for service in self.env.api("GET", path)["items"]:
                for name, pod in sorted(zk_pods.items()):
                    if name in live and selects(service, pod):
                        address = self._zk_address(self.namespace, name)
                        entries.append((address, service_dns_names(service)))
        write_hosts(self.cluster_dns, render_hosts(e for e in entries if e[1]))

    def _launch_zookeeper(self, want: _Wanted) -> _Record:
        assert self.cluster_dns is not None
        myid = pod_ordinal(want.pod) + 1
        config = ""
        for volume in want.pod_obj.get("spec", {}).get("volumes") or []:
            if "configMap" in volume:
                name = volume["configMap"]["name"]
                path = f"/api/v1/namespaces/{self.namespace}/configmaps/{name}"
                try:
                    config_map = self.env.api("GET", path)
                except urllib.error.HTTPError as exc:
                    if exc.code == 404:
                        raise ValueError(f'configmap "{name}" not found') from None
                    raise
                config = (config_map.get("data") or {}).get("zoo.cfg", config)
        if not config:
            raise ValueError("a ZooKeeper pod without a zoo.cfg ConfigMap volume")
        address = self._zk_address(self.namespace, want.pod)
        pod_dir = self.base_dir / "volumes" / want.pod
        data_dir = pod_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "myid").write_text(f"{myid}\n")
        config_path = pod_dir / "zoo.cfg"
        # Fresh each start, as the image's start command copies the ConfigMap's.
        config_path.write_text(zoo_cfg_for_pod(config, data_dir, self._address_of_host))
        record = _Record(
            pod=want.pod,
            uid=want.uid,
            component=ZOOKEEPER,
            node=want.node,
            port=ZK_CLIENT_PORT,
            args=[f"--address={address}", f"--config={config_path}"],
            process=ZkPodProcess(want.pod, config_path, self.cluster_dns, self.log_path(want.pod)),
        )
        self._start_process(record, "start")
        return record

    def _launch_lb(self, want: _Wanted) -> _Record:
        volumes = self._volumes(want)
        for init in want.pod_obj.get("spec", {}).get("initContainers") or []:
            self._run_init_container(want, init, volumes)
        mounts = container_mounts(want.container, volumes)
        variables = pod_variables(want.pod_obj, want.container)
        raw = [expand(str(a), variables) for a in want.container.get("args") or []]
        address = self._zk_address(self.namespace, want.pod)
        skipped = ("--bind-address", "--metrics-address", "--haproxy-binary", "--run-dir")
        args = [a for a in remap_args(raw, mounts) if not a.startswith(skipped)]
        # HAProxy's sockets live in the run dir, and a unix socket path has at most 97
        # characters there: a short directory of its own instead of the pod's emptyDir
        # (only the lb and the HAProxy it starts use it).
        run_dir = Path(tempfile.mkdtemp(prefix="lb-", dir="/tmp"))
        self._lb_run_dirs.append(run_dir)
        args += [
            f"--run-dir={run_dir}",
            f"--bind-address={address}",
            f"--metrics-address={address}",
            f"--haproxy-binary={HAPROXY_BINARY}",
        ]
        account = want.pod_obj.get("spec", {}).get("serviceAccountName") or "default"
        pod_dir = self.base_dir / "pods" / want.uid
        pod_dir.mkdir(parents=True, exist_ok=True)
        kubeconfig = self.env.service_account_kubeconfig(
            account, self.namespace, pod_dir / "kubeconfig"
        )
        env = {**self._env(want, want.container, mounts), "KUBECONFIG": str(kubeconfig)}
        port = int(parse_flags(args).get("metrics-port", "9091"))
        record = _Record(
            pod=want.pod,
            uid=want.uid,
            component=LB,
            node=want.node,
            port=port,
            args=args,
            process=LbPodProcess(want.pod, args, self.log_path(want.pod), env=env),
            address=address,
        )
        self._start_process(record, "start")
        return record

    def _launch_app(self, want: _Wanted) -> _Record:
        ip = str(want.pod_obj.get("status", {}).get("podIP") or "")
        if not ip:
            raise ValueError("a translated MarathonApp pod without a pod IP yet")
        problem = pod_ip_problem(ip, self._host_networks())
        if problem:
            raise ValueError(problem)
        command = [str(c) for c in want.container.get("command") or []]
        if not command:
            raise ValueError("no command: the image's entrypoint cannot run here (set one)")
        volumes = self._volumes(want)
        mounts = container_mounts(want.container, volumes)
        variables = pod_variables(want.pod_obj, want.container)
        argv = [expand(c, variables) for c in command]
        argv += [expand(str(a), variables) for a in want.container.get("args") or []]
        env = self._env(want, want.container, mounts)
        self._add_pod_ip(ip)
        pod_dir = self.base_dir / "pods" / want.uid
        pod_dir.mkdir(parents=True, exist_ok=True)
        ports = [int(p["containerPort"]) for p in want.container.get("ports") or []]
        record = _Record(
            pod=want.pod,
            uid=want.uid,
            component=APP,
            node=want.node,
            port=ports[0] if ports else 0,
            args=argv,
            process=AppPodProcess(want.pod, argv, self.log_path(want.pod), env, pod_dir),
            address=ip,
        )
        self._start_process(record, "start")
        return record

    def _host_networks(self) -> list[ipaddress.IPv4Network]:
        if self._networks is None:
            self._networks = host_networks()
        return self._networks

    def _add_pod_ip(self, ip: str) -> None:
        """Put the pod's IP on lo (as root), so what the pod's process binds there answers
        at the address its EndpointSlice lists."""
        add_loopback_address(ip)
        self._pod_ips.add(ip)

    def _release_pod_ips(self) -> None:
        """Take the IPs of pods whose process has gone off lo (unless a live pod has it)."""
        used = {r.address for r in [*self._running.values(), *self._stopping]}
        for ip in sorted(self._pod_ips - used):
            remove_loopback_address(ip)
            self._pod_ips.discard(ip)

    def _launch(self, want: _Wanted) -> _Record:
        if want.component == APP:
            return self._launch_app(want)
        if want.component == ZOOKEEPER:
            return self._launch_zookeeper(want)
        if want.component == LB:
            return self._launch_lb(want)
        volumes = self._volumes(want)
        for init in want.pod_obj.get("spec", {}).get("initContainers") or []:
            self._run_init_container(want, init, volumes)
        mounts = container_mounts(want.container, volumes)
        variables = pod_variables(want.pod_obj, want.container)
        raw = [expand(str(a), variables) for a in want.container.get("args") or []]
        flags = parse_flags(remap_args(raw, mounts))
        env = self._env(want, want.container, mounts)
        wrapper = shell_wrapper([str(c) for c in want.container.get("command") or []])
        if want.component == AGENT:
            if want.node not in self._node_ports:
                self._node_ports[want.node] = self._free_port()
            port = self._node_ports[want.node]
        else:
            port = self._free_port()
        args = self._sim_args(want, flags, port, bool(wrapper))
        record = _Record(
            pod=want.pod,
            uid=want.uid,
            component=want.component,
            node=want.node,
            port=port,
            args=args,
            process=SimProcess(want.pod, args, self.log_path(want.pod), env=env, wrapper=wrapper),
        )
        self._start_process(record, "start")
        return record

    def _sim_args(
        self, want: _Wanted, flags: dict[str, str], port: int, wrapped: bool = False
    ) -> list[str]:
        session = flags.get("zk_session_timeout", str(self.zk_session_timeout))
        if want.component == MASTER:
            if "zk" not in flags:
                raise ValueError("a master pod without --zk")
            work_dir = self.base_dir / "volumes" / want.pod / "work-dir"
            args = [
                "master",
                f"--zk={flags['zk']}",
                f"--quorum={flags.get('quorum', '1')}",
                f"--port={port}",
                f"--zk_session_timeout={session}",
                f"--work_dir={work_dir}",
            ]
            for flag in ("authenticate_agents", "authenticate_frameworks", "credentials"):
                if flag in flags:
                    args.append(f"--{flag}={flags[flag]}")
            return args
        if want.component == AGENT:
            master = flags.get("master") or flags.get("zk")
            if not master:
                raise ValueError("an agent pod without --master")
            hostname = flags.get("hostname", "")
            if not hostname or "$(" in hostname:
                hostname = want.node
            work_dir = self.base_dir / "agents" / (want.node or want.pod)
            args = [
                "agent",
                f"--zk={master}",
                f"--hostname={hostname}",
                f"--port={port}",
                f"--work-dir={work_dir}",
                "--recover=reconnect",
                f"--resources={flags.get('resources') or self.agent_resources}",
            ]
            if "credential" in flags:
                args.append(f"--credential={flags['credential']}")
            return args
        # A start command may set --master and --zk through MARATHON_MASTER / MARATHON_ZK.
        if not wrapped and ("master" not in flags or "zk" not in flags):
            raise ValueError("a Marathon pod without --master and --zk")
        args = ["marathon"]
        for flag in (
            "master",
            "zk",
            "mesos_authentication_principal",
            "mesos_authentication_secret_file",
        ):
            if flag in flags:
                args += [f"--{flag}", flags[flag]]
        if flags.get("mesos_authentication") == "true":
            args.append("--mesos_authentication")
        return [*args, f"--port={port}", f"--zk_session_timeout={session}"]

    # ------------------------------------------------------------------ as the kubelet does
    def _secret(self, name: str) -> dict[str, bytes]:
        try:
            secret = self.env.api("GET", f"/api/v1/namespaces/{self.namespace}/secrets/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise ValueError(f'secret "{name}" not found') from None
            raise
        return {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    def _volumes(self, want: _Wanted) -> dict[str, Path]:
        """The pod's secret and emptyDir volumes on disk: volume name -> directory."""
        root = self.base_dir / "pods" / want.uid / "volumes"
        made: dict[str, Path] = {}
        for volume in want.pod_obj.get("spec", {}).get("volumes") or []:
            path = root / volume["name"]
            if "emptyDir" in volume:
                path.mkdir(parents=True, exist_ok=True)
            elif "secret" in volume:
                source = volume["secret"]
                try:
                    data = self._secret(source["secretName"])
                except ValueError:
                    if source.get("optional"):
                        continue
                    raise
                items = source.get("items") or [{"key": k, "path": k} for k in data]
                path.mkdir(parents=True, exist_ok=True)
                for item in items:
                    if item["key"] not in data:
                        raise ValueError(
                            f"couldn't find key {item['key']} in Secret"
                            f" {self.namespace}/{source['secretName']}"
                        )
                    target = path / item["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data[item["key"]][:MAX_SECRET_BYTES])
                    target.chmod(int(item.get("mode", source.get("defaultMode", 0o644))))
            else:
                continue
            made[volume["name"]] = path
        return made

    def _env(
        self, want: _Wanted, container: dict[str, Any], mounts: dict[str, Path]
    ) -> dict[str, str]:
        """The container's environment: values (paths moved), fields and Secret keys."""
        variables = pod_variables(want.pod_obj, container)
        env: dict[str, str] = {}
        for entry in container.get("env") or []:
            name = entry["name"]
            source = entry.get("valueFrom") or {}
            if "value" in entry:
                env[name] = remap(expand(str(entry["value"]), variables), mounts)
            elif "fieldRef" in source:
                env[name] = variables.get(name, "")
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                try:
                    data = self._secret(ref["name"])
                except ValueError:
                    if ref.get("optional"):
                        continue
                    raise
                if ref["key"] not in data:
                    if ref.get("optional"):
                        continue
                    raise ValueError(f"couldn't find key {ref['key']} in Secret {ref['name']}")
                env[name] = data[ref["key"]].decode()
        return env

    def _run_init_container(
        self, want: _Wanted, init: dict[str, Any], volumes: dict[str, Path]
    ) -> None:
        """Run an init container's shell script for real, its paths moved to the volumes."""
        command = [str(c) for c in init.get("command") or []]
        if not shell_wrapper(command):
            raise ValueError(f"init container {init.get('name')}: only shell scripts run here")
        mounts = container_mounts(init, volumes)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self._env(want, init, mounts)}
        done = subprocess.run(
            [*command, *[str(a) for a in init.get("args") or []]],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise ValueError(
                f"init container {init.get('name')} exited with {done.returncode}:"
                f" {done.stderr.strip()[-300:]}"
            )

    def _start_process(self, record: _Record, why: str) -> None:
        record.process.log_path.parent.mkdir(parents=True, exist_ok=True)
        process = record.process
        command = (
            process.command()
            if isinstance(process, ZkPodProcess | AppPodProcess)
            else f"python -m orchestrator_operator {' '.join(record.args)}"
            if isinstance(process, LbPodProcess)
            else f"python -m sim {' '.join(record.args)}"
        )
        with process.log_path.open("a") as out:
            out.write(
                f"=== simpods {why}: pod {record.pod} uid {record.uid} node {record.node}: "
                f"{command}\n"
            )
        record.process.start()
        record.started_at = time.monotonic()
        log.info("simpods: %s %s: %s", why, record.pod, record.args)

    def _free_port(self) -> int:
        while True:
            port = free_ports(1)[0]
            if port not in self._used_ports:
                self._used_ports.add(port)
                return port

    def _stop_all(self) -> None:
        with self._lock:
            now = time.monotonic()
            for record in list(self._running.values()):
                self._begin_stop(record, now)
            self._running.clear()
            deadline = now + self.grace
            while any(r.process.running for r in self._stopping):
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
            self._reap(float("inf"))
            # Agents' tasks outlive their agent on purpose (--recover=reconnect): kill them.
            for work_dir in (self.base_dir / "agents").glob("*"):
                kill_agent_tasks(work_dir)
