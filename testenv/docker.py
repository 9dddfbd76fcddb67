"""A private Docker Engine for tests: Debian's dockerd + containerd under one directory.

``DockerEngine`` starts its own containerd and dockerd with their own data root, exec root,
pid files, unix sockets and Linux bridge (unique name and subnet), so it never touches
``/var/run/docker.sock`` or another engine's state and several engines can run side by side.
Containers on the bridge reach each other over TCP; published ports work through
docker-proxy. ``stop()`` kills the containers, stops dockerd and containerd, kills any
leftover shim it started, unmounts what is left under its directory, deletes the bridge and
(when it created the directory) removes it.

``build_busybox_image()`` makes a small image with no registry: a rootfs of Debian's
``busybox-static`` with applet symlinks (sh, nc, httpd, sleep, wget, ...) loaded with
``docker import``.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import docker

BUSYBOX_IMAGE = "orchestrator-test/busybox:latest"
BUSYBOX_BINARY = Path("/bin/busybox")


class DockerEngineError(RuntimeError):
    """The engine could not be started or used; the message carries the daemon log tail."""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _used_ipv4_networks() -> list[ipaddress.IPv4Network]:
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    nets: list[ipaddress.IPv4Network] = []
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            cidr = parts[parts.index("inet") + 1]
            nets.append(ipaddress.IPv4Interface(cidr).network)
    return nets


class DockerEngine:
    """A dockerd (with its own containerd) owned by the caller; use as a context manager."""

    def __init__(self, base_dir: Path | None = None, *, start_timeout: float = 60.0) -> None:
        self._owns_dir = base_dir is None
        self.base_dir = (
            Path(tempfile.mkdtemp(prefix="orch-docker-")) if base_dir is None else base_dir
        )
        self.start_timeout = start_timeout
        self.socket_path = self.base_dir / "docker.sock"
        self.containerd_socket = self.base_dir / "containerd.sock"
        self.dockerd_log = self.base_dir / "dockerd.log"
        self.containerd_log = self.base_dir / "containerd.log"
        self.bridge = "orchbr" + secrets.token_hex(4)[:7]
        self.subnet: ipaddress.IPv4Network | None = None
        self._dockerd: subprocess.Popen[bytes] | None = None
        self._containerd: subprocess.Popen[bytes] | None = None
        self._bridge_created = False

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket_path}"

    def client(self, timeout: int = 60) -> docker.DockerClient:
        """A new Docker SDK client for this engine."""
        return docker.DockerClient(base_url=self.base_url, version="auto", timeout=timeout)

    # -- start -------------------------------------------------------------------------

    def start(self) -> DockerEngine:
        for binary in ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "ip"):
            if shutil.which(binary) is None:
                raise DockerEngineError(
                    f"`{binary}` is not on PATH: install the Debian packages docker.io and "
                    "iproute2 (apt-get install -y docker.io iproute2)"
                )
        if len(str(self.socket_path)) > 100:
            raise DockerEngineError(f"base_dir {self.base_dir} is too long for a unix socket")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._create_bridge()
            self._start_containerd()
            self._start_dockerd()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_bridge(self) -> None:
        used = _used_ipv4_networks()
        for _ in range(200):
            candidate = ipaddress.IPv4Network(
                f"10.{secrets.randbelow(54) + 200}.{secrets.randbelow(256)}.0/24"
            )
            if not any(candidate.overlaps(n) for n in used):
                self.subnet = candidate
                break
        else:
            raise DockerEngineError("no free 10.200-253.x.0/24 subnet for the engine's bridge")
        gateway = f"{next(self.subnet.hosts())}/{self.subnet.prefixlen}"
        for cmd in (
            ["ip", "link", "add", self.bridge, "type", "bridge"],
            ["ip", "addr", "add", gateway, "dev", self.bridge],
            ["ip", "link", "set", self.bridge, "up"],
        ):
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode != 0:
                raise DockerEngineError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
            self._bridge_created = True

    def _start_containerd(self) -> None:
        config = self.base_dir / "containerd.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.base_dir / "containerd-root"}"\n'
            f'state = "{self.base_dir / "containerd-state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.containerd_socket}"\n'
            f'[ttrpc]\n  address = "{self.containerd_socket}.ttrpc"\n'
            '[debug]\n  address = ""\n'
            '[metrics]\n  address = ""\n'
        )
        with self.containerd_log.open("ab") as log:
            self._containerd = subprocess.Popen(
                ["containerd", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while not self.containerd_socket.exists():
            if self._containerd.poll() is not None:
                raise DockerEngineError(
                    f"containerd exited with {self._containerd.returncode}; log tail:\n"
                    + _tail(self.containerd_log)
                )
            if time.monotonic() > deadline:
                raise DockerEngineError(
                    "containerd did not create its socket in time; log tail:\n"
                    + _tail(self.containerd_log)
                )
            time.sleep(0.1)

    def _start_dockerd(self) -> None:
        daemon_json = self.base_dir / "daemon.json"
        daemon_json.write_text("{}\n")
        cmd = [
            "dockerd",
            "--config-file", str(daemon_json),
            "--data-root", str(self.base_dir / "data"),
            "--exec-root", str(self.base_dir / "exec"),
            "--pidfile", str(self.base_dir / "dockerd.pid"),
            "--host", self.base_url,
            "--containerd", str(self.containerd_socket),
            "--bridge", self.bridge,
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--storage-driver", "overlay2",
            "--shutdown-timeout", "2",
            "--log-level", "info",
        ]  # fmt: skip
        with self.dockerd_log.open("ab") as log:
            self._dockerd = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while True:
            if self._dockerd.poll() is not None:
                raise DockerEngineError(
                    f"dockerd exited with {self._dockerd.returncode}; log tail:\n"
                    + _tail(self.dockerd_log)
                )
            if self.socket_path.exists():
                try:
                    client = self.client(timeout=5)
                    try:
                        if client.ping():
                            return
                    finally:
                        client.close()
                except Exception as exc:  # not ready yet
                    last_error = exc
            if time.monotonic() > deadline:
                raise DockerEngineError(
                    f"dockerd did not answer a ping within {self.start_timeout:.0f} s "
                    f"(last error: {last_error}); log tail:\n" + _tail(self.dockerd_log)
                )
            time.sleep(0.2)

    # -- stop --------------------------------------------------------------------------

    def _kill_containers(self) -> None:
        if self._dockerd is None or self._dockerd.poll() is not None:
            return
        with contextlib.suppress(Exception):
            client = self.client(timeout=10)
            try:
                for container in client.containers.list():
                    with contextlib.suppress(Exception):
                        container.kill()
            finally:
                client.close()

    @staticmethod
    def _terminate(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def _leftover_pids(self) -> list[int]:
        """Shims (and their children) started by our containerd that outlived it."""
        marker = str(self.containerd_socket).encode()
        shims: list[int] = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"containerd-shim" in cmdline and marker in cmdline:
                shims.append(int(entry.name))
        return shims

    def _unmount_leftovers(self) -> None:
        prefix = str(self.base_dir.resolve())
        try:
            mounts = Path("/proc/mounts").read_text().splitlines()
        except OSError:
            return
        points = [m.split()[1] for m in mounts if len(m.split()) > 1]
        for point in reversed(points):
            decoded = point.encode().decode("unicode_escape")
            if decoded == prefix or decoded.startswith(prefix + "/"):
                subprocess.run(["umount", "-l", decoded], capture_output=True, check=False)

    def stop(self) -> None:
        """Stop dockerd, containerd and everything they started; idempotent."""
        self._kill_containers()
        self._terminate(self._dockerd, timeout=30)
        self._terminate(self._containerd, timeout=15)
        for pid in self._leftover_pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._unmount_leftovers()
        if self._bridge_created:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)
            self._bridge_created = False
        if self._owns_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def running(self) -> bool:
        return self._dockerd is not None and self._dockerd.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.dockerd_log, lines)

    def __enter__(self) -> DockerEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def busybox_rootfs_tar(busybox: Path = BUSYBOX_BINARY) -> bytes:
    """A tar of a minimal rootfs: static busybox plus a symlink per applet, /etc/passwd."""
    if not busybox.exists():
        raise DockerEngineError(f"{busybox} not found: install the Debian package busybox-static")
    listing = subprocess.run(
        [str(busybox), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    buf = io.BytesIO()
    now = int(time.time())

    def add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode
        info.mtime = now
        tar.addfile(info)

    def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.mtime = now
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "dev", "proc", "sys", "root", "var", "var/www", "usr"):
            add_dir(tar, d)
        add_dir(tar, "tmp", 0o1777)
        add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in listing:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mode = 0o777
            info.mtime = now
            tar.addfile(info)
        info = tarfile.TarInfo("usr/bin")
        info.type = tarfile.SYMTYPE
        info.linkname = "../bin"
        tar.addfile(info)
        add_file(
            tar,
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        add_file(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        add_file(tar, "var/www/index.html", b"orchestrator-test\n")
    return buf.getvalue()


def build_busybox_image(client: docker.DockerClient, tag: str = BUSYBOX_IMAGE) -> str:
    """Load the busybox rootfs as ``tag`` with ``docker import``; returns the image id."""
    repository, _, version = tag.rpartition(":")
    if not repository:
        repository, version = tag, "latest"
    api: Any = client.api
    try:
        result = api.import_image_from_data(
            busybox_rootfs_tar(),
            repository=repository,
            tag=version,
            changes=['CMD ["/bin/sh"]', "ENV PATH=/bin"],
        )
    except docker.errors.APIError as exc:
        raise DockerEngineError(f"docker import of {tag} failed: {exc}") from exc
    image = client.images.get(tag)
    if image is None:
        raise DockerEngineError(f"docker import gave no image {tag}: {result!r}")
    return str(image.id)
