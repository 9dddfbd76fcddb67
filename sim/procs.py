"""Simulator processes as children of a test: bounded, logged, always cleaned up.

Children get PR_SET_PDEATHSIG (SIGKILL) so they die with the parent process, and every live
process is killed at interpreter exit. An agent's tasks are real processes (or containers) that
outlive their agent on purpose (`--recover=reconnect`), in process groups of their own: a
SimProcess running an agent knows its work dir, `kill_tasks()` kills what it checkpointed, and
at interpreter exit every agent's tasks are killed too.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PRCTL: Callable[..., int] | None = getattr(_LIBC, "prctl", None)
REPO_ROOT = Path(__file__).resolve().parent.parent

_LIVE: weakref.WeakSet[SimProcess] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _die_with_parent() -> None:
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


_AGENT_DIRS: set[Path] = set()


@atexit.register
def _kill_all() -> None:
    with _LIVE_LOCK:
        procs = list(_LIVE)
        agent_dirs = list(_AGENT_DIRS)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()
    for work_dir in agent_dirs:
        with contextlib.suppress(Exception):
            kill_agent_tasks(work_dir)


def kill_agent_tasks(work_dir: Path) -> int:
    """Kill the tasks an agent checkpointed under `work_dir` (see sim/agent/containers.py)."""
    from sim.agent.containers import kill_checkpointed

    return kill_checkpointed(work_dir)


def agent_work_dir(args: list[str]) -> Path | None:
    """The `--work_dir` of `sim agent ...` arguments, else None."""
    if not args or args[0] != "agent":
        return None
    for i, arg in enumerate(args):
        for flag in ("--work-dir", "--work_dir"):
            if arg.startswith(flag + "="):
                return Path(arg.split("=", 1)[1])
            if arg == flag and i + 1 < len(args):
                return Path(args[i + 1])
    return None


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


class SimProcess:
    """`python -m sim <args>` with its output in `log_path`; `env` is added to the process's
    environment, and `wrapper` (e.g. `["/bin/sh", "-c", script]`) runs it: the wrapper gets
    `python -m sim <args>` as its arguments (testenv/simpods.py runs a pod's start command)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        wrapper: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.env = dict(env or {})
        self.wrapper = list(wrapper)
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.work_dir = agent_work_dir(args)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def popen_args(self) -> tuple[list[str], dict[str, str] | None, Path]:
        """The command line, its environment (None: this process's) and working directory;
        a subclass that runs another program (testenv's ZooKeeper pods) overrides this."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        return [*self.wrapper, sys.executable, "-m", "sim", *self.args], env, REPO_ROOT

    def start(self) -> None:
        if self.running:
            return
        self._close_log()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        argv, env, cwd = self.popen_args()
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            preexec_fn=_die_with_parent,
        )
        with _LIVE_LOCK:
            _LIVE.add(self)
            if self.work_dir is not None:
                _AGENT_DIRS.add(self.work_dir)

    def kill_tasks(self) -> int:
        """An agent's tasks: kill them (they outlive the agent process on purpose)."""
        if self.work_dir is None:
            return 0
        return kill_agent_tasks(self.work_dir)

    def signal(self, sig: signal.Signals) -> None:
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (the process closes its ZooKeeper session), SIGKILL after `grace`."""
        self.signal(signal.SIGTERM)
        if self.wait(grace) is None:
            self.kill()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL: a crash; its ephemeral znodes live until the session times out."""
        self.signal(signal.SIGKILL)
        self.wait(10.0)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError as exc:
            return f"(no log: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # a probe may fail while things settle
            last = exc
        time.sleep(interval)
    detail = f" (last error: {last!r})" if last is not None else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
