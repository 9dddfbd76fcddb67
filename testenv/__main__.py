"""`python -m testenv`: build, start or measure the local control plane.

python -m testenv build                  # build/cache the binaries, print their directory
python -m testenv up --nodes 3 --dir .testenv   # run until SIGINT/SIGTERM
python -m testenv up --nodes 3 --dir .testenv --sim-pods default
    # ... and run the pods of namespace `default` as programs: a real ZooKeeper server behind
    # each ZooKeeper pod, the simulator (sim/) behind Mesos masters, agents and Marathon
    # (testenv/simpods.py); the cluster's names for them in <dir>/hosts (cluster_dns.py)
python -m testenv measure --nodes 5000   # start, report start-up time and memory, stop
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from .kube import KubeTestEnv, TestEnvError, build_binaries

LOCK_NAME = "lock"


def claim_dir(base_dir: Path) -> TextIO:
    """Hold `<dir>/lock` for this process's life and empty the rest of the directory: each
    `up` starts a fresh cluster, whatever an earlier run (even a killed one) left there."""
    base_dir.mkdir(parents=True, exist_ok=True)
    known = {LOCK_NAME, "pki", "etcd", "kubeconfig", "logs", "kwok-stages.yaml"}
    if any(base_dir.iterdir()) and not known & {c.name for c in base_dir.iterdir()}:
        raise TestEnvError(f"{base_dir} is not a testenv directory: refusing to empty it")
    lock = (base_dir / LOCK_NAME).open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise TestEnvError(
            f"{base_dir} is in use by a running testenv (pid {holder}); stop it first"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for child in base_dir.iterdir():
        if child.name == LOCK_NAME:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    return lock


def _up(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir).resolve()
    lock = claim_dir(base_dir)
    ready_marker = base_dir / "ready"
    stop = threading.Event()
    starting = True

    def on_signal(*_: object) -> None:
        stop.set()
        if starting:  # abandon the start (KubeTestEnv.start stops what it started)
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    env = KubeTestEnv(nodes=args.nodes, base_dir=base_dir)
    pods = None
    try:
        env.start()
        if args.sim_pods:
            from .simpods import SimPodRunner

            hosts = base_dir / "hosts"
            hosts.touch()
            pods = SimPodRunner(env, args.sim_pods, base_dir / "simpods", cluster_dns=hosts).start()
            print(
                f"testenv: the pods of namespace {args.sim_pods} run as programs"
                f" (logs in {pods.logs_dir}); cluster names in {hosts}",
                flush=True,
            )
        starting = False
        ready_marker.write_text(str(env.kubeconfig))
        print(f"testenv: {args.nodes} nodes ready; KUBECONFIG={env.kubeconfig}", flush=True)
        print(f"testenv: kubectl is {env.kubectl}; logs in {base_dir / 'logs'}", flush=True)
        stop.wait()
    finally:
        ready_marker.unlink(missing_ok=True)
        if pods is not None:
            pods.stop()
        env.stop()
        with contextlib.suppress(OSError):
            (base_dir / "kubeconfig").unlink()  # nothing answers it any more
        lock.close()
        print("testenv: stopped", flush=True)
    return 0


def _measure(args: argparse.Namespace) -> int:
    env = KubeTestEnv(nodes=args.nodes)
    with env:
        figures = {
            "nodes": args.nodes,
            "startup_seconds": {k: round(v, 1) for k, v in env.startup_seconds.items()},
            "rss_mib": {k: round(v / 2**20) for k, v in env.resident_memory().items()},
        }
    print(f"testenv with {args.nodes} KWOK nodes")
    for name, seconds in figures["startup_seconds"].items():
        print(f"  {name:<26} {seconds:>8.1f} s")
    for name, mib in figures["rss_mib"].items():
        print(f"  RSS {name:<22} {mib:>8} MiB")
    print(json.dumps({"bench": "testenv", **figures}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m testenv")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the binaries (cached) and print their directory")
    up = sub.add_parser("up", help="run the control plane until interrupted")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--dir", default=".testenv")
    up.add_argument(
        "--sim-pods",
        metavar="NAMESPACE",
        help="run this namespace's ZooKeeper, Mesos and Marathon pods as programs",
    )
    measure = sub.add_parser("measure", help="start, print start-up time and memory, stop")
    measure.add_argument("--nodes", type=int, default=5000)
    args = parser.parse_args()
    try:
        if args.command == "build":
            print(build_binaries())
            return 0
        return _up(args) if args.command == "up" else _measure(args)
    except TestEnvError as error:
        print(f"testenv: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("testenv: interrupted while starting", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
