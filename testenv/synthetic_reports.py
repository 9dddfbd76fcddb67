"""Synthetic probe reports for tests and bench/monitor.py (deterministic for a seed).

Probe ``i`` of a fleet reports host ``host-i`` with ``containers`` containers (each listening
on 8080 in its own network namespace), ``processes`` processes (one per container, the rest
on the host, ten of them listening on 9000+k) and ``connections`` sockets: the listeners plus
outgoing connections to containers and hosts of other probes in the fleet.

The structure (containers, processes, most connections) depends only on ``i``; ``seed``
changes the CPU/memory figures of everything and re-draws ``churn`` of the outgoing
connections, as consecutive reports of a real host would.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
import time

from orchestrator_operator.monitor.report import Connection, Container, Host, Port, Process, Report

_CONTAINER_BASE = int(ipaddress.IPv4Address("10.64.0.0"))
_HOST_BASE = int(ipaddress.IPv4Address("10.32.0.0"))
HOST_LISTENERS = 10


def host_ip(i: int) -> str:
    return str(ipaddress.IPv4Address(_HOST_BASE + i + 1))


def container_ip(i: int, j: int, per_probe: int) -> str:
    return str(ipaddress.IPv4Address(_CONTAINER_BASE + i * per_probe + j + 1))


def container_hex(i: int, j: int) -> str:
    return hashlib.sha256(f"{i}/{j}".encode()).hexdigest()


def synthetic_report(
    i: int,
    fleet: int,
    *,
    containers: int = 20,
    processes: int = 150,
    connections: int = 300,
    seq: int = 0,
    seed: int = 0,
    churn: float = 0.1,
    timestamp: float | None = None,
) -> Report:
    rng = random.Random(seed * 1_000_003 + i)  # metrics
    srng = random.Random(i)  # structure
    churn_rng = random.Random(seed * 7_000_003 + i)
    hostname = f"host-{i}"
    host_netns = 4026531840
    conts: list[Container] = []
    procs: list[Process] = []
    conns: list[Connection] = []
    for j in range(containers):
        cid = container_hex(i, j)
        netns = 4026600000 + j
        pid = 1000 + j
        conts.append(
            Container(
                id=cid,
                name=f"app-{i}-{j}",
                image=f"registry.local/app{j % 5}:1.{j}",
                state="running",
                status="Up 3 hours",
                labels={"team": f"t{j % 3}", "tier": "web" if j % 2 else "db"},
                ports=(Port(container_port=8080),),
                ips=(container_ip(i, j, containers),),
                pid=pid,
                created=1.7e9,
                memory_limit=256 * 1024 * 1024,
                cpu_quota=0.5,
                cpu_percent=round(rng.uniform(0, 50), 2),
                memory_usage=rng.randrange(10, 200) * 1024 * 1024,
                netns=netns,
            )
        )
        procs.append(
            Process(
                pid=pid,
                ppid=900,
                name="server",
                cmdline=f"/bin/server --port 8080 --id {j}",
                user="app",
                cpu_percent=round(rng.uniform(0, 50), 2),
                rss=rng.randrange(10, 200) * 1024 * 1024,
                open_files=rng.randrange(5, 200),
                container_id=cid,
            )
        )
        conns.append(Connection("tcp", "0.0.0.0", 8080, state="LISTEN", pid=pid, netns=netns))
    for k in range(processes - containers):
        pid = 2000 + k
        procs.append(
            Process(
                pid=pid,
                ppid=1,
                name=f"proc{k % 40}",
                cmdline=f"/usr/bin/proc{k % 40} --worker {k}",
                user="root" if k % 4 == 0 else "daemon",
                cpu_percent=round(rng.uniform(0, 5), 2),
                rss=rng.randrange(1, 100) * 1024 * 1024,
                open_files=rng.randrange(3, 50),
            )
        )
        if k < HOST_LISTENERS:
            conns.append(
                Connection("tcp", "0.0.0.0", 9000 + k, state="LISTEN", pid=pid, netns=host_netns)
            )
    host_procs = [p.pid for p in procs[containers:]]
    while len(conns) < connections and fleet > 1:
        crng = churn_rng if srng.random() < churn else srng
        other = crng.randrange(fleet - 1)
        other = other + 1 if other >= i else other
        local_port = 30000 + len(conns)
        if crng.random() < 0.6:
            j = crng.randrange(containers)
            src_container = crng.randrange(containers)
            conns.append(
                Connection(
                    "tcp",
                    container_ip(i, src_container, containers),
                    local_port,
                    container_ip(other, j, containers),
                    8080,
                    "ESTABLISHED",
                    pid=1000 + src_container,
                    netns=4026600000 + src_container,
                )
            )
        else:
            conns.append(
                Connection(
                    "tcp",
                    host_ip(i),
                    local_port,
                    host_ip(other),
                    9000 + crng.randrange(HOST_LISTENERS),
                    "ESTABLISHED",
                    pid=crng.choice(host_procs),
                    netns=host_netns,
                )
            )
    return Report(
        probe_id=f"probe-{i}",
        host=Host(
            hostname=hostname,
            addresses=("127.0.0.1", host_ip(i)),
            os="Debian GNU/Linux 12 (bookworm)",
            kernel="6.1.0",
            cpus=8,
            memory_total=32 * 2**30,
            memory_used=rng.randrange(4, 30) * 2**30,
            cpu_percent=round(rng.uniform(0, 100), 1),
            load=(1.0, 1.0, 1.0),
            uptime=100000.0,
        ),
        timestamp=time.time() if timestamp is None else timestamp,
        interval=3.0,
        seq=seq,
        host_netns=host_netns,
        processes=tuple(procs),
        connections=tuple(conns),
        containers=tuple(conts),
    )
