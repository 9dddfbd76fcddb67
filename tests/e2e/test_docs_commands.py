"""The docs' commands that can run here, run as written against a real control plane with
the shared operator and the examples applied (issue 18, point 4). Which ones, in which
order and with which exit codes: `RUN` in tests/unit/test_docs_commands.py, which also
checks the others exist and says why each is not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from tests.e2e.support import eventually, get_json
from tests.unit.test_docs_commands import COMMANDS, RUN

pytestmark = pytest.mark.kube
REPO = Path(__file__).resolve().parents[2]
ORCHESTRATOR = str(Path(sys.executable).parent / "orchestrator")


def _run(env: KubeTestEnv, command: str) -> subprocess.CompletedProcess[str]:
    words = command.split()
    program = {"kubectl": str(env.kubectl), "orchestrator": ORCHESTRATOR,
               ".venv/bin/orchestrator": ORCHESTRATOR}.get(words[0], words[0])  # fmt: skip
    stdin = None
    if words[1:] == ["render", "-f", "-"]:  # the docs pipe examples/probefleet.yaml into it
        stdin = (REPO / "examples" / "probefleet.yaml").read_text()
    return subprocess.run(
        [program, *words[1:]],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(env.kubeconfig)},
    )


def test_the_docs_commands_run_as_written(kube_env: KubeTestEnv, operator: OperatorProcess) -> None:
    documented = {c.key for c in COMMANDS}
    outputs: dict[str, subprocess.CompletedProcess[str]] = {}
    for command, codes in RUN.items():
        assert command in documented, f"{command} is no longer in the docs"
        if command.startswith(("orchestrator zk-migrate", ".venv/bin/orchestrator zk-migrate")):
            # what the CLI shows depends on the operator having seen the migration
            eventually(
                lambda: ((get_json(kube_env, "zkmigration", "demo-to-zk-b") or {})
                         .get("status", {}).get("phase")),
                90, "the operator to give demo-to-zk-b a phase",
            )  # fmt: skip
        result = _run(kube_env, command)
        outputs[command] = result
        assert result.returncode in codes, (
            f"`{command}` exited {result.returncode}, the docs say {sorted(codes)}\n"
            f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-2000:]}"
        )
        assert "Traceback" not in result.stderr, f"`{command}`: {result.stderr[-2000:]}"

    dry_run = next(out for cmd, out in outputs.items() if "--dry-run" in cmd)
    assert "plan (nothing changed)" in dry_run.stdout
    assert "note: a ZkMigration named demo-to-zk-b already exists in default" in dry_run.stdout
    unchanged = outputs["orchestrator zk-migrate advance demo-to-zk-b"]
    assert "nothing changed" in unchanged.stderr
    for command, result in outputs.items():
        if "zk-migrate" in command and "--json" not in command:
            assert "None" not in result.stdout + result.stderr, f"`{command}`: {result.stdout}"
    report = _run(kube_env, "orchestrator zk-migrate report demo-to-zk-b")
    assert report.returncode == 1 and "None" not in report.stdout, report.stdout


def test_the_docs_say_which_finalizer_a_mesoscluster_carries(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    # docs/mesoscluster.md: Kopf adds its finalizer for the observation timers
    assert "`orchestrator.dev/finalizer`" in (REPO / "docs" / "mesoscluster.md").read_text()
    assert _run(kube_env, "kubectl apply -f examples/mesoscluster.yaml").returncode == 0

    def finalizers() -> list[str]:
        cluster = get_json(kube_env, "mesoscluster", "demo") or {}
        return list(cluster.get("metadata", {}).get("finalizers") or [])

    assert eventually(finalizers, 60, "the operator's finalizer") == ["orchestrator.dev/finalizer"]
