"""`python -m testenv`: build, start or measure the local control plane.

python -m testenv build                  # build/cache the binaries, print their directory
python -m testenv up --nodes 3 --dir .testenv   # run until SIGINT/SIGTERM
python -m testenv measure --nodes 5000   # start, report start-up time and memory, stop
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from .kube import KubeTestEnv, TestEnvError, build_binaries


def _up(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    ready_marker = base_dir / "ready"
    ready_marker.unlink(missing_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    env = KubeTestEnv(nodes=args.nodes, base_dir=base_dir)
    try:
        env.start()
        ready_marker.write_text(str(env.kubeconfig))
        print(f"testenv: {args.nodes} nodes ready; KUBECONFIG={env.kubeconfig}", flush=True)
        print(f"testenv: kubectl is {env.kubectl}; logs in {base_dir / 'logs'}", flush=True)
        stop.wait()
    finally:
        ready_marker.unlink(missing_ok=True)
        env.stop()
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


if __name__ == "__main__":
    raise SystemExit(main())
