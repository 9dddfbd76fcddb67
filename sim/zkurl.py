"""`zk://host:port[,host:port]/path` URLs, as Mesos and Marathon take them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ZkUrl:
    hosts: str
    path: str

    @classmethod
    def parse(cls, url: str) -> ZkUrl:
        if not url.startswith("zk://"):
            raise ValueError(f"not a zk:// URL: {url!r}")
        rest = url[len("zk://") :]
        hosts, slash, path = rest.partition("/")
        if not hosts:
            raise ValueError(f"no ZooKeeper hosts in {url!r}")
        path = "/" + path.strip("/") if slash else "/"
        if path == "/":
            raise ValueError(f"a cluster path is required in {url!r} (e.g. zk://host:2181/mesos)")
        return cls(hosts=hosts, path=path)

    def __str__(self) -> str:
        return f"zk://{self.hosts}{self.path}"
