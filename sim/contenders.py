"""Reading a Mesos cluster path in ZooKeeper: who leads, as Mesos' detector does (blocking)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

from sim import masterinfo


@dataclass(frozen=True)
class Detected:
    children: list[str]
    leader_node: str | None
    leader: dict[str, Any] | None
    contenders: dict[str, dict[str, Any]]


def detect(client: KazooClient, path: str, *, all_contenders: bool = False) -> Detected:
    """The leading master's MasterInfo (lowest `json.info_`), optionally every contender's."""
    try:
        children = list(client.get_children(path))
    except NoNodeError:
        return Detected([], None, None, {})
    names = sorted(
        (c for c in children if masterinfo.sequence(c, masterinfo.CONTENDER_PREFIX) is not None),
        key=lambda c: masterinfo.sequence(c, masterinfo.CONTENDER_PREFIX) or 0,
    )
    contenders: dict[str, dict[str, Any]] = {}
    for name in names if all_contenders else names[:1]:
        try:
            data, _ = client.get(f"{path}/{name}")
            contenders[name] = masterinfo.decode(data)
        except (NoNodeError, json.JSONDecodeError, UnicodeDecodeError):
            continue
    leader_name = masterinfo.leader_node(children)
    return Detected(children, leader_name, contenders.get(leader_name or ""), contenders)
