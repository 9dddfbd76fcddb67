"""`orchestrator app` (the monitoring app) as a real process on a free loopback port, and the
built UI it can serve."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from testenv.processes import ManagedProcess, free_port

REPO = Path(__file__).resolve().parents[1]
UI = REPO / "ui"


class UiNotBuilt(RuntimeError):
    pass


def build_ui(out_dir: Path | None = None) -> Path:
    """`vite build` of ui/ (into ui/dist unless ``out_dir``); the directory built."""
    if shutil.which("node") is None:
        raise UiNotBuilt("node is not installed (the UI needs Node 20)")
    if not (UI / "node_modules" / ".package-lock.json").exists():
        raise UiNotBuilt("ui/node_modules is missing: run `npm ci` in ui/")
    out = out_dir or UI / "dist"
    result = subprocess.run(
        ["npx", "--no-install", "vite", "build", "--logLevel", "warn", "--outDir", str(out)],
        cwd=UI, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if result.returncode != 0:
        raise UiNotBuilt(f"vite build failed:\n{result.stdout}\n{result.stderr}")
    return out


class MonitorAppProcess(ManagedProcess):
    def __init__(
        self,
        log_dir: Path,
        token: str,
        *,
        read_only_token: str | None = None,
        ui_dist: Path | None = None,
        probe_ttl: float | None = None,
        kubeconfig: Path | None = None,  # for the platform pages; None: ours
    ) -> None:
        self.port = free_port()
        self.token = token
        argv = [sys.executable, "-m", "orchestrator_operator.cli", "app",
                "--listen", "127.0.0.1", "--port", str(self.port), "--token", token]  # fmt: skip
        if read_only_token:
            argv += ["--read-only-token", read_only_token]
        if ui_dist is not None:
            argv += ["--ui-dist", str(ui_dist)]
        if probe_ttl is not None:
            argv += ["--probe-ttl", str(probe_ttl)]
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)} if kubeconfig else None
        super().__init__(f"monitor-app-{self.port}", argv, log_dir, env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=timeout
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise RuntimeError(f"the app exited:\n{self.log_tail(40)}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app did not answer /healthz:\n{self.log_tail(40)}")
            time.sleep(0.2)

    def __enter__(self) -> MonitorAppProcess:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
