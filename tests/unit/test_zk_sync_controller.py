"""The sync controller's pure parts (request parsing, status document, lag p99, the
per-migration metrics collector) and its reconcile decisions with fake runners."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from orchestrator_operator.common.zk_credentials import RULE, CredentialsRefused
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.vocabulary import SyncState
from orchestrator_operator.sync.conflict import Strategy
from orchestrator_operator.sync.controller import runner as runner_module
from orchestrator_operator.sync.controller.controller import Controller
from orchestrator_operator.sync.controller.metrics import PerMigrationCollector
from orchestrator_operator.sync.controller.options import ControllerOptions
from orchestrator_operator.sync.controller.runner import MigrationRunner
from orchestrator_operator.sync.controller.state_files import forget_state, prepare_state_file
from orchestrator_operator.sync.controller.status import (
    EngineView,
    Key,
    LagWindow,
    SyncSpec,
    VerifyResult,
    build_sync_status,
    desired_of,
    histogram_buckets,
    quantile,
    running_message,
)
from orchestrator_operator.sync.engine import SyncConfig
from orchestrator_operator.sync.main import main as zk_main
from orchestrator_operator.sync.metrics import SyncMetrics
from orchestrator_operator.zk.identity import SameEnsembleError

REQUEST = {
    "active": True,
    "source": "zk-a:2181",
    "target": "zk-b:2181",
    "paths": ["/mesos", "/marathon"],
    "strategy": "LastWriteWins",
}


def migration(
    name: str = "m", sync_request: dict[str, Any] | None = None, **status: Any
) -> dict[str, Any]:
    body: dict[str, Any] = dict(status)
    if sync_request is not None:
        body["syncRequest"] = sync_request
    return {
        "metadata": {"namespace": "ns", "name": name},
        "spec": {"clusterRef": "demo"},
        "status": body,
    }


# ----------------------------------------------------------------------------- requests
def test_active_request_becomes_a_spec_with_the_engine_strategy() -> None:
    desired = desired_of(migration(sync_request=REQUEST))
    assert desired.spec == SyncSpec(
        "zk-a:2181", "zk-b:2181", ("/mesos", "/marathon"), "LastWriteWins"
    )
    assert desired.spec.engine_strategy is Strategy.LAST_WRITE_WINS


DELETING = {
    **migration(sync_request=REQUEST),
    "metadata": {"namespace": "ns", "name": "m", "deletionTimestamp": "2026-01-01T00:00:00Z"},
}


@pytest.mark.parametrize(
    ("obj", "why"),
    [
        (migration(), "no status.syncRequest"),
        (migration(sync_request={**REQUEST, "active": False}), "active is false"),
        (DELETING, "being deleted"),
    ],
)  # fmt: skip
def test_no_engine_without_an_active_request(obj: dict[str, Any], why: str) -> None:
    desired = desired_of(obj)
    assert desired.spec is None and why in desired.why and not desired.invalid


def test_invalid_request_says_what_is_wrong() -> None:
    desired = desired_of(migration(sync_request={"active": True, "source": "a:1"}))
    assert desired.spec is None and desired.invalid
    assert "target" in desired.why and "paths" in desired.why


ENDPOINTS = ("zk-a:2181", "*.zookeeper.svc.cluster.local")


@pytest.mark.parametrize(
    "target",
    [
        "zk-b.zookeeper.svc.cluster.local:2181",
        # the ensembles the operator manages for the migration: B (named after it) and
        # the cluster's own
        "m-zookeeper-client.ns.svc:2181",
        "m-zookeeper-0.m-zookeeper-headless.ns.svc.cluster.local:2281",
        "demo-zookeeper-client.ns.svc:2181",
    ],
)
def test_a_request_within_the_allow_list_or_to_a_managed_ensemble_runs(target: str) -> None:
    desired = desired_of(migration(sync_request={**REQUEST, "target": target}), ENDPOINTS)
    assert desired.spec is not None and desired.spec.target == target


@pytest.mark.parametrize(
    ("request_", "refused"),
    [
        ({**REQUEST, "target": "zk-b:2181"}, "target: allow-list rule zookeeperEndpoints:"
         " ZooKeeper server zk-b:2181"),
        ({**REQUEST, "source": "zk-a:2181,evil.example:2181"}, "source: allow-list rule"
         " zookeeperEndpoints: ZooKeeper server evil.example:2181"),
        # another namespace's, or any other Service of its own namespace (an ExternalName
        # Service may point anywhere), is not an ensemble the operator manages for it
        ({**REQUEST, "target": "m-zookeeper-client.other.svc:2181"}, "target:"),
        ({**REQUEST, "target": "anything.ns.svc:2181"}, "target:"),
    ],
)  # fmt: skip
def test_a_request_naming_an_ensemble_outside_the_allow_list_cannot_run(
    request_: dict[str, Any], refused: str
) -> None:
    desired = desired_of(migration(sync_request=request_), ENDPOINTS)
    assert desired.spec is None and desired.invalid
    assert desired.why.startswith(refused)
    assert desired_of(migration(sync_request=request_)).spec is not None  # no rule: any


def test_a_refused_request_starts_no_engine_and_fails_its_sync_status() -> None:
    h = Harness()
    h.controller.options.zookeeper_endpoints = ENDPOINTS
    h.controller.reconcile([migration("m", {**REQUEST, "target": "zk-b:2181"})])
    assert h.runners == []
    [(key, doc)] = h.reports
    assert key == ("ns", "m") and doc["state"] == "Failed"
    assert "zookeeperEndpoints: ZooKeeper server zk-b:2181" in doc["message"]


def test_the_controller_refuses_a_malformed_endpoint_at_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = zk_main(["zk-sync", "controller", "--allow-zookeeper-endpoints", "zk:port"])
    assert code == 2
    assert "--allow-zookeeper-endpoints: 'zk:port' is not host" in capsys.readouterr().err


# ----------------------------------------------------------------------------- status
def test_running_status_is_camel_case_with_rfc3339_times() -> None:
    engine = EngineView(bootstrap_znodes=12, bootstrap_seconds=0.25, conflicts=1,
                        last_reconcile=1_800_000_000.5, acl_sweep_seconds=2.5)  # fmt: skip
    verify = VerifyResult(at=1_800_000_004.0, digests_equal=True, differences=0,
                          znodes_source=12, znodes_target=12)  # fmt: skip
    doc = build_sync_status("Running", "ok", now=1_800_000_005.9, engine=engine,
                            bootstrapped=True, verify=verify, lag_p99=0.0123)  # fmt: skip
    assert doc == {
        "state": "Running",
        "message": "ok",
        "bootstrapped": True,
        "bootstrapZnodes": 12,
        "bootstrapSeconds": 0.25,
        "lagP99Seconds": 0.0123,
        "aclLagSeconds": 2.5,
        "digestsEqual": True,
        "differences": 0,
        "unreadable": 0,
        "conflicts": 1,
        "znodesSource": 12,
        "znodesTarget": 12,
        "lastReconcileTime": "2027-01-15T08:00:00Z",
        "lastVerifyTime": "2027-01-15T08:00:04Z",
        "updatedAt": "2027-01-15T08:00:05Z",
    }


def test_unknown_fields_are_null_so_a_merge_patch_clears_them() -> None:
    doc = build_sync_status("Failed", "source ensemble x:1 unreachable", now=1_800_000_000)
    assert doc["state"] == "Failed" and doc["bootstrapped"] is False
    assert doc["lagP99Seconds"] is None and doc["digestsEqual"] is None
    failed_verify = VerifyResult(at=1.0, error="ConnectionLoss")
    assert build_sync_status("Running", "", now=2.0, verify=failed_verify)["differences"] is None


def test_running_message_names_problems() -> None:
    spec = SyncSpec("a:1", "b:2", ("/mesos",))
    healthy = EngineView(1, 0.1, 0, 1.0)
    assert running_message(spec, healthy, None) == (
        "syncing /mesos between source a:1 and target b:2 (bidirectional, SourceWins)"
    )
    sick = EngineView(1, 0.1, 2, 1.0, healthy=False,
                      health={"worker_alive": True, "connected": {"a": True, "b": False},
                              "unreadable": {"a": ["/mesos/secret"]}})  # fmt: skip
    message = running_message(spec, sick, VerifyResult(at=1.0, differences=3, digests_equal=False))
    assert "target ensemble disconnected" in message
    assert "unreadable on source: /mesos/secret" in message
    assert "3 difference(s)" in message and "2 unresolved conflict(s)" in message


# ----------------------------------------------------------------------------- lag
def test_quantile_interpolates_like_prometheus() -> None:
    buckets = ((0.01, 50.0), (0.1, 99.0), (1.0, 100.0), (math.inf, 100.0))
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.99, buckets) == pytest.approx(0.1)
    assert quantile(0.995, buckets) == pytest.approx(0.1 + 0.9 * 0.5)
    assert quantile(0.99, ((0.01, 0.0), (math.inf, 0.0))) is None
    assert quantile(0.99, ((0.01, 0.0), (60.0, 0.0), (math.inf, 5.0))) == 60.0


def test_lag_window_counts_only_recent_observations() -> None:
    metrics = SyncMetrics()
    window = LagWindow(30.0)

    def snap(now: float) -> None:
        window.add(now, histogram_buckets(metrics.lag.collect()))

    snap(0.0)
    assert window.p99() is None
    for _ in range(100):
        metrics.lag.labels("a_to_b").observe(5.0)  # slow, early
    snap(2.0)
    assert window.p99() == pytest.approx(5.0, rel=0.5)
    for t in range(4, 40, 2):
        snap(float(t))
    assert window.p99() is None  # nothing in the last 30 s
    for _ in range(10):
        metrics.lag.labels("b_to_a").observe(0.003)  # both directions count
    snap(40.0)
    assert 0.0025 <= (window.p99() or 0) <= 0.005


# ----------------------------------------------------------------------------- metrics
def test_collector_labels_every_engine_series_with_its_migration() -> None:
    registry = CollectorRegistry()
    collector = PerMigrationCollector()
    registry.register(collector)
    one, two = SyncMetrics(), SyncMetrics()
    one.lag.labels("a_to_b").observe(0.02)
    two.connected.labels("b").set(1)
    collector.add(("ns", "one"), one.registry)
    collector.add(("other", "two"), two.registry)
    text = generate_latest(registry).decode()
    assert (
        'orchestrator_zk_sync_replication_lag_seconds_count{direction="a_to_b",migration="one",'
        'namespace="ns"} 1.0' in text
    )
    assert 'orchestrator_zk_sync_connected{migration="two",namespace="other",side="b"} 1.0' in text
    assert text.count("# TYPE orchestrator_zk_sync_connected gauge") == 1
    collector.remove(("ns", "one"), one.registry)
    assert 'migration="one"' not in generate_latest(registry).decode()


# ----------------------------------------------------------------------------- reconcile
class FakeRunner:
    def __init__(self, key: Key, spec: SyncSpec) -> None:
        self.key, self.spec, self.state = key, spec, "Running"
        self.started = False
        self.stopped: tuple[str, bool] | None = None
        self.running = True

    def start(self) -> None:
        self.started = True

    def stop(self, reason: str, report: bool = True) -> None:
        self.stopped = (reason, report)

    @property
    def alive(self) -> bool:
        return self.running

    def join(self, timeout: float | None = None) -> None:
        self.running = False


class Harness:
    def __init__(self, tmp_path: Path | None = None) -> None:
        self.reports: list[tuple[Key, dict[str, Any]]] = []
        self.runners: list[FakeRunner] = []

        def factory(key: Key, spec: SyncSpec) -> FakeRunner:
            runner = FakeRunner(key, spec)
            self.runners.append(runner)
            return runner

        self.controller = Controller(
            lambda key, doc: self.reports.append((key, doc)),
            ControllerOptions(state_dir=tmp_path),
            factory,
        )


def test_reconcile_starts_restarts_and_stops_runners() -> None:
    h = Harness()
    c = h.controller
    c.reconcile([migration("m", REQUEST), migration("idle")])
    assert [r.key for r in h.runners] == [("ns", "m")] and h.runners[0].started
    c.reconcile([migration("m", REQUEST)])  # same request: nothing new
    assert len(h.runners) == 1 and h.runners[0].stopped is None

    changed = {**REQUEST, "target": "zk-c:2181"}
    c.reconcile([migration("m", changed)])
    assert h.runners[0].stopped == ("status.syncRequest changed", True)
    assert len(h.runners) == 1  # waits for the old engine to let go
    c.reconcile([migration("m", changed)])
    assert len(h.runners) == 1
    h.runners[0].running = False
    c.reconcile([migration("m", changed)])
    assert len(h.runners) == 2 and h.runners[1].spec.target == "zk-c:2181"

    c.reconcile([migration("m", {**changed, "active": False})])
    assert h.runners[1].stopped == ("status.syncRequest.active is false", True)
    h.runners[1].running = False
    c.reconcile([migration("n", REQUEST)])  # m deleted meanwhile, n new
    assert h.runners[2].key == ("ns", "n")
    c.reconcile([])
    assert h.runners[2].stopped == ("the ZkMigration was deleted", False)
    assert h.reports == []  # runners report themselves; nothing idle needed a word


def test_idle_migration_gets_stopped_once_and_invalid_request_failed() -> None:
    h = Harness()
    stale = migration("m", {**REQUEST, "active": False}, sync={"state": "Running"})
    h.controller.reconcile([stale, migration("quiet", {**REQUEST, "active": False},
                                             sync={"state": "Stopped"})])  # fmt: skip
    assert [(k, d["state"]) for k, d in h.reports] == [(("ns", "m"), "Stopped")]
    assert "active is false" in h.reports[0][1]["message"]
    h.reports.clear()
    bad = migration("bad", {"active": True, "source": "a:1"})
    h.controller.reconcile([bad])
    state, message = h.reports[0][1]["state"], h.reports[0][1]["message"]
    assert state == "Failed" and "invalid status.syncRequest" in message
    h.reports.clear()
    already = {"state": "Failed", "message": desired_of(bad).why}
    h.controller.reconcile([migration("bad", {"active": True, "source": "a:1"}, sync=already)])
    assert h.reports == []


def test_shutdown_stops_every_runner_with_a_report() -> None:
    h = Harness()
    h.controller.reconcile([migration("a", REQUEST), migration("b", REQUEST)])
    h.controller.shutdown(timeout=1)
    assert all(r.stopped == ("the sync controller is shutting down", True) for r in h.runners)
    assert all(not r.alive for r in h.runners)


def test_state_file_is_dropped_when_the_ensembles_change(tmp_path: Path) -> None:
    spec = SyncSpec("a:1", "b:2", ("/mesos",))
    key = ("ns", "m")
    path = prepare_state_file(tmp_path, key, spec)
    assert path == tmp_path / "ns_m.json"
    path.write_text("{}")
    assert prepare_state_file(tmp_path, key, SyncSpec("a:1", "b:2", ("/x",))) == path
    assert path.exists()  # same ensembles: the merge base stays
    prepare_state_file(tmp_path, key, SyncSpec("a:1", "c:3", ("/mesos",)))
    assert not path.exists()  # another target: a stale base would read as deletions
    path.write_text("{}")
    forget_state(tmp_path, key)
    assert list(tmp_path.iterdir()) == []
    assert prepare_state_file(None, key, spec) is None


def test_cli_has_the_controller_action(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        zk_main(["zk-sync", "controller", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--namespace", "--state-dir", "--health-host", "--health-port", "--interval"):
        assert flag in out


# ----------------------------------------------------------------------------- credentials
def test_a_request_names_the_secrets_never_their_values() -> None:
    request = {
        **REQUEST,
        "sourceAuthSecretRef": {"name": "zk-auth", "key": "digest"},
        "targetAuthSecretRef": {"name": "zk-b-auth", "key": "d"},
    }
    desired = desired_of(migration(sync_request=request))
    assert desired.spec is not None
    assert (desired.spec.source_secret, desired.spec.target_secret) == (
        ("zk-auth", "digest"),
        ("zk-b-auth", "d"),
    )
    # another Secret is another engine
    assert desired.spec != desired_of(migration(sync_request=REQUEST)).spec


def run_once(
    monkeypatch: pytest.MonkeyPatch, spec: SyncSpec, reader: Any
) -> tuple[list[dict[str, Any]], list[SyncConfig]]:
    """A runner whose engine records its config and refuses to start (no retries), so
    one attempt is made; its reports and the configs its engine got."""
    configs: list[SyncConfig] = []

    class Recording:
        def __init__(self, config: SyncConfig, *args: Any) -> None:
            configs.append(config)
            self.clients: dict[str, Any] = {}

        def start(self) -> None:
            raise SameEnsembleError("stop here")

    monkeypatch.setattr(runner_module, "SyncEngine", Recording)
    reports: list[dict[str, Any]] = []
    options = ControllerOptions(backoff_initial=5, backoff_max=5)
    runner = MigrationRunner(
        ("ns", "m"), spec, options, lambda key, doc: reports.append(doc), None, reader
    )
    runner.start()
    deadline = time.monotonic() + 10
    while not any(r["state"] in (SyncState.FAILED, SyncState.RETRYING) for r in reports):
        assert time.monotonic() < deadline, reports
        time.sleep(0.01)
    runner.stop("done")
    runner.join(10)
    return reports, configs


def test_the_engine_authenticates_with_the_secrets_of_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[tuple[str, str, str]] = []

    def reader(namespace: str, ref: SecretKeyRef) -> tuple[tuple[str, str], ...]:
        asked.append((namespace, ref.name, ref.key))
        return (("digest", "mesos:pw"),)

    spec = SyncSpec("zk-a:2181", "zk-b:2181", ("/mesos",), source_secret=("zk-auth", "digest"))
    reports, configs = run_once(monkeypatch, spec, reader)
    assert asked == [("ns", "zk-auth", "digest")]  # the migration's own namespace
    [config] = configs
    assert (config.source_auth, config.target_auth) == ([("digest", "mesos:pw")], [])
    assert "mesos:pw" not in str(reports)


def test_a_refused_secret_fails_the_start_with_the_rule_and_no_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def reader(namespace: str, ref: SecretKeyRef) -> tuple[tuple[str, str], ...]:
        raise CredentialsRefused(f"Secret {namespace}/{ref.name} is not labelled {RULE}")

    spec = SyncSpec("zk-a:2181", "zk-b:2181", ("/mesos",), target_secret=("other", "k"))
    reports, configs = run_once(monkeypatch, spec, reader)
    assert configs == []
    # Retried (labelling the Secret is enough), so not Failed while it waits (issue 18).
    assert SyncState.FAILED not in [r["state"] for r in reports]
    failed = next(r for r in reports if r["state"] == SyncState.RETRYING)
    assert failed["message"].startswith(
        "ZooKeeper target credentials: Secret ns/other is not labelled"
    )
    assert failed["message"].endswith("retrying in 5s")
