"""What the end-to-end tests do over and over: read an object, wait for a state, apply a
manifest, run a MesosCluster with Marathon on simulated pods for MarathonApps."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import yaml

from testenv.kube import KubeTestEnv
from testenv.simpods import SimPodRunner


def get_json(env: KubeTestEnv, *args: str) -> dict[str, Any] | None:
    """`kubectl get ARGS -o json`, or None when it does not exist."""
    result = env.kubectl_run("get", *args, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy value of `check()` within `timeout` seconds; else a clear failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")


def apply(env: KubeTestEnv, manifest: dict[str, Any]) -> None:
    """`kubectl apply` of one manifest; a refusal fails the test with kubectl's words."""
    result = env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(manifest))
    assert result.returncode == 0, result.stderr


def marathonapp(
    namespace: str, name: str, app: dict[str, Any], cluster: str = "apps", **spec: Any
) -> dict[str, Any]:
    """A MarathonApp manifest for `cluster` (the MesosCluster of marathon_pods)."""
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MarathonApp",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"cluster": cluster, "app": app, **spec},
    }


def mesoscluster(
    namespace: str, zk: str, name: str = "apps", **parts: dict[str, Any]
) -> dict[str, Any]:
    """A MesosCluster of one master and one Marathon on the external ensemble `zk`; `parts`
    add to (or replace) the masters' and Marathon's specs, e.g. zkPath."""
    return {
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "MesosCluster",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "zookeeper": {"external": {"connectString": zk}},
            "masters": {"replicas": 1, **parts.get("masters", {})},
            "marathon": {"replicas": 1, **parts.get("marathon", {})},
        },
    }


@contextmanager
def marathon_pods(
    env: KubeTestEnv, namespace: str, zk: str, base_dir: Path
) -> Iterator[SimPodRunner]:
    """The MesosCluster `apps` applied and its pods run by the simulator (testenv/simpods.py),
    once its Marathon is elected and registered with the master."""
    with SimPodRunner(env, namespace, base_dir=base_dir) as pods:
        apply(env, mesoscluster(namespace, zk))

        def elected() -> bool:
            info = httpx.get(pods.marathon_urls()[0] + "/v2/info", timeout=2).json()
            return bool(info.get("elected") and info.get("frameworkId"))

        pods.wait_for(elected, 120, "Marathon elected and registered")
        yield pods


def temporary_namespace(env: KubeTestEnv, prefix: str, *resources: str) -> Iterator[str]:
    """A fresh namespace; afterwards `resources` (kubectl kinds, in that order: custom
    resources first, while the operator can still remove their finalizers), then the
    namespace."""
    name = f"{prefix}-{int(time.time() * 1000) % 1000000}"
    assert env.kubectl_run("create", "namespace", name).returncode == 0
    yield name
    for kinds in resources:
        env.kubectl_run("delete", kinds, "--all", "-n", name, "--timeout=60s")
    env.kubectl_run("delete", "namespace", name, "--wait=false")


def namespace_for_marathonapps(env: KubeTestEnv, prefix: str) -> Iterator[str]:
    """A fresh namespace; its MarathonApps go first (the operator removes their finalizers
    while it runs), then its clusters."""
    yield from temporary_namespace(env, prefix, "marathonapps", "mesosclusters")


class PodState(NamedTuple):
    name: str
    uid: str
    ready: bool  # Ready and not being deleted
    describe: str  # what the sampler's `describe` says of the pod ("" without one)


class PodSampler:
    """Every state of one component's pods, from a watch: what `kubectl get pods -w` shows.

    A state follows each event, so no restart can hide between two samples (polling missed
    a member replaced and ready in under a poll on a loaded machine). `describe` adds what a
    test wants to know of each pod (its configuration, say)."""

    def __init__(
        self,
        env: KubeTestEnv,
        cluster: str,
        component: str,
        describe: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self._env = env
        self._describe = describe or (lambda _: "")
        self._path = (
            "/api/v1/namespaces/default/pods?labelSelector="
            f"app.kubernetes.io/instance%3D{cluster},app.kubernetes.io/component%3D{component}"
        )
        self.samples: list[list[PodState]] = []
        self._pods: dict[str, PodState] = {}
        self._stop = threading.Event()
        self._error: BaseException | None = None
        listed = env.api("GET", self._path)
        for pod in listed["items"]:
            self._record("ADDED", pod)
        del self.samples[:-1]  # the list is one state, not one per pod
        self._version = str(listed["metadata"]["resourceVersion"])
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _record(self, kind: str, pod: dict[str, Any]) -> None:
        name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
        if kind == "DELETED":
            if name in self._pods and self._pods[name].uid == uid:
                del self._pods[name]
        else:
            ready = not pod["metadata"].get("deletionTimestamp") and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod.get("status", {}).get("conditions", [])
            )
            self._pods[name] = PodState(name, uid, ready, self._describe(pod))
        self.samples.append([self._pods[n] for n in sorted(self._pods)])

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for event in self._env.watch_events(self._path, self._version, seconds=1):
                    assert event["type"] != "ERROR", event
                    self._version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self._record(event["type"], event["object"])
        except BaseException as error:  # re-raised in the test's thread by __exit__
            self._error = error

    def __enter__(self) -> PodSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error
