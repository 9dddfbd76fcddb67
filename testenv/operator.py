"""`orchestrator run` as a real subprocess against a cluster (tests and benchmarks)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .kube import KubeTestEnv
from .processes import free_port

REPO = Path(__file__).resolve().parents[1]


class ServedProcess:
    """An `orchestrator ...` command as a real subprocess against the testenv cluster, with
    /healthz, /readyz and /metrics on a free loopback port (`--health-port`)."""

    what = "process"

    def __init__(self, env: KubeTestEnv, log_path: Path, *args: str) -> None:
        self.health_port = free_port()
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._command = [
            sys.executable, "-m", "orchestrator_operator.cli", *args,
            "--health-host", "127.0.0.1", "--health-port", str(self.health_port),
        ]  # fmt: skip
        self._env = {**os.environ, "KUBECONFIG": str(env.kubeconfig), "PYTHONUNBUFFERED": "1"}
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._command, env=self._env, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO
        )

    def crash_and_restart(self) -> None:
        """SIGKILL (no cleanup, as a node failure would), then start again, same port."""
        self.process.kill()
        self.process.wait(timeout=30)
        self._log.write(b"\n=== killed and restarted by the test ===\n")
        self._log.flush()
        self.process = self._spawn()
        self.wait_ready()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """SIGSTOP for the duration (a test that writes statuses itself and must not have
        them rewritten), SIGCONT after: its watches and timers go on where they stopped."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.process.send_signal(signal.SIGCONT)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.health_port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{self.what} not ready; its log:\n{self.log_tail()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class OperatorProcess(ServedProcess):
    """`orchestrator run` as a real subprocess against the testenv cluster."""

    what = "operator"

    def __init__(self, env: KubeTestEnv, log_path: Path, *extra_args: str) -> None:
        super().__init__(env, log_path, "run", *extra_args)
