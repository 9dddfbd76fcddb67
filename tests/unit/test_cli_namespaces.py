"""`--namespace` may be repeated: the operator (Kopf) and the sync controller then serve
exactly those namespaces, as the chart's namespace-scoped mode runs them
(charts/orchestrator, watchNamespaces)."""

from __future__ import annotations

import pytest

from orchestrator_operator.cli import main
from orchestrator_operator.operator import main as operator_main
from orchestrator_operator.operator.main import OperatorOptions
from orchestrator_operator.sync.controller import main as controller_main
from orchestrator_operator.sync.controller.options import ControllerOptions


@pytest.mark.parametrize(
    ("flags", "namespaces"),
    [
        ([], ()),
        (["--namespace", "a"], ("a",)),
        (["--namespace", "a", "--namespace", "b"], ("a", "b")),
    ],
)
def test_the_operator_serves_every_namespace_given(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], namespaces: tuple[str, ...]
) -> None:
    seen: list[OperatorOptions] = []

    def run(options: OperatorOptions, **_: object) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(operator_main, "run", run)
    assert main(["run", *flags]) == 0
    assert seen[0].namespaces == namespaces


@pytest.mark.parametrize(
    ("flags", "namespaces"),
    [([], ()), (["--namespace", "a", "--namespace", "b"], ("a", "b"))],
)
def test_the_sync_controller_serves_every_namespace_given(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], namespaces: tuple[str, ...]
) -> None:
    seen: list[ControllerOptions] = []

    def run_controller(options: ControllerOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(controller_main, "run_controller", run_controller)
    assert main(["zk-sync", "controller", *flags]) == 0
    assert seen[0].namespaces == namespaces
