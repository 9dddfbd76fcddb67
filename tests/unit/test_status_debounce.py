"""The debouncer behind event-driven MesosCluster status (mesoscluster/watches.py): a burst of
events makes one refresh, an event during a refresh makes exactly one more, never two
refreshes of one cluster at once, and no more at once than the workers."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import pytest

from orchestrator_operator.operator.mesoscluster.watches import Debouncer

WAIT = 30.0  # generous: only a broken debouncer comes near it


class Recorder:
    """A run that counts, tracks how many run at once, and can be held at a gate."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.started: dict[str, threading.Event] = {}
        self.gates: dict[str, threading.Event] = {}
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.max_total = 0
        self._lock = threading.Lock()
        self.done = threading.Condition(self._lock)

    def gate(self, key: str) -> threading.Event:
        return self.gates.setdefault(key, threading.Event())

    def started_event(self, key: str) -> threading.Event:
        with self._lock:
            return self.started.setdefault(key, threading.Event())

    def __call__(self, key: str) -> None:
        with self._lock:
            self.in_flight[key] += 1
            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
            self.max_total = max(self.max_total, sum(self.in_flight.values()))
            self.started.setdefault(key, threading.Event()).set()
        gate = self.gates.get(key)
        if gate is not None:
            assert gate.wait(WAIT)
        with self._lock:
            self.in_flight[key] -= 1
            self.runs[key] += 1
            self.done.notify_all()

    def wait_runs(self, key: str, count: int) -> None:
        with self._lock:
            assert self.done.wait_for(lambda: self.runs[key] >= count, WAIT), dict(self.runs)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def one_worker(recorder: Recorder) -> Iterator[Debouncer[str]]:
    debouncer = Debouncer[str](recorder, delay=0.0, workers=1)
    yield debouncer
    for gate in recorder.gates.values():
        gate.set()
    debouncer.stop()


def test_a_burst_of_events_makes_one_refresh(
    recorder: Recorder, one_worker: Debouncer[str]
) -> None:
    recorder.gate("busy")  # the only worker is busy while the burst arrives
    one_worker.trigger("busy")
    assert recorder.started_event("busy").wait(WAIT)
    for _ in range(100):
        one_worker.trigger("a")
    recorder.gates["busy"].set()
    recorder.wait_runs("a", 1)
    one_worker.trigger("sentinel")  # due after anything "a" still had scheduled
    recorder.wait_runs("sentinel", 1)
    assert recorder.runs["a"] == 1


def test_events_during_a_refresh_make_exactly_one_more(
    recorder: Recorder, one_worker: Debouncer[str]
) -> None:
    gate = recorder.gate("a")
    one_worker.trigger("a")
    assert recorder.started_event("a").wait(WAIT)
    for _ in range(50):
        one_worker.trigger("a")  # the leader changed again while status was being read
    gate.set()
    recorder.wait_runs("a", 2)
    one_worker.trigger("sentinel")
    recorder.wait_runs("sentinel", 1)
    assert recorder.runs["a"] == 2
    assert recorder.max_in_flight["a"] == 1


def test_a_forgotten_cluster_is_not_refreshed(
    recorder: Recorder, one_worker: Debouncer[str]
) -> None:
    recorder.gate("busy")
    one_worker.trigger("busy")
    assert recorder.started_event("busy").wait(WAIT)
    one_worker.trigger("deleted")
    one_worker.forget("deleted")
    recorder.gates["busy"].set()
    one_worker.trigger("sentinel")
    recorder.wait_runs("sentinel", 1)
    assert recorder.runs["deleted"] == 0


def test_clusters_refresh_side_by_side_up_to_the_workers_never_one_twice(
    recorder: Recorder,
) -> None:
    debouncer = Debouncer[str](recorder, delay=0.0, workers=2)
    try:
        keys = [f"c{i}" for i in range(6)]
        gates = {key: recorder.gate(key) for key in keys}
        for key in keys:
            debouncer.trigger(key)
        assert recorder.started_event("c0").wait(WAIT)
        assert recorder.started_event("c1").wait(WAIT)  # two clusters at once
        for _ in range(20):
            for key in keys:
                debouncer.trigger(key)
        for gate in gates.values():
            gate.set()
        for key in keys:
            # c0 and c1 were in flight during the triggers: one more run each
            recorder.wait_runs(key, 2 if key in ("c0", "c1") else 1)
    finally:
        for gate in recorder.gates.values():
            gate.set()
        debouncer.stop()
    assert recorder.max_total <= 2
    assert max(recorder.max_in_flight.values()) == 1
    # the others were waiting for a worker: their triggers joined the one scheduled run
    assert [recorder.runs[key] for key in keys] == [2, 2, 1, 1, 1, 1]
