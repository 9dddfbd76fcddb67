"""Plain data for the sync engine: one znode as read from one side, sides, ACL tuples."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

# (perms, scheme, id): a ZooKeeper ACL entry in a hashable, sortable form.
AclEntry = tuple[int, str, str]
Acl = tuple[AclEntry, ...]

OPEN_ACL: Acl = ((31, "world", "anyone"),)
PERM_CREATE = 4


class Side(enum.Enum):
    """Which ensemble: A is the source (``--source``), B the target (``--target``)."""

    A = "a"
    B = "b"

    @property
    def other(self) -> Side:
        return Side.B if self is Side.A else Side.A


def acl_from_kazoo(acls: Any) -> Acl:
    """kazoo ``ACL`` objects (or tuples) -> a sorted tuple of (perms, scheme, id)."""
    entries: list[AclEntry] = []
    for entry in acls or ():
        perms, ident = entry.perms, entry.id
        entries.append((int(perms), str(ident.scheme), str(ident.id)))
    return tuple(sorted(entries))


def world_can_create(acl: Acl) -> bool:
    return any(s == "world" and i == "anyone" and p & PERM_CREATE for p, s, i in acl)


@dataclass(frozen=True, slots=True)
class NodeState:
    """A znode as read from one side. ``children`` is None when they were not read."""

    path: str
    data: bytes
    acl: Acl
    ephemeral_owner: int = 0
    mtime_ms: int = 0
    version: int = 0
    aversion: int = 0
    cversion: int = 0
    num_children: int = 0
    children: tuple[str, ...] | None = None

    @property
    def ephemeral(self) -> bool:
        return self.ephemeral_owner != 0

    @property
    def content_hash(self) -> str:
        """Hash of what is replicated: data, ACL and ephemeral-ness (not versions, owner)."""
        return content_hash(self.data, self.acl, self.ephemeral)


def redacted_ids(acl: Acl) -> list[str]:
    """Digest ids as ZooKeeper (3.8) shows them to a reader without ADMIN on the znode:
    `user:x` instead of `user:<base64 SHA-1>`. Copied, such an id locks the user out."""
    return [ident for _perms, scheme, ident in acl if scheme == "digest" and ident.endswith(":x")]


def next_sequence(cversion: int, num_children: int) -> int:
    """The suffix the next sequential create under a parent gets. ZooKeeper (3.8, measured:
    tests/integration/test_zk_sync_sequences.py) adds 1 to a parent's cversion for every
    child created and every child deleted, and numbers a sequential child by the creates so
    far; creates - deletes = numChildren, so creates = (cversion + numChildren) / 2."""
    return (cversion + num_children) // 2


# ZooKeeper appends the parent's counter to a sequential create's name as %010d (a signed
# 32-bit int): a name whose last ten characters are digits below 2**31 may be sequential.
SEQUENCE_DIGITS = 10
SEQUENCE_MAX = 2**31 - 1


def sequence_suffix(name: str) -> int | None:
    """The counter a sequential child's name carries, or None when the name cannot be one
    (a Marathon instance id such as ``x-a5297207084`` ends in digits above 2**31)."""
    tail = name.rsplit("/", 1)[-1][-SEQUENCE_DIGITS:]
    if len(tail) != SEQUENCE_DIGITS or not tail.isdigit() or int(tail) > SEQUENCE_MAX:
        return None
    return int(tail)


def content_hash(data: bytes, acl: Acl, ephemeral: bool) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(len(data).to_bytes(8, "big"))
    h.update(data)
    h.update(repr(acl).encode())
    h.update(b"E" if ephemeral else b"P")
    return h.hexdigest()


@dataclass
class TreeSnapshot:
    """Every znode read under some roots, plus the paths that could not be read."""

    nodes: dict[str, NodeState] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    missing_roots: list[str] = field(default_factory=list)

    def is_unreadable(self, path: str) -> bool:
        """True when ``path`` or one of its ancestors could not be read."""
        return any(is_under(path, bad) for bad in self.unreadable)


def join(parent: str, child: str) -> str:
    return f"/{child}" if parent == "/" else f"{parent}/{child}"


def parent_of(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


def is_under(path: str, root: str) -> bool:
    """True when ``path`` is ``root`` or a descendant of it."""
    if root == "/":
        return True
    return path == root or path.startswith(root + "/")


def normalize_root(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"ZooKeeper paths are absolute, got {path!r}")
    stripped = path.rstrip("/")
    return stripped or "/"


class ReadAborted(Exception):
    """A reader's ``abort`` check said stop (the engine is shutting down)."""


# What a writer is asked to do on one side.
@dataclass(frozen=True, slots=True)
class Put:
    """Make ``path`` on the side equal to ``want`` (create, update, or replace)."""

    path: str
    want: NodeState
    existing: NodeState | None


@dataclass(frozen=True, slots=True)
class Remove:
    path: str
    recursive: bool = True
    version: int = -1  # expected version (conditional mode), -1 = any


Op = Put | Remove
