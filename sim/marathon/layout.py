"""Where Marathon keeps things in ZooKeeper, and how (pure).

- leader latch: ephemeral sequential `<zk path>/leader-curator/_c_<uuid>-latch-NNNNNNNNNN`
  holding `host:port` (Curator's LeaderLatch naming; the lowest sequence leads);
- state: `<zk path>/state/<category>/<bucket>/<id>` with categories `apps`, `group`,
  `instance`, `deployment`, `taskFailures`, `framework-id`; the bucket is
  `abs(id.hashCode % 16)` in hex with Java's `String.hashCode` (Marathon 1.11
  `core/storage/store/impl/zk/ZkPersistenceStore.scala`, `ZkId`); app ids are stored with their
  path segments joined by `_` (`storage/store/ZkStoreSerialization.scala`, `ZkPathIdResolver`);
- the framework id is the serialized protobuf `FrameworkID {1: value}`, written once and
  reused byte for byte.
"""

from __future__ import annotations

import datetime

LATCH_DIR = "leader-curator"
LATCH_PREFIX = "_c_"
LATCH_MARK = "-latch-"
STATE_DIR = "state"
BUCKETS = 16
CATEGORIES = ("apps", "group", "instance", "deployment", "taskFailures", "framework-id")
FRAMEWORK_ID_KEY = "id"
ROOT_GROUP_KEY = "root"


def latch_sequence(name: str) -> int | None:
    if not name.startswith(LATCH_PREFIX) or LATCH_MARK not in name:
        return None
    suffix = name.rsplit(LATCH_MARK, 1)[1]
    return int(suffix) if suffix.isdigit() else None


def latch_leader(children: list[str]) -> str | None:
    ranked = sorted((s, c) for c in children if (s := latch_sequence(c)) is not None)
    return ranked[0][1] if ranked else None


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, as a
    signed 32-bit int."""
    h = 0
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def bucket(key: str) -> str:
    """`math.abs(id.hashCode % 16)` formatted `%x` (Java's `%` truncates toward zero, so the
    absolute value of the remainder is `abs(h) % 16`)."""
    return f"{abs(java_string_hash(key)) % BUCKETS:x}"


def safe_id(app_id: str) -> str:
    return app_id.strip("/").replace("/", "_")


def normalize_app_id(app_id: str) -> str:
    return "/" + app_id.strip("/")


def valid_app_id(app_id: str) -> bool:
    parts = app_id.strip("/").split("/")
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return all(p and set(p) <= allowed and p[0].isalnum() and p[-1].isalnum() for p in parts)


def encode_framework_id(value: str) -> bytes:
    """Protobuf `FrameworkID { required string value = 1; }`."""
    raw = value.encode()
    return b"\x0a" + _varint(len(raw)) + raw


def decode_framework_id(data: bytes) -> str:
    if not data or data[0] != 0x0A:
        raise ValueError("not a serialized FrameworkID")
    length, offset = 0, 1
    shift = 0
    while True:
        byte = data[offset]
        offset += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return data[offset : offset + length].decode()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def timestamp(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
