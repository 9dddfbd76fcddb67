"""Conformance: the agent's `--credential` against a master that authenticates agents.

Each test names the Mesos 1.11 source or doc it follows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.cluster import SimCluster
from sim.procs import REPO_ROOT
from testenv.zookeeper import ZkEnsemble
from tests.sim.agent_support import agent, log_text

pytestmark = [pytest.mark.zookeeper, pytest.mark.timeout(240)]

SECRET = "agent-s3cr3t"


def _credential(path: Path, principal: str, secret: str) -> Path:
    path.write_text(json.dumps({"principal": principal, "secret": secret}))
    path.chmod(0o600)
    return path


@pytest.fixture
def secured(zk_ensemble: ZkEnsemble, tmp_path: Path) -> Iterator[SimCluster]:
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"credentials": [{"principal": "agent", "secret": SECRET}]}))
    creds.chmod(0o600)
    with SimCluster(
        zk_ensemble.connect_string,
        masters=1,
        agents=0,
        marathons=0,
        base_dir=tmp_path / "sim",
        master_flags=["--authenticate_agents", f"--credentials={creds}"],
    ) as sim:
        yield sim


def test_an_agent_with_its_credential_registers(secured: SimCluster, tmp_path: Path) -> None:
    # docs/authentication.md, src/slave/slave.cpp (Slave::authenticate before registering):
    # with --credential the agent authenticates and registers with an authenticating master.
    credential = _credential(tmp_path / "credential.json", "agent", SECRET)
    proc, _ = agent(secured, "node-a", f"--credential=file://{credential}")
    proc.start()
    try:
        secured.wait_for_agents(1)
        text = log_text(proc)
        assert "Agent using credential for: agent" in text
        assert SECRET not in text
    finally:
        proc.stop()


def test_an_agent_without_a_credential_is_refused_and_keeps_retrying(
    secured: SimCluster,
) -> None:
    # src/master/master.cpp registerSlave: "Refusing registration of agent ... because it is
    # not authenticated" (the message is dropped); the agent keeps retrying with back-off
    # (Slave::doReliableRegistration) and never registers.
    proc, _ = agent(secured, "node-b")
    proc.start()
    try:
        secured.wait_for(
            lambda: log_text(proc).count("Authentication failed") >= 2,
            what="two refused registrations",
        )
        assert proc.running
        assert secured.metrics()["master/slaves_active"] == 0.0
    finally:
        proc.stop()


def test_an_agent_whose_credential_is_refused_exits(secured: SimCluster, tmp_path: Path) -> None:
    # src/slave/slave.cpp Slave::_authenticate: "For refused authentication, we exit instead
    # of doing a shutdown to keep possibly active executors running": EXIT(EXIT_FAILURE)
    # "Master ... refused authentication". The secret is never logged.
    wrong = "not-the-secret"
    credential = _credential(tmp_path / "credential.json", "agent", wrong)
    proc, _ = agent(secured, "node-c", f"--credential={credential}")
    proc.start()
    secured.wait_for(lambda: not proc.running, 60, "the agent to exit")
    assert proc.returncode == 1
    text = log_text(proc)
    assert "Authentication failed" in text and "refused authentication" in text
    assert wrong not in text and SECRET not in text
    assert secured.metrics()["master/slaves_active"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "Empty credential file"),
        (f"agent {SECRET}\n", "Invalid json format"),  # 1.11 readCredential reads JSON only
        ('{"secret": "x"}', "Failed to parse credential"),
    ],
)
def test_an_agent_exits_on_an_unusable_credential_file(
    tmp_path: Path, content: str, message: str
) -> None:
    # src/credentials/credentials.hpp readCredential; src/slave/slave.cpp Slave::initialize:
    # EXIT(EXIT_FAILURE) "<error> (see --credential flag)".
    path = tmp_path / "credential"
    path.write_text(content)
    argv = ["agent", "--zk=zk://127.0.0.1:1/mesos", f"--work_dir={tmp_path / 'w'}"]
    done = subprocess.run(
        [sys.executable, "-m", "sim", *argv, f"--credential={path}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert message in done.stderr and "(see --credential flag)" in done.stderr
    assert SECRET not in done.stderr
