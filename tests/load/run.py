"""Run the load tests headless, time-boxed, and check their thresholds (tests/load/thresholds.yaml).

    python -m tests.load.run                       # local: testenv, ZooKeeper, operator, app
    python -m tests.load.run --suite app --seconds 30
    LOAD_APP_TOKEN=... python -m tests.load.run --target remote --suite app \
        --app-url https://monitor.staging.example
    KUBECONFIG=... python -m tests.load.run --target remote --suite operator \
        --zk-connect zk-0.zk:2181 --namespace load-test

Local: a real control plane (testenv, 3 nodes), a 1-server ZooKeeper, the operator and the
monitoring app as subprocesses (the app's token from the environment, never in argv); the
app suite also runs 20 synthetic probes (Locust's ProbeUser) so the topologies have hosts.
Remote: what is given (an app URL and its token in LOAD_APP_TOKEN; a kubeconfig whose
identity may create, patch, delete and watch MesosClusters and ProbeFleets in --namespace);
no synthetic probe reports unless --probe-reports.

Each suite is one `locust --headless` subprocess; its CSV statistics go to --out
(default build/load/<suite>_stats.csv), the verdicts to --out/summary.json, and locally the
operator's and the app's logs beside them. The exit status
is 1 when any threshold fails (or Locust fails to run), else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LOCUSTFILES = {"app": HERE / "app_locustfile.py", "operator": HERE / "operator_locustfile.py"}


@dataclass
class Row:
    name: str
    requests: int
    failures: int
    p50: float
    p95: float
    p99: float


def read_stats(path: Path) -> dict[str, Row]:
    """Locust's `<prefix>_stats.csv`: one row per request name and "Aggregated"."""
    rows: dict[str, Row] = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):

            def pct(key: str, r: dict[str, str] = r) -> float:
                value = r.get(key) or "0"
                return float(value) if value != "N/A" else 0.0

            rows[r["Name"]] = Row(
                r["Name"], int(r["Request Count"]), int(r["Failure Count"]),
                pct("50%"), pct("95%"), pct("99%"),
            )  # fmt: skip
    return rows


def check(rows: dict[str, Row], limits: dict[str, Any]) -> list[str]:
    """The failed thresholds, in words (empty: the suite passed)."""
    failed: list[str] = []
    total = rows.get("Aggregated")
    if total is None or total.requests == 0:
        return ["no requests were made"]
    minimum = int(limits.get("min_requests", 1))
    if total.requests < minimum:
        failed.append(f"{total.requests} requests, fewer than the minimum {minimum}")
    rate = total.failures / total.requests
    if rate > float(limits.get("max_error_rate", 0.0)):
        failed.append(
            f"error rate {rate:.2%} ({total.failures}/{total.requests}) over "
            f"{float(limits['max_error_rate']):.2%}"
        )
    for name, p95_limit in (limits.get("p95_ms") or {}).items():
        row = rows.get(name)
        if row is None or row.requests == 0:
            failed.append(f"{name}: no requests (expected some)")
        elif row.p95 > float(p95_limit):
            failed.append(f"{name}: p95 {row.p95:.0f} ms over {p95_limit} ms")
    return failed


def run_locust(
    suite: str, host: str, users: int, spawn_rate: float, seconds: int, out: Path,
    env: dict[str, str], classes: list[str],
) -> dict[str, Row]:  # fmt: skip
    prefix = out / suite
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILES[suite]), "--headless",
        *(["--host", host] if host else []), "--users", str(users), "--spawn-rate", str(spawn_rate),
        "--run-time", f"{seconds}s", "--stop-timeout", "20", "--csv", str(prefix),
        "--only-summary", "--loglevel", "WARNING", *classes,
    ]  # fmt: skip
    print(f"== {suite}: {users} users for {seconds} s against {host}", flush=True)
    result = subprocess.run(
        argv, env={**os.environ, **env, "PYTHONPATH": str(REPO)}, cwd=REPO,
        timeout=seconds + 180, check=False,
    )  # fmt: skip
    stats = Path(f"{prefix}_stats.csv")
    if not stats.exists():
        raise RuntimeError(f"locust exited {result.returncode} without statistics")
    return read_stats(stats)


def report(suite: str, rows: dict[str, Row], failed: list[str]) -> None:
    print(f"\n{suite}: {'PASS' if not failed else 'FAIL'}")
    head = ("requests", "failures", "p50 ms", "p95 ms", "p99 ms")
    print(f"  {'name':40} " + " ".join(f"{h:>9}" for h in head))
    for row in rows.values():
        print(
            f"  {row.name[:40]:40} {row.requests:>9} {row.failures:>9} "
            f"{row.p50:>9.0f} {row.p95:>9.0f} {row.p99:>9.0f}"
        )
    for line in failed:
        print(f"  threshold failed: {line}")


# -- the local environment ----------------------------------------------------------------


def _print_usage(what: str, process: psutil.Process, cpu_before: float, started: float) -> None:
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    elapsed = time.monotonic() - started
    print(
        f"{what}: {cpu:.0f} s of CPU in {elapsed:.0f} s ({cpu / elapsed:.0%} of a core), "
        f"resident {process.memory_info().rss / 2**20:.0f} MiB; machine load "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )


@contextlib.contextmanager
def local_app(tmp: Path) -> Iterator[tuple[str, str]]:
    """The monitoring app on a free loopback port; (url, token)."""
    import httpx

    from testenv.processes import ManagedProcess, free_port

    token = secrets.token_urlsafe(24)
    port = free_port()
    app = ManagedProcess(
        "monitor-app",
        [sys.executable, "-m", "orchestrator_operator.cli", "app",
         "--listen", "127.0.0.1", "--port", str(port)],
        tmp, {**os.environ, "ORCHESTRATOR_MONITOR_TOKEN": token},
    )  # fmt: skip
    app.start()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if not app.running():
                raise RuntimeError(f"the app exited:\n{app.log_tail(40)}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app did not answer:\n{app.log_tail(40)}")
            time.sleep(0.2)
        assert app.pid is not None
        process = psutil.Process(app.pid)
        before, started = sum(process.cpu_times()[:2]), time.monotonic()
        yield url, token
        _print_usage("app", process, before, started)
    finally:
        app.stop()


@contextlib.contextmanager
def local_operator(tmp: Path, namespace: str) -> Iterator[tuple[str, str, str]]:
    """testenv, a ZooKeeper server and the operator; (API server URL, kubeconfig, ZooKeeper)."""
    from testenv.kube import KubeTestEnv
    from testenv.operator import OperatorProcess
    from testenv.zookeeper import ZkEnsemble

    with (
        ZkEnsemble(1, base_dir=tmp / "zk") as zk,
        KubeTestEnv(nodes=3, base_dir=tmp / "kube") as env,
    ):
        env.install_crds()
        env.api("POST", "/api/v1/namespaces", {"metadata": {"name": namespace}})
        operator = OperatorProcess(env, tmp / "operator.log")
        try:
            operator.wait_ready()
            process = psutil.Process(operator.process.pid)
            before = sum(process.cpu_times()[:2])
            started = time.monotonic()
            yield env.server, str(env.kubeconfig), zk.connect_string
            _print_usage("operator", process, before, started)
        finally:
            operator.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=("local", "remote"), default="local")
    parser.add_argument("--suite", choices=("app", "operator", "all"), default="all")
    parser.add_argument("--seconds", type=int, default=60, help="run time of each suite")
    parser.add_argument("--app-users", type=int, default=40)
    parser.add_argument("--operator-users", type=int, default=10)
    parser.add_argument("--resources", type=int, default=100, help="custom resources to create")
    parser.add_argument("--app-url", help="remote: the monitoring app's base URL")
    parser.add_argument("--zk-connect", help="remote: the MesosClusters' external ZooKeeper")
    parser.add_argument("--namespace", default="load-test")
    parser.add_argument(
        "--probe-reports",
        action="store_true",
        help="remote: also post synthetic probe reports (needs the read-write token)",
    )
    parser.add_argument("--thresholds", type=Path, default=HERE / "thresholds.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "load")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 1800:
        parser.error("--seconds must be between 1 and 1800")
    suites = ("app", "operator") if args.suite == "all" else (args.suite,)
    if args.target == "remote":
        if "app" in suites and not args.app_url:
            parser.error("--app-url is required for the app suite with --target remote")
        if "app" in suites and not os.environ.get("LOAD_APP_TOKEN"):
            parser.error("LOAD_APP_TOKEN must hold the app's token")
        if "operator" in suites and not (args.zk_connect and os.environ.get("KUBECONFIG")):
            parser.error("the operator suite needs --zk-connect and KUBECONFIG")
    limits = yaml.safe_load(args.thresholds.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {}
    ok = True
    with tempfile.TemporaryDirectory(prefix="load-") as tmpdir:
        tmp = Path(tmpdir)
        for suite in suites:
            with contextlib.ExitStack() as stack:
                env: dict[str, str] = {}
                if suite == "app":
                    classes = ["ApiUser", "ViewerUser"]
                    if args.target == "local":
                        host, token = stack.enter_context(local_app(tmp))
                        env["LOAD_APP_TOKEN"] = token
                    else:
                        host = args.app_url
                    if args.target == "local" or args.probe_reports:
                        classes.append("ProbeUser")
                        env |= {"LOAD_PROBE_REPORTS": "1", "LOAD_PROBES": "20"}
                    users = args.app_users
                else:
                    classes = ["OperatorUser"]
                    if args.target == "local":
                        host, kubeconfig, zk = stack.enter_context(
                            local_operator(tmp, args.namespace)
                        )
                        env["KUBECONFIG"] = kubeconfig
                    else:
                        host, zk = "", args.zk_connect  # the API server: the kubeconfig's
                    env |= {
                        "LOAD_ZK_CONNECT": zk,
                        "LOAD_NAMESPACE": args.namespace,
                        "LOAD_RESOURCES": str(args.resources),
                    }
                    users = args.operator_users
                try:
                    rows = run_locust(
                        suite,
                        host,
                        users,
                        max(1.0, users / 5),
                        args.seconds,
                        args.out,
                        env,
                        classes,
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"{suite}: FAIL ({exc})")
                    summary[suite] = {"passed": False, "failed": [str(exc)]}
                    ok = False
                    continue
            failed = check(rows, limits[suite])
            report(suite, rows, failed)
            ok = ok and not failed
            summary[suite] = {
                "passed": not failed,
                "failed": failed,
                "rows": {n: vars(r) for n, r in rows.items()},
            }
        for log in (tmp / "operator.log", tmp / "monitor-app.log"):  # for a failed run
            if log.exists():
                shutil.copy(log, args.out / log.name)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({s: v["passed"] for s, v in summary.items()}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
