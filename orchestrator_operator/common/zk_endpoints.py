"""Which ZooKeeper servers an allow-list's `zookeeperEndpoints` admits: one rule for the
operator (operator/allowlist.py, before any session to an ensemble a resource names) and the
sync controller (sync/controller/, before it runs a syncRequest), so the two cannot differ.

An entry is `host`, `host:port` or `*.domain[:port]`; a connect string is admitted when
every one of its servers is (the client may pick any). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_ENTRIES = 256  # per rule; bounded input


def parse_entries(value: str | None) -> tuple[str, ...]:
    """A comma- or whitespace-separated flag or environment value."""
    if not value:
        return ()
    entries = tuple(item for item in value.replace(",", " ").split() if item)
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"at most {MAX_ENTRIES} allow-list entries per rule")
    return entries


def check_entries(entries: Sequence[str]) -> None:
    """ValueError naming the first entry that is not `host`, `host:port` or `*.domain`: a
    typo must not open or close everything silently."""
    for entry in entries:
        host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
        if not host or (port and not port.isdigit()) or "/" in entry:
            raise ValueError(f"{entry!r} is not host, host:port or *.domain")


def zk_servers(connect_string: str) -> list[tuple[str, int]]:
    """The (host, port) pairs of a ZooKeeper connect string `h1:2181,h2/chroot`."""
    hosts = connect_string.split("/", 1)[0]
    servers = []
    for server in hosts.split(","):
        server = server.strip()
        if server.startswith("["):  # [ipv6]:port
            host, _, rest = server[1:].partition("]")
            port = rest.lstrip(":")
        elif server.count(":") == 1:
            host, _, port = server.partition(":")
        else:
            host, port = server, ""
        servers.append((host.lower().rstrip("."), int(port) if port.isdigit() else 2181))
    return servers


def endpoint_allows(entry: str, host: str, port: int) -> bool:
    entry = entry.lower()
    pattern, _, entry_port = entry.rpartition(":") if ":" in entry else (entry, "", "")
    if entry_port and int(entry_port) != port:
        return False
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern.rstrip(".")


def first_refused_server(entries: Sequence[str], connect_string: str) -> str | None:
    """The first server of `connect_string` no entry admits, as "ZooKeeper server h:p (of
    'hosts') is not an allowed ensemble (entries)"; None when all are (or no entries)."""
    if not entries:
        return None
    for host, port in zk_servers(connect_string):
        if not any(endpoint_allows(entry, host, port) for entry in entries):
            return (
                f"ZooKeeper server {host}:{port} (of {connect_string.split('/', 1)[0]!r}) is"
                f" not an allowed ensemble ({', '.join(entries)})"
            )
    return None
