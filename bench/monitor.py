"""Benchmark of the monitoring probe and app.

1. Probe: a real probe process (3 s interval) against a private Docker Engine with running
   containers talking to each other, reporting to a real app process; CPU % of one core and
   resident memory over ``--probe-seconds``. Baseline in the same run: an idle Python process
   that imports the same modules.
2. App: a real app process fed by ``--probes`` synthetic probes (about 20 containers, 150
   processes and 300 connections each) at a 3 s interval from a separate load process, while
   an observer holds a WebSocket on the containers topology and fetches the full containers
   topology once a second. Measured over ``--app-seconds``: the app's CPU and memory, p50/p99
   of the full containers topology fetch (baseline: /healthz fetched the same way, i.e. the
   event loop's queueing), p50/p99 from a report leaving the load process to its diff on the
   WebSocket (tracer probes stamp their send time into a container label), ingest responses.
   Ceiling in the same run: CPU per merged report in one process, with and without the
   containers topology built at ingest.

Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from orchestrator_operator.monitor.report import decode_report, encode_report  # noqa: E402
from testenv.processes import free_port  # noqa: E402
from testenv.synthetic_reports import synthetic_report  # noqa: E402

TOKEN = "bench-token"
STAMP = re.compile(r'"label\.bench\.sent":"([0-9.]+)"')
PY = sys.executable


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def start_app(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [PY, "-m", "orchestrator_operator.cli", "app", "--listen", "127.0.0.1",
             "--port", str(port), "--token", TOKEN],
            stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    raise RuntimeError("app did not listen in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Sampler:
    """CPU (as % of one core) and RSS of a process over a window."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.rss: list[float] = []
        self._t0 = 0.0
        self._c0 = 0.0

    def begin(self) -> None:
        t = self.proc.cpu_times()
        self._c0 = t.user + t.system
        self._t0 = time.monotonic()

    def sample(self) -> None:
        self.rss.append(self.proc.memory_info().rss / 2**20)

    def cpu_percent(self) -> float:
        t = self.proc.cpu_times()
        return (t.user + t.system - self._c0) / (time.monotonic() - self._t0) * 100


# -- 1. probe ---------------------------------------------------------------------------------


def bench_probe(seconds: float, containers: int, work: Path) -> dict[str, Any]:
    from testenv.docker import BUSYBOX_IMAGE, DockerEngine, build_busybox_image

    result: dict[str, Any] = {}
    with DockerEngine(work / "docker") as engine:
        client = engine.client()
        build_busybox_image(client)
        servers = []
        for k in range(containers // 2):
            servers.append(
                client.containers.run(
                    BUSYBOX_IMAGE,
                    ["sh", "-c", "httpd -f -p 8080 -h /var/www"],
                    detach=True,
                    name=f"bench-server-{k}",
                    labels={"bench": "server"},
                )
            )
        for k, server in enumerate(servers):
            server.reload()
            ip = server.attrs["NetworkSettings"]["IPAddress"]
            client.containers.run(
                BUSYBOX_IMAGE,
                ["sh", "-c", f"while true; do sleep 20 | nc {ip} 8080; done"],
                detach=True,
                name=f"bench-client-{k}",
                labels={"bench": "client"},
            )
        port = free_port()
        app = start_app(port, work / "probe-bench-app.log")
        probe_log = (work / "probe.log").open("ab")
        probe = subprocess.Popen(
            [PY, "-m", "orchestrator_operator.cli", "probe", "--app",
             f"http://127.0.0.1:{port}", "--token", TOKEN, "--interval", "3",
             "--docker-host", engine.base_url],
            stdout=probe_log, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
        baseline = subprocess.Popen(
            [PY, "-c", "import orchestrator_operator.monitor.probe.agent, time; time.sleep(3600)"],
            cwd=REPO,
        )
        try:
            time.sleep(8)  # first collection and imports done
            s_probe, s_base = Sampler(probe.pid), Sampler(baseline.pid)
            s_probe.begin()
            s_base.begin()
            reports_before = app_reports(port)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                s_probe.sample()
                s_base.sample()
                time.sleep(1)
            result = {
                "probe_cpu_percent_of_one_core": round(s_probe.cpu_percent(), 2),
                "probe_rss_mib_max": round(max(s_probe.rss), 1),
                "probe_rss_mib_mean": round(statistics.mean(s_probe.rss), 1),
                "baseline_idle_import_rss_mib": round(max(s_base.rss), 1),
                "baseline_idle_import_cpu_percent": round(s_base.cpu_percent(), 2),
                "probe_reports_sent": app_reports(port) - reports_before,
                "probe_seconds": seconds,
                "containers": len(client.containers.list()),
                "host_processes": len(psutil.pids()),
            }
            nodes = app_get(port, "/api/topology/containers")
            result["containers_seen_by_app"] = len(nodes["nodes"])
        finally:
            for p in (probe, baseline):
                p.terminate()
                p.wait(15)
            probe_log.close()
            stop(app)
            client.close()
    return result


def app_get(port: int, path: str) -> Any:
    import httpx

    r = httpx.get(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    r.raise_for_status()
    return r.json()


def app_reports(port: int) -> int:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    for line in text.splitlines():
        if line.startswith("orchestrator_monitor_reports_total "):
            return int(float(line.split()[1]))
    return 0


def other_cpu_seconds(exclude: set[int]) -> float:
    """CPU seconds used so far by every other process (to show contention)."""
    total = 0.0
    for p in psutil.process_iter(["pid", "cpu_times"]):
        if p.info["pid"] in exclude or p.info["cpu_times"] is None:
            continue
        t = p.info["cpu_times"]
        total += t.user + t.system
    return total


# -- 2. app under a synthetic fleet -------------------------------------------------------------


def loader_main(port: int, probes: int, interval: float, run_for: float, tracer_every: int,
                out: Any) -> None:  # fmt: skip
    """Load process: every probe posts its (alternating) report every ``interval`` s."""
    variants: list[list[bytes]] = []
    for i in range(probes):
        variants.append(
            [gzip.compress(encode_report(synthetic_report(i, probes, seed=s)), 5) for s in (0, 1)]
        )
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    url = f"http://127.0.0.1:{port}/api/report"
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }

    async def one(session: aiohttp.ClientSession, i: int, t_end: float) -> None:
        rnd = random.Random(i)
        await asyncio.sleep(rnd.uniform(0, interval))
        k = 0
        next_at = time.monotonic()
        while time.monotonic() < t_end:
            if tracer_every and i % tracer_every == 0:
                rep = synthetic_report(i, probes, seed=k % 2)
                first = rep.containers[0]
                first.labels = {**first.labels, "bench.sent": f"{time.time():.6f}"}
                body = gzip.compress(encode_report(rep), 5)
            else:
                body = variants[i][k % 2]
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] = statuses.get(resp.status, 0) + 1
            except aiohttp.ClientError:
                statuses[0] = statuses.get(0, 0) + 1
            latencies.append(time.perf_counter() - t0)
            k += 1
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    async def main() -> None:
        conn = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=conn) as session:
            t_end = time.monotonic() + run_for
            await asyncio.gather(*(one(session, i, t_end) for i in range(probes)))

    out.put({"ready": True})
    asyncio.run(main())
    out.put({"latencies": latencies, "statuses": statuses})


async def observe(port: int, seconds: float, warmup: float) -> dict[str, Any]:
    """WebSocket diff latency (tracer labels) and full-topology fetch latency."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    diff_lat: list[float] = []
    topo_lat: list[float] = []
    topo_ttfb: list[float] = []
    health_lat: list[float] = []
    topo_sizes: list[int] = []
    topo_nodes: list[int] = []
    diff_messages = 0
    seen: set[str] = set()
    measuring = asyncio.Event()

    async def ws_reader(session: aiohttp.ClientSession) -> None:
        nonlocal diff_messages
        url = f"ws://127.0.0.1:{port}/api/topology/containers/ws"
        async with session.ws_connect(url, max_msg_size=0, headers=headers) as ws:
            async for msg in ws:
                now = time.time()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                if not measuring.is_set():
                    continue
                diff_messages += 1
                # Only the tracer stamps matter: find them without decoding ~1 MB messages.
                for sent in STAMP.findall(msg.data):
                    if sent not in seen:
                        seen.add(sent)
                        diff_lat.append(now - float(sent))

    async def fetcher(session: aiohttp.ClientSession, t_end: float) -> None:
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                await r.read()
            health_lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            async with session.get(
                f"http://127.0.0.1:{port}/api/topology/containers", headers=headers
            ) as r:
                topo_ttfb.append(time.perf_counter() - t0)  # headers in: queueing + render
                body = await r.read()
                expected = r.content_length
            topo_lat.append(time.perf_counter() - t0)
            # The whole body arrived (its declared length, a closed JSON object); nodes are
            # counted by their "topology" field (every node has one, plus the wrapper's)
            # rather than by decoding 25 MiB into Python objects in the observer, which
            # shares a core with the load generator and would delay the WebSocket reader.
            if (expected is not None and len(body) != expected) or not body.endswith(b"}}"):
                raise RuntimeError(f"incomplete topology body: {len(body)} of {expected} bytes")
            topo_sizes.append(len(body))
            topo_nodes.append(body.count(b'"topology":"containers"') - 1)
            await asyncio.sleep(1.0)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        reader = asyncio.create_task(ws_reader(session))
        await asyncio.sleep(warmup)
        measuring.set()
        await fetcher(session, time.monotonic() + seconds)
        reader.cancel()
    return {
        "diff_latency": diff_lat,
        "topology_latency": topo_lat,
        "topology_ttfb": topo_ttfb,
        "health_latency": health_lat,
        "topology_bytes": statistics.mean(topo_sizes) if topo_sizes else 0,
        "topology_nodes": topo_nodes[-1] if topo_nodes else 0,
        "topology_nodes_min": min(topo_nodes) if topo_nodes else 0,
        "diff_messages": diff_messages,
    }


def ingest_ceiling(probes: int) -> dict[str, float]:
    """CPU ms per merged report in this process (no HTTP), lazy and containers-eager."""
    from orchestrator_operator.monitor.app.server import AppConfig, MonitorApp

    n = min(probes, 500)
    bodies = [[encode_report(synthetic_report(i, n, seed=s)) for s in (0, 1)] for i in range(n)]
    out: dict[str, float] = {}
    for label, eager in (("lazy", set()), ("containers_eager", {"containers"})):
        app = MonitorApp(AppConfig(token="x"))
        app.store.eager = eager
        for b in bodies:
            app.ingest_bytes(b[0], 1.0)
        t = time.process_time()
        for b in bodies:
            app.ingest_bytes(b[1], 2.0)
        for b in bodies:
            app.ingest_bytes(b[0], 3.0)
        out[f"ingest_cpu_ms_per_report_{label}"] = round(
            (time.process_time() - t) / (2 * n) * 1e3, 3
        )
    raw = [gzip.compress(b[0]) for b in bodies]
    t = time.process_time()
    for g in raw:
        decode_report(gzip.decompress(g))
    out["gunzip_decode_validate_cpu_ms_per_report"] = round((time.process_time() - t) / n * 1e3, 3)
    return out


def bench_app(
    probes: int, seconds: float, interval: float, work: Path, pin: bool
) -> dict[str, Any]:
    port = free_port()
    app = start_app(port, work / "app-bench.log")
    cpus = sorted(os.sched_getaffinity(0))
    if pin and len(cpus) >= 2:
        # The app gets one core, the load generator and the observer the other(s): on one
        # machine they would otherwise compete for the core the app needs.
        os.sched_setaffinity(app.pid, {cpus[0]})
        os.sched_setaffinity(0, set(cpus[1:]))
    ctx = mp.get_context("spawn")
    q: Any = ctx.Queue()
    warmup = interval * 2 + 10
    loader = ctx.Process(
        target=loader_main, args=(port, probes, interval, warmup + seconds + 5, 50, q)
    )
    loader.start()
    if pin and len(cpus) >= 2 and loader.pid is not None:
        os.sched_setaffinity(loader.pid, set(cpus[1:]))
    q.get(timeout=600)  # reports generated, sending starts
    sampler = Sampler(app.pid)
    others: dict[str, float] = {}
    try:
        obs_task: dict[str, Any] = {}

        async def run() -> None:
            obs = asyncio.create_task(observe(port, seconds, warmup))
            await asyncio.sleep(warmup)
            sampler.begin()
            psutil.cpu_percent(None)
            ours = {os.getpid(), app.pid, loader.pid or 0}
            busy0 = other_cpu_seconds(ours)
            t_start = time.monotonic()
            t_end = time.monotonic() + seconds
            while time.monotonic() < t_end:
                sampler.sample()
                await asyncio.sleep(1)
            cpu = sampler.cpu_percent()
            others["machine_cpu_busy_percent"] = round(psutil.cpu_percent(None), 1)
            others["other_processes_cpu_percent_of_one_core"] = round(
                (other_cpu_seconds(ours) - busy0) / (time.monotonic() - t_start) * 100, 1
            )
            obs_task.update(await obs)
            obs_task["cpu"] = cpu

        asyncio.run(run())
        load = q.get(timeout=300)
        loader.join(60)
    finally:
        if loader.is_alive():
            loader.terminate()
        stop(app)
    lat = load["latencies"]
    return {
        "probes": probes,
        "interval_s": interval,
        "seconds": seconds,
        "app_cpu_percent_of_one_core": round(obs_task["cpu"], 1),
        "app_rss_mib_max": round(max(sampler.rss), 1),
        "containers_topology_nodes": obs_task["topology_nodes"],
        "containers_topology_nodes_min": obs_task["topology_nodes_min"],
        "containers_topology_mib": round(obs_task["topology_bytes"] / 2**20, 1),
        "containers_topology_p50_ms": round(pct(obs_task["topology_latency"], 50) * 1e3, 1),
        "containers_topology_p99_ms": round(pct(obs_task["topology_latency"], 99) * 1e3, 1),
        "containers_topology_fetches": len(obs_task["topology_latency"]),
        "containers_topology_headers_p50_ms": round(pct(obs_task["topology_ttfb"], 50) * 1e3, 1),
        "containers_topology_headers_p99_ms": round(pct(obs_task["topology_ttfb"], 99) * 1e3, 1),
        "baseline_healthz_p50_ms": round(pct(obs_task["health_latency"], 50) * 1e3, 1),
        "baseline_healthz_p99_ms": round(pct(obs_task["health_latency"], 99) * 1e3, 1),
        "report_to_diff_p50_ms": round(pct(obs_task["diff_latency"], 50) * 1e3, 1),
        "report_to_diff_p99_ms": round(pct(obs_task["diff_latency"], 99) * 1e3, 1),
        "report_to_diff_samples": len(obs_task["diff_latency"]),
        "diff_messages": obs_task["diff_messages"],
        "ingest_post_p50_ms": round(pct(lat, 50) * 1e3, 1),
        "ingest_post_p99_ms": round(pct(lat, 99) * 1e3, 1),
        "reports_posted": len(lat),
        "report_statuses": {str(k): v for k, v in load["statuses"].items()},
        "pinned": pin and len(cpus) >= 2,
        **others,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-seconds", type=float, default=60)
    parser.add_argument("--probe-containers", type=int, default=10)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--app-seconds", type=float, default=60)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--skip-probe", action="store_true")
    parser.add_argument("--skip-app", action="store_true")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not give the app its own core (by default the load runs on the other)",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"bench": "monitor", "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        work = Path(tmp)
        if not args.skip_probe:
            results["probe"] = bench_probe(args.probe_seconds, args.probe_containers, work)
            print("probe:", json.dumps(results["probe"], indent=1))
        if not args.skip_app:
            results["ceiling"] = ingest_ceiling(args.probes)
            print("ceiling:", json.dumps(results["ceiling"], indent=1))
            results["app"] = bench_app(
                args.probes, args.app_seconds, args.interval, work, not args.no_pin
            )
            print("app:", json.dumps(results["app"], indent=1))
    print(json.dumps(results, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
