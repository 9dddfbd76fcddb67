"""Docker collector (Engine API via the docker SDK) and container controls.

One list call per interval; a container is inspected again only when its state or pid may have
changed. CPU and memory come from the container's cgroup files (cheap) and fall back to 0
when they cannot be read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from orchestrator_operator.monitor.report import (
    CONTROLS,
    LIMITS,
    Container,
    Port,
    bounded_labels,
)


class ControlError(RuntimeError):
    pass


def _cgroup_paths(pid: int, proc: Path) -> dict[str, str]:
    """controller -> path for a pid ("" key for the cgroup2 unified path)."""
    out: dict[str, str] = {}
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(","):
            out[controller] = parts[2]
    return out


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cgroup_usage(pid: int, proc: Path, sys_cgroup: Path) -> tuple[int | None, int | None]:
    """(cpu nanoseconds, memory bytes) of the cgroup holding ``pid``."""
    paths = _cgroup_paths(pid, proc)
    cpu: int | None = None
    mem: int | None = None
    if "cpuacct" in paths:
        rel = paths["cpuacct"].lstrip("/")
        for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
            cpu = _read_int(sys_cgroup / mount / rel / "cpuacct.usage")
            if cpu is not None:
                break
    if "memory" in paths:
        rel = paths["memory"].lstrip("/")
        mem = _read_int(sys_cgroup / "memory" / rel / "memory.usage_in_bytes")
    if (cpu is None or mem is None) and "" in paths:
        base = sys_cgroup / paths[""].lstrip("/")
        if cpu is None:
            try:
                for line in (base / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec "):
                        cpu = int(line.split()[1]) * 1000
            except (OSError, ValueError):
                pass
        if mem is None:
            mem = _read_int(base / "memory.current")
    return cpu, mem


@dataclass
class _Inspected:
    state: str
    pid: int
    memory_limit: int
    cpu_quota: float
    ips: tuple[str, ...]
    created: float


def _parse_created(value: str) -> float:
    from datetime import datetime

    try:
        # '2026-11-27T20:54:44.249916297Z' -> trim nanoseconds for fromisoformat
        head, _, frac = value.rstrip("Z").partition(".")
        return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))
    except ValueError:
        return 0.0


class DockerCollector:
    def __init__(
        self,
        base_url: str = "unix:///var/run/docker.sock",
        proc: Path = Path("/proc"),
        sys_cgroup: Path = Path("/sys/fs/cgroup"),
        max_containers: int = LIMITS.containers,
    ) -> None:
        self.base_url = base_url
        self.proc = proc
        self.sys_cgroup = sys_cgroup
        self.max_containers = max_containers
        self._client: Any = None
        self._inspected: dict[str, _Inspected] = {}
        self._cpu: dict[str, tuple[int, float]] = {}
        self.last_error = ""

    def client(self) -> Any:
        if self._client is None:
            self._client = docker.DockerClient(base_url=self.base_url, version="auto", timeout=30)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _inspect(self, cid: str) -> _Inspected:
        data = self.client().api.inspect_container(cid)
        host_config = data.get("HostConfig") or {}
        networks = (data.get("NetworkSettings") or {}).get("Networks") or {}
        quota = host_config.get("CpuQuota") or 0
        period = host_config.get("CpuPeriod") or 100000
        nano = host_config.get("NanoCpus") or 0
        return _Inspected(
            state=(data.get("State") or {}).get("Status", ""),
            pid=int((data.get("State") or {}).get("Pid") or 0),
            memory_limit=int(host_config.get("Memory") or 0),
            cpu_quota=nano / 1e9 if nano else (quota / period if quota > 0 else 0.0),
            ips=tuple(sorted({n["IPAddress"] for n in networks.values() if n.get("IPAddress")})),
            created=_parse_created(str(data.get("Created", ""))),
        )

    def collect(self, pid_netns: dict[int, int] | None = None) -> list[Container]:
        try:
            summaries = self.client().api.containers(all=True)
        except Exception as exc:  # engine down: report no containers, retry next interval
            self.last_error = str(exc)
            self.close()
            return []
        self.last_error = ""
        out: list[Container] = []
        live: set[str] = set()
        now = time.monotonic()
        for s in summaries[: self.max_containers]:
            cid = s["Id"]
            live.add(cid)
            info = self._inspected.get(cid)
            if (
                info is None
                or info.state != s.get("State")
                or (info.pid and not os.path.exists(self.proc / str(info.pid)))
            ):
                try:
                    info = self._inspect(cid)
                except Exception:
                    continue
                self._inspected[cid] = info
            cpu_pct = 0.0
            mem = 0
            if info.pid:
                cpu_ns, mem_bytes = cgroup_usage(info.pid, self.proc, self.sys_cgroup)
                mem = mem_bytes or 0
                if cpu_ns is not None:
                    prev = self._cpu.get(cid)
                    if prev is not None and now > prev[1] and cpu_ns >= prev[0]:
                        cpu_pct = (cpu_ns - prev[0]) / 1e9 / (now - prev[1]) * 100.0
                    self._cpu[cid] = (cpu_ns, now)
            else:
                self._cpu.pop(cid, None)
            ports = tuple(
                Port(
                    container_port=int(p.get("PrivatePort") or 0),
                    proto=str(p.get("Type") or "tcp"),
                    host_ip=str(p.get("IP") or ""),
                    host_port=int(p.get("PublicPort") or 0),
                )
                for p in s.get("Ports") or []
            )
            names = s.get("Names") or [cid[:12]]
            out.append(
                Container(
                    id=cid,
                    name=names[0].lstrip("/"),
                    image=str(s.get("Image") or ""),
                    state=str(s.get("State") or info.state),
                    status=str(s.get("Status") or ""),
                    labels=bounded_labels(
                        {k: str(v)[:1024] for k, v in (s.get("Labels") or {}).items()}
                    ),
                    ports=ports,
                    ips=info.ips,
                    pid=info.pid,
                    created=info.created,
                    memory_limit=info.memory_limit,
                    cpu_quota=info.cpu_quota,
                    cpu_percent=round(cpu_pct, 2),
                    memory_usage=mem,
                    netns=(pid_netns or {}).get(info.pid, 0),
                )
            )
        for cid in list(self._inspected):
            if cid not in live:
                del self._inspected[cid]
                self._cpu.pop(cid, None)
        return out

    def control(self, action: str, container_id: str, args: dict[str, Any] | None = None) -> Any:
        """Run a control on a container; returns a JSON-able result or raises ControlError."""
        args = args or {}
        if action not in CONTROLS:
            raise ControlError(f"unknown control {action!r}; known: {', '.join(CONTROLS)}")
        try:
            container = self.client().containers.get(container_id)
            if action == "logs":
                tail = int(args.get("tail", 200))
                data: bytes = container.logs(tail=max(1, min(tail, 10000)), timestamps=False)
                return {"logs": data.decode("utf-8", errors="replace")}
            if action == "stop":
                container.stop(timeout=int(args.get("timeout", 5)))
            elif action == "restart":
                container.restart(timeout=int(args.get("timeout", 5)))
            elif action == "remove":
                container.remove(force=True)
                self._inspected.pop(container_id, None)
                return {"removed": container_id}
            else:
                getattr(container, action)()
            container.reload()
            self._inspected.pop(container.id, None)
            return {"state": container.status}
        except docker.errors.NotFound as exc:
            raise ControlError(f"no container {container_id}") from exc
        except docker.errors.APIError as exc:
            raise ControlError(str(exc.explanation or exc)) from exc
