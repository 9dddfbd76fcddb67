"""The chaos tests run in their own pytest session, inside a private network and mount
namespace (testenv/faults.py: `enter_private_world`), started by `make chaos` / `make soak`
(ORCHESTRATOR_CHAOS=1). In the ordinary suite (`make test`) this folder is not collected:
moving the whole session into a private network would cut the Docker tests off from their
containers' published ports, and CI runs the chaos subset itself (`.ci/run`: `make chaos`)."""

from __future__ import annotations

import os

import pytest

from testenv.faults import FaultError, enter_private_world

CHAOS = os.environ.get("ORCHESTRATOR_CHAOS") == "1"
collect_ignore_glob = [] if CHAOS else ["*"]


def pytest_configure(config: pytest.Config) -> None:
    if not CHAOS:
        return
    try:
        enter_private_world()
    except FaultError as error:
        raise pytest.UsageError(f"the chaos tests need their own world: {error}") from error
