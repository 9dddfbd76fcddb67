"""The replicated log between masters: replica recovery, the coordinator, the audit.

Follows Mesos 1.11 `src/log/recover.cpp` (the recover protocol every master runs for its
replica: a quorum of VOTING replicas -> RECOVERING and catch-up; EMPTY and all `2*quorum-1`
replicas EMPTY or STARTING -> STARTING; STARTING and all STARTING or VOTING -> VOTING; else
retry), `src/log/coordinator.cpp` (elect: an implicit promise granted by a quorum of VOTING
replicas, retried with a higher proposal when refused; append: a write accepted by a quorum;
a refusal demotes the coordinator), `src/log/catchup.cpp`, `src/log/log.cpp` (the
`registrar/log/recovered` and `registrar/log/ensemble_size` metrics) and
docs/replicated-log-internals.md. Replicas find each other through the `log_replicas`
znodes; their traffic is sim-internal JSON over HTTP (`/sim/v1/log/*`).

Two quorums of a replica set intersect only while it has at most `2*quorum-1` members.
Mesos does not check this (a new replica joins whenever a quorum is VOTING); the sim
reports a larger set (`sim/log/quorum_intersection_unsafe`, a WARNING) and keeps an audit
of what each leader committed and recovered (`GET /sim/v1/log`, read by sim/logaudit.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sim.httputil import CLIENT_ERRORS, Client
from sim.master.replica import EMPTY, RECOVERING, STARTING, VOTING, Entry, Replica, digest

log = logging.getLogger("sim.master.log")

RETRY = 0.3
MAX_AUDIT = 5_000


class NoQuorum(Exception):
    pass


class Demoted(Exception):
    pass


class Audit:
    """What this master committed as leader and recovered when it became leader; kept in
    `<work_dir>/replicated_log/audit.jsonl` so it outlives a restart."""

    def __init__(self, work_dir: Path | None) -> None:
        self.path = work_dir / "replicated_log" / "audit.jsonl" if work_dir else None
        self.commits: list[dict[str, Any]] = []
        self.recoveries: list[dict[str, Any]] = []
        if self.path is not None and self.path.exists():
            lines = self.path.read_text().splitlines()
            for line in lines[-2 * MAX_AUDIT :]:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash
                self._list(record).append(record)
            del self.commits[:-MAX_AUDIT], self.recoveries[:-MAX_AUDIT]
            if len(lines) > 2 * MAX_AUDIT:  # keep the file bounded across restarts
                kept = sorted(self.commits + self.recoveries, key=lambda r: float(r["at"]))
                self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))

    def _list(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """Writes (`commit`, and `fill`: a recovered value written again) or recoveries."""
        return self.recoveries if record.get("kind") == "recovery" else self.commits

    def add(self, record: dict[str, Any]) -> None:
        target = self._list(record)
        target.append(record)
        del target[:-MAX_AUDIT]
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")


class ReplicatedLog:
    def __init__(
        self,
        *,
        address: str,
        quorum: int,
        work_dir: Path | None,
        master_id: str,
        client: Client,
    ) -> None:
        self.address = address  # "ip:port" of this master (its replica)
        self.quorum = quorum
        self.master_id = master_id
        self.client = client
        self.replica = Replica.open(work_dir)
        self.audit = Audit(work_dir)
        self.peers: list[str] = []  # addresses from the log_replicas znodes (self included)
        self.proposal = 0  # the coordinator's, once elected
        self.elected = False  # this master's coordinator holds a quorum of promises
        self.unsafe = False
        self.unsafe_seen = 0
        self.recovered = asyncio.Event()
        self._inflight: set[asyncio.Future[dict[str, Any] | None]] = set()
        if self.replica.status == VOTING:
            self.recovered.set()

    # ------------------------------------------------------------------ membership
    @property
    def ensemble_size(self) -> int:
        return len(self.peers)

    @property
    def cluster_size(self) -> int:
        return 2 * self.quorum - 1

    def set_peers(self, peers: list[str]) -> None:
        self.peers = sorted(set(peers))
        unsafe = len(self.peers) > self.cluster_size
        if unsafe and not self.unsafe:
            self.unsafe_seen += 1
            log.warning(
                "%d log replicas with --quorum=%d: two quorums of this set need not "
                "intersect (at most %d replicas are safe); a new leader may miss committed "
                "registry writes",
                len(self.peers),
                self.quorum,
                self.cluster_size,
            )
        self.unsafe = unsafe

    # ------------------------------------------------------------------ transport
    async def _call(self, peer: str, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
        if peer == self.address:
            return self.handle(op, body)
        try:
            status, data = await self.client.post(f"http://{peer}/sim/v1/log/{op}", body)
        except CLIENT_ERRORS:
            return None
        return data if status == 200 and isinstance(data, dict) else None

    async def _call_later(self, peer: str, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
        await asyncio.sleep(RETRY)
        return await self._call(peer, op, body)

    def handle(self, op: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """A request to this replica; None: ignored (not VOTING, or unknown)."""
        if op == "recover":
            return self.replica.recover_response()
        if op == "promise":
            return self.replica.promise(int(body["proposal"]))
        if op == "write":
            return self.replica.write(
                int(body["proposal"]), int(body["position"]), dict(body["value"])
            )
        if op == "state":
            if self.replica.status != VOTING:
                return None
            return {
                "promised": self.replica.promised,
                "highest": self.replica.highest(),
                "entries": [e.to_json() for e in self.replica.entries],
            }
        return None

    async def _broadcast(self, op: str, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        peers = list(self.peers) or [self.address]
        results = await asyncio.gather(*(self._call(p, op, body) for p in peers))
        return [(p, r) for p, r in zip(peers, results, strict=True) if r is not None]

    # ------------------------------------------------------------------ replica recovery
    async def recover_replica(self, peers_ready: Callable[[], Awaitable[None]]) -> None:
        """Run the recover protocol until the local replica is VOTING (every master)."""
        while self.replica.status != VOTING:
            await peers_ready()
            if len(self.peers) < self.quorum:
                await asyncio.sleep(RETRY)
                continue
            responses = await self._broadcast("recover", {})
            counts = {s: 0 for s in (EMPTY, STARTING, RECOVERING, VOTING)}
            for _, response in responses:
                counts[str(response.get("status"))] = counts.get(str(response["status"]), 0) + 1
            status = self.replica.status
            if counts[VOTING] >= self.quorum:
                if status != RECOVERING:
                    self.replica.set_status(RECOVERING)
                    log.info("replica RECOVERING: %d VOTING replicas found", counts[VOTING])
                if await self._catch_up():
                    log.info("replica caught up to position %d: VOTING", self.replica.position)
                    break
            elif status == EMPTY and counts[EMPTY] + counts[STARTING] >= self.cluster_size:
                self.replica.set_status(STARTING)
                log.info("replica STARTING (auto-initialization: all replicas EMPTY)")
                continue
            elif status == STARTING and counts[STARTING] + counts[VOTING] >= self.cluster_size:
                self.replica.set_status(VOTING)
                log.info("replica VOTING (auto-initialized)")
                break
            await asyncio.sleep(RETRY * (1 + random.random()))
        self.recovered.set()

    async def _catch_up(self) -> bool:
        states = [r for _, r in await self._broadcast("state", {})]
        if len(states) < self.quorum:
            return False
        best = max(states, key=lambda s: (s["highest"] or {}).get("position", 0))
        promised = max(int(s["promised"]) for s in states)
        self.replica.catch_up(best, promised)
        return True

    # ------------------------------------------------------------------ coordinator
    async def elect(self, deadline: float) -> dict[str, Any]:
        """The promise phase from a quorum of VOTING replicas, then the highest value any
        of them accepted is written again with our proposal (filled) so that it is
        committed. Returns the recovered registry. NoQuorum at the deadline."""
        proposal = self.replica.promised
        while True:
            if time.monotonic() > deadline:
                raise NoQuorum(f"no quorum of {self.quorum} VOTING log replicas answered")
            proposal = max(proposal, self.replica.promised) + 1
            responses = await self._broadcast("promise", {"proposal": proposal})
            granted = [(p, r) for p, r in responses if r.get("okay")]
            refused = [int(r["proposal"]) for _, r in responses if not r.get("okay")]
            if refused:
                proposal = max(refused)
                await asyncio.sleep(0.1 * (1 + random.random()))  # Mesos: T=100ms..2T
                continue
            if len(granted) < self.quorum:
                await asyncio.sleep(RETRY)
                continue
            break
        self.proposal = proposal
        highest = [r["highest"] for _, r in granted if r.get("highest")]
        best = max(highest, key=lambda h: (h["position"], h["proposal"]), default=None)
        value: dict[str, Any] = dict(best["value"] or {}) if best else {}
        position = int(best["position"]) if best else 0
        if best is not None:
            # Mesos coordinator.cpp: catch the local replica up on every unlearned or
            # missing position before serving, from what the replicas accepted
            states = [r for _, r in await self._broadcast("state", {})]
            self.replica.learn(
                [[Entry.from_json(e) for e in s.get("entries", [])] for s in states],
                position - 1,
            )
            self.replica.accept(Entry.from_json(best), value)
            await self.append(value, position=position, kind="fill")
        self.elected = True
        self.audit.add(
            {
                "kind": "recovery",
                "master": self.master_id,
                "at": time.time(),
                "proposal": proposal,
                "position": position,
                "digest": best["digest"] if best else None,
                "from": sorted(p for p, _ in granted),
                "entries": [e.to_json() for e in self.replica.entries[-200:]],
            }
        )
        log.info(
            "coordinator elected with proposal %d by %s; recovered position %d",
            proposal,
            ", ".join(sorted(p for p, _ in granted)),
            position,
        )
        return value

    async def append(
        self, value: dict[str, Any], *, position: int | None = None, kind: str = "commit"
    ) -> int:
        """Write `value` at the next position (or `position`); returns once a quorum
        accepted it. Demoted when a replica refuses before that."""
        position = self.replica.position + 1 if position is None else position
        body = {"proposal": self.proposal, "position": position, "value": value}
        peers = list(self.peers) or [self.address]
        pending = {asyncio.ensure_future(self._call(p, "write", body)): p for p in peers}
        accepted: list[str] = []
        record: dict[str, Any] = {
            "kind": kind,
            "master": self.master_id,
            "at": time.time(),
            "proposal": self.proposal,
            "position": position,
            "digest": digest(value),
            "acceptors": accepted,
        }
        while len(accepted) < self.quorum:
            if not pending:
                raise NoQuorum(f"only {len(accepted)} of {self.quorum} replicas accepted")
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                peer = pending.pop(future)
                response = future.result()
                if response is None:
                    # No answer (yet): Mesos' broadcast waits for it, bounded only by the
                    # registrar's --registry_store_timeout (the caller's); ask again.
                    retry = self._call_later(peer, "write", body)
                    pending[asyncio.ensure_future(retry)] = peer
                    continue
                if not response.get("okay"):
                    for rest in pending:
                        rest.cancel()
                    raise Demoted(
                        f"replica {peer} promised proposal {response.get('proposal')} "
                        f"above ours ({self.proposal})"
                    )
                accepted.append(peer)
        if kind == "commit" or kind == "fill":
            self.audit.add({**record, "acceptors": sorted(accepted)})
        for future in pending:  # the others still learn it; not waited for
            self._inflight.add(future)
            future.add_done_callback(self._inflight.discard)
        return position

    # ------------------------------------------------------------------ audit
    def view(self, leading: bool) -> dict[str, Any]:
        return {
            "master": self.master_id,
            "address": self.address,
            "quorum": self.quorum,
            "leading": leading,
            "replicas": self.peers,
            "quorum_intersection_unsafe": self.unsafe,
            "replica": {
                "status": self.replica.status,
                "promised": self.replica.promised,
                "position": self.replica.position,
                "entries": [e.to_json() for e in self.replica.entries[-1000:]],
            },
            "commits": self.audit.commits,
            "recoveries": self.audit.recoveries,
        }
