"""What every program's main needs: logging and secrets from a flag, a file or the env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestrator_operator.common import logs


def read_secret(value: str | None, file: str | None, env: str) -> str | None:
    """A secret from its file (preferred: nothing in argv), its flag, or its variable."""
    if file:
        return Path(file).read_text().strip()
    return value or os.environ.get(env) or None


def require_secret(
    program: str, flag: str, value: str | None, file: str | None, env: str
) -> str | None:
    """`read_secret`, or None after telling the user on stderr how to give it."""
    secret = read_secret(value, file, env)
    if not secret:
        what = flag.removeprefix("--").replace("-", " ")
        print(f"{program}: a {what} is required ({flag}, {flag}-file or ${env})", file=sys.stderr)
    return secret


def configure_logging(verbose: bool, log_format: str = "plain") -> None:
    """Plain or JSON lines on stderr, repeated warnings held back (common/logs.py)."""
    logs.configure_logging(verbose=verbose, log_format=log_format)
