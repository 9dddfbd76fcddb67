"""Apply changes to one side, pipelined, with fallbacks for a side that moved meanwhile.

Requests of one session are processed by ZooKeeper in order, so parents are created before
children and children deleted before parents within one pipeline. Bulk creates go in
multi transactions (far fewer round trips); a failed multi is retried op by op.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.security import ACL, Id, make_digest_acl_credential

from orchestrator_operator.zk.model import (
    OPEN_ACL,
    PERM_CREATE,
    Acl,
    NodeState,
    Op,
    Put,
    Remove,
    depth,
    next_sequence,
    parent_of,
    world_can_create,
)
from orchestrator_operator.zk.wire.multicreate import CreateOp, multi_create_async
from orchestrator_operator.zk.wire.overdue import get_reply

log = logging.getLogger(__name__)

SEQUENCE_BUMP_NAME = ".orchestrator-sequence-bump"
MULTI_MAX_OPS = 1000  # measured: 1,000-op multis create ~1.5x faster than 500-op ones
MULTI_MAX_BYTES = 512 * 1024
MULTI_IN_FLIGHT = 8


def acl_to_kazoo(acl: Acl) -> list[ACL]:
    return [ACL(perms, Id(scheme, ident)) for perms, scheme, ident in acl]


TIMEOUT = 60.0
# The engine's own digest identity (a fresh random password per Applier), granted CREATE
# on a parent whose ACL forbids it only for as long as it takes to create a child there.
ENGINE_DIGEST_USER = "orchestrator-zk-sync"
PERM_DELETE = 8


@dataclass
class ApplyResult:
    """What happened: the new state per path (None = deleted) and the failures."""

    written: dict[str, NodeState | None] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    # Conditional mode: the node changed under us (version moved, created meanwhile, got
    # children); nothing was written and the caller must look again.
    raced: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)
    # Nodes whose ACL version moved as a side effect (a closed parent opened for a create
    # and closed again): path -> new aversion, for the caller's cache.
    acl_versions: dict[str, int] = field(default_factory=dict)
    ops: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    applied_at: dict[str, float] = field(default_factory=dict)


def _order(ops: Sequence[Op]) -> tuple[list[Remove], list[Put]]:
    removes = sorted((o for o in ops if isinstance(o, Remove)), key=lambda o: -depth(o.path))
    puts = sorted((o for o in ops if isinstance(o, Put)), key=lambda o: depth(o.path))
    return removes, puts


class Applier:
    """Writes to one ensemble through one kazoo client (whose session owns the mirrors)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.conditional = False
        self._identity: str | None = None

    def _engine_identity(self) -> str:
        """The digest id this session is authenticated as (authenticating on first use;
        kazoo re-sends the credential after a reconnect)."""
        if self._identity is None:
            password = secrets.token_urlsafe(24)
            self.client.add_auth("digest", f"{ENGINE_DIGEST_USER}:{password}")
            self._identity = make_digest_acl_credential(ENGINE_DIGEST_USER, password)
        return self._identity

    @property
    def session_id(self) -> int:
        cid = self.client.client_id
        return int(cid[0]) if cid else 0

    def _result_state(
        self, want: NodeState, existing: NodeState | None, stat: Any = None
    ) -> NodeState:
        owner = self.session_id if want.ephemeral else 0
        kids = existing.children if existing is not None and not want.ephemeral else ()
        return NodeState(
            path=want.path,
            data=want.data,
            acl=want.acl,
            ephemeral_owner=owner,
            mtime_ms=int(stat.mtime) if stat is not None else int(time.time() * 1000),
            version=int(stat.version) if stat is not None else 0,
            aversion=int(stat.aversion) if stat is not None else 0,
            cversion=int(stat.cversion) if stat is not None else 0,
            num_children=int(stat.numChildren) if stat is not None else 0,
            children=kids,
        )

    def _needs_replace(self, put: Put) -> bool:
        ex = put.existing
        if ex is None:
            return False
        if ex.ephemeral != put.want.ephemeral:
            return True
        return put.want.ephemeral and ex.ephemeral_owner != self.session_id

    # ------------------------------------------------------------------ entry point
    def apply(
        self,
        ops: Sequence[Op],
        *,
        bulk: bool = False,
        conditional: bool = False,
    ) -> ApplyResult:
        """Apply ``ops``. ``conditional``: only where the node is still as last seen
        (versions); otherwise report it in ``raced`` and leave it."""
        self.conditional = conditional
        result = ApplyResult()
        removes, puts = _order(ops)
        self._removes(removes, result)
        replace = [p for p in puts if self._needs_replace(p)]
        if replace:
            self._removes(
                [
                    Remove(p.path, recursive=False, version=p.existing.version)
                    for p in replace
                    if p.existing is not None
                ],
                result,
            )
        creates = [p for p in puts if p.existing is None or self._needs_replace(p)]
        updates = [p for p in puts if p.existing is not None and not self._needs_replace(p)]
        # Updates first (a parent's ACL may be what allows the creates below it), except a
        # restrictive ACL (no CREATE) over nodes about to be created, which comes last.
        above_creates = _ancestors(p.path for p in creates)
        restrict_later = [
            p for p in updates if not world_can_create(p.want.acl) and p.path in above_creates
        ]
        self._updates(updates, result, skip_acl={p.path for p in restrict_later})
        deferred_acls = self._creates(creates, puts, result, bulk=bulk)
        for put in [*deferred_acls, *restrict_later]:
            self._set_acl(put, result)
        return result

    # ------------------------------------------------------------------ removes
    def _removes(self, removes: Sequence[Remove], result: ApplyResult) -> None:
        pending = [
            (r, self.client.delete_async(r.path, version=r.version if self.conditional else -1))
            for r in removes
        ]
        for rem, res in pending:
            try:
                get_reply(self.client, res, TIMEOUT)
            except NoNodeError:
                pass
            except BadVersionError:
                result.raced.add(rem.path)
                continue
            except NotEmptyError:
                if not rem.recursive:
                    result.raced.add(rem.path)
                    continue
                try:
                    self.client.delete(rem.path, recursive=True)
                except NoNodeError:
                    pass
                except NoAuthError as exc:
                    result.failed[rem.path] = f"not authorized to delete: {exc!r}"
                    continue
            except NoAuthError as exc:
                result.failed[rem.path] = f"not authorized to delete: {exc!r}"
                continue
            result.written[rem.path] = None
            result.applied_at[rem.path] = time.monotonic()
            result.ops["delete"] += 1

    # ------------------------------------------------------------------ creates
    def _creates(
        self, creates: Sequence[Put], all_puts: Sequence[Put], result: ApplyResult, *, bulk: bool
    ) -> list[Put]:
        """Create nodes; returns puts whose restrictive ACL must be set after their children."""
        above_puts = _ancestors(p.path for p in all_puts)
        deferred: list[Put] = []
        plan: list[tuple[Put, Acl]] = []
        for put in creates:
            acl = put.want.acl
            if not world_can_create(acl) and put.path in above_puts:
                deferred.append(put)
                acl = OPEN_ACL
            plan.append((put, acl))
        if bulk and len(plan) > 1:
            self._creates_multi(plan, result)
        else:
            self._creates_async(plan, result)
        return [d for d in deferred if d.path in result.written]

    def _create_ok(self, put: Put, result: ApplyResult) -> None:
        result.created.add(put.path)
        result.written[put.path] = self._result_state(put.want, None)
        result.applied_at[put.path] = time.monotonic()
        result.ops["create"] += 1
        result.bytes += len(put.want.data)

    def _creates_async(self, plan: Sequence[tuple[Put, Acl]], result: ApplyResult) -> None:
        pending = []
        for put, acl in plan:
            kacl = acl_to_kazoo(acl)
            created = self.client.create_async(
                put.path, put.want.data, acl=kacl, ephemeral=put.want.ephemeral
            )
            pending.append((put, kacl, created))
        for put, kacl, res in pending:
            try:
                get_reply(self.client, res, TIMEOUT)
                self._create_ok(put, result)
            except (NodeExistsError, NoNodeError, NoAuthError) as exc:
                self._create_fallback(put, kacl, exc, result)

    def _creates_multi(self, plan: Sequence[tuple[Put, Acl]], result: ApplyResult) -> None:
        inflight: list[tuple[list[tuple[Put, Acl]], Any]] = []

        def settle(batch: list[tuple[Put, Acl]], res: Any) -> None:
            outcomes = get_reply(self.client, res, TIMEOUT)
            if any(isinstance(o, Exception) for o in outcomes):
                self._creates_async(batch, result)  # roll forward op by op
                return
            for put, _ in batch:
                self._create_ok(put, result)

        for batch in _batches(plan, lambda item: item[0]):
            ops = [CreateOp(p.path, p.want.data, acl, p.want.ephemeral) for p, acl in batch]
            inflight.append((batch, multi_create_async(self.client, ops)))
            if len(inflight) >= MULTI_IN_FLIGHT:
                settle(*inflight.pop(0))
        for done, res in inflight:
            settle(done, res)

    def _create_fallback(
        self, put: Put, acl: list[Any], exc: Exception, result: ApplyResult
    ) -> None:
        if self.conditional and isinstance(exc, NodeExistsError):
            result.raced.add(put.path)
            return
        try:
            if isinstance(exc, NoNodeError):
                self.client.ensure_path(parent_of(put.path))
                self._create(put, acl, result)
                self._create_ok(put, result)
            elif isinstance(exc, NodeExistsError):
                _data, stat = self.client.get(put.path)
                owner = int(stat.ephemeralOwner)
                wrong_kind = (owner != 0) != put.want.ephemeral
                if wrong_kind or (put.want.ephemeral and owner != self.session_id):
                    self.client.delete(put.path)
                    self._create(put, acl, result)
                    self._create_ok(put, result)
                else:
                    self.client.set(put.path, put.want.data)
                    self.client.set_acls(put.path, acl)
                    result.written[put.path] = self._result_state(put.want, None)
                    result.applied_at[put.path] = time.monotonic()
                    result.ops["set"] += 1
                    result.bytes += len(put.want.data)
            else:
                # The parent's ACL forbids CREATE on this side: the other side legitimately
                # has children under such a parent (created before the ACL was closed, or
                # the ACL came from a conflict resolution), so copy the child through.
                self._create_in_closed_parent(put, acl, result)
                self._create_ok(put, result)
        except BadVersionError:
            # The parent's ACL moved while we were opening it: look again.
            result.raced.add(put.path)
        except NoAuthError as exc:
            result.failed[put.path] = f"not authorized to create: {exc!r}"
        except NoNodeError:
            # the parent was deleted again before the create: look at both sides now rather
            # than wait for the periodic reconcile
            result.raced.add(put.path)
        except (NodeExistsError, NotEmptyError) as again:
            result.failed[put.path] = f"create failed: {again!r}"

    def _create(self, put: Put, acl: list[Any], result: ApplyResult) -> None:
        try:
            self.client.create(put.path, put.want.data, acl=acl, ephemeral=put.want.ephemeral)
        except NoAuthError:
            self._create_in_closed_parent(put, acl, result)

    def _create_in_closed_parent(self, put: Put, acl: list[Any], result: ApplyResult) -> None:
        """Create ``put.path`` under a parent whose ACL denies this session CREATE (see
        _opened). Raises NoAuthError when the parent's ACL cannot be changed either,
        BadVersionError when the parent's ACL changed meanwhile."""
        with self._opened(parent_of(put.path), PERM_CREATE, result, f"to create {put.path}"):
            self.client.create(put.path, put.want.data, acl=acl, ephemeral=put.want.ephemeral)

    @contextlib.contextmanager
    def _opened(self, parent: str, perms: int, result: ApplyResult, why: str) -> Iterator[None]:
        """Grant ``perms`` on ``parent`` to the engine's own digest identity (an ADMIN right
        the engine needs anyway to copy ACLs) for the duration of the block, then put the
        parent's ACL back exactly as it was (unless somebody changed it meanwhile)."""
        acls, stat = self.client.get_acls(parent)
        grant = ACL(perms, Id("digest", self._engine_identity()))
        opened = self.client.set_acls(parent, [*acls, grant], version=stat.aversion)
        log.info("%s: ACL forbids it, opened for the engine %s", parent, why)
        try:
            yield
        finally:
            try:
                closed = self.client.set_acls(parent, acls, version=opened.aversion)
            except BadVersionError:
                # Somebody set the parent's ACL after we opened it: theirs stands.
                result.raced.add(parent)
            else:
                result.acl_versions[parent] = int(closed.aversion)
                result.ops["set_acl"] += 2

    # ------------------------------------------------------------------ updates
    def _updates(
        self, updates: Sequence[Put], result: ApplyResult, skip_acl: set[str] | None = None
    ) -> None:
        """Data-only updates go in multi transactions (one request for up to 1,000 sets: far
        less per-request work than single sets); ACL changes and failed multis op by op."""
        skip = skip_acl or set()
        data_only: list[Put] = []
        others: list[Put] = []
        for put in updates:
            ex = put.existing
            assert ex is not None
            (data_only if ex.acl == put.want.acl or put.path in skip else others).append(put)
        if len(data_only) < 2:
            others.extend(data_only)
            data_only = []
        self._updates_multi(data_only, result)
        self._updates_async(others, result, skip)

    def _updates_multi(self, updates: Sequence[Put], result: ApplyResult) -> None:
        window = MULTI_MAX_OPS * MULTI_IN_FLIGHT
        for start in range(0, len(updates), window):
            self.send_updates(updates[start : start + window]).settle(result)

    def send_updates(self, updates: Sequence[Put]) -> SentUpdates:
        """Send data-only updates (see is_data_only) in multis without waiting for the
        replies: the caller reads them with ``settle()``, after doing something else."""
        return SentUpdates(self, updates)

    def is_data_only(self, ops: Sequence[Op]) -> bool:
        """Every op is a data change of a znode that stays as it is otherwise."""
        return all(
            isinstance(op, Put)
            and op.existing is not None
            and op.existing.acl == op.want.acl
            and not self._needs_replace(op)
            for op in ops
        )

    def _updates_async(self, updates: Sequence[Put], result: ApplyResult, skip: set[str]) -> None:
        pending: list[tuple[Put, Any, Any]] = []
        for put in updates:
            ex = put.existing
            assert ex is not None
            cond = self.conditional
            # Data and stat always go together: a set with the same data still refreshes
            # the stat (mtime, version) and, conditionally, checks nobody moved the node.
            set_res = self.client.set_async(
                put.path, put.want.data, version=ex.version if cond else -1
            )
            acl_res = (
                self.client.set_acls_async(
                    put.path, acl_to_kazoo(put.want.acl), version=ex.aversion if cond else -1
                )
                if ex.acl != put.want.acl and put.path not in skip
                else None
            )
            pending.append((put, set_res, acl_res))
        for put, set_res, acl_res in pending:
            stat: Any = None
            try:
                try:
                    stat = get_reply(self.client, set_res, TIMEOUT)
                finally:
                    if acl_res is not None:
                        acl_stat = _quiet(acl_res)
                        stat = acl_stat if acl_stat is not None else stat
                result.ops["set"] += 1
                result.bytes += len(put.want.data)
                if acl_res is not None:
                    result.ops["set_acl"] += 1
            except BadVersionError:
                result.raced.add(put.path)
                continue
            except NoNodeError as exc:
                if self.conditional:
                    result.raced.add(put.path)
                    continue
                self._create_fallback(put, acl_to_kazoo(put.want.acl), exc, result)
                continue
            except NoAuthError as exc:
                result.failed[put.path] = f"not authorized to update: {exc!r}"
                continue
            result.written[put.path] = self._result_state(put.want, put.existing, stat)
            result.applied_at[put.path] = time.monotonic()

    def _set_acl(self, put: Put, result: ApplyResult) -> None:
        try:
            self.client.set_acls(put.path, acl_to_kazoo(put.want.acl))
            result.ops["set_acl"] += 1
        except (NoNodeError, NoAuthError) as exc:
            result.failed[put.path] = f"could not set ACL: {exc!r}"

    # ------------------------------------------------------------------ sequences
    def carry_counters(self, needs: Mapping[str, int]) -> ApplyResult:
        """Push each parent's sequence counter up to ``needs[parent]`` (the next suffix on
        the side copied from), so a sequential create here never reuses a name the other
        side has issued. A closed parent is opened for the scratch child and closed again."""
        result = ApplyResult()
        for parent, at_least in sorted(needs.items()):
            try:
                try:
                    bumped = advance_sequence(self.client, parent, at_least)
                except NoAuthError:
                    # the scratch child needs CREATE and DELETE on the parent
                    with self._opened(parent, PERM_CREATE | PERM_DELETE, result, "to bump"):
                        bumped = advance_sequence(self.client, parent, at_least)
            except (NoNodeError, NoAuthError, NodeExistsError, BadVersionError) as exc:
                result.failed[parent] = f"could not advance sequence: {exc!r}"
                continue
            if bumped:
                result.ops["sequence_bump"] += bumped
        return result


class SentUpdates:
    """Data-only updates sent in multis; ``settle()`` reads the replies into an
    ApplyResult, redoing a failed multi op by op (with the fallbacks) then. The time each
    reply arrived is kept, so ``applied_at`` does not include the caller's wait."""

    def __init__(self, applier: Applier, updates: Sequence[Put]) -> None:
        self._applier = applier
        self._sent: list[tuple[list[Put], Any, list[float]]] = []
        for batch in _batches(updates, lambda put: put):
            txn = applier.client.transaction()
            for put in batch:
                assert put.existing is not None
                version = put.existing.version if applier.conditional else -1
                txn.set_data(put.path, put.want.data, version=version)
            res = txn.commit_async()
            arrived = [0.0]
            res.rawlink(lambda _res, box=arrived: box.__setitem__(0, time.monotonic()))
            self._sent.append((batch, res, arrived))

    def settle(self, result: ApplyResult | None = None) -> ApplyResult:
        result = result if result is not None else ApplyResult()
        for batch, res, arrived in self._sent:
            outcomes = get_reply(self._applier.client, res, TIMEOUT)
            if any(isinstance(o, Exception) for o in outcomes):
                self._applier._updates_async(batch, result, set())  # one by one
                continue
            when = arrived[0] or time.monotonic()
            for put, stat in zip(batch, outcomes, strict=True):
                result.ops["set"] += 1
                result.bytes += len(put.want.data)
                result.written[put.path] = self._applier._result_state(put.want, put.existing, stat)
                result.applied_at[put.path] = when
        self._sent = []
        return result


T = TypeVar("T")


def _batches(items: Sequence[T], put_of: Callable[[T], Put]) -> Iterator[list[T]]:
    """``items`` in runs that fit one multi (MULTI_MAX_OPS ops, about MULTI_MAX_BYTES)."""
    batch: list[T] = []
    size = 0
    for item in items:
        put = put_of(item)
        item_size = len(put.want.data) + len(put.path) + 64
        if batch and (len(batch) >= MULTI_MAX_OPS or size + item_size > MULTI_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def _ancestors(paths: Iterable[str]) -> set[str]:
    """Every proper ancestor of the given paths."""
    out: set[str] = set()
    for path in paths:
        while path != "/":
            path = parent_of(path)
            if path in out:
                break
            out.add(path)
    return out


def advance_sequence(client: Any, parent: str, at_least: int) -> int:
    """Create+delete a scratch child until ``parent``'s next sequential suffix is at least
    ``at_least`` (each pair adds one create: one suffix). Returns the pairs issued."""
    pairs = 0
    scratch = f"{parent.rstrip('/')}/{SEQUENCE_BUMP_NAME}"
    while True:
        stat = client.exists(parent)
        if stat is None:
            raise NoNodeError(parent)
        missing = at_least - next_sequence(int(stat.cversion), int(stat.numChildren))
        if missing <= 0:
            return pairs
        count = min(missing, MULTI_MAX_OPS // 2)
        txn = client.transaction()
        for _ in range(count):
            txn.create(scratch, b"")
            txn.delete(scratch)
        outcomes = txn.commit()
        failure = next((o for o in outcomes if isinstance(o, Exception)), None)
        if failure is not None:
            raise failure
        pairs += count


def _quiet(res: Any) -> Any:
    """The result of a request whose failure the sibling request already reports."""
    try:
        return res.get(timeout=TIMEOUT)
    except (NoNodeError, NoAuthError, BadVersionError):
        return None
