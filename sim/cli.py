"""`python -m sim master|agent|marathon ...`: flags named after Mesos' and Marathon's."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from sim.resources import DEFAULT_AGENT_RESOURCES
from sim.zkurl import ZkUrl


def _seconds(text: str) -> float:
    """`10`, `10secs`, `500ms`, `2mins` -> seconds (Mesos duration style)."""
    text = text.strip()
    for suffix, scale in (("ms", 0.001), ("secs", 1.0), ("mins", 60.0), ("s", 1.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def _zk_flag(value: str) -> ZkUrl:
    """`--zk`: a zk:// URL or `file:///path` holding one (stout `flags/fetch.hpp`)."""
    try:
        return ZkUrl.flag(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bool(text: str) -> bool:
    """A Mesos boolean flag value (`--flag`, `--flag=true|false|1|0`)."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    sub = p.add_subparsers(dest="role", required=True)

    m = sub.add_parser("master", help="a Mesos master")
    m.add_argument(
        "--zk",
        required=True,
        type=_zk_flag,
        help="zk://[user:pass@]host:port[,...]/path or file://",
    )
    m.add_argument("--port", type=int, default=5050)
    m.add_argument("--ip", default="127.0.0.1")
    m.add_argument("--hostname", default="")
    m.add_argument("--quorum", type=int, default=1)
    m.add_argument("--cluster", default="sim")
    m.add_argument("--zk_session_timeout", type=_seconds, default=10.0)
    m.add_argument("--registry_fetch_timeout", type=_seconds, default=60.0)
    m.add_argument("--registry_store_timeout", type=_seconds, default=20.0)
    m.add_argument("--agent_disconnect_timeout", type=_seconds, default=3.0)
    m.add_argument("--agent_removal_timeout", type=_seconds, default=75.0)
    m.add_argument("--work_dir", type=Path, default=None, help="the replicated log's replica")
    for flag in ("--authenticate_agents", "--authenticate_frameworks"):
        m.add_argument(flag, type=_bool, nargs="?", const=True, default=False)
    m.add_argument("--credentials", default=None, help='JSON {"credentials": [...]} file')

    a = sub.add_parser("agent", help="a Mesos agent")
    a.add_argument("--zk", "--master", dest="zk", required=True, type=_zk_flag)
    a.add_argument("--port", type=int, default=5051)
    a.add_argument("--ip", default="127.0.0.1")
    a.add_argument("--hostname", default="")
    a.add_argument("--work-dir", "--work_dir", dest="work_dir", required=True, type=Path)
    a.add_argument("--resources", default=DEFAULT_AGENT_RESOURCES)
    a.add_argument("--recover", choices=("reconnect", "cleanup"), default="reconnect")
    a.add_argument("--credential", default=None, help='JSON {"principal", "secret"} file')
    a.add_argument("--containerizers", default="mesos", help="mesos, docker or both")
    a.add_argument("--docker", default="docker", help="the docker CLI")
    a.add_argument("--docker_socket", default="/var/run/docker.sock")
    a.add_argument("--isolation", default="posix/cpu,posix/mem")
    a.add_argument("--cgroups_hierarchy", type=Path, default=Path("/sys/fs/cgroup"))
    a.add_argument("--cgroups_root", default="mesos")
    a.add_argument("--cgroups_enable_cfs", type=_bool, nargs="?", const=True, default=False)
    a.add_argument("--registration_backoff_factor", type=_seconds, default=1.0)
    # Accepted as Mesos takes them; the sim has nothing to do with them.
    for ignored in ("--strict", "--systemd_enable_support"):
        a.add_argument(ignored, type=_bool, nargs="?", const=True, default=None)
    for ignored in ("--docker_mesos_image", "--attributes"):
        a.add_argument(ignored, default=None)

    r = sub.add_parser("marathon", help="Marathon (flags: sim/marathon/cli.py)", add_help=False)
    r.add_argument("marathon_args", nargs=argparse.REMAINDER)
    c = sub.add_parser("cluster", help="a whole SimCluster in the foreground (Ctrl-C stops it)")
    c.add_argument("--zk", required=True, help="ZooKeeper connect string host:port[,...]")
    c.add_argument("--masters", type=int, default=3)
    c.add_argument("--agents", type=int, default=2)
    c.add_argument("--marathons", type=int, default=1)
    c.add_argument("--namespace", default=None, help="ZooKeeper prefix (default /sim-<id>)")
    c.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return p


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cluster(args: argparse.Namespace) -> int:
    import json
    import time

    from sim.cluster import SimCluster

    signal.signal(signal.SIGTERM, _interrupt)
    with SimCluster(
        args.zk,
        masters=args.masters,
        agents=args.agents,
        marathons=args.marathons,
        namespace=args.namespace,
    ) as cluster:
        summary = {
            "mesos_zk": cluster.mesos_zk,
            "marathon_zk": cluster.marathon_zk,
            "masters": [cluster.master_url(i) for i in range(args.masters)],
            "agents": [cluster.agent_url(j) for j in range(args.agents)],
            "marathons": [cluster.marathon_instance_url(k) for k in range(args.marathons)],
            "logs": str(cluster.base_dir / "logs"),
        }
        print(json.dumps(summary, indent=2), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
    return 0


def _run(coro: Coroutine[Any, Any, None]) -> int:
    """Run a server; SIGTERM/SIGINT cancel it so that it closes its ZooKeeper session."""

    async def guarded() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await coro

    asyncio.run(guarded())
    return 0


def _marathon(argv: list[str]) -> int:
    """Marathon parses its own command line and environment (Main.envToArgs, scallop)."""
    from sim.marathon import cli as marathon_cli
    from sim.marathon.server import serve as serve_marathon

    port = next((a.split("=", 1)[1] for a in argv if a.startswith(("--port=", "--http_port="))), "")
    logging.basicConfig(
        level=os.environ.get("SIM_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s marathon:{port} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    loaded = marathon_cli.load(argv)
    if isinstance(loaded, int):
        return loaded
    return _run(serve_marathon(loaded))


def parse_command(argv: Sequence[str]) -> argparse.Namespace:
    """A command line as `main` reads it (Marathon's own parser for `marathon`, without its
    environment); raises SystemExit, or the Marathon parser's error, on a bad one."""
    from sim.marathon import cli as marathon_cli

    if list(argv[:1]) == ["marathon"]:
        args = marathon_cli.parse(argv[1:], {})
        args.role = "marathon"
        return args
    return parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["marathon"]:
        return _marathon(argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("SIM_LOG_LEVEL", "INFO"),
        format=f"%(asctime)s {args.role}:{args.port} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("kazoo").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if args.role == "cluster":
        return _cluster(args)
    if args.role == "master":
        from sim.master.auth import CredentialsError, insecure_permissions, read_credentials
        from sim.master.server import MasterConfig, serve

        credentials = None
        if args.credentials:
            try:
                credentials = read_credentials(args.credentials)
            except CredentialsError as exc:
                logging.getLogger("sim.master").error("%s", exc)
                return 1
            if insecure_permissions(args.credentials):
                logging.getLogger("sim.master").warning(
                    "Permissions on credentials file '%s' are too open; it is recommended "
                    "that your credentials file is NOT accessible by others",
                    args.credentials,
                )

        return _run(
            serve(
                MasterConfig(
                    zk=args.zk,
                    port=args.port,
                    ip=args.ip,
                    hostname=args.hostname,
                    quorum=args.quorum,
                    cluster=args.cluster,
                    zk_session_timeout=args.zk_session_timeout,
                    registry_fetch_timeout=args.registry_fetch_timeout,
                    registry_store_timeout=args.registry_store_timeout,
                    agent_disconnect_timeout=args.agent_disconnect_timeout,
                    agent_removal_timeout=args.agent_removal_timeout,
                    work_dir=args.work_dir,
                    authenticate_agents=args.authenticate_agents,
                    authenticate_frameworks=args.authenticate_frameworks,
                    credentials=credentials,
                )
            )
        )
    if args.role == "agent":
        from sim.agent.credential import CredentialError, read_credential
        from sim.agent.server import AgentConfig
        from sim.agent.server import serve as serve_agent

        credential = None
        if args.credential:
            try:
                credential = read_credential(args.credential)
            except CredentialError as exc:
                logging.getLogger("sim.agent").error("%s", exc)
                return 1
            logging.getLogger("sim.agent").info(
                "Agent using credential for: %s", credential.principal
            )
        containerizers = tuple(c.strip() for c in args.containerizers.split(",") if c.strip())
        unknown = set(containerizers) - {"mesos", "docker"}
        if not containerizers or unknown:
            logging.getLogger("sim.agent").error(
                "Failed to create a containerizer: Unknown or unsupported containerizer: %s",
                ",".join(sorted(unknown)) or "(none)",
            )
            return 1
        return _run(
            serve_agent(
                AgentConfig(
                    zk=args.zk,
                    port=args.port,
                    work_dir=args.work_dir,
                    ip=args.ip,
                    hostname=args.hostname,
                    resources=args.resources,
                    recover=args.recover,
                    credential=credential,
                    containerizers=containerizers,
                    docker=args.docker,
                    docker_socket=args.docker_socket,
                    isolation=args.isolation,
                    cgroups_hierarchy=args.cgroups_hierarchy,
                    cgroups_root=args.cgroups_root,
                    cgroups_enable_cfs=args.cgroups_enable_cfs,
                    registration_backoff_factor=args.registration_backoff_factor,
                )
            )
        )
    return _marathon(list(args.marathon_args))
