"""What the end-to-end tests do over and over: read an object, wait for a state."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from testenv.kube import KubeTestEnv


def get_json(env: KubeTestEnv, *args: str) -> dict[str, Any] | None:
    """`kubectl get ARGS -o json`, or None when it does not exist."""
    result = env.kubectl_run("get", *args, "-o", "json")
    return json.loads(result.stdout) if result.returncode == 0 else None


def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy value of `check()` within `timeout` seconds; else a clear failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")
