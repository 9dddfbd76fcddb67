"""The operator's ZooKeeper super key: read from a file, one password per cluster, and the
switch it throws."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator_operator.operator import zk_super_key
from orchestrator_operator.operator.settings import OperatorSettings
from orchestrator_operator.operator.zk_super_key import (
    SuperKeyInvalid,
    cluster_password,
    load_key,
    read_key,
)

KEY = b"0123456789abcdef0123456789abcdef"


def test_each_cluster_gets_its_own_stable_password() -> None:
    first = cluster_password(KEY, "prod", "demo")
    assert first == cluster_password(KEY, "prod", "demo")
    assert first != cluster_password(KEY, "prod", "demo2")
    assert first != cluster_password(KEY, "staging", "demo")
    assert first != cluster_password(KEY[::-1], "prod", "demo")
    assert len(first) == 64


def test_a_key_file_is_read_and_turns_scaling_by_reconfig_on(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(KEY + b"\n")
    assert read_key(tmp_path / "key") == KEY
    settings = OperatorSettings(zk_super_key=load_key(str(tmp_path / "key")))
    assert settings.scale_zookeeper_by_reconfig is True
    assert settings.zk_super_password("prod", "demo") == cluster_password(KEY, "prod", "demo")


def test_no_key_file_leaves_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(zk_super_key.KEY_FILE_ENV, str(tmp_path / "absent"))
    settings = OperatorSettings(zk_super_key=load_key(None))
    assert settings.scale_zookeeper_by_reconfig is False
    with pytest.raises(RuntimeError, match="no ZooKeeper super key"):
        settings.zk_super_password("prod", "demo")


def test_a_short_key_is_refused_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"short\n")
    with pytest.raises(SuperKeyInvalid, match=r"has 5 bytes; at least 16 .*urandom"):
        read_key(tmp_path / "key")


def test_the_operator_refuses_to_start_with_a_bad_key(tmp_path: Path) -> None:
    (tmp_path / "key").write_bytes(b"short")
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator_operator.cli", "run",
         "--zk-super-key-file", str(tmp_path / "key")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("orchestrator run: the ZooKeeper super key")
    assert "Traceback" not in result.stderr
