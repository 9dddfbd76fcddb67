"""MasterInfo as Mesos writes it into ZooKeeper, and how the leader is found (pure).

Each master creates an ephemeral sequential znode `json.info_NNNNNNNNNN` under the cluster
path holding MasterInfo as JSON; the lowest sequence leads. `ip` is the IPv4 address as a
uint32 in network byte order (Mesos stores `in_addr.s_addr`), so 127.0.0.1 is 16777343.
"""

from __future__ import annotations

import json
import socket
from typing import Any

CONTENDER_PREFIX = "json.info_"
LOG_REPLICAS = "log_replicas"


def ip_to_uint32(ip: str) -> int:
    return int.from_bytes(socket.inet_aton(ip), "little")


def uint32_to_ip(value: int) -> str:
    return socket.inet_ntoa(int(value).to_bytes(4, "little"))


def master_info(master_id: str, ip: str, port: int, hostname: str, version: str) -> dict[str, Any]:
    return {
        "id": master_id,
        "ip": ip_to_uint32(ip),
        "port": port,
        "pid": f"master@{ip}:{port}",
        "hostname": hostname,
        "version": version,
        "address": {"hostname": hostname, "ip": ip, "port": port},
    }


def encode(info: dict[str, Any]) -> bytes:
    return json.dumps(info, sort_keys=True).encode()


def decode(data: bytes) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(data)
    return info


def sequence(name: str, prefix: str) -> int | None:
    if not name.startswith(prefix):
        return None
    suffix = name[len(prefix) :]
    return int(suffix) if suffix.isdigit() else None


def leader_node(children: list[str]) -> str | None:
    """The leading contender (lowest `json.info_` sequence) among the cluster path's children."""
    contenders = [(sequence(c, CONTENDER_PREFIX), c) for c in children]
    ranked = sorted((s, c) for s, c in contenders if s is not None)
    return ranked[0][1] if ranked else None


def http_address(info: dict[str, Any]) -> tuple[str, int]:
    """Where to connect to a master: `address.ip` (or the uint32 `ip`) and the port."""
    address = info.get("address") or {}
    ip = address.get("ip") or uint32_to_ip(int(info["ip"]))
    return str(ip), int(address.get("port") or info["port"])


def advertised(info: dict[str, Any]) -> str:
    """`host:port` as Mesos puts it in a redirect: the hostname, else the IP."""
    address = info.get("address") or {}
    host = address.get("hostname") or info.get("hostname") or http_address(info)[0]
    return f"{host}:{http_address(info)[1]}"


def base_url(info: dict[str, Any]) -> str:
    ip, port = http_address(info)
    return f"http://{ip}:{port}"
