"""ZooKeeper's multiRead (OpCode 22, ZooKeeper >= 3.6) for kazoo 2.11, which lacks it.

One request carries many getData/getChildren sub-operations; the server answers each one
separately (a NoNode or NoAuth fails that sub-operation only). It arms no watch for them
(measured on 3.8: the sub-operations' watch flags are ignored), so watched reads go as
single requests, and the engine follows changes with a persistent recursive watch instead.
Each kazoo request costs far more in Python (queue, wakeup, AsyncResult) than the bytes it
carries, so batching hundreds of reads in one request is what makes bulk reads fast.

kazoo accepts any request object with ``type``, ``serialize()`` and ``deserialize()``
through ``client._call`` (it registers a watch only for requests with a ``watcher``
attribute: this one has none).

``run_reads`` is the entry point: one multiRead per chunk where the server has it, one
kazoo request per sub-operation otherwise (same results).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from kazoo.exceptions import EXCEPTIONS, KazooException, NoAuthError, NoNodeError
from kazoo.protocol.paths import _prefix_root
from kazoo.protocol.serialization import (
    int_struct,
    multiheader_struct,
    read_buffer,
    read_string,
    stat_struct,
    write_string,
)
from kazoo.protocol.states import ZnodeStat

from orchestrator_operator.zk.model import ReadAborted
from orchestrator_operator.zk.wire.overdue import get_reply

Watch = Callable[[Any], None]

GET_DATA = 4
GET_CHILDREN = 8
MULTI_READ = 22
ERROR = -1
CHUNK_OPS = 1000  # sub-operations per multiRead request
IN_FLIGHT = 4  # multiRead requests in flight at once
TIMEOUT = 60.0

DataResult: TypeAlias = tuple[bytes, ZnodeStat]
ReadResult: TypeAlias = DataResult | list[str] | KazooException


@dataclass(frozen=True, slots=True)
class ReadOp:
    kind: int  # GET_DATA or GET_CHILDREN
    path: str
    watch: Watch | None = None


class MultiRead:
    """A kazoo request object: ``client._call(MultiRead(client, ops), async_result)``."""

    type = MULTI_READ

    def __init__(self, client: Any, ops: Sequence[ReadOp]) -> None:
        if any(op.watch is not None for op in ops):
            raise ValueError("multiRead arms no watches: read watched znodes singly")
        self.ops = list(ops)
        self._paths = server_paths(client, [op.path for op in self.ops])

    def __repr__(self) -> str:
        return f"MultiRead({len(self.ops)} ops)"

    def serialize(self) -> bytearray:
        b = bytearray()
        for op, path in zip(self.ops, self._paths, strict=True):
            b += multiheader_struct.pack(op.kind, False, -1)
            b += write_string(path)
            b.append(0)  # no watch
        b += multiheader_struct.pack(-1, True, -1)
        return b

    def deserialize(self, buf: bytes, offset: int) -> list[ReadResult]:
        out: list[ReadResult] = []
        for _ in self.ops:
            kind, _, _ = multiheader_struct.unpack_from(buf, offset)
            offset += multiheader_struct.size
            if kind == ERROR:
                code = int_struct.unpack_from(buf, offset)[0]
                offset += int_struct.size
                out.append(EXCEPTIONS[code]())
                continue
            if kind == GET_DATA:
                data, offset = read_buffer(buf, offset)
                stat = ZnodeStat._make(stat_struct.unpack_from(buf, offset))
                offset += stat_struct.size
                out.append((data or b"", stat))
            elif kind == GET_CHILDREN:
                count = int_struct.unpack_from(buf, offset)[0]
                offset += int_struct.size
                names: list[str] = []
                for _ in range(max(count, 0)):
                    name, offset = read_string(buf, offset)
                    names.append(name)
                out.append(names)
            else:
                raise ValueError(f"multiRead: unexpected sub-response type {kind}")
        _, done, _ = multiheader_struct.unpack_from(buf, offset)
        if not done:
            raise ValueError("multiRead: more sub-responses than sub-operations")
        return out


def server_paths(client: Any, paths: Sequence[str]) -> list[str]:
    """The paths as the server knows them (under the client's chroot, if any)."""
    chroot = client.chroot
    return [_prefix_root(chroot, p) for p in paths] if chroot else list(paths)


def multi_read_async(client: Any, ops: Sequence[ReadOp]) -> Any:
    result = client.handler.async_result()
    client._call(MultiRead(client, ops), result)
    return result


def run_reads(
    client: Any,
    ops: Sequence[ReadOp],
    *,
    multi: bool,
    timeout: float = TIMEOUT,
    abort: Callable[[], bool] | None = None,
) -> list[ReadResult]:
    """Results of ``ops`` in order: (data, stat), [child names], or the exception of that
    sub-operation (NoNodeError, NoAuthError...). Connection errors raise. ``multi``: the
    server has multiRead (and no op has a watch); otherwise one pipelined kazoo request per
    op, arming the ops' watches. ``abort`` is
    checked before each chunk; it returning True raises ReadAborted."""
    out: list[ReadResult] = []
    chunks = [ops[i : i + CHUNK_OPS] for i in range(0, len(ops), CHUNK_OPS)]
    pending: list[tuple[Sequence[ReadOp], Any]] = []

    def collect(chunk: Sequence[ReadOp], handle: Any) -> None:
        if multi:
            out.extend(get_reply(client, handle, timeout))
            return
        for res in handle:
            try:
                out.append(get_reply(client, res, timeout))
            except (NoNodeError, NoAuthError) as exc:
                out.append(exc)

    for chunk in chunks:
        if abort is not None and abort():
            raise ReadAborted()
        handle = multi_read_async(client, chunk) if multi else _singles(client, chunk)
        pending.append((chunk, handle))
        if len(pending) >= (IN_FLIGHT if multi else 1):
            collect(*pending.pop(0))
    for chunk, handle in pending:
        collect(chunk, handle)
    return out


def _singles(client: Any, ops: Sequence[ReadOp]) -> list[Any]:
    return [
        client.get_async(op.path, watch=op.watch)
        if op.kind == GET_DATA
        else client.get_children_async(op.path, watch=op.watch)
        for op in ops
    ]
