"""A multi of creates serialized straight from the engine's own records.

kazoo's ``TransactionRequest.create`` type-checks and normalizes every path and the
engine had to build kazoo ``ACL`` objects for every znode: measured, that was the larger
part of the Python time of a bulk copy. This request carries the same bytes as kazoo's
``Transaction`` of ``Create`` operations (OpCode 14 with create sub-operations), with
each distinct ACL serialized once, and answers the same way: per sub-operation the
created path or the exception that failed it. kazoo sends any object with ``type``,
``serialize()`` and ``deserialize()`` through ``client._call`` (see multiread.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kazoo.protocol.serialization import (
    Create,
    Transaction,
    int_struct,
    multiheader_struct,
    write_buffer,
    write_string,
)

from orchestrator_operator.zk.model import Acl
from orchestrator_operator.zk.wire.multiread import server_paths

EPHEMERAL = 1


@dataclass(frozen=True, slots=True)
class CreateOp:
    path: str
    data: bytes
    acl: Acl
    ephemeral: bool = False


def acl_bytes(acl: Acl) -> bytes:
    """An ACL list as ZooKeeper's jute serializes it (count, then perms, scheme, id)."""
    out = bytearray(int_struct.pack(len(acl)))
    for perms, scheme, ident in acl:
        out += int_struct.pack(perms) + write_string(scheme) + write_string(ident)
    return bytes(out)


class MultiCreate:
    """A kazoo request object: ``client._call(MultiCreate(client, ops), async_result)``."""

    type = Transaction.type

    def __init__(self, client: Any, ops: Sequence[CreateOp]) -> None:
        self.ops = list(ops)
        self._paths = server_paths(client, [op.path for op in self.ops])

    def __repr__(self) -> str:
        return f"MultiCreate({len(self.ops)} ops)"

    def serialize(self) -> bytearray:
        head = multiheader_struct.pack(Create.type, False, -1)
        acls: dict[Acl, bytes] = {}
        b = bytearray()
        for op, path in zip(self.ops, self._paths, strict=True):
            encoded = acls.get(op.acl)
            if encoded is None:
                encoded = acls[op.acl] = acl_bytes(op.acl)
            b += head
            b += write_string(path)
            b += write_buffer(op.data)
            b += encoded
            b += int_struct.pack(EPHEMERAL if op.ephemeral else 0)
        b += multiheader_struct.pack(-1, True, -1)
        return b

    def deserialize(self, buf: bytes, offset: int) -> list[Any]:
        results: list[Any] = Transaction.deserialize(buf, offset)
        return results


def multi_create_async(client: Any, ops: Sequence[CreateOp]) -> Any:
    """Send one multi of creates; its result is a list of created paths or exceptions."""
    result = client.handler.async_result()
    client._call(MultiCreate(client, ops), result)
    return result
