"""`python -m sim marathon ...`: Marathon 1.11's command line, as far as the sim models it.

- `Main.envToArgs` (`Main.scala`): every environment variable `MARATHON_<NAME>` (except
  `MARATHON_APP_*`) becomes `--<name> <value>` (an empty value: a bare boolean flag), before
  the real arguments. So a Kubernetes service link such as `MARATHON_PORT=tcp://...` becomes
  `--port ...`, which Marathon does not know.
- Scallop (`AllConf` calls `verify()`): an unknown option, a missing required one or a value
  that does not parse prints `[scallop] Error: ...` and exits 1.
- `--zk` and `--master` follow `ZookeeperConf.ZkUrlPattern`: `zk://[user:pass@]host[:port][,...]/path`
  with no trailing `/` and nothing around it (Marathon does not trim).
- `--http_credentials` defaults to `$MESOSPHERE_HTTP_CREDENTIALS` (`HttpConf.scala`).
- `--mesos_authentication` needs `--mesos_authentication_principal` (`dependsOnAll`);
  `--mesos_authentication_secret` and `--mesos_authentication_secret_file` exclude each other.

`--ip` (the listen address), `--port` (= `--http_port`) and a `--zk_session_timeout` with a
decimal point or a unit (seconds: `4.0`, `10secs`) are the sim's own; a whole number is
Marathon's milliseconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NoReturn

from sim.marathon import auth, events
from sim.zkurl import ZkUrl

if TYPE_CHECKING:
    from sim.marathon.server import MarathonConfig

log = logging.getLogger("sim.marathon")

EXIT_INVALID_FLAGS = 1  # scallop's errorMessageHandler: sys.exit(1)
EXIT_UNCAUGHT = 107  # CrashStrategy.UncaughtException (the secret file cannot be read)

# ZookeeperConf.ZkUrlPattern
_ZK_URL = re.compile(
    r"zk://(?:([^/:]+):([^@]+)@)?"
    r"([A-z0-9\-.]+(?::\d+)?(?:,[A-z0-9\-.]+(?::\d+)?)*)"
    r"(/[^/]+(?:/[^/]+)*)"
)


class ScallopError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ScallopError(message)


def zk_url(value: str) -> ZkUrl:
    match = _ZK_URL.fullmatch(value)
    if match is None:
        shown = re.sub(r"//[^@/]*@", "//xxxxxxxx:xxxxxxxx@", value)
        raise argparse.ArgumentTypeError(
            f"{shown} is not a valid zk url; it should formatted like "
            "zk://user:pass@host1:port1,host2:port2/path, or zk://host1:port1,host2:port2/marathon"
        )
    return ZkUrl.parse(value)


def _zk_session_timeout(text: str) -> float:
    """Marathon's --zk_session_timeout is whole milliseconds (ZookeeperConf, opt[Long]); a value
    with a decimal point or a unit (`4.0`, `10secs`) is the sim's own, in seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text) / 1000
    return _seconds(text)


def _seconds(text: str) -> float:
    text = text.strip()
    for suffix, scale in (("ms", 0.001), ("secs", 1.0), ("mins", 60.0), ("s", 1.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def parser() -> argparse.ArgumentParser:
    r = _Parser(prog="python -m sim marathon", add_help=False, allow_abbrev=False)
    r.add_argument("--master", required=True, type=zk_url, help="zk://.../mesos")
    r.add_argument("--zk", required=True, type=zk_url, help="zk://.../marathon")
    r.add_argument("--http_port", "--port", dest="port", type=int, default=8080)
    r.add_argument("--ip", default="127.0.0.1")
    r.add_argument("--hostname", default="")
    r.add_argument("--zk_session_timeout", type=_zk_session_timeout, default=10.0)
    r.add_argument("--framework_name", default="marathon")
    r.add_argument("--http_credentials", default=None)
    r.add_argument("--http_realm", default=auth.DEFAULT_REALM)
    r.add_argument("--leader_proxy_connection_timeout", type=int, default=5000, help="ms")
    r.add_argument("--leader_proxy_read_timeout", type=int, default=10000, help="ms")
    r.add_argument(
        "--event_stream_max_outstanding_messages", type=int, default=events.MAX_OUTSTANDING
    )
    r.add_argument("--mesos_authentication", action="store_true", default=False)
    r.add_argument(
        "--disable_mesos_authentication", dest="mesos_authentication", action="store_false"
    )
    r.add_argument("--mesos_authentication_principal", default=None)
    r.add_argument("--mesos_authentication_secret_file", default=None)
    r.add_argument("--mesos_authentication_secret", default=None)
    return r


def env_to_args(environ: Mapping[str, str]) -> list[str]:
    """Main.envToArgs."""
    out: list[str] = []
    for key, value in environ.items():
        if key.startswith("MARATHON_APP_") or not key.startswith("MARATHON_"):
            continue
        out.append(f"--{key[len('MARATHON_') :].lower()}")
        if value:
            out.append(value)
    return out


def parse(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    """Parse as Marathon does, or raise ScallopError."""
    args, extra = parser().parse_known_args([*env_to_args(environ), *argv])
    if extra:
        first = extra[0]
        if first.startswith("-"):
            raise ScallopError(f"Unknown option '{first.lstrip('-').split('=', 1)[0]}'")
        raise ScallopError(f"Excess arguments provided: '{' '.join(extra)}'")
    if args.mesos_authentication and not args.mesos_authentication_principal:
        raise ScallopError(
            "When specifying 'mesos_authentication', you must also specify "
            "'mesos_authentication_principal'"
        )
    if args.mesos_authentication_secret and args.mesos_authentication_secret_file:
        raise ScallopError(
            "Option 'mesos_authentication_secret' cannot be used together with "
            "'mesos_authentication_secret_file'"
        )
    if args.http_credentials is None:
        args.http_credentials = environ.get("MESOSPHERE_HTTP_CREDENTIALS")
    return args


def load(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> MarathonConfig | int:
    """The configuration, or the exit code of a Marathon that does not start."""
    from sim.marathon.server import MarathonConfig

    env = os.environ if environ is None else environ
    try:
        args = parse(argv, env)
    except ScallopError as exc:
        print(f"[scallop] Error: {exc}", file=sys.stderr, flush=True)
        return EXIT_INVALID_FLAGS
    credentials = None
    if args.http_credentials is not None:
        credentials = auth.parse_http_credentials(args.http_credentials)
        if credentials is None:
            log.error(auth.CREDENTIALS_FORMAT_ERROR)
    principal, secret = None, ""
    if args.mesos_authentication:
        principal = args.mesos_authentication_principal
        secret = args.mesos_authentication_secret or ""
        if args.mesos_authentication_secret_file:
            try:
                secret = auth.read_secret_file(args.mesos_authentication_secret_file)
            except auth.SecretFileError as exc:
                log.error("%s", exc)
                return EXIT_UNCAUGHT
        log.info("Authenticate with Mesos as %s", principal)
    return MarathonConfig(
        master=args.master,
        zk=args.zk,
        port=args.port,
        ip=args.ip,
        hostname=args.hostname,
        zk_session_timeout=args.zk_session_timeout,
        framework_name=args.framework_name,
        http_credentials=credentials,
        http_realm=args.http_realm,
        leader_proxy_connection_timeout=args.leader_proxy_connection_timeout / 1000,
        leader_proxy_read_timeout=args.leader_proxy_read_timeout / 1000,
        event_stream_max_outstanding_messages=args.event_stream_max_outstanding_messages,
        mesos_principal=principal,
        mesos_secret=secret,
    )
