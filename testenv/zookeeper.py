"""Real ZooKeeper ensembles (1, 3 or 5 servers) on loopback ports, for tests and benchmarks.

Uses Debian's ``zookeeper`` package (ZooKeeper 3.8) and starts every server directly as
``java -cp "/usr/share/java/zookeeper.jar:/usr/share/java/*" ...QuorumPeerMain zoo.cfg``.

Every server runs in quorum mode (``standaloneEnabled=false``, also for a single server) with
``reconfigEnabled=true`` and the dynamic configuration format, so quorum reconfiguration
works; four-letter words are all whitelisted; the AdminServer is disabled.

    with ZkEnsemble(3) as zk:
        client = KazooClient(hosts=zk.connect_string)
        ...
        zk.kill_server(zk.leader_index())
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from .processes import die_with_parent, free_ports

ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")
JAVA_LIB_DIR = Path("/usr/share/java")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
# Debian installs every SLF4J binding side by side in /usr/share/java (nop, simple, jdk14,
# jcl, log4j12, maven's provider): with the whole directory on the classpath SLF4J picks one
# of them, the NOP one here, and the servers logged nothing. The directory's jars but those,
# and log4j-over-slf4j (which would loop with log4j's own binding): log4j 1.2 through
# slf4j-log4j12, configured by `write_log4j_config`. (zookeeper.jar's manifest alone is not
# enough: it omits netty-codec, which the TLS port's Netty server needs.)
_OTHER_LOGGING = re.compile(
    r"^(slf4j-(nop|simple|jdk14|jcl|migrator)|maven3-slf4j-provider|log4j-over-slf4j)\b"
)


def zookeeper_classpath(lib: Path = JAVA_LIB_DIR) -> str:
    jars = sorted(p for p in lib.glob("*.jar") if not _OTHER_LOGGING.match(p.name))
    return ":".join(str(jar) for jar in [ZOOKEEPER_JAR, *jars])


CLASSPATH = zookeeper_classpath()


def write_log4j_config(path: Path) -> Path:
    """A log4j 1.2 configuration writing INFO and above to standard output (the log file)."""
    path.write_text(
        "log4j.rootLogger=INFO, CONSOLE\n"
        "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.CONSOLE.layout.ConversionPattern="
        "%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n\n"
    )
    return path


ALLOWED_SIZES = (1, 3, 5)
DEFAULT_HEAP = "256m"


class ZooKeeperUnavailable(RuntimeError):
    """The ZooKeeper installation (Debian package ``zookeeper``) or Java is missing."""


class ZooKeeperStartError(RuntimeError):
    """An ensemble or server did not come up in time."""


def zookeeper_missing_reason() -> str | None:
    """Why a ZooKeeper server cannot be started here, or None when it can."""
    if not ZOOKEEPER_JAR.is_file():
        return (
            f"{ZOOKEEPER_JAR} not found: install the Debian package `zookeeper` "
            "(apt-get install -y zookeeper)"
        )
    if shutil.which("java") is None:
        return "`java` not found on PATH: install a JRE (the `zookeeper` package depends on one)"
    return None


def four_letter_word(host: str, port: int, word: str, timeout: float = 5.0) -> str:
    """Send a ZooKeeper four-letter word and return the whole answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode("ascii"))
        chunks: list[bytes] = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def parse_mntr(text: str) -> dict[str, str]:
    """``mntr`` output (``key<TAB>value`` lines) as a dict."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            result[key.strip()] = value.strip()
    return result


def parse_srvr_mode(text: str) -> str | None:
    """The ``Mode:`` line of ``srvr`` output (leader, follower, observer, standalone)."""
    for line in text.splitlines():
        if line.startswith("Mode:"):
            return line.partition(":")[2].strip()
    return None


@dataclass
class ZkServer:
    """One server of an ensemble. ``index`` is 0-based; ``myid`` is ``index + 1``."""

    index: int
    myid: int
    client_port: int
    peer_port: int
    election_port: int
    data_dir: Path
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def server_line(self) -> str:
        return (
            f"server.{self.myid}=127.0.0.1:{self.peer_port}:{self.election_port}"
            f":participant;127.0.0.1:{self.client_port}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])


# Every live ensemble, so that interpreter exit never leaves a JVM behind.
_LIVE: weakref.WeakSet[ZkEnsemble] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _stop_all_at_exit() -> None:
    with _LIVE_LOCK:
        ensembles = list(_LIVE)
    for ensemble in ensembles:
        with contextlib.suppress(Exception):
            ensemble.stop()


class ZkEnsemble:
    """A real ZooKeeper ensemble of ``size`` servers on free loopback ports.

    ``base_dir`` holds one directory per server (``zk<myid>/`` with ``data/myid``,
    ``zoo.cfg`` and ``server.log``); a temporary directory is created (and removed on
    ``stop()``) when it is not given.
    """

    def __init__(
        self,
        size: int = 3,
        base_dir: Path | None = None,
        *,
        tick_time_ms: int = 1000,
        heap: str = DEFAULT_HEAP,
        start_timeout: float = 90.0,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        if size not in ALLOWED_SIZES:
            raise ValueError(f"ensemble size must be one of {ALLOWED_SIZES}, got {size}")
        self.size = size
        self.tick_time_ms = tick_time_ms
        self.heap = heap
        self.start_timeout = start_timeout
        self.extra_config = dict(extra_config or {})
        self._owns_base_dir = base_dir is None
        self.base_dir = (
            Path(tempfile.mkdtemp(prefix="zk-ensemble-")) if base_dir is None else base_dir
        )
        self.servers: list[ZkServer] = []
        self._started = False
        self._stopped = False

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> ZkEnsemble:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ properties
    @property
    def connect_string(self) -> str:
        return ",".join(s.address for s in self.servers)

    def server_connect_string(self, index: int) -> str:
        return self.servers[index].address

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Write configs, start every server and wait until the ensemble serves writes."""
        if self._started:
            raise RuntimeError("ensemble already started")
        reason = zookeeper_missing_reason()
        if reason is not None:
            raise ZooKeeperUnavailable(reason)
        self._started = True
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            self._layout()
            for server in self.servers:
                self._spawn(server)
            deadline = time.monotonic() + self.start_timeout
            for server in self.servers:
                self._wait_ruok(server, deadline)
            for server in self.servers:
                self._wait_joined(server, deadline)
            self._wait_serving(deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every server (SIGTERM, then SIGKILL) and remove a temporary base dir."""
        if self._stopped:
            return
        self._stopped = True
        for server in self.servers:
            self._terminate(server, sig=signal.SIGTERM, grace=5.0)
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if self._owns_base_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def stop_server(self, index: int, grace: float = 10.0) -> None:
        """SIGTERM one server and wait for it to exit (SIGKILL after ``grace`` seconds)."""
        self._terminate(self.servers[index], sig=signal.SIGTERM, grace=grace)

    def kill_server(self, index: int) -> None:
        """SIGKILL one server and reap it."""
        self._terminate(self.servers[index], sig=signal.SIGKILL, grace=5.0)

    def start_server(self, index: int, timeout: float | None = None) -> None:
        """Start a stopped server again and wait until it answers ``ruok`` and has joined
        the quorum (``mntr`` reports it as leader or follower)."""
        server = self.servers[index]
        if server.running:
            return
        self._spawn(server)
        deadline = time.monotonic() + (timeout if timeout is not None else self.start_timeout)
        self._wait_ruok(server, deadline)
        self._wait_joined(server, deadline)

    def add_server(
        self, members: list[str] | None = None, timeout: float | None = None, *, wait: bool = True
    ) -> int:
        """Start one more server (myid = len(servers) + 1) that joins the running ensemble.

        Its starting configuration is ``members`` (``server.N=...`` lines; by default those
        of every running server) plus itself as a participant: the way a new member is
        brought up before a ``reconfig`` adds it. Until then the leader keeps it as a
        non-voting follower. Waits (unless ``wait`` is false) until it answers ``ruok`` and
        has synced with the leader; returns its index.
        """
        if not self._started or self._stopped:
            raise RuntimeError("add_server needs a running ensemble")
        index = len(self.servers)
        server_dir = self.base_dir / f"zk{index + 1}"
        data_dir = server_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "myid").write_text(f"{index + 1}\n")
        ports = free_ports(3)
        server = ZkServer(
            index=index,
            myid=index + 1,
            client_port=ports[0],
            peer_port=ports[1],
            election_port=ports[2],
            data_dir=data_dir,
            config_path=server_dir / "zoo.cfg",
            log_path=server_dir / "server.log",
        )
        self.servers.append(server)
        self.join_server(index, members, timeout, wait=wait)
        return index

    def join_server(
        self,
        index: int,
        members: list[str] | None = None,
        timeout: float | None = None,
        *,
        wait: bool = True,
    ) -> None:
        """Start a stopped server as a joiner: its configuration is rewritten to ``members``
        (default: the lines of every running server) plus itself, whatever dynamic
        configuration it had (e.g. one it was removed from); its data directory is kept."""
        server = self.servers[index]
        if server.running:
            raise RuntimeError(f"server {server.myid} is running")
        if members is None:
            members = [s.server_line() for s in self.servers if s.running]
        lines = [m for m in members if not m.startswith(f"server.{server.myid}=")]
        body = "".join(f"{k}={v}\n" for k, v in self._base_config(server).items())
        server.config_path.write_text(body + "\n".join([*lines, server.server_line()]) + "\n")
        self._spawn(server)
        if wait:
            deadline = time.monotonic() + (timeout if timeout is not None else self.start_timeout)
            self._wait_ruok(server, deadline)
            self._wait_joined(server, deadline)

    def dynamic_config(self, index: int) -> str:
        """The dynamic configuration file a server last wrote ('' before its first start)."""
        text = self.servers[index].config_path.read_text()
        for line in text.splitlines():
            if line.startswith("dynamicConfigFile="):
                with contextlib.suppress(OSError):
                    return Path(line.partition("=")[2]).read_text()
        return ""

    def ensure_all_running(self) -> None:
        """Restart any server that is not running and wait until the ensemble serves."""
        for server in self.servers:
            if not server.running:
                self.start_server(server.index)
        self._wait_serving(time.monotonic() + self.start_timeout)

    # ------------------------------------------------------------------ queries
    def four_letter_word(self, index: int, word: str, timeout: float = 5.0) -> str:
        return four_letter_word("127.0.0.1", self.servers[index].client_port, word, timeout)

    def mntr(self, index: int) -> dict[str, str]:
        return parse_mntr(self.four_letter_word(index, "mntr"))

    def server_state(self, index: int) -> str | None:
        """leader / follower / observer, or None when the server is down or not serving."""
        if not self.servers[index].running:
            return None
        try:
            return self.mntr(index).get("zk_server_state")
        except OSError:
            return None

    def leader_index(self) -> int | None:
        """Index of the server that is currently the leader (from ``srvr``), if any."""
        for server in self.servers:
            if not server.running:
                continue
            try:
                mode = parse_srvr_mode(self.four_letter_word(server.index, "srvr"))
            except OSError:
                continue
            if mode in ("leader", "standalone"):
                return server.index
        return None

    def follower_indexes(self) -> list[int]:
        return [s.index for s in self.servers if self.server_state(s.index) == "follower"]

    def wait_for_leader(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader_index()
            if leader is not None:
                return leader
            time.sleep(0.2)
        raise ZooKeeperStartError(f"no leader elected within {timeout}s\n{self._log_tails()}")

    # ------------------------------------------------------------------ internals
    def _layout(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        write_log4j_config(self.base_dir / "log4j.properties")
        ports = free_ports(3 * self.size)
        for i in range(self.size):
            server_dir = self.base_dir / f"zk{i + 1}"
            data_dir = server_dir / "data"
            data_dir.mkdir(parents=True, exist_ok=True)
            (data_dir / "myid").write_text(f"{i + 1}\n")
            self.servers.append(
                ZkServer(
                    index=i,
                    myid=i + 1,
                    client_port=ports[3 * i],
                    peer_port=ports[3 * i + 1],
                    election_port=ports[3 * i + 2],
                    data_dir=data_dir,
                    config_path=server_dir / "zoo.cfg",
                    log_path=server_dir / "server.log",
                )
            )
        members = "\n".join(s.server_line() for s in self.servers)
        for server in self.servers:
            body = "".join(f"{k}={v}\n" for k, v in self._base_config(server).items())
            server.config_path.write_text(body + members + "\n")

    def _base_config(self, server: ZkServer) -> dict[str, str]:
        return {
            "tickTime": str(self.tick_time_ms),
            "initLimit": "20",
            "syncLimit": "10",
            "dataDir": str(server.data_dir),
            "standaloneEnabled": "false",
            "reconfigEnabled": "true",
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
            "maxClientCnxns": "0",
            "preAllocSize": "4096",
            "autopurge.purgeInterval": "0",
            **self.extra_config,
        }

    def _java_command(self, server: ZkServer) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            "-Xms32m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Xshare:auto",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j.configuration=file:{self.base_dir / 'log4j.properties'}",
            "-Dzookeeper.admin.enableServer=false",
            "-Dzookeeper.jmx.log4j.disable=true",
            f"-Dzookeeper.log.dir={server.config_path.parent}",
            "-cp",
            CLASSPATH,
            MAIN_CLASS,
            str(server.config_path),
        ]

    def _spawn(self, server: ZkServer) -> None:
        if server._log_file is not None:
            server._log_file.close()
        log_file = server.log_path.open("ab")
        server._log_file = log_file
        server.process = subprocess.Popen(
            self._java_command(server),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=server.config_path.parent,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def _terminate(self, server: ZkServer, sig: signal.Signals, grace: float) -> None:
        proc = server.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=30)
        if server._log_file is not None:
            server._log_file.close()
            server._log_file = None

    def _check_alive(self, server: ZkServer) -> None:
        if not server.running:
            code = server.process.returncode if server.process is not None else None
            raise ZooKeeperStartError(
                f"ZooKeeper server {server.myid} exited (code {code}) during start-up\n"
                f"--- {server.log_path} (tail) ---\n{server.log_tail()}"
            )

    def _wait_ruok(self, server: ZkServer, deadline: float) -> None:
        last_error = ""
        while time.monotonic() < deadline:
            self._check_alive(server)
            try:
                if four_letter_word("127.0.0.1", server.client_port, "ruok", 2.0) == "imok":
                    return
                last_error = "ruok did not answer imok"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise ZooKeeperStartError(
            f"ZooKeeper server {server.myid} (port {server.client_port}) did not answer "
            f"ruok with imok within {self.start_timeout}s ({last_error})\n"
            f"--- {server.log_path} (tail) ---\n{server.log_tail()}"
        )

    def _wait_joined(self, server: ZkServer, deadline: float) -> None:
        state: str | None = None
        while time.monotonic() < deadline:
            self._check_alive(server)
            state = self.server_state(server.index)
            if state in ("leader", "follower", "observer"):
                return
            time.sleep(0.2)
        raise ZooKeeperStartError(
            f"ZooKeeper server {server.myid} did not rejoin the quorum (state {state!r})\n"
            f"--- {server.log_path} (tail) ---\n{server.log_tail()}"
        )

    def _wait_serving(self, deadline: float) -> None:
        """Wait until a client can create (and delete) a znode through the ensemble."""
        from kazoo.client import KazooClient
        from kazoo.exceptions import KazooException
        from kazoo.handlers.threading import KazooTimeoutError

        last_error = ""
        path = f"/.zk-ensemble-ready-{uuid.uuid4().hex}"
        while time.monotonic() < deadline:
            for server in self.servers:
                if server.process is not None:
                    self._check_alive(server)
            client = KazooClient(hosts=self.connect_string, timeout=10.0)
            try:
                client.start(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
                client.create(path, b"")
                client.delete(path)
                return
            except (KazooException, KazooTimeoutError, OSError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            finally:
                with contextlib.suppress(Exception):
                    client.stop()
                    client.close()
            time.sleep(0.5)
        raise ZooKeeperStartError(
            f"ZooKeeper ensemble {self.connect_string} did not serve writes within "
            f"{self.start_timeout}s ({last_error})\n{self._log_tails()}"
        )

    def _log_tails(self) -> str:
        return "\n".join(f"--- {s.log_path} (tail) ---\n{s.log_tail(25)}" for s in self.servers)


def main() -> None:
    """Run an ensemble in the foreground: ``python -m testenv.zookeeper [size]``."""
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with ZkEnsemble(size) as zk:
        print(zk.connect_string, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
