"""Marathon's ZooKeeper state store (blocking kazoo calls; run them in a thread)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

from sim.marathon import layout


class Store:
    def __init__(self, client: KazooClient, zk_path: str) -> None:
        self.client = client
        self.root = f"{zk_path}/{layout.STATE_DIR}"

    def path(self, category: str, key: str) -> str:
        return f"{self.root}/{category}/{layout.bucket(key)}/{key}"

    def put_bytes(self, category: str, key: str, data: bytes) -> None:
        path = self.path(category, key)
        try:
            self.client.create(path, data, makepath=True)
        except NodeExistsError:
            self.client.set(path, data)

    def get_bytes(self, category: str, key: str) -> bytes | None:
        try:
            data, _ = self.client.get(self.path(category, key))
        except NoNodeError:
            return None
        return bytes(data)

    def put(self, category: str, key: str, value: Any) -> None:
        self.put_bytes(category, key, json.dumps(value, sort_keys=True).encode())

    def delete(self, category: str, key: str) -> None:
        with contextlib.suppress(NoNodeError):
            self.client.delete(self.path(category, key))

    def load(self, category: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        base = f"{self.root}/{category}"
        try:
            buckets = self.client.get_children(base)
        except NoNodeError:
            return out
        for bucket in buckets:
            try:
                keys = self.client.get_children(f"{base}/{bucket}")
            except NoNodeError:
                continue
            for key in keys:
                try:
                    data, _ = self.client.get(f"{base}/{bucket}/{key}")
                    out[key] = json.loads(data)
                except (NoNodeError, ValueError):
                    continue
        return out

    def ensure_layout(self) -> None:
        for category in layout.CATEGORIES:
            self.client.ensure_path(f"{self.root}/{category}")
