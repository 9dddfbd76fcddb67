"""How Mesos clients find the leading master in ZooKeeper, as pure functions.

Every master holds an ephemeral sequential znode `json.info_NNNNNNNNNN` under the cluster
path whose data is its MasterInfo as JSON; the contender with the lowest sequence leads.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
from dataclasses import dataclass

CONTENDER_PREFIX = "json.info_"


@dataclass(frozen=True)
class MasterInfo:
    id: str
    hostname: str
    ip: str
    port: int
    znode: str

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


def lowest_contender(children: list[str]) -> str | None:
    """The leading contender's znode name (lowest sequence), or None with no contender."""
    contenders = [c for c in children if c.startswith(CONTENDER_PREFIX)]
    if not contenders:
        return None
    return min(contenders, key=lambda name: int(name[len(CONTENDER_PREFIX) :]))


def parse_master_info(znode: str, data: bytes) -> MasterInfo:
    """MasterInfo JSON -> MasterInfo. `ip` is a uint32 in network byte order, as Mesos
    writes it; `address` (Mesos >= 1.0) is preferred when present."""
    info = json.loads(data)
    address = info.get("address") or {}
    ip = address.get("ip")
    if not ip and "ip" in info:
        ip = socket.inet_ntoa(struct.pack("<I", int(info["ip"])))
    if not ip:
        raise ValueError("MasterInfo has neither address.ip nor ip")
    ipaddress.ip_address(ip)  # raises ValueError on garbage
    return MasterInfo(
        id=str(info.get("id", "")),
        hostname=str(address.get("hostname") or info.get("hostname") or ip),
        ip=str(ip),
        port=int(address.get("port") or info.get("port") or 5050),
        znode=znode,
    )
