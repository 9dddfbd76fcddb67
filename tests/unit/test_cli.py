"""One `orchestrator` command carries every process the image runs."""

from __future__ import annotations

import pytest

from orchestrator_operator.cli import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--namespace", "mesos"],
        ["crds", "--check"],
        ["zk-sync", "--source", "a:2181", "--target", "b:2181", "--path", "/mesos"],
        ["probe", "--app", "http://app:4040"],
        ["app", "--port", "4040"],
    ],
)
def test_every_subcommand_parses(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert callable(args.func)


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_crds_check_reports_stale_files(
    tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crds", "--check", "--output-dir", str(tmp_path)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main(["crds", "--output-dir", str(tmp_path)]) == 0
    assert main(["crds", "--check", "--output-dir", str(tmp_path)]) == 0
