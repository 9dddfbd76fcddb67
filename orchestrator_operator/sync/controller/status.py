"""Pure parts of the sync controller: what a ZkMigration asks for, the ``status.sync`` it
gets, and the replication lag p99 over a recent window (no I/O here; see runner.py)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from orchestrator_operator.common.zk_endpoints import first_refused_server
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.zkmigration import SyncRequest, SyncStatus
from orchestrator_operator.sync.conflict import Strategy

STRATEGIES: dict[str, Strategy] = {
    "SourceWins": Strategy.SOURCE_WINS,
    "LastWriteWins": Strategy.LAST_WRITE_WINS,
    "Manual": Strategy.MANUAL,
}

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class SyncSpec:
    """One engine's worth of a syncRequest: a change of any field means a new engine."""

    source: str
    target: str
    paths: tuple[str, ...]
    strategy: str = "SourceWins"
    # (Secret name, key) in the migration's namespace holding each side's digest
    # credentials (common/zk_credentials.py reads it; never the secret itself here)
    source_secret: tuple[str, str] | None = None
    target_secret: tuple[str, str] | None = None
    # a side reached over TLS (its connect string names the TLS client port)
    source_tls: bool = False
    target_tls: bool = False

    @property
    def engine_strategy(self) -> Strategy:
        return STRATEGIES[self.strategy]

    def describe(self) -> str:
        return (
            f"{', '.join(self.paths)} between source {self.source} and target {self.target}"
            f" (bidirectional, {self.strategy})"
        )


@dataclass(frozen=True)
class Desired:
    """What the controller should do for one ZkMigration: run ``spec``, or nothing; ``why``
    says why nothing (for the Stopped message); ``invalid`` is a syncRequest that cannot run."""

    spec: SyncSpec | None
    why: str = ""
    invalid: bool = False


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def desired_of(obj: Mapping[str, Any], zookeeper_endpoints: Sequence[str] = ()) -> Desired:
    """Read ``status.syncRequest`` of a ZkMigration object (as listed from the API). With
    `zookeeper_endpoints` (the allow-list's rule), a side outside it cannot run."""
    if obj.get("metadata", {}).get("deletionTimestamp"):
        return Desired(None, "the ZkMigration is being deleted")
    raw = (obj.get("status") or {}).get("syncRequest")
    if raw is None:
        return Desired(None, "no status.syncRequest")
    try:
        request = SyncRequest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'syncRequest'}: {e['msg']}"
            for e in exc.errors()
        )
        return Desired(None, f"invalid status.syncRequest: {problems}", invalid=True)
    if not request.active:
        return Desired(None, "status.syncRequest.active is false")

    def secret(ref: SecretKeyRef | None) -> tuple[str, str] | None:
        return None if ref is None else (ref.name, ref.key)

    spec = SyncSpec(
        request.source,
        request.target,
        tuple(request.paths),
        request.strategy,
        secret(request.source_auth_secret_ref),
        secret(request.target_auth_secret_ref),
        request.source_tls,
        request.target_tls,
    )
    meta = obj.get("metadata", {})
    managed = (str((obj.get("spec") or {}).get("clusterRef") or ""), str(meta.get("name", "")))
    refused = endpoints_refusal(
        spec, str(meta.get("namespace", "")), zookeeper_endpoints, [m for m in managed if m]
    )
    if refused:
        return Desired(None, refused, invalid=True)
    return Desired(spec)


def endpoints_refusal(
    spec: SyncSpec, namespace: str, entries: Sequence[str], managed: Sequence[str] = ()
) -> str | None:
    """The controller's own check of the ensembles a syncRequest names (the operator made
    the same before it wrote the request; status is writable by whoever may patch it, so
    the sessions' owner checks again): each side's servers must be allowed by `entries`
    or be those of an ensemble the operator manages for the migration, named after
    `managed` (its cluster, the migration itself): `<name>-zookeeper-client.<namespace>.svc`
    and the members under `<name>-zookeeper-headless` (the operator refuses to build one
    where another object holds those names, so they are its own). No entries: anything."""
    if not entries:
        return None
    own = [
        pattern
        for name in managed
        for pattern in (
            f"{name}-zookeeper-client.{namespace}.svc",
            f"*.{name}-zookeeper-headless.{namespace}.svc.cluster.local",
        )
    ]
    for side, connect in (("source", spec.source), ("target", spec.target)):
        refused = first_refused_server((*entries, *own), connect)
        if refused:
            return f"{side}: allow-list rule zookeeperEndpoints: {refused}"
    return None


def current_sync(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    sync = (obj.get("status") or {}).get("sync")
    return sync if isinstance(sync, Mapping) else None


def state_file_name(key: Key) -> str:
    namespace, name = key
    return f"{namespace}_{name}.json"


# ----------------------------------------------------------------------------- status


@dataclass(frozen=True)
class VerifyResult:
    """One comparison of both sides (zk/verify.py) or why it could not be made."""

    at: float  # Unix time
    digests_equal: bool | None = None
    differences: int | None = None
    znodes_source: int | None = None
    znodes_target: int | None = None
    unreadable: int = 0
    error: str | None = None


@dataclass(frozen=True)
class EngineView:
    """What the controller read from a running engine's public attributes."""

    bootstrap_znodes: int
    bootstrap_seconds: float
    conflicts: int
    last_reconcile: float  # Unix time, 0 when none yet
    acl_sweep_seconds: float | None = None  # the last full sweep of A's ACL versions
    healthy: bool = True
    health: Mapping[str, Any] | None = None


def _time(unix: float | None) -> datetime | None:
    if not unix:
        return None
    return datetime.fromtimestamp(unix, UTC).replace(microsecond=0)


def health_problems(health: Mapping[str, Any] | None) -> list[str]:
    """The engine's /healthz detail, said in a few words (empty when nothing is wrong)."""
    if not health:
        return []
    problems = []
    if health.get("worker_alive") is False:
        problems.append("engine worker not running")
    connected = health.get("connected") or {}
    for side, name in (("a", "source"), ("b", "target")):
        if connected.get(side) is False:
            problems.append(f"{name} ensemble disconnected (reconnecting)")
    for key, what in (("unreadable", "unreadable"), ("unwritable", "not writable")):
        for side, paths in sorted((health.get(key) or {}).items()):
            name = "source" if side == "a" else "target"
            problems.append(f"{what} on {name}: {', '.join(paths[:5])}")
    return problems


def running_message(spec: SyncSpec, engine: EngineView, verify: VerifyResult | None) -> str:
    parts = [f"syncing {spec.describe()}"]
    problems = health_problems(engine.health)
    if not engine.healthy:
        parts.extend(problems or ["engine unhealthy"])
    else:
        parts.extend(problems)  # a healthy engine that cannot read or write some znodes
    if verify is not None:
        if verify.error:
            parts.append(f"verify failed: {verify.error}")
        elif verify.differences:
            parts.append(f"{verify.differences} difference(s) at the last verify")
    if engine.conflicts:
        parts.append(f"{engine.conflicts} unresolved conflict(s)")
    return "; ".join(parts)


def build_sync_status(
    state: str,
    message: str,
    *,
    now: float,
    engine: EngineView | None = None,
    bootstrapped: bool = False,
    verify: VerifyResult | None = None,
    lag_p99: float | None = None,
) -> dict[str, Any]:
    """``status.sync`` as JSON (camelCase). Every field is present, None for unknown: sent as
    a merge patch, None removes what an earlier report said and is no longer known."""
    usable = verify if verify is not None and verify.error is None else None
    status = SyncStatus(
        state=state,  # checked by the model
        message=message,
        bootstrapped=bootstrapped,
        bootstrap_znodes=engine.bootstrap_znodes if engine else None,
        bootstrap_seconds=round(engine.bootstrap_seconds, 3) if engine else None,
        lag_p99_seconds=round(lag_p99, 6) if lag_p99 is not None else None,
        acl_lag_seconds=engine.acl_sweep_seconds if engine else None,
        digests_equal=usable.digests_equal if usable else None,
        differences=usable.differences if usable else None,
        unreadable=usable.unreadable if usable else None,
        conflicts=engine.conflicts if engine else None,
        znodes_source=usable.znodes_source if usable else None,
        znodes_target=usable.znodes_target if usable else None,
        last_reconcile_time=_time(engine.last_reconcile) if engine else None,
        last_verify_time=_time(usable.at) if usable else None,
        updated_at=_time(now),
    )
    return status.model_dump(by_alias=True, mode="json")


# ----------------------------------------------------------------------------- lag


Buckets = tuple[tuple[float, float], ...]  # cumulative (upper bound, count), +Inf last


def histogram_buckets(families: Iterable[Any]) -> Buckets:
    """Cumulative bucket counts of a histogram, summed over its labels (both directions)."""
    sums: dict[float, float] = {}
    for family in families:
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                sums[le] = sums.get(le, 0.0) + float(sample.value)
    return tuple(sorted(sums.items()))


def quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile over cumulative buckets; None when they are empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if upper == float("inf"):
                return lower  # beyond the last finite bucket: its bound, as Prometheus does
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


class LagWindow:
    """Snapshots of a cumulative histogram; the p99 of what was observed in the last
    ``window`` seconds is computed from the difference of two snapshots."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._snaps: deque[tuple[float, Buckets]] = deque()

    def add(self, now: float, buckets: Buckets) -> None:
        self._snaps.append((now, buckets))
        # Keep one snapshot at or before the window's start as the baseline.
        while len(self._snaps) >= 2 and self._snaps[1][0] <= now - self.window:
            self._snaps.popleft()

    def p99(self) -> float | None:
        if len(self._snaps) < 2:
            return None
        base = dict(self._snaps[0][1])
        latest = self._snaps[-1][1]
        delta = [(le, count - base.get(le, 0.0)) for le, count in latest]
        return quantile(0.99, delta)
