"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-scheduler,
kube-controller-manager and KWOK simulating N nodes (and the lifecycle of their pods).

The binaries come from `testenv/build.sh` (built once from pinned Go modules, then cached).

    with KubeTestEnv(nodes=3) as env:
        subprocess.run([env.kubectl, "--kubeconfig", env.kubeconfig, "get", "nodes"])
"""

from __future__ import annotations

import atexit
import json
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from .certs import Pki, make_pki
from .processes import ManagedProcess, free_port
from .provisioner import VolumeProvisioner

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "testenv" / "build.sh"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
SERVICE_CIDR = "10.0.0.0/16"
POD_CIDR = "10.244.0.0/16"
# Lease renewals are every duration/4: 200 s keeps 5,000 nodes to ~100 renewals/s.
NODE_LEASE_SECONDS = 200


class TestEnvError(RuntimeError):
    """The control plane could not be built or started; the message says why."""


def build_binaries() -> Path:
    """Build (or reuse from the cache) the control-plane binaries; returns their directory."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise TestEnvError(f"testenv/build.sh failed:\n{result.stderr[-4000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


def node_manifest(name: str, index: int) -> dict[str, Any]:
    """A Node that KWOK will manage: Ready once KWOK's node-initialize stage has run."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"podCIDR": f"10.{100 + index // 256}.{index % 256}.0/24"},
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
        },
    }


class KubeTestEnv:
    """Start with `start()` (or `with`); everything stops on `stop()`, at exit too."""

    def __init__(self, nodes: int = 3, base_dir: Path | None = None) -> None:
        self.node_count = nodes
        self._own_dir = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="orchestrator-testenv-"))
        self.bin_dir: Path | None = None
        self.processes: list[ManagedProcess] = []
        self.api_port = 0
        self.startup_seconds: dict[str, float] = {}
        self._pki: Pki | None = None
        self._ssl: ssl.SSLContext | None = None
        self._provisioner: VolumeProvisioner | None = None

    # -- paths -------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.base_dir / "kubeconfig"

    @property
    def kubectl(self) -> Path:
        assert self.bin_dir, "start() first"
        return self.bin_dir / "kubectl"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> KubeTestEnv:
        self.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 180) -> None:
        began = time.monotonic()
        self.bin_dir = build_binaries()
        atexit.register(self.stop)
        (self.base_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._pki = make_pki(self.base_dir / "pki")
        try:
            self._start_etcd_and_apiserver(timeout)
            self.startup_seconds["apiserver"] = time.monotonic() - began
            self._start_controllers()
            self._provisioner = VolumeProvisioner(self.api, self.base_dir / "volumes")
            self._provisioner.start()
            self._create_nodes()
            self.startup_seconds["nodes_created"] = time.monotonic() - began
            # Two cores bring up about 30 nodes a second when idle; leave room for a busy machine.
            self.wait_for_nodes_ready(timeout=max(timeout, self.node_count / 8))
            self.startup_seconds["nodes_ready"] = time.monotonic() - began
            self._wait_for_default_service_account(timeout)
            self.startup_seconds["total"] = time.monotonic() - began
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._provisioner is not None:
            self._provisioner.stop()
            self._provisioner = None
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self._own_dir and self.base_dir.exists():
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- components ----------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.base_dir / "logs")
        process.start()
        self.processes.append(process)
        return process

    def _bin(self, name: str) -> str:
        assert self.bin_dir
        return str(self.bin_dir / name)

    def _start_etcd_and_apiserver(self, timeout: float) -> None:
        assert self._pki
        pki = self._pki
        etcd_port, peer_port = free_port(), free_port()
        etcd = self._spawn(
            "etcd",
            [
                self._bin("etcd"),
                "--name=testenv",
                f"--data-dir={self.base_dir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=testenv=http://127.0.0.1:{peer_port}",
                "--quota-backend-bytes=8589934592",
                "--unsafe-no-fsync",  # a throwaway cluster: durability buys nothing here
                "--log-level=warn",
            ],
        )
        self._wait_http(f"http://127.0.0.1:{etcd_port}/health", etcd, timeout)

        self.api_port = free_port()
        self._write_kubeconfig()
        apiserver = self._spawn(
            "kube-apiserver",
            [
                self._bin("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.api_port}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
                "--event-ttl=1h",
                f"--cert-dir={self.base_dir / 'apiserver-certs'}",
            ],
        )
        self._wait_http(f"{self.server}/readyz", apiserver, timeout)

    def _start_controllers(self) -> None:
        assert self._pki
        pki, kubeconfig = self._pki, str(self.kubeconfig)
        delegated = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
        ]
        self._spawn(
            "kube-controller-manager",
            [
                self._bin("kube-controller-manager"),
                *delegated,
                f"--secure-port={free_port()}",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--node-monitor-grace-period={NODE_LEASE_SECONDS}s",
                "--use-service-account-credentials=false",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [self._bin("kube-scheduler"), *delegated, f"--secure-port={free_port()}"],
        )
        stages = self.base_dir / "kwok-stages.yaml"
        stages.write_text(
            subprocess.run(
                [self._bin("kwok-stages")], capture_output=True, text=True, check=True
            ).stdout
        )
        self._spawn(
            "kwok",
            [
                self._bin("kwok"),
                f"--kubeconfig={kubeconfig}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=127.0.0.1",
                f"--node-lease-duration-seconds={NODE_LEASE_SECONDS}",
                f"--server-address=127.0.0.1:{free_port()}",
                "--v=WARN",  # INFO logs every lease renewal: thousands of lines a minute
            ],
        )

    def _create_nodes(self) -> None:
        names = [f"kwok-node-{i}" for i in range(self.node_count)]
        self.apply_objects(node_manifest(name, i) for i, name in enumerate(names))

    # -- API access ----------------------------------------------------------------------
    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            assert self._pki
            context = ssl.create_default_context(cafile=str(self._pki.ca_cert))
            context.load_cert_chain(str(self._pki.admin_cert), str(self._pki.admin_key))
            self._ssl = context
        return self._ssl

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One request to the API server as the admin; JSON in and out."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._ssl_context(), timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def watch_events(
        self, path: str, resource_version: str, seconds: int
    ) -> Iterator[dict[str, Any]]:
        """The watch events of the list at `path` after `resource_version`, for at most
        `seconds` (the server ends the watch): every change in order, as `kubectl get -w`."""
        separator = "&" if "?" in path else "?"
        request = urllib.request.Request(
            f"{self.server}{path}{separator}watch=1&resourceVersion={resource_version}"
            f"&timeoutSeconds={seconds}",
            headers={"Accept": "application/json"},
        )
        with urllib.request.urlopen(
            request, context=self._ssl_context(), timeout=seconds + 30
        ) as resp:
            for line in resp:
                if line.strip():
                    yield json.loads(line)

    def api_patch_apply(self, path: str, obj: dict[str, Any]) -> Any:
        """Server-side apply `obj` at `path` as field manager `testenv`."""
        request = urllib.request.Request(
            f"{self.server}{path}?fieldManager=testenv&force=true",
            data=json.dumps(obj).encode(),
            method="PATCH",
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        with urllib.request.urlopen(request, context=self._ssl_context(), timeout=30) as resp:
            return json.loads(resp.read())

    def apply_objects(self, objects: Iterable[dict[str, Any]], workers: int = 16) -> None:
        """Create cluster-scoped core objects in parallel (nodes); existing ones are kept."""

        def create(obj: dict[str, Any]) -> None:
            plural = obj["kind"].lower() + "s"
            try:
                self.api("POST", f"/api/v1/{plural}", obj)
            except urllib.error.HTTPError as error:
                if error.code != 409:
                    raise TestEnvError(
                        f"creating {obj['kind']} {obj['metadata']['name']}: {error.read()!r}"
                    ) from error

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(create, objects))

    def ready_node_count(self) -> int:
        nodes = self.api("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
        return sum(
            1
            for node in nodes
            for condition in node.get("status", {}).get("conditions", [])
            if condition["type"] == "Ready" and condition["status"] == "True"
        )

    def wait_for_nodes_ready(self, timeout: float) -> None:
        self._wait(
            lambda: self.ready_node_count() >= self.node_count,
            timeout,
            lambda: f"{self.ready_node_count()}/{self.node_count} nodes Ready",
            "kwok",
        )

    def _wait_for_default_service_account(self, timeout: float) -> None:
        def present() -> bool:
            try:
                self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")
                return True
            except urllib.error.HTTPError:
                return False

        self._wait(present, timeout, lambda: "no default ServiceAccount", "kube-controller-manager")

    def kubectl_run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; never raises on a non-zero exit."""
        return subprocess.run(
            [str(self.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            input=input,
            check=False,
        )

    def install_crds(self, directory: Path = REPO / "crds") -> None:
        """Apply the orchestrator CRDs and wait until the API server serves them."""
        for args in (
            ("apply", "-f", str(directory)),
            ("wait", "--for=condition=Established", "--timeout=60s", "crd",
             "-l", "app.kubernetes.io/part-of=orchestrator"),
        ):  # fmt: skip
            result = self.kubectl_run(*args)
            if result.returncode != 0:
                raise TestEnvError(f"kubectl {' '.join(args)}: {result.stderr}")

    def service_account_kubeconfig(self, name: str, namespace: str, path: Path) -> Path:
        """Write to `path` a kubeconfig that acts as ServiceAccount `name` of `namespace` (a
        one-hour TokenRequest), so a process run with it goes through that account's RBAC."""
        result = self.kubectl_run("create", "token", name, "-n", namespace, "--duration=1h")
        if result.returncode != 0:
            raise TestEnvError(f"TokenRequest for {namespace}/{name}: {result.stderr}")
        admin = yaml.safe_load(self.kubeconfig.read_text())
        cluster = admin["clusters"][0]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [cluster],
            "users": [{"name": name, "user": {"token": result.stdout.strip()}}],
            "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name}}],
            "current-context": name,
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def resident_memory(self) -> dict[str, int]:
        """Resident set size in bytes of each running component."""
        import psutil

        return {
            p.name: psutil.Process(p.pid).memory_info().rss
            for p in self.processes
            if p.pid is not None and p.running()
        }

    # -- helpers -------------------------------------------------------------------------
    def _write_kubeconfig(self) -> None:
        assert self._pki
        pki = self._pki
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "testenv",
                    "cluster": {"certificate-authority": str(pki.ca_cert), "server": self.server},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(pki.admin_cert),
                        "client-key": str(pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": "admin"}}],
            "current-context": "testenv",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def _wait_http(self, url: str, process: ManagedProcess, timeout: float) -> None:
        def healthy() -> bool:
            try:
                context = self._ssl_context() if url.startswith("https") else None
                with urllib.request.urlopen(url, context=context, timeout=5) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        self._wait(healthy, timeout, lambda: f"{url} not healthy", process.name)

    def _wait(
        self,
        condition: Callable[[], bool],
        timeout: float,
        describe: Callable[[], str],
        component: str,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if not process.running():
                    raise TestEnvError(
                        f"{process.name} exited; last lines of {process.log_path}:\n"
                        f"{process.log_tail()}"
                    )
            if condition():
                return
            time.sleep(0.5)
        suspect = next(p for p in self.processes if p.name == component)
        raise TestEnvError(
            f"timed out after {timeout:.0f}s: {describe()}; last lines of {suspect.log_path}:\n"
            f"{suspect.log_tail()}"
        )
