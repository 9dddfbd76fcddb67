"""`python -m testenv up --dir D` starts from an emptied D, and only when D is a testenv
directory nobody is using: what makes a second `make run` work after the first one was
stopped or killed."""

from __future__ import annotations

from pathlib import Path

import pytest

from testenv import kube
from testenv.__main__ import claim_dir


def test_an_earlier_runs_leftovers_are_removed(tmp_path: Path) -> None:
    state = tmp_path / ".testenv"
    (state / "etcd" / "member").mkdir(parents=True)
    (state / "ready").write_text("stale")
    (state / "kubeconfig").write_text("server: https://127.0.0.1:1")
    lock = claim_dir(state)
    try:
        assert sorted(p.name for p in state.iterdir()) == ["lock"]
    finally:
        lock.close()


def test_a_directory_in_use_is_refused_and_kept(tmp_path: Path) -> None:
    state = tmp_path / ".testenv"
    first = claim_dir(state)
    (state / "kubeconfig").write_text("in use")
    try:
        with pytest.raises(kube.TestEnvError, match="in use by a running testenv"):
            claim_dir(state)
        assert (state / "kubeconfig").read_text() == "in use"
    finally:
        first.close()
    claim_dir(state).close()  # free again once the first one is gone


def test_a_directory_that_is_not_a_testenv_is_never_emptied(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(kube.TestEnvError, match="not a testenv directory"):
        claim_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
