"""A Mesos master's candidacy in ZooKeeper (blocking kazoo calls; run them in a thread).

Creates the ephemeral sequential `json.info_NNNNNNNNNN` znode (MasterInfo JSON) and an
ephemeral sequential `log_replicas/NNNNNNNNNN` znode (the replicated log's replica PID).
"""

from __future__ import annotations

from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from sim import masterinfo


class Candidacy:
    def __init__(self, client: KazooClient, path: str, info: dict[str, Any]) -> None:
        self.client = client
        self.path = path
        self.info = info
        self.node = ""
        self.replica_node = ""

    def enter(self) -> None:
        self.client.ensure_path(f"{self.path}/{masterinfo.LOG_REPLICAS}")
        created = self.client.create(
            f"{self.path}/{masterinfo.CONTENDER_PREFIX}",
            masterinfo.encode(self.info),
            ephemeral=True,
            sequence=True,
        )
        self.node = str(created).rsplit("/", 1)[1]
        ip, port = masterinfo.http_address(self.info)
        replica = self.client.create(
            f"{self.path}/{masterinfo.LOG_REPLICAS}/",
            f"log-replica(1)@{ip}:{port}".encode(),
            ephemeral=True,
            sequence=True,
        )
        self.replica_node = str(replica).rsplit("/", 1)[1]

    def replicas(self) -> int:
        return len(self.client.get_children(f"{self.path}/{masterinfo.LOG_REPLICAS}"))

    def replica_addresses(self) -> list[str]:
        """`ip:port` of every replica (`log-replica(1)@IP:PORT` in each log_replicas znode)."""
        base = f"{self.path}/{masterinfo.LOG_REPLICAS}"
        out = []
        for child in self.client.get_children(base):
            try:
                data, _ = self.client.get(f"{base}/{child}")
            except NoNodeError:
                continue
            pid = bytes(data).decode(errors="replace")
            if "@" in pid:
                out.append(pid.rsplit("@", 1)[1])
        return out
