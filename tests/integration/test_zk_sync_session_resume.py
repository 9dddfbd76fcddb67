"""A sync engine killed and started again carries on its ZooKeeper sessions (issue 20's finding:
two elected masters during a ZkMigration).

The mirror in B of the leading master's `json.info_` node on A is an ephemeral owned by the
engine's session. When a crash-looping engine made a new session each time, the killed
session expired before a new engine had mirrored the node again, B's copy of the group was
briefly without A's leader, and a master contending in B led too. Now the engine saves its
session id and password in its state file (readable by its owner only) and a new engine
resumes the session, so the mirror never vanishes while engines come back within the session
timeout; one gone longer makes a new session and mirrors again.
"""

from __future__ import annotations

import json
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.fixtures import zk_sync as support
from tests.fixtures.zk_sync import EngineProcess, ZkPair, unique_root, wait_until, zk_client

pytestmark = pytest.mark.zookeeper

zk_pair = support.zk_pair
pair = support.pair

SESSION_TIMEOUT = 4.0


class Watch:
    """Polls B's mirror every 50 ms and records each moment it was absent."""

    def __init__(self, client: object, path: str) -> None:
        self.client = client
        self.path = path
        self.absent: list[float] = []
        self.owners: set[int] = set()
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._halt.is_set():
            found = self.client.exists(self.path)  # type: ignore[attr-defined]
            if found is None:
                self.absent.append(time.monotonic())
            else:
                self.owners.add(found.ephemeralOwner)
            self._halt.wait(0.05)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._halt.set()
        self._thread.join(timeout=5)


def _engine(pair: ZkPair, root: str, tmp_path: Path) -> EngineProcess:
    return EngineProcess(
        [
            "--source", pair.a.connect_string,
            "--target", pair.b.connect_string,
            "--path", root,
            "--state-file", str(tmp_path / "state.json"),
            "--metrics-port", "0",
            "--session-timeout", str(SESSION_TIMEOUT),
            "--log-level", "INFO",
        ],
        tmp_path / "engine.log",
    )  # fmt: skip


def test_a_crash_looping_engine_keeps_the_leaders_mirror_and_one_gone_longer_mirrors_again(
    pair: ZkPair, tmp_path: Path
) -> None:
    root = unique_root("resume")
    engine = _engine(pair, root, tmp_path)
    with (
        zk_client(pair.a.connect_string) as leader,
        zk_client(pair.b.connect_string) as cb,
    ):
        leader.create(f"{root}/info", b"", makepath=True)
        node = leader.create(f"{root}/info/json.info_", b'{"leader":1}', ephemeral=True,
                             sequence=True)  # fmt: skip
        engine.start()
        try:
            wait_until(lambda: cb.exists(node) is not None, 60, f"the mirror of {node} in B")
            first_owner = cb.exists(node).ephemeralOwner
            state_file = tmp_path / "state.json"
            assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
            assert json.loads(state_file.read_text())["resume"]["b"][0] == first_owner

            with Watch(cb, node) as watch:
                # a crash loop: killed four times, each time started again a second later
                for _ in range(4):
                    time.sleep(1.0)
                    engine.kill()
                    time.sleep(1.0)
                    engine.start()
                time.sleep(3 * SESSION_TIMEOUT)  # past the timeout of every killed session
                assert engine.alive(), engine.log_tail()
            assert watch.absent == [], (
                f"B's mirror of the leader was gone for {len(watch.absent)} polls"
                f"\n{engine.log_tail()}"
            )
            assert watch.owners == {first_owner}
            assert "carried on session" in engine.log_tail(400)

            # gone longer than the session timeout: the mirror goes with the session, and the
            # next engine makes a new one and mirrors the leader again
            engine.kill()
            wait_until(lambda: cb.exists(node) is None, 4 * SESSION_TIMEOUT, "the mirror gone")
            engine.start()
            wait_until(lambda: cb.exists(node) is not None, 60, "the leader mirrored again")
            assert cb.exists(node).ephemeralOwner != first_owner

            # the sync goes on: the leader's session ends, its mirror goes from B
            leader.delete(node)
            wait_until(lambda: cb.exists(node) is None, 30, "the mirror removed with the leader")
        finally:
            engine.terminate()
