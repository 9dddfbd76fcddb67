"""Process collector (psutil): pid, ppid, command line, user, CPU, RSS, open files, container."""

from __future__ import annotations

import pwd
import re
from pathlib import Path

import psutil

from orchestrator_operator.monitor.report import LIMITS, Process

_CONTAINER_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])")
_ATTRS = ["pid", "ppid", "name", "cmdline", "uids", "cpu_percent", "memory_info", "create_time"]


def container_id_of(pid: int, proc: Path = Path("/proc")) -> str:
    """The Docker container id in the process's cgroup path, or ""."""
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return ""
    m = _CONTAINER_ID.search(text)
    return m.group(1) if m else ""


class ProcessCollector:
    """Keeps only per-pid caches of live processes (pruned every call)."""

    def __init__(self, max_processes: int = LIMITS.processes, max_cmdline: int = 512) -> None:
        self.max_processes = max_processes
        self.max_cmdline = max_cmdline
        self._users: dict[int, str] = {}
        self._containers: dict[tuple[int, float], str] = {}

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            if len(self._users) < 10000:
                self._users[uid] = name
        return name

    def collect(self, fd_counts: dict[int, int] | None = None) -> list[Process]:
        """``fd_counts`` comes from the connection scan, which lists every fd anyway; without
        one (connections off) each process's fds are counted here."""
        out: list[Process] = []
        seen: set[tuple[int, float]] = set()
        attrs = _ATTRS if fd_counts is not None else [*_ATTRS, "num_fds"]
        for p in psutil.process_iter(attrs, ad_value=None):
            info = p.info
            pid = int(info["pid"])
            key = (pid, float(info.get("create_time") or 0.0))
            seen.add(key)
            cid = self._containers.get(key)
            if cid is None:
                cid = container_id_of(pid)
                self._containers[key] = cid
            cmdline = " ".join(info.get("cmdline") or [])[: self.max_cmdline]
            uids = info.get("uids")
            mem = info.get("memory_info")
            out.append(
                Process(
                    pid=pid,
                    ppid=int(info.get("ppid") or 0),
                    name=str(info.get("name") or "")[:256],
                    cmdline=cmdline,
                    user=self._user(uids.real) if uids is not None else "",
                    cpu_percent=round(float(info.get("cpu_percent") or 0.0), 2),
                    rss=int(mem.rss) if mem is not None else 0,
                    open_files=(
                        fd_counts.get(pid, 0)
                        if fd_counts is not None
                        else int(info.get("num_fds") or 0)
                    ),
                    container_id=cid,
                )
            )
            if len(out) >= self.max_processes:
                break
        for key in list(self._containers):
            if key not in seen:
                del self._containers[key]
        return out
