"""Mesos flag values that name files (stout/flags: a value `file:///path` is read from the
file; `--credential` and `--credentials` take a path or `file:///path`). Reads are bounded;
callers word their own errors and never quote the content."""

from __future__ import annotations

import os
from pathlib import Path


def flag_path(value: str) -> Path:
    return Path(value[len("file://") :] if value.startswith("file://") else value)


def read_bounded(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it holds more than ``limit``; OSError when unreadable."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def others_may_access(path: Path) -> bool:
    """Mesos warns when others may read, write or run a credentials file."""
    try:
        return bool(os.stat(path).st_mode & 0o007)
    except OSError:
        return False
