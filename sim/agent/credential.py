"""The agent's `--credential` file, as Mesos 1.11 reads it (`src/credentials/credentials.hpp`
`readCredential`, `src/slave/slave.cpp` `Slave::initialize`): a path or `file:///path` to a
JSON `{"principal": "...", "secret": "..."}`. An unreadable, empty or malformed file stops
the agent (EXIT_FAILURE, "... (see --credential flag)"); a file others may read is used with
a warning. The secret is never logged."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sim.flagfile import flag_path, others_may_access, read_bounded

log = logging.getLogger("sim.agent")

MAX_FILE = 64 * 1024


class CredentialError(Exception):
    """The agent cannot use its credential file: it exits (EXIT_FAILURE)."""


@dataclass(frozen=True)
class Credential:
    principal: str
    secret: str

    def __repr__(self) -> str:  # never the secret, whatever prints it
        return f"Credential(principal={self.principal!r})"


def read_credential(value: str) -> Credential:
    path = flag_path(value)
    log.info("Loading credential for authentication from '%s'", path)
    try:
        data = read_bounded(path, MAX_FILE)
    except OSError as exc:
        raise CredentialError(
            f"Failed to read credential file '{path}': {exc.strerror} (see --credential flag)"
        ) from None
    if data is None:
        raise CredentialError(
            f"Credential file '{path}' is larger than {MAX_FILE} bytes (see --credential flag)"
        )
    if not data:
        raise CredentialError(f"Empty credential file '{path}' (see --credential flag)")
    if others_may_access(path):
        log.warning(
            "Permissions on credential file '%s' are too open; it is recommended that "
            "your credential file is NOT accessible by others",
            path,
        )
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        # Not the parser's message: it may quote the file's content.
        raise CredentialError(
            f"Invalid json format: {type(exc).__name__} (see --credential flag)"
        ) from None
    principal = doc.get("principal") if isinstance(doc, dict) else None
    secret = doc.get("secret", "") if isinstance(doc, dict) else None
    if not isinstance(principal, str) or not principal or not isinstance(secret, str):
        raise CredentialError(
            "Failed to parse credential: expected a JSON object with a string 'principal' "
            "and 'secret' (see --credential flag)"
        )
    return Credential(principal, secret)
