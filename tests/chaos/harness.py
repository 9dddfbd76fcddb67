"""What every chaos scenario shares: the invariants sampled in the background the whole time,
faults injected one after another by a seeded plan and timed to recovery, and the record
(one JSON line per fault, per violation, per resource sample) that `tests/chaos/report.py`
turns into docs/reliability.md's tables."""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any

from testenv.faults import resident_bytes

REPORT_ENV = "CHAOS_REPORT"  # a JSON-lines file the records are appended to
SECONDS_ENV = "CHAOS_SECONDS"  # time box of one scenario (faults keep coming until then)
SEED_ENV = "CHAOS_SEED"

Check = Callable[[], str | None]  # None: holds; else what is wrong, in words


@dataclass
class Violation:
    scenario: str
    invariant: str
    detail: str
    at: float


@dataclass
class FaultRun:
    scenario: str
    kind: str
    target: str
    held_seconds: float
    recovery_seconds: float | None  # None: not recovered within the bound (a violation too)
    started_at: float = 0.0  # wall clock: violations are charged to the fault they fall in
    ended_at: float = 0.0


@dataclass
class Record:
    """One scenario run's findings; `write()` appends them to $CHAOS_REPORT."""

    scenario: str
    seed: int
    faults: list[FaultRun] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    samples: dict[str, int] = field(default_factory=dict)  # invariant -> times checked
    resources: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def violate(self, invariant: str, detail: str) -> None:
        with self.lock:
            # the same broken state seen by consecutive samples is one violation
            for v in self.violations[-20:]:
                if v.invariant == invariant and v.detail == detail:
                    return
            self.violations.append(Violation(self.scenario, invariant, detail, time.time()))

    def write(self) -> None:
        path = os.environ.get(REPORT_ENV)
        if not path:
            return
        lines = [
            {
                "type": "run",
                "scenario": self.scenario,
                "seed": self.seed,
                "seconds": round(time.monotonic() - self.started, 1),
                "samples": self.samples,
            },
            *({"type": "fault", **asdict(f)} for f in self.faults),
            *({"type": "violation", **asdict(v)} for v in self.violations),
            *(
                {"type": "resource", "scenario": self.scenario, "process": name, "rss": series}
                for name, series in self.resources.items()
            ),
        ]
        with open(path, "a", encoding="utf-8") as out:
            for line in lines:
                out.write(json.dumps(line) + "\n")


class Sampler:
    """Runs every check every `interval` seconds on its own thread while the scenario works
    and the faults come; a check that raises could not look (counted, not a violation)."""

    def __init__(self, record: Record, checks: dict[str, Check], interval: float = 0.5) -> None:
        self.record = record
        self.checks = checks
        self.interval = interval
        self.errors: dict[str, str] = {}
        self.pids: dict[str, Callable[[], int | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="invariants", daemon=True)
        self._last_rss = 0.0

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check_now(self) -> None:
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:
                self.errors[name] = f"{type(exc).__name__}: {exc}"
                continue
            with self.record.lock:
                self.record.samples[name] = self.record.samples.get(name, 0) + 1
            if problem is not None:
                self.record.violate(name, problem)
        if time.monotonic() - self._last_rss >= 10:
            self._last_rss = time.monotonic()
            for name, pid_of in self.pids.items():
                pid = pid_of()
                rss = resident_bytes(pid) if pid else None
                if rss is not None:
                    series = self.record.resources.setdefault(name, [])
                    series.append((round(time.monotonic() - self.record.started, 1), rss))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_now()


@dataclass
class FaultKind:
    """One kind of fault a scenario can take: `make(rng)` gives (target, the fault's context
    manager, its hold in seconds); after the hold, `healthy()` must come back within
    `recovery_bound` seconds."""

    name: str
    make: Callable[[random.Random], tuple[str, Callable[[], AbstractContextManager[Any]], float]]


def pid_getter(process: Any) -> Callable[[], int | None]:
    """For Sampler.pids: the current pid of a process object that restarts (`.pid`, or a
    `.popen` that may be None)."""

    def get() -> int | None:
        popen = getattr(process, "popen", None)
        if popen is not None:
            return int(popen.pid)
        pid = getattr(process, "pid", None)
        return int(pid) if pid is not None else None

    return get


def seed() -> int:
    return int(os.environ.get(SEED_ENV, "20"))


def time_box(default: float) -> float:
    return float(os.environ.get(SECONDS_ENV, default))


def run_faults(
    record: Record,
    kinds: list[FaultKind],
    healthy: Callable[[], str | None],
    seconds: float,
    rng: random.Random,
    recovery_bound: float = 90.0,
    settle: float = 2.0,
) -> None:
    """Inject faults until `seconds` have passed, each kind at least once (in a shuffled
    order first, then at random); wait for `healthy()` (None = healthy) after each and time it."""
    deadline = time.monotonic() + seconds
    order = list(kinds)
    rng.shuffle(order)
    while order or time.monotonic() < deadline:
        kind = order.pop(0) if order else rng.choice(kinds)
        target, fault, hold = kind.make(rng)
        began, wall = time.monotonic(), time.time()
        try:
            with fault():
                time.sleep(hold)  # the fault's duration (what is measured is the recovery after)
        except Exception as exc:  # e.g. a killed server that does not start again
            record.faults.append(
                FaultRun(
                    record.scenario, kind.name, target, round(time.monotonic() - began, 2),
                    None, wall, time.time(),
                )
            )  # fmt: skip
            record.violate(
                "recovers after the fault",
                f"{kind.name} on {target}: the fault's own undo failed: "
                f"{type(exc).__name__}: {str(exc)[:300]}",
            )
            return  # the scenario's record is still written (assert_clean) and it fails there
        held = time.monotonic() - began
        ended = time.monotonic()
        recovered: float | None = None
        last = "never checked"
        while time.monotonic() - ended < recovery_bound:
            try:
                problem = healthy()
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is None:
                recovered = time.monotonic() - ended
                break
            last = problem
            time.sleep(0.25)
        record.faults.append(
            FaultRun(
                record.scenario, kind.name, target, round(held, 2),
                None if recovered is None else round(recovered, 2), wall, time.time(),
            )
        )  # fmt: skip
        if recovered is None:
            record.violate(
                "recovers after the fault",
                f"{kind.name} on {target}: not recovered {recovery_bound:.0f} s after "
                f"the fault ended ({last})",
            )
            return  # what comes next would measure the same broken state
        time.sleep(settle)


@contextlib.contextmanager
def worker(name: str, step: Callable[[threading.Event], None]) -> Iterator[list[BaseException]]:
    """`step(stop)` again and again on a thread until the block ends: the operator's work
    going on while the faults come. Errors are collected (yielded list), not raised there."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                step(stop)
            except Exception as exc:
                errors.append(exc)
                stop.wait(0.5)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield errors
    finally:
        stop.set()
        thread.join(timeout=120)


def assert_clean(record: Record) -> None:
    record.write()
    problems = [f"{v.invariant}: {v.detail}" for v in record.violations]
    assert not problems, "invariant violations:\n" + "\n".join(problems)
    assert record.faults, "no fault was injected"


def zk_tree(client: Any, root: str) -> dict[str, tuple[bytes, bool]]:
    """Every znode under `root` as (data, ephemeral?), read breadth-first with plain gets
    after a sync: the chaos tests' own walker, independent of the sync engine's digests."""
    from kazoo.exceptions import NoNodeError

    client.sync(root)
    out: dict[str, tuple[bytes, bool]] = {}
    pending = [root]
    while pending:
        path = pending.pop()
        try:
            data, stat = client.get(path)
            children = client.get_children(path)
        except NoNodeError:
            continue
        out[path] = (bytes(data), stat.ephemeralOwner != 0)
        pending.extend(f"{path.rstrip('/')}/{c}" for c in children)
    return out


def tree_difference(
    a: dict[str, tuple[bytes, bool]], b: dict[str, tuple[bytes, bool]]
) -> str | None:
    only_a = sorted(set(a) - set(b))
    only_b = sorted(set(b) - set(a))
    differ = sorted(p for p in set(a) & set(b) if a[p] != b[p])
    if not (only_a or only_b or differ):
        return None
    return (
        f"only in first {only_a[:5]} ({len(only_a)}), only in second {only_b[:5]} "
        f"({len(only_b)}), different {differ[:5]} ({len(differ)})"
    )
