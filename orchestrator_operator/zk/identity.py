"""Whether two connect strings reach the same ZooKeeper ensemble, by what its servers say.

Syncing an ensemble onto itself destroys data: the engine takes over the clients'
ephemerals and deletes them when it stops. A connect string does not say which ensemble it
reaches (the same servers can be listed in another order, by another name, or only some of
them), so each server is asked: its resolved address and port, and its ``conf`` four-letter
word (``serverId`` and, with dynamic configuration, the ``server.N=`` membership lines).

- :func:`read_ensemble` does the I/O (name resolution, ``conf``) for one connect string;
- :func:`same_ensemble` decides, a pure function over two such readings;
- :func:`check_distinct` reads both, logs how sure the answer is, and raises
  :class:`SameEnsembleError` (a :class:`SyncError`) when they are the same ensemble.

Two connect strings are the same ensemble when a server answers for both (the same resolved
address and port), when both memberships list the same server (the same resolved peer
address and port), or when one side's membership names a server of the other side's
connect string as a member. Members listed by a wildcard address (``0.0.0.0``) or by a name
that does not resolve here are not compared; members listed by a loopback address only
when the server that lists them was itself reached through a loopback address (otherwise
``127.0.0.1`` means that server's host, not this one). When no server of a side answers
``conf`` (not in ``4lw.commands.whitelist``, unreachable) only the resolved host:port of
the connect strings are compared, and the log says so.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from orchestrator_operator.zk.connection import SyncError, validate_hosts
from orchestrator_operator.zk.four_letter import connect_string_hosts, four_letter_word

log = logging.getLogger(__name__)

FOUR_LETTER_TIMEOUT = 3.0

# (address, port) of a resolved name, or ("name:<host>", port) when the name does not resolve
Endpoint = tuple[str, int]


class SameEnsembleError(SyncError):
    """Source and target are the same ensemble: syncing it onto itself would destroy data."""


# ----------------------------------------------------------------------------- readings


@dataclass(frozen=True)
class Member:
    """One ``server.N=host:peer:election[:role][;[clientHost:]clientPort]`` line."""

    server_id: int
    host: str
    peer_port: int
    election_port: int
    client_host: str | None = None  # None: the server's own host (``;2181``)
    client_port: int | None = None  # None: not in the line (static configuration)

    def describe(self) -> str:
        return f"server.{self.server_id}={_join(self.host, self.peer_port)}"


@dataclass(frozen=True)
class ServerConf:
    """What a server's ``conf`` says about who it is."""

    server_id: int | None
    client_port: int | None
    members: tuple[Member, ...] = ()  # empty: a standalone server (no membership)


@dataclass(frozen=True)
class ServerReading:
    """One ``host:port`` of a connect string as read from here."""

    host: str
    port: int
    addresses: frozenset[str] = frozenset()  # empty when the name does not resolve
    conf: ServerConf | None = None
    problem: str | None = None  # why there is no conf

    @property
    def endpoint(self) -> str:
        return _join(self.host, self.port)

    @property
    def local(self) -> bool:
        """Reached through a loopback address: this host."""
        return bool(self.addresses) and all(_is_loopback(a) for a in self.addresses)

    def endpoints(self) -> frozenset[Endpoint]:
        if self.addresses:
            return frozenset((a, self.port) for a in self.addresses)
        return frozenset({(f"name:{self.host.lower()}", self.port)})


@dataclass(frozen=True)
class EnsembleReading:
    """One connect string: each of its servers, and the addresses of the hosts that their
    memberships name (resolved here; a name that does not resolve is absent or empty)."""

    connect: str
    servers: tuple[ServerReading, ...]
    resolved: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    same: bool
    reason: str = ""  # why they are the same, e.g. "server 127.0.0.1:2181 answers for both"
    confirmed: bool = True  # False: no server of a side answered conf; host:port only
    notes: tuple[str, ...] = ()  # what could not be read, for the log

    def message(self) -> str:
        return (
            f"source and target are the same ZooKeeper ensemble ({self.reason}); "
            "refusing to sync an ensemble onto itself"
        )


# ----------------------------------------------------------------------------- parsing


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split_host(text: str) -> tuple[str, str]:
    """``host:rest`` or ``[v6]:rest`` -> (host, rest)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, rest = text.partition(":")
    return host, rest


_SERVER_LINE = re.compile(r"^server\.(\d+)=(.+)$")


def parse_member(line: str) -> Member | None:
    """A ``server.N=`` line of a configuration; None when it is not one."""
    match = _SERVER_LINE.match(line.strip())
    if not match:
        return None
    quorum, _, client = match.group(2).partition(";")
    host, rest = _split_host(quorum.strip())
    ports = rest.split(":")
    if not host or len(ports) < 2 or not ports[0].isdigit() or not ports[1].isdigit():
        return None
    client_host: str | None = None
    client_port: int | None = None
    client = client.strip()
    if client:
        if ":" in client:
            chost, cport = client.rsplit(":", 1)
            client_host = chost.strip("[]") or None
        else:
            cport = client
        if not cport.isdigit():
            return None
        client_port = int(cport)
    return Member(int(match.group(1)), host, int(ports[0]), int(ports[1]), client_host, client_port)


def parse_conf(text: str) -> ServerConf | None:
    """The reply to ``conf``; None when it is not one (e.g. "conf is not executed because it
    is not in the whitelist.")."""
    values: dict[str, str] = {}
    members = []
    for line in text.splitlines():
        member = parse_member(line)
        if member is not None:
            members.append(member)
            continue
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if "clientPort" not in values and "serverId" not in values:
        return None

    def number(key: str) -> int | None:
        value = values.get(key, "")
        return int(value) if value.lstrip("-").isdigit() else None

    return ServerConf(number("serverId"), number("clientPort"), tuple(members))


# ----------------------------------------------------------------------------- decision


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _addresses(
    host: str, reporter: ServerReading, resolved: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    """Where a host named in ``reporter``'s membership is, as far as it can be told here."""
    if _is_wildcard(host):
        return frozenset()
    addresses = resolved.get(host, frozenset())
    if not reporter.local:  # its loopback is its own host, not this one
        addresses = frozenset(a for a in addresses if not _is_loopback(a))
    return addresses


def _members(
    reading: EnsembleReading,
) -> tuple[dict[Endpoint, Member], dict[Endpoint, Member]]:
    """Peer endpoints and client endpoints of every member any server of ``reading`` lists."""
    peers: dict[Endpoint, Member] = {}
    clients: dict[Endpoint, Member] = {}
    for server in reading.servers:
        if server.conf is None:
            continue
        for member in server.conf.members:
            peer = _addresses(member.host, server, reading.resolved)
            for address in peer:
                peers.setdefault((address, member.peer_port), member)
            if member.client_port is None:
                continue
            if member.client_host is None or _is_wildcard(member.client_host):
                client = peer  # `;2181`: the client port on the member's own host
            else:
                client = _addresses(member.client_host, server, reading.resolved)
            for address in client:
                clients.setdefault((address, member.client_port), member)
    return peers, clients


def _first(items: Iterable[Endpoint]) -> Endpoint:
    return sorted(items)[0]


def _unread(side: str, reading: EnsembleReading) -> list[str]:
    return [
        f"{side} {server.endpoint}: {server.problem}"
        for server in reading.servers
        if server.conf is None and server.problem
    ]


def same_ensemble(source: EnsembleReading, target: EnsembleReading) -> Verdict:
    """Whether two readings are of the same ensemble (pure)."""
    notes = tuple(_unread("source", source) + _unread("target", target))
    confirmed = all(any(s.conf is not None for s in r.servers) for r in (source, target))

    def same(reason: str) -> Verdict:
        return Verdict(True, reason, confirmed, notes)

    # 1. A server that answers for both: the same resolved address and port.
    for s in source.servers:
        for t in target.servers:
            if s.endpoints() & t.endpoints():
                named = "" if s.endpoint == t.endpoint else f", named {t.endpoint} in the target,"
                return same(f"server {s.endpoint}{named} answers for both")

    # 2. A member of both memberships.
    source_peers, source_clients = _members(source)
    target_peers, target_clients = _members(target)
    shared = source_peers.keys() & target_peers.keys()
    if shared:
        member = source_peers[_first(shared)]
        return same(f"both list {member.describe()} as a member")

    # 3. A server of one connect string that the other side's membership lists.
    for side, servers, other, members in (
        ("target", target.servers, "source", source_clients),
        ("source", source.servers, "target", target_clients),
    ):
        for server in servers:
            hit = server.endpoints() & members.keys()
            if hit:
                member = members[_first(hit)]
                return same(
                    f"{side} server {server.endpoint} is {member.describe()} of the {other}"
                )
    return Verdict(False, "", confirmed, notes)


# ----------------------------------------------------------------------------- reading


def resolve(host: str, port: int = 0) -> frozenset[str]:
    """The addresses a name resolves to here (empty when it does not)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(_normal(str(info[4][0])) for info in infos)


def _normal(address: str) -> str:
    """``::ffff:10.0.0.1`` -> ``10.0.0.1``: one server, one spelling."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped) if mapped is not None else str(ip)


def _read_server(
    host: str, port: int, timeout: float, context: ssl.SSLContext | None = None
) -> ServerReading:
    addresses = resolve(host, port)
    if not addresses:
        return ServerReading(host, port, addresses, None, "does not resolve")
    try:
        reply = four_letter_word(host, port, "conf", timeout, context)
    except OSError as exc:
        return ServerReading(host, port, addresses, None, f"unreachable ({exc})")
    conf = parse_conf(reply)
    if conf is None:
        said = reply.strip().splitlines()[0] if reply.strip() else "no reply"
        if "whitelist" in said:
            said = f"`conf` not allowed by 4lw.commands.whitelist ({said})"
        return ServerReading(host, port, addresses, None, said)
    return ServerReading(host, port, addresses, conf)


def read_ensemble(
    connect: str, timeout: float = FOUR_LETTER_TIMEOUT, context: ssl.SSLContext | None = None
) -> EnsembleReading:
    """Resolve each server of ``connect``, ask it ``conf`` (over TLS with ``context``: the
    connect string names the secure client port), and resolve the hosts its membership
    names (servers in parallel; each 4lw waits at most ``timeout``)."""
    hosts = connect_string_hosts(connect)
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        servers = tuple(pool.map(lambda hp: _read_server(hp[0], hp[1], timeout, context), hosts))
        names = sorted(
            {
                name
                for s in servers
                if s.conf is not None
                for m in s.conf.members
                for name in (m.host, m.client_host)
                if name
            }
        )
        resolved = dict(zip(names, pool.map(resolve, names), strict=True))
    return EnsembleReading(connect, servers, resolved)


def check_distinct(
    source: str,
    target: str,
    timeout: float = FOUR_LETTER_TIMEOUT,
    contexts: tuple[ssl.SSLContext | None, ssl.SSLContext | None] = (None, None),
) -> Verdict:
    """Raise :class:`SameEnsembleError` when ``source`` and ``target`` reach the same
    ensemble; otherwise return the verdict (logged, with what could not be checked).
    ``contexts``: the TLS of the source's and the target's connections (None: plain)."""
    validate_hosts(source, "source")
    validate_hosts(target, "target")
    with ThreadPoolExecutor(max_workers=2) as pool:
        readings = list(
            pool.map(
                lambda c: read_ensemble(c[0], timeout, c[1]),
                ((source, contexts[0]), (target, contexts[1])),
            )
        )
    verdict = same_ensemble(*readings)
    if not verdict.confirmed:
        log.warning(
            "could not identify the ensembles by their servers' `conf` (%s); compared the "
            "resolved host:port of the connect strings only",
            "; ".join(verdict.notes) or "no answer",
        )
    elif verdict.notes:
        log.info("ensemble identity: some servers did not answer `conf`: %s",
                 "; ".join(verdict.notes))  # fmt: skip
    if verdict.same:
        raise SameEnsembleError(verdict.message())
    log.info("source %s and target %s are different ensembles", source, target)
    return verdict
