"""Benchmark of the ZooKeeper sync engine (orchestrator_operator/zk) on real ensembles.

Two real 3-server ZooKeeper ensembles (A = source, B = target) on loopback.

1. Bootstrap of 10,000 and 100,000 znodes (nested tree, 64-byte data, 10 % with a digest
   ACL) from A to an empty path on B, in znodes per second, beside, in the same run:
   - naive baseline: one synchronous read (get, getACL, getChildren) and one create per
     znode, as simple copy tools do (time-capped: the rate is measured over the znodes it
     copied within ``--naive-seconds``);
   - raw ceiling: reads of the same znodes from a known path list (no tree walk, no
     watches, no processing), the best of one kazoo request per read (get, getACL,
     getChildren) and the engine's bulk primitives (multiRead for data and children,
     getACL pipelined over raw sessions), and pipelined multi creates on B (best of 500-
     and 1,000-op multis); the copy ceiling of one process is 1 / (1/read + 1/write).
2. Steady-state lag p50/p99 over a 10,000-znode tree at 100, 300, 500 and 1,000 writes/s:
   a separate load process sets random znodes of A on an open-loop schedule; the lag of a
   write is from its acknowledgement on A to the engine's acknowledged write of the same
   value on B (CLOCK_MONOTONIC is shared by the two processes). Ceilings in the same run:
   one kazoo client's async get rate and async set rate (one request per change:
   1 / (1/get rate + 1/set rate) changes/s), and the same with reads batched in multiRead
   and sets in multis of 50.

Run: ``.venv/bin/python -m bench.zk_sync`` (``--quick`` for a small smoke run).
Prints the figures and one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing as mp
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kazoo.client import KazooClient
from kazoo.protocol.serialization import SetData
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id, make_digest_acl

from orchestrator_operator.sync.engine import SyncConfig, SyncEngine
from orchestrator_operator.sync.verify import verify_clients
from orchestrator_operator.zk.acls import RAW_SESSIONS_MAX
from orchestrator_operator.zk.handler import PollHandler
from orchestrator_operator.zk.model import NodeState, Side
from orchestrator_operator.zk.wire.multiread import GET_CHILDREN, GET_DATA, ReadOp, run_reads
from orchestrator_operator.zk.wire.rawsession import RawSession, get_acls, servers
from testenv.zookeeper import ZkEnsemble

SECRET_ACL = [make_digest_acl("bench", "pw", all=True), ACL(1, Id("world", "anyone"))]
# Every session of the bench (the engine's, the load's, the ceiling's and the baseline's)
# authenticates as the digest user: without ADMIN its ACLs read redacted, and the engine
# leaves such znodes unreadable rather than copy `bench:x`.
BENCH_AUTH = [("digest", "bench:pw")]
DATA_BYTES = 64


# --------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def client(hosts: str) -> Iterator[KazooClient]:
    c = KazooClient(hosts=hosts, timeout=30.0, handler=PollHandler(), auth_data=BENCH_AUTH)
    c.start(timeout=60)
    try:
        yield c
    finally:
        c.stop()
        c.close()


def tree_paths(root: str, n: int) -> list[tuple[str, bool]]:
    """``n`` paths (parents first) of a 3-level tree: root/dI/sJ/nK; flag = digest ACL."""
    rng = random.Random(n)
    fan = max(2, round((n / 20) ** (1 / 2)))
    paths: list[tuple[str, bool]] = [(root, False)]
    i = 0
    while len(paths) < n:
        d = f"{root}/d{i}"
        paths.append((d, False))
        for j in range(fan):
            if len(paths) >= n:
                break
            s = f"{d}/s{j}"
            paths.append((s, False))
            for k in range(20):
                if len(paths) >= n:
                    break
                paths.append((f"{s}/n{k}", rng.random() < 0.1))
        i += 1
    return paths[:n]


def populate(c: KazooClient, paths: list[tuple[str, bool]], multi: int = 500) -> None:
    rng = random.Random(7)
    inflight: list[Any] = []
    for start in range(0, len(paths), multi):
        txn = c.transaction()
        for path, secret in paths[start : start + multi]:
            data = rng.randbytes(DATA_BYTES)
            txn.create(path, data, acl=SECRET_ACL if secret else OPEN_ACL_UNSAFE)
        inflight.append(txn.commit_async())
        if len(inflight) >= 8:
            _check_multi(inflight.pop(0).get(timeout=120))
    for res in inflight:
        _check_multi(res.get(timeout=120))


def _check_multi(outcomes: list[Any]) -> None:
    bad = [o for o in outcomes if isinstance(o, Exception)]
    if bad:
        raise RuntimeError(f"multi failed: {bad[0]!r}")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# --------------------------------------------------------------------------- bootstrap
def raw_read(c: KazooClient, paths: list[str], window: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(paths), window):
        chunk = paths[start : start + window]
        pending = [(c.get_async(p), c.get_acls_async(p), c.get_children_async(p)) for p in chunk]
        for a, b, d in pending:
            a.get(timeout=120)
            b.get(timeout=120)
            d.get(timeout=120)
    return len(paths) / (time.perf_counter() - t0)


def raw_read_bulk(c: KazooClient, paths: list[str]) -> float:
    """ZooKeeper >= 3.6 ceiling: data and children by multiRead, ACLs pipelined over raw
    sessions (the engine's primitives, over a known path list, no tree walk)."""
    ops = [ReadOp(kind, p) for p in paths for kind in (GET_DATA, GET_CHILDREN)]
    hosts = servers(c)
    sessions = [RawSession.open(c, only=hosts[i % len(hosts)]) for i in range(RAW_SESSIONS_MAX)]
    try:
        t0 = time.perf_counter()
        run_reads(c, ops, multi=True)
        get_acls(sessions, c, paths)
        return len(paths) / (time.perf_counter() - t0)
    finally:
        for session in sessions:
            session.close()


def raw_write(c: KazooClient, root: str, paths: list[tuple[str, bool]], multi: int) -> float:
    prefix = f"/raw{multi}"
    c.ensure_path(prefix)
    shifted = [(prefix + p, s) for p, s in paths]
    t0 = time.perf_counter()
    populate(c, shifted, multi)
    return len(paths) / (time.perf_counter() - t0)


def naive_copy(
    ca: KazooClient,
    cb: KazooClient,
    root: str,
    seconds: float = float("inf"),
    dest_prefix: str = "/naive",
) -> tuple[int, float]:
    """Synchronous, one znode at a time, breadth-first: get, getACL, getChildren, create
    (on B under ``dest_prefix``; ``""`` copies to the same path, which must not exist).
    Stops after ``seconds``; returns (znodes copied, znodes/s)."""
    if dest_prefix:
        cb.ensure_path(dest_prefix)
    queue = [root]
    copied = 0
    t0 = time.perf_counter()
    while queue and time.perf_counter() - t0 < seconds:
        path = queue.pop(0)
        data, _ = ca.get(path)
        acl, _ = ca.get_acls(path)
        kids = ca.get_children(path)
        cb.create(dest_prefix + path, data, acl=acl)
        queue.extend(f"{path}/{k}" for k in kids)
        copied += 1
    return copied, copied / (time.perf_counter() - t0)


def engine_bootstrap(a: ZkEnsemble, b: ZkEnsemble, root: str) -> tuple[int, float, float]:
    config = SyncConfig(
        a.connect_string, b.connect_string, [root], source_auth=BENCH_AUTH, target_auth=BENCH_AUTH
    )
    engine = SyncEngine(config)
    engine.start()
    try:
        stats = engine.bootstrap
        return stats.znodes, stats.seconds, stats.znodes_per_second
    finally:
        engine.stop()


def bench_bootstrap(a: ZkEnsemble, b: ZkEnsemble, n: int, naive_seconds: float) -> dict[str, Any]:
    root = f"/boot{n}"
    paths = tree_paths(root, n)
    with client(a.connect_string) as ca, client(b.connect_string) as cb:
        t0 = time.perf_counter()
        populate(ca, paths)
        print(f"  populated {n} znodes on A in {time.perf_counter() - t0:.1f}s", flush=True)
        # best of a few pipeline windows (a ceiling, not one setting); one window at 100k
        windows = (250, 500, 2000) if n <= 20_000 else (500,)
        kazoo_rate = max(raw_read(ca, [p for p, _ in paths], w) for w in windows)
        bulk_rate = max(raw_read_bulk(ca, [p for p, _ in paths]) for _ in range(2))
        read_rate = max(kazoo_rate, bulk_rate)
        write_rate = max(raw_write(cb, root, paths, m) for m in (500, 1000))
        ceiling = 1 / (1 / read_rate + 1 / write_rate)
        print(
            f"  ceiling: reads {read_rate:,.0f} znodes/s (multiRead + raw getACL; "
            f"{kazoo_rate:,.0f}/s with one kazoo request per read), "
            f"multi creates {write_rate:,.0f}/s, copy {ceiling:,.0f}/s",
            flush=True,
        )
        naive_n, naive_rate = naive_copy(ca, cb, root, naive_seconds)
        print(f"  naive: {naive_n} znodes at {naive_rate:,.0f} znodes/s", flush=True)
        znodes, seconds, rate = engine_bootstrap(a, b, root)
        report = verify_clients(ca, cb, [root])
        print(
            f"  engine: {znodes} znodes in {seconds:.2f}s = {rate:,.0f} znodes/s "
            f"({rate / ceiling:.0%} of ceiling, {rate / naive_rate:.1f}x naive); "
            f"digests equal: {report.ok}",
            flush=True,
        )
    return {
        "znodes": n,
        "engine_znodes_per_s": round(rate, 1),
        "engine_seconds": round(seconds, 2),
        "naive_znodes_per_s": round(naive_rate, 1),
        "naive_sampled_znodes": naive_n,
        "ceiling_read_znodes_per_s": round(read_rate, 1),
        "ceiling_read_kazoo_requests_znodes_per_s": round(kazoo_rate, 1),
        "ceiling_write_znodes_per_s": round(write_rate, 1),
        "ceiling_copy_znodes_per_s": round(ceiling, 1),
        "fraction_of_ceiling": round(rate / ceiling, 3),
        "multiple_of_naive": round(rate / naive_rate, 2),
        "digests_equal": report.ok,
    }


# --------------------------------------------------------------------------- lag
def _writer(hosts: str, paths: list[str], rate: float, seconds: float, seq0: int, out: Any) -> None:
    """Load process: open-loop sets at ``rate``/s; returns (seq, path, ack time) list.

    The sets go through a raw pipelined session (one frame out per set, replies read by a
    second thread) rather than kazoo: the load generator is not what is measured, and at
    1,000 writes/s kazoo took about a third of one of the two cores."""
    rng = random.Random(seq0)
    acks: dict[int, float] = {}
    sent: list[tuple[int, str]] = []
    errors: list[int] = []
    total = int(rate * seconds)
    with client(hosts) as c:
        session = RawSession.open(c)
    try:

        def read_acks() -> None:
            for i in range(total):  # one session's replies come in the order of its requests
                _, err = session.read_reply()
                acks[seq0 + i] = time.monotonic()
                if err:
                    errors.append(err)

        reader = threading.Thread(target=read_acks, daemon=True)
        reader.start()
        t0 = time.monotonic()
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            seq = seq0 + i
            path = rng.choice(paths)
            body = SetData(path, f"{seq}".encode(), -1).serialize()
            session.send_request(SetData.type, body)
            sent.append((seq, path))
        reader.join(timeout=120)
        elapsed = time.monotonic() - t0
    finally:
        session.close()
    if errors:
        raise RuntimeError(f"{len(errors)} load writes failed (first error code {errors[0]})")
    out.put({"acks": acks, "sent": sent, "elapsed": elapsed})


def _collect(proc: Any, out: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            got: dict[str, Any] = out.get(timeout=1.0)
            proc.join(timeout=60)
            return got
        if not proc.is_alive():
            raise RuntimeError(f"load process died (exit code {proc.exitcode})")
    proc.kill()
    raise RuntimeError("load process timed out")


def raw_ops_ceiling(
    hosts_a: str, hosts_b: str, paths: list[str], batch: int | None = None
) -> tuple[float, float]:
    """Gets on A and sets on B per second: one kazoo request each, or (``batch``) in
    multiRead / multi requests of ``batch`` operations, 8 in flight."""
    with client(hosts_a) as ca, client(hosts_b) as cb:
        sample = paths[:5000]
        t0 = time.perf_counter()
        if batch is None:
            for res in [ca.get_async(p) for p in sample]:
                res.get(timeout=120)
        else:
            run_reads(ca, [ReadOp(GET_DATA, p) for p in sample], multi=True)
        get_rate = len(sample) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        if batch is None:
            for res in [cb.set_async(p, b"ceiling") for p in sample]:
                res.get(timeout=120)
        else:
            pending: list[Any] = []
            for start in range(0, len(sample), batch):
                txn = cb.transaction()
                for p in sample[start : start + batch]:
                    txn.set_data(p, b"ceiling")
                pending.append(txn.commit_async())
                if len(pending) >= 8:
                    pending.pop(0).get(timeout=120)
            for res in pending:
                res.get(timeout=120)
        set_rate = len(sample) / (time.perf_counter() - t0)
    return get_rate, set_rate


def bench_lag(
    a: ZkEnsemble,
    b: ZkEnsemble,
    rates: list[int],
    seconds: float,
    warmup: float,
    root: str = "/lag",
    acl_sweep_rate: int = SyncConfig.acl_sweep_rate,
) -> dict[str, Any]:
    paths = tree_paths(root, 10_000)
    with client(a.connect_string) as ca:
        populate(ca, paths)
    leaves = [p for p, secret in paths if not secret and p.rsplit("/", 1)[-1].startswith("n")]
    applied: dict[int, float] = {}

    def on_applied(path: str, side: Side, t: float, node: NodeState | None) -> None:
        if node is not None and node.data.isdigit():
            applied.setdefault(int(node.data), t)

    engine = SyncEngine(
        SyncConfig(
            a.connect_string,
            b.connect_string,
            [root],
            reconcile_interval=600.0,
            source_auth=BENCH_AUTH,
            target_auth=BENCH_AUTH,
            acl_sweep_rate=acl_sweep_rate,
        ),
        on_applied=on_applied,
    )
    engine.start()
    print(f"  engine bootstrapped the 10k lag tree in {engine.bootstrap.seconds:.1f}s", flush=True)
    results: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    seq0 = 0
    try:
        for rate in rates:
            out = ctx.Queue()
            proc = ctx.Process(
                target=_writer, args=(a.connect_string, leaves, rate, seconds, seq0, out)
            )
            proc.start()
            got = _collect(proc, out, seconds + 300)
            engine.wait_idle(timeout=120)
            acks: dict[int, float] = got["acks"]
            sent: list[tuple[int, str]] = got["sent"]
            first_ack = min(acks.values()) if acks else 0.0
            lags = [
                applied[s] - acks[s]
                for s, _ in sent
                if s in applied and s in acks and acks[s] - first_ack >= warmup
            ]
            measured = sum(1 for s, _ in sent if s in acks and acks[s] - first_ack >= warmup)
            # a write superseded by a later write to the same znode before the engine read
            # it is never applied as such; the later one is
            last_per_path: dict[str, int] = {}
            for s, p in sent:
                last_per_path[p] = s
            lost = [s for p, s in last_per_path.items() if s not in applied]
            row = {
                "target_writes_per_s": rate,
                "achieved_writes_per_s": round(len(sent) / got["elapsed"], 1),
                "writes": len(sent),
                "p50_ms": round(1000 * pct(lags, 50), 2),
                "p99_ms": round(1000 * pct(lags, 99), 2),
                "max_ms": round(1000 * max(lags), 2) if lags else None,
                "mean_ms": round(1000 * statistics.fmean(lags), 2) if lags else None,
                "applied_fraction": round(len(lags) / measured, 4) if measured else None,
                "last_write_per_znode_missing": len(lost),
            }
            results.append(row)
            print(
                f"  {rate:5d}/s target, {row['achieved_writes_per_s']:7.1f}/s achieved: "
                f"lag p50 {row['p50_ms']:8.2f} ms  p99 {row['p99_ms']:8.2f} ms  "
                f"max {row['max_ms']} ms  applied {row['applied_fraction']}  "
                f"missing-final {len(lost)}",
                flush=True,
            )
            seq0 += len(sent) + 1000
        with client(a.connect_string) as ca, client(b.connect_string) as cb:
            in_sync = verify_clients(ca, cb, [root]).ok
    finally:
        engine.stop()
    get_rate, set_rate = raw_ops_ceiling(a.connect_string, b.connect_string, leaves)
    ceiling = 1 / (1 / get_rate + 1 / set_rate)
    bget, bset = raw_ops_ceiling(a.connect_string, b.connect_string, leaves, batch=50)
    batched = 1 / (1 / bget + 1 / bset)
    print(
        f"  ceiling: async gets {get_rate:,.0f}/s, async sets {set_rate:,.0f}/s -> "
        f"one request per read and write saturates near {ceiling:,.0f} changes/s; "
        f"batched by 50 (multiRead gets {bget:,.0f}/s, multi sets {bset:,.0f}/s) near "
        f"{batched:,.0f} changes/s; digests equal after the run: {in_sync}",
        flush=True,
    )
    return {
        "tree_znodes": 10_000,
        "rates": results,
        "ceiling_get_per_s": round(get_rate, 1),
        "ceiling_set_per_s": round(set_rate, 1),
        "ceiling_changes_per_s": round(ceiling, 1),
        "ceiling_batched50_get_per_s": round(bget, 1),
        "ceiling_batched50_set_per_s": round(bset, 1),
        "ceiling_batched50_changes_per_s": round(batched, 1),
        "digests_equal": in_sync,
    }


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000", help="bootstrap sizes, or none")
    parser.add_argument("--rates", default="100,300,500,1000")
    parser.add_argument("--seconds", type=float, default=10.0, help="per lag rate")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--naive-seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="small sizes, short runs")
    parser.add_argument(
        "--acl-sweep-rate",
        type=int,
        default=SyncConfig.acl_sweep_rate,
        help="the engine's ACL sweep in the lag part, znodes/s (0: off; an A/B of its cost)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    def on_term(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)  # unwind: the ensembles' context managers stop them

    signal.signal(signal.SIGTERM, on_term)
    logging.getLogger("kazoo").setLevel(logging.ERROR)
    sizes = [] if args.sizes == "none" else [int(s) for s in args.sizes.split(",")]
    rates = [int(r) for r in args.rates.split(",")]
    if args.quick:
        sizes, rates, args.seconds, args.naive_seconds = [2000], [100, 300], 3.0, 3.0
    result: dict[str, Any] = {
        "bench": "zk_sync",
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        "zookeeper": "3.8.0 (Debian), two 3-server ensembles on loopback, -Xmx768m",
    }
    with (
        ZkEnsemble(3, heap="768m") as a,
        ZkEnsemble(3, heap="768m") as b,
    ):
        print("bootstrap (znodes/s):", flush=True)
        result["bootstrap"] = [bench_bootstrap(a, b, n, args.naive_seconds) for n in sizes]
        print("steady-state lag over a 10,000-znode tree:", flush=True)
        result["lag"] = bench_lag(
            a, b, rates, args.seconds, args.warmup, acl_sweep_rate=args.acl_sweep_rate
        )
        result["lag"]["acl_sweep_rate"] = args.acl_sweep_rate
    result["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    result["targets"] = {"bootstrap_znodes_per_s": 10_000, "lag_p99_ms_at_1000_writes_per_s": 50}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
