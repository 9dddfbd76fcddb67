"""The agent's containerizers: a task is a real process (mesos) or a real container (docker).

Mesos 1.11 sources followed (read, not copied):

- `src/launcher/executor.cpp` (the command executor): the task's `cmd` runs as `sh -c <cmd>`
  in the sandbox; exit 0 is TASK_FINISHED, any other exit or a signal TASK_FAILED, a task
  the agent was told to kill TASK_KILLED; the message is `Command exited with status N` or
  `Command terminated with signal <name>`; a kill sends SIGTERM and escalates to SIGKILL
  after the kill policy's grace period (3 s by default).
- `src/slave/containerizer/mesos/isolators/cgroups/` (`constants.hpp`, `subsystems/cpu.cpp`,
  `subsystems/memory.cpp`): with `--isolation` naming `cgroups/cpu` or `cgroups/mem`, the
  container gets its own cgroup **v1** `<cgroups_hierarchy>/<subsystem>/<cgroups_root>/<id>`:
  `cpu.shares` = max(1024 x cpus, 2), `cpu.cfs_quota_us` = max(100 ms x cpus, 1 ms) per 100 ms
  only with `--cgroups_enable_cfs`, `memory.limit_in_bytes` = max(mem, 32 MB). Mesos 1.11
  has no cgroup v2 support: an agent whose hierarchy lacks a subsystem fails to create its
  containerizer and exits. The default `posix/cpu,posix/mem` puts no limit on the process.
- `src/slave/containerizer/docker.cpp`, `src/docker/docker.cpp`: the docker containerizer
  runs the `docker` CLI (`--docker`) against `--docker_socket` (`docker -H unix://<socket>`),
  names the container `mesos-<container id>`, gives it `--cpu-shares` max(1024 x cpus, 2),
  `--cpu-quota` only with `--cgroups_enable_cfs`, `--memory` max(mem, 32 MB), the sandbox at
  `/mnt/mesos/sandbox`, and for a shell command `--entrypoint /bin/sh <image> -c <cmd>`; a kill
  is `docker stop -t <grace>`; on recovery it finds its containers again by name.

The sim runs no executor process: the agent starts the task itself, in a process group of its
own (so that it outlives an agent restart with `--recover=reconnect`) under a small `sh`
wrapper that writes the command's exit status into the sandbox, so a restarted agent, which is
no longer the task's parent, still learns how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("sim.agent")

CPU_SHARES_PER_CPU = 1024
MIN_CPU_SHARES = 2
CPU_CFS_PERIOD_US = 100_000
MIN_CPU_CFS_QUOTA_US = 1_000
MIN_MEMORY = 32 * 1024 * 1024
KILL_GRACE = 3.0
DOCKER_NAME_PREFIX = "mesos-"
SANDBOX_MOUNT = "/mnt/mesos/sandbox"
DEFAULT_ISOLATION = "posix/cpu,posix/mem"
STATUS_FILE = ".sim-exit-status"
ENV_FILE = ".sim-docker-env"
# $1 is the task's command, $2 the status file, the rest the `cgroup.procs` files the wrapper
# enters first (the command and its children inherit the cgroups). The wrapper outlives a
# `sh -c` killed by a signal and records 128+N, as a shell reports it. It catches SIGTERM (a
# caught signal is reset to the default in the command it starts), so a kill may signal the
# whole group.
WRAPPER = (
    'trap : TERM; c="$1"; f="$2"; shift 2; '
    'for p in "$@"; do echo $$ > "$p" || exit 125; done; '
    '/bin/sh -c "$c"; s=$?; echo "$s" > "$f.tmp" && mv "$f.tmp" "$f"; exit "$s"'
)
CGROUP_ENTRY_FAILED = 125


class ContainerizerError(Exception):
    """The agent cannot create its containerizer (Mesos: the agent exits, EXIT_FAILURE)."""


@dataclass
class Run:
    """One container of a task: what the agent checkpoints to find it again."""

    kind: str  # "mesos" or "docker"
    container_id: str
    sandbox: str
    pid: int = 0
    pid_start: int = 0  # /proc/<pid>/stat starttime: a reused pid is not the task
    cgroups: list[str] = field(default_factory=list)
    killing_since: float = 0.0
    escalated: bool = False
    grace: float = KILL_GRACE  # the task's KillPolicy grace period

    @property
    def docker_name(self) -> str:
        return DOCKER_NAME_PREFIX + self.container_id

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "container_id": self.container_id,
            "sandbox": self.sandbox,
            "pid": self.pid,
            "pid_start": self.pid_start,
            "cgroups": list(self.cgroups),
            "killing_since": self.killing_since,
            "escalated": self.escalated,
            "grace": self.grace,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Run:
        return cls(
            kind=str(data.get("kind", "mesos")),
            container_id=str(data["container_id"]),
            sandbox=str(data.get("sandbox", "")),
            pid=int(data.get("pid", 0)),
            pid_start=int(data.get("pid_start", 0)),
            cgroups=[str(c) for c in data.get("cgroups", [])],
            killing_since=float(data.get("killing_since", 0.0)),
            escalated=bool(data.get("escalated", False)),
            grace=float(data.get("grace", KILL_GRACE)),
        )


@dataclass
class Exit:
    """How a container ended: the task state (without KILLED) and Mesos' message."""

    succeeded: bool
    message: str


def _signal_name(number: int) -> str:
    with contextlib.suppress(ValueError):
        return signal.strsignal(number) or f"signal {number}"
    return f"signal {number}"


def exit_of_status(status: int) -> Exit:
    """A shell status (`$?`: 128+N for a signal) as the command executor reports it."""
    if status > 128 and status - 128 < 65:
        return Exit(False, f"Command terminated with signal {_signal_name(status - 128)}")
    return Exit(status == 0, f"Command exited with status {status}")


def proc_start_time(pid: int) -> int | None:
    """The process' start time (clock ticks since boot), or None when it is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def alive(run: Run) -> bool:
    return run.pid > 0 and proc_start_time(run.pid) == run.pid_start


# ---------------------------------------------------------------------- cgroups (v1)
@dataclass(frozen=True)
class Cgroups:
    hierarchy: Path
    root: str
    cpu: bool
    mem: bool
    enable_cfs: bool

    @classmethod
    def from_flags(
        cls, isolation: str, hierarchy: Path, root: str, enable_cfs: bool
    ) -> Cgroups | None:
        isolators = {i.strip() for i in isolation.split(",") if i.strip()}
        cpu, mem = "cgroups/cpu" in isolators, "cgroups/mem" in isolators
        if not cpu and not mem:
            return None
        cgroups = cls(hierarchy, root, cpu, mem, enable_cfs)
        cgroups.prepare()
        return cgroups

    def subsystems(self) -> list[str]:
        return [s for s, on in (("cpu", self.cpu), ("memory", self.mem)) if on]

    def prepare(self) -> None:
        """Mesos' `cgroups::prepare`: each subsystem must be a mounted, writable v1 hierarchy."""
        for subsystem in self.subsystems():
            isolator = "cgroups/mem" if subsystem == "memory" else "cgroups/cpu"
            base = self.hierarchy / subsystem
            marker = "memory.limit_in_bytes" if subsystem == "memory" else "cpu.shares"
            if not (base / marker).exists():
                raise ContainerizerError(
                    f"Could not create isolator '{isolator}': Failed to prepare hierarchy for "
                    f"{subsystem} subsystem: '{base}' is not a cgroup v1 hierarchy with the "
                    f"{subsystem} subsystem (Mesos 1.11 supports cgroups v1 only)"
                )
            try:
                (base / self.root).mkdir(exist_ok=True)
            except OSError as exc:
                raise ContainerizerError(
                    f"Could not create isolator '{isolator}': Failed to create root cgroup "
                    f"'{base / self.root}': {exc.strerror}"
                ) from None

    def create(self, container_id: str, cpus: float, mem_mb: float) -> list[str]:
        made: list[str] = []
        try:
            for subsystem in self.subsystems():
                path = self.hierarchy / subsystem / self.root / container_id
                path.mkdir()
                made.append(str(path))
                if subsystem == "cpu":
                    shares = max(int(CPU_SHARES_PER_CPU * cpus), MIN_CPU_SHARES)
                    (path / "cpu.shares").write_text(str(shares))
                    if self.enable_cfs:
                        (path / "cpu.cfs_period_us").write_text(str(CPU_CFS_PERIOD_US))
                        quota = max(int(CPU_CFS_PERIOD_US * cpus), MIN_CPU_CFS_QUOTA_US)
                        (path / "cpu.cfs_quota_us").write_text(str(quota))
                else:
                    limit = max(int(mem_mb * 1024 * 1024), MIN_MEMORY)
                    (path / "memory.soft_limit_in_bytes").write_text(str(limit))
                    (path / "memory.limit_in_bytes").write_text(str(limit))
        except OSError:
            destroy_cgroups(made)
            raise
        return made


def cgroup_pids(cgroups: list[str]) -> set[int]:
    pids: set[int] = set()
    for path in cgroups:
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in Path(path, "cgroup.procs").read_text().split())
    return pids


def destroy_cgroups(cgroups: list[str]) -> None:
    for path in cgroups:
        for _ in range(20):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:  # busy: processes still leaving
                for pid in cgroup_pids([path]):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                time.sleep(0.05)


ProcTable = list[tuple[int, int, int]]  # (pid, process group, start time) of live processes


def proc_table() -> ProcTable:
    table: ProcTable = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] not in ("Z", "X"):
                table.append((int(entry.name), int(fields[2]), int(fields[19])))
    return table


def group_members(run: Run, table: ProcTable | None = None) -> set[int]:
    """The live processes of the task's process group (the wrapper leads it). Members start
    no earlier than the leader, so a group id reused after the group emptied is not ours."""
    if run.pid <= 0:
        return set()
    rows = proc_table() if table is None else table
    return {pid for pid, pgrp, start in rows if pgrp == run.pid and start >= run.pid_start}


def signal_run(
    run: Run, sig: signal.Signals, *, wrapper: bool = False, table: ProcTable | None = None
) -> int:
    """Signal the task's processes (its process group and anything in its cgroups). The
    wrapper is spared unless asked, so that it records how the command ended."""
    pids = group_members(run, table) | cgroup_pids(run.cgroups)
    if not wrapper:
        pids.discard(run.pid)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
    return len(pids)


@dataclass(frozen=True)
class Usage:
    user_secs: float
    system_secs: float
    rss_bytes: int


def usage(run: Run, table: ProcTable | None = None) -> Usage:
    """CPU time and resident memory of the task's processes (its process group and
    cgroups), as Mesos' posix/cpu and posix/mem isolators sum them over the container's
    process tree (`src/slave/containerizer/mesos/isolators/posix.hpp`)."""
    ticks = float(os.sysconf("SC_CLK_TCK"))
    page = os.sysconf("SC_PAGE_SIZE")
    user = system = 0.0
    rss = 0
    for pid in group_members(run, table) | cgroup_pids(run.cgroups):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11]) / ticks
        system += int(fields[12]) / ticks
        rss += int(fields[21]) * page
    return Usage(round(user, 2), round(system, 2), rss)


# ---------------------------------------------------------------------- mesos
class MesosContainerizer:
    def __init__(self, cgroups: Cgroups | None) -> None:
        self.cgroups = cgroups
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self._table: ProcTable | None = None

    def new_round(self) -> None:
        """Forget the process table read in the last polling round."""
        self._table = None

    def table(self) -> ProcTable:
        """The process table, read at most once per polling round (reading /proc is not
        free with hundreds of tasks)."""
        if self._table is None:
            self._table = proc_table()
        return self._table

    @property
    def isolation_note(self) -> str:
        if self.cgroups is None:
            return "isolation posix/cpu,posix/mem: the process runs without cgroup limits"
        return ""

    def launch(
        self, run: Run, command: str, cpus: float, mem_mb: float, task_env: dict[str, str]
    ) -> None:
        sandbox = Path(run.sandbox)
        sandbox.mkdir(parents=True, exist_ok=True)
        if self.cgroups is not None:
            run.cgroups = self.cgroups.create(run.container_id, cpus, mem_mb)
        procs_files = [os.path.join(c, "cgroup.procs") for c in run.cgroups]
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            **task_env,
            "MESOS_SANDBOX": str(sandbox),
            "MESOS_CONTAINER_ID": run.container_id,
        }
        with (sandbox / "stdout").open("ab") as out, (sandbox / "stderr").open("ab") as err:
            try:
                popen = subprocess.Popen(
                    ["/bin/sh", "-c", WRAPPER, "mesos-command", command, STATUS_FILE, *procs_files],
                    cwd=sandbox,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    start_new_session=True,  # its own process group: it outlives the agent
                )
            except BaseException:
                destroy_cgroups(run.cgroups)
                raise
        self.children[popen.pid] = popen
        run.pid = popen.pid
        run.pid_start = proc_start_time(popen.pid) or 0

    def poll(self, run: Run) -> Exit | None:
        """None while the task runs, else how it ended."""
        popen = self.children.get(run.pid)
        code: int | None = None
        if popen is not None:
            code = popen.poll()
            if code is None:
                return None
            del self.children[run.pid]
        elif alive(run):
            return None
        status_file = Path(run.sandbox, STATUS_FILE)
        try:
            result = exit_of_status(int(status_file.read_text().strip()))
        except (OSError, ValueError):
            if code is not None and code < 0:
                result = Exit(False, f"Command terminated with signal {_signal_name(-code)}")
            elif code == CGROUP_ENTRY_FAILED and run.cgroups:
                result = Exit(False, "Failed to launch container: could not enter its cgroups")
            elif code is not None:
                result = exit_of_status(code)
            else:
                result = Exit(False, "Failed to get exit status for Command")
        self.cleanup(run)
        return result

    def kill(self, run: Run, now: float) -> None:
        if not run.killing_since:
            run.killing_since = now
            if alive(run):  # the wrapper leads the group: it is ours
                with contextlib.suppress(OSError):
                    os.killpg(run.pid, signal.SIGTERM)
            for pid in cgroup_pids(run.cgroups) - {run.pid}:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        elif not run.escalated and now - run.killing_since >= run.grace:
            run.escalated = True
            signal_run(run, signal.SIGKILL, table=self.table())

    def destroy(self, run: Run) -> None:
        """Kill the task at once (no grace), wrapper included, and remove its cgroups."""
        signal_run(run, signal.SIGKILL, wrapper=True, table=self.table())
        popen = self.children.pop(run.pid, None)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(1.0)
        destroy_cgroups(run.cgroups)

    def cleanup(self, run: Run) -> None:
        # What the command left behind in its group or cgroups.
        signal_run(run, signal.SIGKILL, wrapper=True, table=self.table())
        destroy_cgroups(run.cgroups)


# ---------------------------------------------------------------------- docker
@dataclass
class DockerState:
    running: bool
    exit_code: int
    oom_killed: bool


class DockerContainerizer:
    def __init__(self, docker: str, socket: str, enable_cfs: bool) -> None:
        self.docker = docker
        self.socket = socket
        self.enable_cfs = enable_cfs
        self.states: dict[str, DockerState] = {}
        self.launching: set[str] = set()

    def argv(self, *args: str) -> list[str]:
        return [self.docker, "-H", f"unix://{self.socket}", *args]

    async def _run(self, *args: str, timeout: float = 60.0) -> tuple[int, str, str]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(*args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return 127, "", f"Failed to execute '{self.docker}': {exc.strerror}"
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            return 124, "", f"'{self.docker} {args[0]}' timed out after {timeout}s"
        return int(proc.returncode or 0), out.decode(errors="replace"), err.decode(errors="replace")

    async def check(self) -> str:
        """Mesos' `Docker::create`: the CLI must reach the engine; returns its version."""
        code, out, err = await self._run("version", "--format", "{{.Server.Version}}")
        if code != 0:
            raise ContainerizerError(
                "Could not create DockerContainerizer: Failed to create docker: "
                f"Failed to get docker version: {err.strip()[:500]}"
            )
        return out.strip()

    async def launch(
        self,
        run: Run,
        image: str,
        command: str,
        cpus: float,
        mem_mb: float,
        env: dict[str, str] | None = None,
        network: str = "HOST",
        port_mappings: list[tuple[int, int]] | None = None,
    ) -> str | None:
        """Start the container; None on success, else the error (TASK_FAILED's message).
        `network` HOST is `--net=host`, BRIDGE publishes each (host, container) port
        mapping with `-p` (src/docker/docker.cpp `Docker::run`)."""
        Path(run.sandbox).mkdir(parents=True, exist_ok=True)
        args = ["run", "-d", "--name", run.docker_name]
        args += ["--cpu-shares", str(max(int(CPU_SHARES_PER_CPU * cpus), MIN_CPU_SHARES))]
        if self.enable_cfs:
            quota = max(int(CPU_CFS_PERIOD_US * cpus), MIN_CPU_CFS_QUOTA_US)
            args += ["--cpu-quota", str(quota)]
        args += ["--memory", str(max(int(mem_mb * 1024 * 1024), MIN_MEMORY))]
        args += [
            "-e",
            f"MESOS_SANDBOX={SANDBOX_MOUNT}",
            "-e",
            f"MESOS_CONTAINER_NAME={run.docker_name}",
        ]
        if env:
            # Mesos 1.11 passes each variable as `-e NAME=value` (docker.cpp `Docker::run`),
            # so a secret in the app's env shows in the agent's process list; the sim keeps
            # them out of argv in an env file only the agent's user reads.
            env_file = Path(run.sandbox, ENV_FILE)
            fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                for name, value in env.items():
                    if "\n" not in value and "\n" not in name:
                        handle.write(f"{name}={value}\n")
            args += ["--env-file", str(env_file)]
        if network == "HOST":
            args += ["--net", "host"]
        else:
            args += ["--net", "bridge"]
            for host_port, container_port in port_mappings or []:
                args += ["-p", f"{host_port}:{container_port}/tcp"]
        args += ["-v", f"{run.sandbox}:{SANDBOX_MOUNT}"]
        if command:
            args += ["--entrypoint", "/bin/sh", image, "-c", command]
        else:
            args += [image]
        self.launching.add(run.docker_name)
        try:
            code, _, err = await self._run(*args)
        finally:
            self.launching.discard(run.docker_name)
        if code != 0:
            return f"Failed to launch container: {err.strip()[:500]}"
        self.states[run.docker_name] = DockerState(True, 0, False)
        return None

    async def refresh(self, names: list[str]) -> None:
        """One `docker inspect` for all containers; a missing one is dropped."""
        names = [n for n in names if n not in self.launching]
        if not names:
            return
        fmt = "{{json .Name}} {{.State.Running}} {{.State.ExitCode}} {{.State.OOMKilled}}"
        code, out, err = await self._run("inspect", "--format", fmt, *names, timeout=30.0)
        seen: dict[str, DockerState] = {}
        for line in out.splitlines():
            parts = line.rsplit(" ", 3)
            if len(parts) != 4:
                continue
            name = str(json.loads(parts[0])).lstrip("/")
            seen[name] = DockerState(parts[1] == "true", int(parts[2]), parts[3] == "true")
        if code != 0 and not seen and "No such" not in err:
            log.warning("docker inspect failed: %s", err.strip()[:300])
            return  # the engine is unreachable: keep what we knew
        for name in names:
            if name in seen:
                self.states[name] = seen[name]
            else:
                self.states.pop(name, None)

    def poll(self, run: Run) -> Exit | None:
        if run.docker_name in self.launching:
            return None
        state = self.states.get(run.docker_name)
        if state is None:
            return Exit(False, f"Container {run.docker_name} is gone")
        if state.running:
            return None
        if state.oom_killed:
            return Exit(False, "Memory limit exceeded: the container was OOM-killed")
        return exit_of_status(state.exit_code)

    async def kill(self, run: Run) -> None:
        if not run.killing_since:
            run.killing_since = time.time()
            await self._run("stop", "-t", str(int(run.grace)), run.docker_name)
            await self.refresh([run.docker_name])

    async def remove(self, name: str) -> None:
        await self._run("rm", "-f", name, timeout=30.0)
        self.states.pop(name, None)


def new_container_id() -> str:
    return str(uuid.uuid4())


def _kill_late_forks(run: Run, rounds: int = 20) -> None:
    """A process the task forked after the table was read escapes the first signal: signal
    the group again until it is empty (at most `rounds` times, 50 ms apart)."""
    for _ in range(rounds):
        if not signal_run(run, signal.SIGKILL, wrapper=True):
            return
        time.sleep(0.05)


def kill_checkpointed(work_dir: Path, docker: str | None = None) -> int:
    """Kill every task an agent checkpointed under `work_dir` (process groups, cgroups, and
    docker containers through the CLI and socket the agent used). For test cleanup: the
    tasks outlive their agent on purpose. Returns how many were signalled."""
    killed = 0
    table = proc_table()
    for path in work_dir.glob("meta/slaves/*/sim-agent.json"):
        if path.parent.is_symlink():  # `latest`
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        socket = str(data.get("docker_socket", ""))
        for raw in (data.get("runs") or {}).values():
            try:
                run = Run.from_json(raw)
            except (KeyError, TypeError, ValueError):
                continue
            cli = docker or str(data.get("docker", "docker"))
            if run.kind == "docker" and socket:
                with contextlib.suppress(OSError, subprocess.SubprocessError):
                    subprocess.run(
                        [cli, "-H", f"unix://{socket}", "rm", "-f", run.docker_name],
                        capture_output=True,
                        timeout=30,
                        check=False,
                    )
                killed += 1
            elif run.kind == "mesos":
                if signal_run(run, signal.SIGKILL, wrapper=True, table=table):
                    killed += 1
                    _kill_late_forks(run)
                destroy_cgroups(run.cgroups)
    return killed
