"""The programs' log lines (common/logs.py, issue 18 point 3): JSON is one object per line
with what a log pipeline needs; a repeated warning is said once, then on change."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from orchestrator_operator.common.logs import (
    JsonFormatter,
    OnChange,
    PlainFormatter,
    RepeatFilter,
    RoutineSuccessFilter,
    configure_logging,
)


def _record(
    message: str,
    *args: object,
    level: int = logging.WARNING,
    name: str = "kazoo.client",
    **extra: object,
) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, message, args or None, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_are_one_object_each_with_time_level_logger_message_and_object() -> None:
    ref = {"apiVersion": "orchestrator.dev/v1alpha1", "kind": "MesosCluster",
           "namespace": "default", "name": "demo", "uid": "u-1"}  # fmt: skip
    record = _record("phase %s\nsecond line", "Ready", level=logging.INFO, k8s_ref=ref)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "kazoo.client"
    assert entry["message"] == "phase Ready\nsecond line"
    assert entry["object"] == {"kind": "MesosCluster", "namespace": "default", "name": "demo"}
    assert entry["time"].endswith("+00:00")


def test_json_lines_carry_the_traceback_in_one_field() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = _record("it failed", level=logging.ERROR)
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "it failed"
    assert "ValueError: bad value" in entry["exception"]


def test_plain_lines_name_the_object() -> None:
    ref = {"kind": "ZkMigration", "namespace": "default", "name": "demo-to-zk-b"}
    line = PlainFormatter().format(_record("phase 1 held", level=logging.INFO, k8s_ref=ref))
    assert line.endswith("INFO kazoo.client [default/demo-to-zk-b] phase 1 held")


def test_a_repeated_line_is_let_through_once_then_only_when_it_changes() -> None:
    now = [0.0]
    repeat = RepeatFilter(remind_after=600, clock=lambda: now[0])
    resolve = "Cannot resolve %s: %s"
    seen = []
    for tick in range(5):
        now[0] = tick * 1.0
        for host in ("zk-a.default.svc", "zk-b.default.svc"):
            record = _record(resolve, host, "[Errno -2] Name or service not known")
            if repeat.filter(record):
                seen.append(record.getMessage())
    assert seen == [
        "Cannot resolve zk-a.default.svc: [Errno -2] Name or service not known",
        "Cannot resolve zk-b.default.svc: [Errno -2] Name or service not known",
    ]
    changed = _record(resolve, "zk-a.default.svc", "[Errno -3] Temporary failure")
    assert repeat.filter(changed)


def test_a_line_still_repeating_is_said_again_after_the_reminder_period_with_its_count() -> None:
    now = [0.0]
    repeat = RepeatFilter(remind_after=600, clock=lambda: now[0])
    assert repeat.filter(_record("ZooKeeper unreachable"))
    for second in range(1, 4):
        now[0] = second
        assert not repeat.filter(_record("ZooKeeper unreachable"))
    now[0] = 601
    again = _record("ZooKeeper unreachable")
    assert repeat.filter(again)
    assert again.getMessage() == "ZooKeeper unreachable (repeated 3 more times since it was logged)"


def test_repeats_of_different_objects_are_not_one_line() -> None:
    repeat = RepeatFilter()
    for name in ("a", "b"):
        record = _record("cannot reach ZooKeeper", name="kopf.objects",
                         k8s_ref={"namespace": "default", "name": name})  # fmt: skip
        assert repeat.filter(record)


def test_info_lines_of_the_programs_are_not_held_back() -> None:
    repeat = RepeatFilter()
    for _ in range(3):
        assert repeat.filter(_record("reconciled", level=logging.INFO, name="orchestrator"))


def test_the_repeat_memory_is_bounded() -> None:
    repeat = RepeatFilter(max_lines=10)
    for index in range(100):
        repeat.filter(_record(f"line {index}"))
    assert repeat.filter(_record("line 0"))  # forgotten, so said again


def test_kopf_timer_successes_are_debug_and_its_failures_stay() -> None:
    quiet = RoutineSuccessFilter(show_debug=False)
    success = _record("Timer 'observe' succeeded.", level=logging.INFO, name="kopf.objects")
    assert not quiet.filter(success)
    assert success.levelname == "DEBUG"
    assert RoutineSuccessFilter(show_debug=True).filter(
        _record("Timer 'drive' succeeded.", level=logging.INFO, name="kopf.objects")
    )
    for kept in ("Handler 'reconcile' succeeded.", "Timer 'observe' failed with an exception"):
        assert quiet.filter(_record(kept, level=logging.INFO, name="kopf.objects"))


def test_on_change_logs_a_state_once_again_on_change_and_once_when_it_clears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("tests.on_change")
    trouble = OnChange(logger)
    with caplog.at_level(logging.INFO, logger="tests.on_change"):
        for _ in range(3):
            trouble.report("reports not sent (%s)", "connection refused", key="app")
        trouble.report("reports not sent (%s)", "name does not resolve", key="app")
        trouble.report("other host down", key="other")
        assert trouble.clear("reports reach the app again", key="app")
        assert not trouble.clear("reports reach the app again", key="app")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "reports not sent (connection refused)"),
        ("WARNING", "reports not sent (name does not resolve)"),
        ("WARNING", "other host down"),
        ("INFO", "reports reach the app again"),
    ]


def test_configure_logging_writes_json_lines_and_rejects_an_unknown_format(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        configure_logging(log_format="json")
        configure_logging(log_format="json")  # a second call replaces the first
        logging.getLogger("tests.json").warning("one %s", "line")
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["message"] for line in lines] == ["one line"]
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
    with pytest.raises(ValueError, match="plain, json"):
        configure_logging(log_format="yaml")
