"""ZooKeeper four-letter words (`ruok`, `srvr`, `mntr`) over a plain TCP socket, or over
TLS on the secure client port (`context`: the server verified as for a session)."""

from __future__ import annotations

import socket
import ssl


def four_letter_word(
    host: str, port: int, word: str, timeout: float = 1.0, context: ssl.SSLContext | None = None
) -> str:
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = context.wrap_socket(raw, server_hostname=host) if context is not None else raw
        sock.sendall(word.encode())
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def server_mode(
    host: str, port: int, timeout: float = 1.0, context: ssl.SSLContext | None = None
) -> str | None:
    """`leader`, `follower`, `standalone`… from `srvr`; None when it does not answer."""
    try:
        reply = four_letter_word(host, port, "srvr", timeout, context)
    except OSError:
        return None
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def connect_string_hosts(connect: str) -> list[tuple[str, int]]:
    """`h1:2181,h2:2181/chroot` -> [("h1", 2181), ("h2", 2181)]."""
    hosts = []
    for part in connect.split("/", 1)[0].split(","):
        host, _, port = part.strip().rpartition(":")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def ensemble_modes(
    connect: str, timeout: float = 0.5, context: ssl.SSLContext | None = None
) -> list[tuple[str, str | None]]:
    """Each server of a connect string with its `srvr` mode (None: it did not answer)."""
    return [(f"{host}:{port}", server_mode(host, port, timeout, context)) for host, port in
            connect_string_hosts(connect)]  # fmt: skip
