"""`orchestrator marathon import|plan` around the pure parts: the dry run writes nothing and
shows a diff, a second import changes nothing, the plan's table, bad input in words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator_operator.cli import main
from orchestrator_operator.offramp import main as offramp
from orchestrator_operator.offramp.manifest import build_all

APPS: list[dict[str, Any]] = [
    {"id": "/web", "cmd": "serve", "instances": 2, "cpus": 0.1, "mem": 32,
     "env": {"MODE": "a", "API_TOKEN": "s3cr3t"}, "version": "v1"},
    {"id": "/db", "instances": 0, "cpus": 1, "mem": 512, "version": "v1", "container": {
        "type": "DOCKER", "docker": {"image": "postgres:16"},
        "volumes": [{"containerPath": "data", "mode": "RW", "persistent": {"size": 100}}]}},
]  # fmt: skip


@pytest.fixture
def marathon(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    apps = [dict(a) for a in APPS]
    monkeypatch.setattr(offramp, "_read_apps", lambda args: build_all(apps, args.cluster, "ns"))
    return apps


def test_dry_run_then_import_then_a_change_as_a_diff(
    marathon: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "git"
    args = ["marathon", "import", "--cluster", "prod", "-n", "ns", "--out", str(out)]
    assert main([*args, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("new ") == 2 and not out.exists()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["db.yaml", "web.yaml"]
    assert "s3cr3t" not in (out / "web.yaml").read_text()
    assert "NEEDS A PERSON: Secret web-env (namespace ns) with API_TOKEN for /web" in printed
    marathon[0]["env"] = {"MODE": "b", "API_TOKEN": "s3cr3t"}
    assert main([*args, "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "changed" in printed and "-      MODE: a" in printed and "+      MODE: b" in printed
    assert "s3cr3t" not in printed
    assert "MODE: a" in (out / "web.yaml").read_text()  # the dry run wrote nothing


def test_plan_table(marathon: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["marathon", "plan", "--cluster", "prod", "-n", "ns"]) == 0
    table = capsys.readouterr().out
    assert "2 apps: 0 Ready, 0 NeedsReview, 2 Blocked" in table
    assert "/db" in table and "persistent volume" in table


def test_bad_input_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["marathon", "plan", "--cluster", "p", "-n", "ns", "--marathon", "ftp://x"])
    assert code == 2
    assert "--marathon: an http:// or https:// URL" in capsys.readouterr().err
    creds = tmp_path / "creds"
    creds.write_text("no-colon")
    code = main(["marathon", "plan", "--cluster", "p", "-n", "ns", "--marathon", "http://127.0.0.1:1",
                 "--credentials-file", str(creds)])  # fmt: skip
    assert code == 2 and "user:password" in capsys.readouterr().err
    creds.write_text("u:p")
    code = main(["marathon", "plan", "--cluster", "p", "-n", "ns", "--marathon", "http://127.0.0.1:1",
                 "--credentials-file", str(creds)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "Marathon" in err and "u:p" not in err
