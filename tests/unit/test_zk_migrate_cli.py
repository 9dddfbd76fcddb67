"""`orchestrator zk-migrate`: the pure parts (manifest, plan, status view, report, patches)
and its argument validation."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from orchestrator_operator.cli import build_parser
from orchestrator_operator.common.kube_api import ApiError
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.models.zkmigration import ZkMigrationStatus
from orchestrator_operator.operator.zkmigration.machine import report
from orchestrator_operator.zkmigrate.main import api_error_words
from orchestrator_operator.zkmigrate.manifest import (
    SAME_ENSEMBLE,
    InputError,
    StartRequest,
    advance_patch,
    check_start,
    migration_manifest,
    rollback_patch,
)
from orchestrator_operator.zkmigrate.plan import plan_text
from orchestrator_operator.zkmigrate.views import (
    report_document,
    report_text,
    status_view,
    validation,
)

CLUSTER: dict[str, Any] = {
    "apiVersion": "orchestrator.dev/v1alpha1",
    "kind": "MesosCluster",
    "metadata": {"name": "demo", "namespace": "prod", "uid": "u1"},
    "spec": {
        "zookeeper": {"external": {"connectString": "zk-a-0:2181,zk-a-1:2181,zk-a-2:2181"}},
        "masters": {"replicas": 3},
    },
}


def _manifest(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": "demo-to-b",
        "namespace": "prod",
        "cluster": "demo",
        "target_connect": "zk-b-0:2181,zk-b-1:2181",
    }
    fields.update(changes)
    return migration_manifest(StartRequest(**fields))


def _render(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=160, color_system=None).print(renderable)
    return out.getvalue()


def test_manifest_has_the_spec_of_the_options() -> None:
    manifest = _manifest(paths=("/mesos", "/mesos", "/marathon"), manual=True, strategy="Manual")
    assert manifest["apiVersion"] == "orchestrator.dev/v1alpha1"
    assert manifest["kind"] == "ZkMigration"
    assert manifest["metadata"] == {"name": "demo-to-b", "namespace": "prod"}
    assert manifest["spec"] == {
        "clusterRef": "demo",
        "target": {"external": {"connectString": "zk-b-0:2181,zk-b-1:2181"}},
        "paths": ["/mesos", "/marathon"],
        "approval": {"mode": "Manual", "approvedThroughPhase": 0},
        "conflictStrategy": "Manual",
    }
    managed = _manifest(target_connect=None, target_managed_replicas=5)
    assert managed["spec"]["target"] == {"managed": {"replicas": 5}}
    assert managed["spec"]["approval"] == {"mode": "Automatic"}


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"target_managed_replicas": 3}, "exactly one of --target-connect"),
        ({"target_connect": None}, "exactly one of --target-connect"),
        ({"target_connect": None, "target_managed_replicas": 4}, "must be odd"),
        ({"target_connect": "not a connect string"}, "target.external.connectString"),
        ({"paths": ("mesos",)}, "paths"),
        ({"retention": "3 days"}, "rollbackRetention"),
    ],
)
def test_bad_start_input_is_refused_in_words(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words):
        _manifest(**changes)


def test_target_equal_to_the_clusters_ensemble_is_refused() -> None:
    same = _manifest(target_connect="zk-a-0:2181,zk-a-1:2181,zk-a-2:2181")
    with pytest.raises(InputError, match=SAME_ENSEMBLE):
        check_start(same, CLUSTER, ZkRouting())
    busy = ZkRouting(migration="other", target="zk-c:2181")
    with pytest.raises(InputError, match="being migrated by ZkMigration other"):
        check_start(_manifest(), CLUSTER, busy)
    check_start(_manifest(), CLUSTER, ZkRouting())


def test_plan_for_a_three_master_cluster() -> None:
    plan = plan_text(_manifest(manual=True), CLUSTER, ZkRouting(), None)
    assert "source A  zk-a-0:2181,zk-a-1:2181,zk-a-2:2181 (the ensemble the cluster uses now)" in (
        plan
    )
    assert "target B  zk-b-0:2181,zk-b-1:2181 (external)" in plan
    assert "3 masters (quorum 2)" in plan
    for number, name in enumerate(
        ["SyncTarget", "MastersOnTarget", "RetireSourceMasters", "AgentsOnTarget",
         "DrainSource", "RetireSource"], start=1,
    ):  # fmt: skip
        assert f"phase {number} {name}" in plan
    # What each phase leaves behind, from machine.routing_for.
    assert "after:  masters on A: 3, on B: 0; agents on A; Marathon on A; sync on" in plan
    assert "after:  masters on A: 1, on B: 2; agents on A; Marathon on A; sync on" in plan
    # One for one: never more than 3 log replicas (quorum 2) while masters move.
    assert "(masters on A+B: 3+0 -> 2+0 -> 2+1 -> 1+1 -> 1+2)" in plan
    assert "the same way (1+2 -> 0+2 -> 0+3)" in plan
    assert "after:  masters on A: 0, on B: 3; agents on A; Marathon on A; sync on" in plan
    assert plan.count("after:  masters on A: 0, on B: 3; agents on B; Marathon on B; sync on") == 2
    assert "after:  all 3 masters, the agents and Marathon on B; sync off" in plan
    assert "entry:  phase 1 succeeded, and approvedThroughPhase >= 2" in plan
    assert "exit:   no agent left on A" in plan
    assert "masters ready: 1 on A, 2 on B; all 3 in the election, seen alike on A and B" in plan
    assert "exit:   the MesosCluster names ensemble B" in plan
    assert "digests equal, lag p99 <= 100 ms" in plan


def test_plan_names_a_managed_target_as_the_operator_will() -> None:
    manifest = _manifest(target_connect=None, target_managed_replicas=3)
    plan = plan_text(manifest, CLUSTER, ZkRouting(), None)
    assert "target B  demo-to-b-zookeeper-client.prod.svc:2181 (managed: 3 servers)" in plan
    assert "create ensemble B: a 3-server ZooKeeper StatefulSet" in plan
    assert "approvedThroughPhase" not in plan  # Automatic


STATUS: dict[str, Any] = {
    "phase": "Running",
    "currentPhase": 3,
    "sourceConnectString": "zk-a:2181",
    "targetConnectString": "zk-b:2181",
    "phases": [
        {
            "number": 1,
            "name": "SyncTarget",
            "state": "Succeeded",
            "startedAt": "2026-11-28T00:00:00Z",
            "finishedAt": "2026-11-28T00:00:12.5Z",
            "message": "exit checks passed",
        },
        {
            "number": 2,
            "name": "MastersOnTarget",
            "state": "Succeeded",
            "startedAt": "2026-11-28T00:00:12.5Z",
            "finishedAt": "2026-11-28T00:01:40Z",
        },
        {
            "number": 3,
            "name": "RetireSourceMasters",
            "state": "Running",
            "startedAt": "2026-11-28T00:01:40Z",
            "message": "masters on A: 2 ready of 2, want 1",
        },
    ],
    "checks": ["masters on A: 2 ready of 2, want 1", "leader m2 not yet stable for 5s"],
    "leader": {
        "id": "m2",
        "address": "10.0.0.2:5050",
        "since": "2026-11-28T00:01:50Z",
        "changes": 1,
    },
    "sync": {
        "state": "Running",
        "bootstrapped": True,
        "lagP99Seconds": 0.021,
        "digestsEqual": True,
        "differences": 0,
        "conflicts": 2,
    },
}


def test_a_migration_held_before_its_first_phase_says_so_without_none() -> None:
    # Pending, no phase number yet: the pre-migration checks hold the start.
    pending = {
        "phase": "Pending",
        "checks": ["pre-migration check: MesosCluster demo is Progressing"],
    }
    text = _render(status_view("demo-to-b", pending, datetime(2026, 11, 28, tzinfo=UTC)))
    assert "holding the start:" in text
    assert "- pre-migration check: MesosCluster demo is Progressing" in text
    assert "None" not in text


def test_status_view_shows_phases_checks_sync_and_leader() -> None:
    now = datetime(2026, 11, 28, 0, 2, 10, tzinfo=UTC)
    text = _render(status_view("demo-to-b", STATUS, now))
    assert "ZkMigration demo-to-b: Running  phase 3/6" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isdigit()}
    assert rows["1"].split()[1:5] == ["SyncTarget", "Succeeded", "00:00:00", "12.5s"]
    assert rows["2"].split()[1:5] == ["MastersOnTarget", "Succeeded", "00:00:12", "1m27s"]
    assert rows["3"].split()[1:5] == ["RetireSourceMasters", "Running", "00:01:40", "30.0s"]
    assert rows["6"].split()[1:3] == ["RetireSource", "Pending"]
    assert "holding phase 3:" in text
    assert "- leader m2 not yet stable for 5s" in text
    assert "lag p99 21 ms; digests equal; 0 differences; 2 conflicts" in text
    assert "leader m2 at 10.0.0.2:5050" in text and "1 leader changes" in text


def test_status_view_of_a_migration_not_yet_seen() -> None:
    text = _render(status_view("new", {}, datetime.now(UTC)))
    assert "Pending (not yet seen by the operator)" in text
    assert "sync: no report from the sync controller" in text


def test_validation_passes_only_without_checks_and_with_equal_digests() -> None:
    ok, lines = validation(STATUS)
    assert not ok and "FAIL masters on A: 2 ready of 2, want 1" in lines
    passing = {**STATUS, "checks": []}
    assert validation(passing)[0]
    differing = {**passing, "sync": {**STATUS["sync"], "digestsEqual": False, "differences": 4}}
    ok, lines = validation(differing)
    assert not ok and "FAIL digests differ (4 differences)" in lines
    assert validation({**passing, "sync": None})[0]  # not compared: not a failure
    assert not validation({})[0]  # never seen by the operator


FINISHED: dict[str, Any] = {
    **STATUS,
    "phase": "Succeeded",
    "currentPhase": 6,
    "checks": [],
    "phases": [
        {
            "number": n,
            "name": name,
            "state": "Succeeded",
            "startedAt": f"2026-11-28T00:0{n}:00Z",
            "finishedAt": f"2026-11-28T00:0{n}:30Z",
        }
        for n, name in enumerate(
            [
                "SyncTarget",
                "MastersOnTarget",
                "RetireSourceMasters",
                "AgentsOnTarget",
                "DrainSource",
                "RetireSource",
            ],
            start=1,
        )
    ],
    "baseline": {
        "recordedAt": "2026-11-28T00:01:00Z",
        "taskCount": 200,
        "taskDigest": "0123456789abcdef",
        "frameworkIds": ["f1"],
    },
    "archive": ["demo-to-b-archive-0"],
    "archiveExpiresAt": "2026-12-01T00:06:30Z",
    "report": "ZkMigration report\nfrom zk-a:2181 to zk-b:2181",
}


def test_report_document_has_timings_cutover_baseline_and_archive() -> None:
    obj = {"metadata": {"name": "m", "namespace": "prod"}, "spec": {"clusterRef": "demo"},
           "status": FINISHED}  # fmt: skip
    doc = report_document(obj)
    assert doc["succeeded"] is True and doc["cluster"] == "demo"
    assert [p["seconds"] for p in doc["phases"]] == [30.0] * 6
    assert doc["cutoverSeconds"] == 270.0  # phase 2 start 00:02:00 to phase 6 end 00:06:30
    assert doc["baseline"] == {"taskCount": 200, "taskDigest": "0123456789abcdef",
                               "recordedAt": "2026-11-28T00:01:00Z", "frameworks": 1}  # fmt: skip
    assert doc["leader"] == {"id": "m2", "address": "10.0.0.2:5050", "changes": 1}
    assert doc["sync"]["lagP99Seconds"] == 0.021 and doc["sync"]["conflicts"] == 2
    assert doc["archive"] == {"configMaps": ["demo-to-b-archive-0"],
                              "expiresAt": "2026-12-01T00:06:30Z"}  # fmt: skip
    assert report_text(obj) == FINISHED["report"]


def test_report_of_an_unfinished_migration_says_so() -> None:
    obj = {"metadata": {"name": "m"}, "status": STATUS}
    doc = report_document(obj)
    assert doc["succeeded"] is False and doc["cutoverSeconds"] is None
    assert doc["phases"][2]["seconds"] is None and doc["phases"][5]["state"] == "Pending"
    assert report_text(obj).startswith("ZkMigration m: not finished (phase Running)")


def _obj(mode: str = "Manual", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "namespace": "prod"},
        "spec": {"approval": {"mode": mode, "approvedThroughPhase": 1}},
        "status": status,
    }


def test_advance_approves_the_current_phase_or_the_one_given() -> None:
    body, note = advance_patch(_obj(phase="AwaitingApproval", currentPhase=2), None)
    assert body == {"spec": {"approval": {"approvedThroughPhase": 2}}}
    assert "approved through phase 2 (was 1)" in note
    body, _ = advance_patch(_obj(phase="AwaitingApproval", currentPhase=2), 6)
    assert body is not None
    assert body["spec"]["approval"]["approvedThroughPhase"] == 6
    with pytest.raises(InputError, match="approval mode Automatic"):
        advance_patch(_obj("Automatic", phase="Running", currentPhase=2), 3)
    with pytest.raises(InputError, match="Succeeded: nothing to approve"):
        advance_patch(_obj(phase="Succeeded", currentPhase=6), 6)


def test_rollback_must_go_below_the_current_phase() -> None:
    body, note = rollback_patch(_obj(phase="Running", currentPhase=3), 0, cancel=False)
    assert body == {"spec": {"rollbackToPhase": 0}} and "phases 3..1" in note
    with pytest.raises(InputError, match="below the current phase 3"):
        rollback_patch(_obj(phase="Running", currentPhase=3), 3, cancel=False)
    with pytest.raises(InputError, match="new ZkMigration from B to A"):
        rollback_patch(_obj(phase="Succeeded", currentPhase=6), 2, cancel=False)
    with pytest.raises(InputError, match="nothing to roll back"):
        rollback_patch(_obj(), 0, cancel=False)
    body, _ = rollback_patch(_obj(phase="RollingBack", currentPhase=3), None, cancel=True)
    assert body == {"spec": {"rollbackToPhase": None}}


@pytest.mark.parametrize(
    "argv",
    [
        ["zk-migrate", "start", "m", "--cluster", "c"],  # no target
        [
            "zk-migrate",
            "start",
            "m",
            "--cluster",
            "c",
            "--target-connect",
            "b:2181",
            "--target-managed-replicas",
            "3",
        ],  # both targets
        ["zk-migrate", "start", "m", "--target-connect", "b:2181"],  # no cluster
        [
            "zk-migrate",
            "start",
            "m",
            "--cluster",
            "c",
            "--target-connect",
            "b:2181",
            "--strategy",
            "Newest",
        ],
        ["zk-migrate", "rollback", "m"],  # neither --to nor --cancel
        ["zk-migrate", "rollback", "m", "--to", "6"],
        ["zk-migrate", "rollback", "m", "--to", "1", "--cancel"],
        ["zk-migrate", "advance", "m", "--through", "0"],
        ["zk-migrate", "advance", "m", "--through", "two"],
        ["zk-migrate", "frobnicate", "m"],
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2


def test_good_arguments_parse() -> None:
    args = build_parser().parse_args(
        ["zk-migrate", "start", "m", "-n", "prod", "--cluster", "c", "--target-managed-replicas",
         "3", "--path", "/mesos", "--path", "/marathon", "--manual", "--dry-run"]
    )  # fmt: skip
    assert (args.action, args.namespace, args.target_managed_replicas) == ("start", "prod", 3)
    assert args.paths == ["/mesos", "/marathon"] and args.manual and args.dry_run
    assert build_parser().parse_args(["zk-migrate", "rollback", "m", "--to", "0"]).to == 0


def test_api_errors_read_as_the_servers_message() -> None:
    body = '{"kind":"Status","message":"ZkMigration \\"m\\" is invalid: nope","code":422}'
    assert api_error_words(ApiError(422, body)) == (
        'the API server refused (422): ZkMigration "m" is invalid: nope'
    )
    assert api_error_words(ApiError(503, "plain text")).endswith("(503): plain text")


def test_advance_that_changes_nothing_says_so() -> None:
    # issue 18, point 4: it printed "approved through phase 1 (was 1)" and exited 0
    body, note = advance_patch(_obj(phase="AwaitingApproval", currentPhase=1), None)
    assert body is None
    assert "already approved through phase 1; nothing changed" in note
    body, note = advance_patch(_obj(phase="Running", currentPhase=1), 1)
    assert body is None and "nothing changed" in note


def test_report_of_a_migration_without_addresses_or_leader_prints_no_none() -> None:
    # issue 18, point 4: "from None to None", "leader now None"
    for status in (
        {},
        {"phase": "Pending"},
        {"phase": "Running", "currentPhase": 1, "leader": {"changes": 0},
         "baseline": {"taskCount": 0, "taskDigest": ""}},
    ):  # fmt: skip
        obj = {"metadata": {"name": "m", "namespace": "prod"}, "spec": {}, "status": status}
        text = report_text(obj)
        assert "None" not in text, text
    assert "leader now none known" in text
    operators = report(ZkMigrationStatus.model_validate({"phase": "Succeeded", "leader": {}}))
    assert "None" not in operators and "leader now none known" in operators


def test_status_wraps_messages_between_words_on_a_narrow_terminal() -> None:
    # issue 18, point 4: a message column folded host names and words mid-word
    check = (
        "ensemble A (zk-a-client.default.svc:2181) unreachable: cannot reach ZooKeeper at"
        " zk-a-client.default.svc:2181: no session within 3s"
    )
    status = {**STATUS, "checks": [check]}
    status["phases"] = [{**STATUS["phases"][0], "message": f"passed after: {check}"}]
    out = io.StringIO()
    Console(file=out, width=72, color_system=None).print(
        status_view("demo-to-b", status, datetime(2026, 11, 28, 0, 2, 10, tzinfo=UTC))
    )
    text = out.getvalue()
    table, _, held = text.partition("holding phase 3:")
    table_words = {word for line in table.splitlines() for word in line.split()}
    for word in [*check.split(), "passed", "after:", "RetireSourceMasters"]:
        assert word in table_words, text  # the phase's message and names, whole words
    held_lines = held.splitlines()[1:3]
    assert held_lines[0].startswith("  - ensemble A"), text
    assert held_lines[1].startswith("    "), text  # its next line indented under it


def test_a_managed_target_for_a_tls_cluster_needs_its_own_tls_secret() -> None:
    tls_cluster = {
        **CLUSTER,
        "spec": {"zookeeper": {"replicas": 3, "tls": {"secretName": "a-tls"}}},
    }
    plain_b = _manifest(target_connect=None, target_managed_replicas=3)
    with pytest.raises(InputError, match="give --target-managed-tls-secret"):
        check_start(plain_b, tls_cluster, ZkRouting())
    tls_b = _manifest(target_connect=None, target_managed_replicas=3,
                      target_managed_tls_secret="b-tls")  # fmt: skip
    assert tls_b["spec"]["target"] == {"managed": {"replicas": 3, "tls": {"secretName": "b-tls"}}}
    check_start(tls_b, tls_cluster, ZkRouting())
    with pytest.raises(InputError, match="is for --target-managed-replicas"):
        _manifest(target_managed_tls_secret="b-tls")
