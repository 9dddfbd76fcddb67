"""Locust: the operator under many custom resources.

    KUBECONFIG=... LOAD_ZK_CONNECT=zk:2181 locust -f tests/load/operator_locustfile.py --headless

Each user creates MesosClusters and ProbeFleets (four to one) in ``LOAD_NAMESPACE``, one every
0.05-0.2 s without waiting for their status, until ``LOAD_RESOURCES`` exist (a burst), then
every 2-5 s changes the spec of a random one (a MesosCluster's
``agents.maxUnavailable``, a ProbeFleet's ``probe.intervalSeconds``). What is measured, from
a watch on each kind (no polling):

- "<Kind> created -> status" and "<Kind> updated -> status": from the API server's answer
  to the create or patch to the watch delivering ``status.observedGeneration`` >= the new
  ``metadata.generation`` (the operator has reconciled that spec and written its status);
  over ``LOAD_STATUS_TIMEOUT`` seconds (default 60) is a failure;
- "create <Kind>" and "patch <Kind>": the API requests themselves.

Every object carries the label ``orchestrator.dev/load-test=<run>``; all of this run's objects
are deleted when the test stops. The MesosClusters use ``LOAD_ZK_CONNECT`` as their external
ZooKeeper, each under its own path ``/load/<name>``.

Environment: ``KUBECONFIG`` (whose identity may create, patch, delete and watch the two kinds
in the namespace), ``LOAD_NAMESPACE`` (default ``load-test``; must exist),
``LOAD_RESOURCES`` (default 100), ``LOAD_ZK_CONNECT`` (required), ``LOAD_RUN_ID``.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from locust import User, events, task

GROUP, VERSION = "orchestrator.dev", "v1alpha1"
LABEL = "orchestrator.dev/load-test"
NAMESPACE = os.environ.get("LOAD_NAMESPACE", "load-test")
RESOURCES = int(os.environ.get("LOAD_RESOURCES", "100"))
STATUS_TIMEOUT = float(os.environ.get("LOAD_STATUS_TIMEOUT", "60"))
RUN = os.environ.get("LOAD_RUN_ID") or uuid.uuid4().hex[:8]
KINDS = {"MesosCluster": "mesosclusters", "ProbeFleet": "probefleets"}


def _api() -> Any:
    config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi()


def manifest(kind: str, name: str, index: int) -> dict[str, Any]:
    meta = {"name": name, "namespace": NAMESPACE, "labels": {LABEL: RUN}}
    if kind == "MesosCluster":
        zk = os.environ.get("LOAD_ZK_CONNECT", "")
        if not zk:
            raise RuntimeError("LOAD_ZK_CONNECT is not set (the clusters' external ZooKeeper)")
        spec: dict[str, Any] = {
            "zookeeper": {"external": {"connectString": zk}},
            "masters": {"replicas": 3, "zkPath": f"/load/{name}/mesos"},
            "marathon": {"replicas": 1, "zkPath": f"/load/{name}/marathon"},
            "agents": {"port": 20000 + index},  # clusters sharing nodes need their own port
        }
    else:
        spec = {"probe": {"intervalSeconds": 3}, "app": {"replicas": 1, "port": 4040}}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": meta, "spec": spec}


def spec_change(kind: str, turn: int) -> dict[str, Any]:
    if kind == "MesosCluster":
        return {"spec": {"agents": {"maxUnavailable": 1 + turn % 2}}}
    return {"spec": {"probe": {"intervalSeconds": 3 + turn % 2}}}


@dataclass
class Observed:
    generation: int = 0  # the latest status.observedGeneration the watch delivered
    changed: threading.Event = field(default_factory=threading.Event)  # gevent's, patched


class StatusWatch:
    """One watch per kind on this run's objects; waiters wake on each event for their name."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], Observed] = {}
        self.stopped = False

    def entry(self, kind: str, name: str) -> Observed:
        return self.seen.setdefault((kind, name), Observed())

    def start(self) -> None:
        for kind in KINDS:  # greenlets: Locust has patched threading with gevent
            threading.Thread(target=self._run, args=(kind,), daemon=True).start()

    def stop(self) -> None:
        self.stopped = True

    def _run(self, kind: str) -> None:
        api = _api()
        while not self.stopped:
            try:
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    api.list_namespaced_custom_object, GROUP, VERSION, NAMESPACE, KINDS[kind],
                    label_selector=f"{LABEL}={RUN}", timeout_seconds=60,
                ):  # fmt: skip
                    obj = event["object"]
                    observed = (obj.get("status") or {}).get("observedGeneration") or 0
                    entry = self.entry(kind, obj["metadata"]["name"])
                    entry.generation = max(entry.generation, int(observed))
                    entry.changed.set()
            except Exception:  # a dropped watch: start again (the waiters time out if it stays)
                time.sleep(1)

    def wait(self, kind: str, name: str, generation: int, timeout: float) -> bool:
        entry = self.entry(kind, name)
        deadline = time.monotonic() + timeout
        while True:
            entry.changed.clear()
            if entry.generation >= generation:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            entry.changed.wait(remaining)


WATCH = StatusWatch()
WAITERS: list[threading.Thread] = []  # status waits; the test's end waits for them
CREATED: list[tuple[str, str]] = []  # (kind, name) of this run, in creation order
_LOCK = threading.Lock()
_counter = 0


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _start(**_: Any) -> None:
    WATCH.start()


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def _stop(**_: Any) -> None:
    # The statuses still awaited count too (answered, or failed at their timeout).
    for waiter in WAITERS:
        waiter.join(STATUS_TIMEOUT + 5)
    WATCH.stop()
    api = _api()
    for plural in KINDS.values():
        try:
            api.delete_collection_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, plural, label_selector=f"{LABEL}={RUN}"
            )
        except ApiException as exc:
            print(f"could not delete this run's {plural}: {exc.status} {exc.reason}")


class OperatorUser(User):
    def wait_time(self) -> float:
        # a burst while creating (the users keep creating while statuses are awaited), then a
        # steady churn of spec changes
        return random.uniform(0.05, 0.2) if _counter < RESOURCES else random.uniform(2.0, 5.0)

    def on_start(self) -> None:
        self.api = _api()
        self.turn = 0

    def _fire(self, name: str, started: float, error: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type="K8S",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )

    def _await_status(self, kind: str, name: str, generation: int, what: str) -> None:
        """Waits in its own greenlet: the user goes on creating or changing others."""
        started = time.perf_counter()

        def wait() -> None:
            ok = WATCH.wait(kind, name, generation, STATUS_TIMEOUT)
            error = None if ok else TimeoutError(f"no status for generation {generation}")
            self._fire(f"{kind} {what} -> status", started, error)

        waiter = threading.Thread(target=wait, daemon=True)  # a greenlet (patched)
        WAITERS.append(waiter)
        waiter.start()

    @task
    def work(self) -> None:
        global _counter
        self.turn += 1
        with _LOCK:
            index = _counter if _counter < RESOURCES else None
            if index is not None:
                _counter += 1
        if index is not None:
            kind = "ProbeFleet" if index % 5 == 4 else "MesosCluster"
            name = f"load-{RUN}-{index}"
            started = time.perf_counter()
            try:
                body = self.api.create_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, KINDS[kind], manifest(kind, name, index)
                )
            except ApiException as exc:
                self._fire(f"create {kind}", started, exc)
                return
            self._fire(f"create {kind}", started, None)
            CREATED.append((kind, name))
            self._await_status(kind, name, int(body["metadata"]["generation"]), "created")
            return
        if not CREATED:
            return
        kind, name = random.choice(CREATED)
        started = time.perf_counter()
        try:
            body = self.api.patch_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, KINDS[kind], name, spec_change(kind, self.turn)
            )
        except ApiException as exc:
            self._fire(f"patch {kind}", started, exc)
            return
        self._fire(f"patch {kind}", started, None)
        self._await_status(kind, name, int(body["metadata"]["generation"]), "updated")
