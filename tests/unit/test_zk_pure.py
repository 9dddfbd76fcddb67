"""Pure parts of the sync engine: state file, config validation, host strings, paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator_operator.sync.engine import SyncConfig
from orchestrator_operator.sync.state import (
    MAX_SESSIONS,
    ConflictRecord,
    EngineState,
    load_state,
    save_state,
)
from orchestrator_operator.zk.connection import SyncError, validate_hosts
from orchestrator_operator.zk.model import is_under, join, normalize_root, parent_of
from orchestrator_operator.zk.writer import _ancestors


def test_state_round_trip(tmp_path: Path) -> None:
    state = EngineState(base={"/m": "h1"})
    state.remember_session("a", 11)
    state.remember_session("a", 11)
    state.conflicts["/m/x"] = ConflictRecord("/m/x", "both sides changed", "s", "t", 1.0)
    path = tmp_path / "state.json"
    save_state(path, state)
    loaded = load_state(path)
    assert loaded.base == {"/m": "h1"}
    assert loaded.sessions["a"] == [11]
    assert loaded.conflicts["/m/x"].reason == "both sides changed"
    assert not (tmp_path / "state.json.tmp").exists()


def test_state_keeps_the_sessions_to_carry_on_readable_by_its_owner_only(tmp_path: Path) -> None:
    state = EngineState(resume={"a": (0x1234, b"\x00secret\xff"), "b": (7, b"pw")})
    path = tmp_path / "state.json"
    path.with_name("state.json.tmp").write_text("left by an older version")
    path.with_name("state.json.tmp").chmod(0o644)
    save_state(path, state)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_state(path).resume == {"a": (0x1234, b"\x00secret\xff"), "b": (7, b"pw")}
    # a saved session that cannot be read is dropped (a new session is made), not an error
    text = path.read_text().replace('"cHc="', '"not base64!"')
    path.write_text(text)
    assert load_state(path).resume == {"a": (0x1234, b"\x00secret\xff")}


def test_state_keeps_recent_sessions_only() -> None:
    state = EngineState()
    for i in range(1, MAX_SESSIONS + 5):
        state.remember_session("b", i)
    assert len(state.sessions["b"]) == MAX_SESSIONS
    assert state.sessions["b"][-1] == MAX_SESSIONS + 4


def test_missing_state_file_is_empty_and_corrupt_one_is_an_error(tmp_path: Path) -> None:
    assert load_state(tmp_path / "absent.json").base == {}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read sync state file"):
        load_state(bad)


def test_config_normalizes_and_validates_paths() -> None:
    cfg = SyncConfig("h:1", "h:2", ["/mesos/", "/mesos/log", "/marathon"])
    assert cfg.paths == ["/mesos", "/marathon"]
    with pytest.raises(SyncError, match="absolute"):
        SyncConfig("h:1", "h:2", ["mesos"])
    with pytest.raises(SyncError, match="own subtree"):
        SyncConfig("h:1", "h:2", ["/zookeeper/config"])
    with pytest.raises(SyncError, match="--path"):
        SyncConfig("h:1", "h:2", [])


@pytest.mark.parametrize("hosts", ["127.0.0.1:2181", "a:1,b:2,c:3", "a:1,b:2/chroot"])
def test_valid_hosts(hosts: str) -> None:
    assert validate_hosts(hosts, "source") == hosts


@pytest.mark.parametrize("hosts", ["", "   ", "nohost", "a:", ":1", "a:x", "a:1,,b:2"])
def test_invalid_hosts(hosts: str) -> None:
    with pytest.raises(SyncError, match="source"):
        validate_hosts(hosts, "source")


def test_path_helpers() -> None:
    assert join("/", "a") == "/a" and join("/a", "b") == "/a/b"
    assert parent_of("/a/b") == "/a" and parent_of("/a") == "/"
    assert is_under("/a/b", "/a") and is_under("/a", "/a") and not is_under("/ab", "/a")
    assert is_under("/x", "/")
    assert normalize_root("/a/") == "/a" and normalize_root("/") == "/"
    assert _ancestors(["/a/b/c", "/a/d"]) == {"/a/b", "/a", "/"}
    assert _ancestors(["/a"]) == {"/"}
