"""The sync engine's state files under ``--state-dir``: one per ZkMigration (its merge
base), kept only while it describes the same pair of ensembles, and removed once the
ZkMigration is gone."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from orchestrator_operator.sync.controller.status import Key, SyncSpec, state_file_name

log = logging.getLogger("orchestrator.zk_sync.controller")


def prepare_state_file(state_dir: Path | None, key: Key, spec: SyncSpec) -> Path | None:
    """``<dir>/<namespace>_<name>.json``, kept only while it describes the same pair of
    ensembles: a merge base recorded against another ensemble would read as deletions."""
    if state_dir is None:
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    state = state_dir / state_file_name(key)
    pair_file = state.with_suffix(".pair")
    pair = f"{spec.source} {spec.target}\n"
    try:
        recorded: str | None = pair_file.read_text("utf-8")
    except FileNotFoundError:
        recorded = None
    if recorded != pair:
        if state.exists():
            log.warning("%s describes other ensembles (%s); starting without it", state, recorded)
            state.unlink()
        pair_file.write_text(pair, "utf-8")
    return state


def forget_state(state_dir: Path | None, key: Key) -> None:
    if state_dir is None:
        return
    state = state_dir / state_file_name(key)
    for path in (state, state.with_suffix(".pair"), state.with_name(state.name + ".tmp")):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
