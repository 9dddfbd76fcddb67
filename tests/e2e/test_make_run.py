"""`make run` as a newcomer runs it (issue 18's must-show): no KUBECONFIG, a HOME without
~/.kube/config, a state directory nothing has used. It must bring the example platform up
(MesosCluster Ready with a leader, agents and Marathon), run the example ZkMigration to
Succeeded, serve the UI at the URL it prints; Ctrl-C (SIGINT to the foreground process
group, as a terminal sends it: GNU make itself only waits for its recipe) must leave no
process behind, and a second `make run` over the first one's leftovers (and the KUBECONFIG
it told us to export) must come up again.

The checkout is the working tree with a fresh state directory (TESTENV_DIR): a clone would
need its own .venv (the editable install points at this tree); `make -o .venv/.installed`
keeps make from reinstalling the shared .venv when pyproject.toml is newer. The control
plane's binaries come from the usual cache (ORCHESTRATOR_CACHE). Its ports are free ones
picked here, and its ZooKeeper servers take their own 127.N/16 (testenv/cluster_dns.py), so
it runs beside the other e2e tests."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from testenv.kube import build_binaries
from testenv.processes import free_ports
from tests.e2e.support import eventually

pytestmark = [pytest.mark.kube, pytest.mark.zookeeper, pytest.mark.slow, pytest.mark.timeout(900)]
REPO = Path(__file__).resolve().parents[2]
UI_LINE = re.compile(r"The UI: (http://127\.0\.0\.1:\d+)/ +\(sign in with the token in (\S+):")


def _cache_root() -> str:
    if os.environ.get("ORCHESTRATOR_CACHE"):
        return os.environ["ORCHESTRATOR_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "orchestrator")


@dataclass
class MakeRun:
    """One `make run` in its own session, its output in `log`."""

    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create time

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, as a shell's job
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def note_processes(self) -> int:
        """Remember every process below make (they come and go with the pods)."""
        assert self.popen is not None
        with_children = psutil.Process(self.popen.pid).children(recursive=True)
        for child in with_children:
            try:
                self.seen[child.pid] = child.create_time()
            except psutil.NoSuchProcess:
                continue
        return len(with_children)

    def interrupt(self, timeout: float = 120) -> int:
        """Ctrl-C: SIGINT to the process group; make's exit code."""
        assert self.popen is not None
        os.killpg(self.popen.pid, signal.SIGINT)
        return self.popen.wait(timeout=timeout)

    def left_behind(self, hosts_file: str) -> list[str]:
        """Processes of this run still alive: seen below make, or carrying its hosts file
        in their environment (every process it starts inherits it)."""
        left = []
        for process in psutil.process_iter(["pid", "cmdline", "create_time"]):
            try:
                mine = self.seen.get(process.pid) == process.info["create_time"]
                if not mine:
                    mine = process.environ().get("TESTENV_HOSTS_FILE") == hosts_file
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            if mine and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid}: {' '.join(process.info['cmdline'] or [])[:160]}")
        return left

    def kill(self) -> None:
        if self.running():
            assert self.popen is not None
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=30)


@dataclass
class Newcomer:
    tmp: Path
    env: dict[str, str]
    state: Path
    kubectl: str

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def hosts_file(self) -> str:
        return str(self.state / "hosts")

    def kube(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.kubectl, f"--kubeconfig={self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def get(self, *args: str) -> dict[str, Any]:
        result = self.kube("get", *args, "-o", "json")
        return json.loads(result.stdout) if result.returncode == 0 else {}


@pytest.fixture
def newcomer(tmp_path: Path) -> Newcomer:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "PYTEST_"))}
    env.pop("TESTENV_HOSTS_FILE", None)
    health, sync, ui = free_ports(3)
    env.update(
        HOME=str(home),
        ORCHESTRATOR_CACHE=_cache_root(),
        TESTENV_DIR=str(tmp_path / "state"),
        HEALTH_PORT=str(health),
        SYNC_HEALTH_PORT=str(sync),
        UI_PORT=str(ui),
    )
    assert not (home / ".kube" / "config").exists()
    return Newcomer(tmp_path, env, tmp_path / "state", str(build_binaries() / "kubectl"))


@contextmanager
def make_run(newcomer: Newcomer, name: str, **env: str) -> Iterator[MakeRun]:
    run = MakeRun({**newcomer.env, **env}, newcomer.tmp / f"{name}.log")
    run.start()
    try:
        yield run
    finally:
        if run.running():  # the test failed before its Ctrl-C: leave nothing running
            with suppress(subprocess.TimeoutExpired):
                run.interrupt(timeout=120)
        run.kill()


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return {}


def _wait_platform_ready(newcomer: Newcomer, run: MakeRun, timeout: float) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        assert run.running(), f"make run exited:\n{run.output()[-4000:]}"
        run.note_processes()
        cluster = newcomer.get("mesoscluster", "demo", "-n", "default")
        status = cluster.get("status", {})
        wanted = ("LeaderElected", "MastersReady", "AgentsReady", "MarathonReady", "Ready")
        if status.get("phase") == "Ready" and all(
            _condition(cluster, kind).get("status") == "True" for kind in wanted
        ):
            return cluster
        return None

    try:
        cluster: dict[str, Any] = eventually(ready, timeout, "MesosCluster demo Ready")
    except AssertionError as error:
        status = newcomer.get("mesoscluster", "demo", "-n", "default").get("status")
        raise AssertionError(f"{error}\nstatus: {status}\n{run.output()[-3000:]}") from None
    return cluster


def _assert_ready_platform(cluster: dict[str, Any]) -> None:
    status = cluster["status"]
    assert status["leadingMaster"], status
    assert status["agents"]["ready"] == status["agents"]["desired"] == 3, status
    assert status["marathon"]["ready"] >= 1, status
    assert status["mesos"]["agentsActive"] == 3, status
    assert status["mesos"]["frameworksActive"] >= 1, status  # Marathon registered


def _ui(run: MakeRun) -> tuple[str, Path]:
    found = eventually(lambda: UI_LINE.search(run.output()), 120, "the UI's URL printed")
    return found.group(1), Path(found.group(2))


def _stop_and_check(run: MakeRun, newcomer: Newcomer) -> None:
    run.note_processes()
    assert len(run.seen) > 10, run.seen  # the control plane, the pods' programs, the apps
    run.interrupt()
    assert "make run: stopped" in run.output(), run.output()[-3000:]
    deadline = time.monotonic() + 30
    while (left := run.left_behind(newcomer.hosts_file)) and time.monotonic() < deadline:
        time.sleep(0.5)  # a reaped child may still be finishing its exit
    assert not left, "left running after Ctrl-C:\n" + "\n".join(left)


def test_make_run_brings_the_example_platform_up_and_ctrl_c_stops_it(
    newcomer: Newcomer,
) -> None:
    with make_run(newcomer, "first") as run:
        cluster = _wait_platform_ready(newcomer, run, 300)
        _assert_ready_platform(cluster)
        url, token_file = _ui(run)
        output = run.output()
        token = token_file.read_text().strip()
        assert len(token) >= 32 and token not in output  # the path is printed, not the token
        assert token_file.stat().st_mode & 0o077 == 0, oct(token_file.stat().st_mode)

        page = httpx.get(url + "/", timeout=10)
        assert page.status_code == 200 and "<title>orchestrator" in page.text, page.text[:300]
        assert httpx.get(url + "/api/topology/hosts", timeout=10).status_code == 401

        def probed_hosts() -> dict[str, Any]:
            answer = httpx.get(
                url + "/api/topology/hosts",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text[:300]
            nodes: dict[str, Any] = answer.json()["nodes"]
            return nodes

        eventually(probed_hosts, 60, "the probe's report of this host in the app")

        applied = newcomer.kube("apply", "-f", str(REPO / "examples" / "zkmigration.yaml"))
        assert applied.returncode == 0, applied.stderr
        # The example asks for approval before each phase after the first: approve them all
        # as docs/zk-migration.md says.
        advance = subprocess.run(
            [str(REPO / ".venv/bin/orchestrator"), "zk-migrate", "advance", "demo-to-zk-b",
             "--through", "6"],
            env={**newcomer.env, "KUBECONFIG": str(newcomer.kubeconfig)},
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert advance.returncode == 0, advance.stdout + advance.stderr

        def migrated() -> bool:
            assert run.running(), run.output()[-4000:]
            run.note_processes()
            migration = newcomer.get("zkmigration", "demo-to-zk-b", "-n", "default")
            phase = str(migration.get("status", {}).get("phase"))
            assert phase != "Failed", migration.get("status")
            return phase == "Succeeded"

        try:
            eventually(migrated, 300, "ZkMigration demo-to-zk-b Succeeded")
        except AssertionError as error:
            status = newcomer.get("zkmigration", "demo-to-zk-b").get("status")
            raise AssertionError(f"{error}\nstatus: {status}\n{run.output()[-3000:]}") from None
        after = _wait_platform_ready(newcomer, run, 120)  # now on ensemble B
        assert "demo-to-zk-b-zookeeper" in after["status"]["zookeeperConnectString"]
        _stop_and_check(run, newcomer)

    # A second run over the first one's state, with the KUBECONFIG the first one printed.
    with make_run(newcomer, "second", KUBECONFIG=str(newcomer.kubeconfig)) as run:
        _assert_ready_platform(_wait_platform_ready(newcomer, run, 300))
        assert "is the local control plane of an earlier make run" in run.output()
        _stop_and_check(run, newcomer)


def test_make_run_explains_a_kubeconfig_naming_a_dead_local_control_plane(
    newcomer: Newcomer,
) -> None:
    (port,) = free_ports(1)
    stale = newcomer.tmp / "stale-kubeconfig"
    stale.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: old\n"
        f"clusters: [{{name: old, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: old, context: {cluster: old, user: u}}]\n"
        "users: [{name: u, user: {}}]\n"
    )
    with make_run(newcomer, "stale", KUBECONFIG=str(stale)) as run:
        assert run.popen is not None
        assert run.popen.wait(timeout=120) != 0
    output = run.output()
    assert f"points at https://127.0.0.1:{port}, a local control plane that does not answer" in (
        " ".join(output.split())
    ), output
    assert "unset KUBECONFIG" in output, output
    assert not newcomer.state.exists()  # nothing was started
