"""Agent and framework authentication, as the Mesos 1.11 master takes it (pure).

Sources: `src/master/flags.cpp` (`--authenticate_agents`, `--authenticate_frameworks`,
`--credentials`), `src/credentials/credentials.hpp` (`credentials::read`: the file is JSON
`{"credentials": [{"principal": ..., "secret": ...}]}`; 1.11 has no text format any more; an
empty file is "no credentials"), `src/master/master.cpp` (`Master::initialize`: a file that
does not parse, or holds no credential, stops the master), `src/authentication/cram_md5/
authenticator.cpp` (without credentials the master starts and refuses every authentication
attempt), and docs/authentication.md. Mesos runs CRAM-MD5 over libprocess messages; the
sim's internal registration requests carry `Authorization: Basic base64(principal:secret)` instead.

An agent or framework that tries to authenticate and fails is refused even when
authentication is not required (Mesos: the authenticatee retries, it never registers
unauthenticated after a failed attempt); one that does not try is refused only when required.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json

from sim.flagfile import flag_path, others_may_access, read_bounded

MAX_FILE = 1024 * 1024


class CredentialsError(Exception):
    """The credentials file cannot be used; the master exits (EXIT_FAILURE)."""


def read_credentials(value: str) -> dict[str, str]:
    """`--credentials` (a path, or `file:///path`): principal -> secret."""
    path = flag_path(value)
    try:
        data = read_bounded(path, MAX_FILE)
    except OSError as exc:
        raise CredentialsError(
            f"Failed to read credentials file '{path}': {exc.strerror} (see --credentials flag)"
        ) from None
    if data is None:
        raise CredentialsError(f"credentials file '{path}' is larger than {MAX_FILE} bytes")
    if not data.strip():
        raise CredentialsError(
            "Credentials file must contain at least one credential (see --credentials flag)"
        )
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CredentialsError(
            f"Invalid json format: {type(exc).__name__} at position "
            f"{getattr(exc, 'pos', getattr(exc, 'start', '?'))} (see --credentials flag)"
        ) from None
    entries = doc.get("credentials") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise CredentialsError(
            "Failed to parse credentials: expected an object with a 'credentials' array "
            "(see --credentials flag)"
        )
    creds: dict[str, str] = {}
    for entry in entries:
        principal = entry.get("principal") if isinstance(entry, dict) else None
        secret = entry.get("secret", "") if isinstance(entry, dict) else None
        if not isinstance(principal, str) or not principal or not isinstance(secret, str):
            raise CredentialsError(
                "Failed to parse credentials: each credential needs a string 'principal' "
                "and 'secret' (see --credentials flag)"
            )
        creds[principal] = secret
    if not creds:
        raise CredentialsError(
            "Credentials file must contain at least one credential (see --credentials flag)"
        )
    return creds


def insecure_permissions(value: str) -> bool:
    """Mesos warns when others may read, write or run the file."""
    return others_may_access(flag_path(value))


def basic_header(principal: str, secret: str) -> str:
    token = base64.b64encode(f"{principal}:{secret}".encode()).decode()
    return f"Basic {token}"


def check(
    header: str | None, credentials: dict[str, str] | None, required: bool
) -> tuple[bool, str, str | None]:
    """(allowed, reason when refused, authenticated principal)."""
    if header is None:
        if required:
            return False, "authentication required but none was attempted", None
        return True, "", None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic" or not token or len(token) > 4096:
        return False, "Authentication failed: unsupported authorization scheme", None
    try:
        principal, colon, secret = base64.b64decode(token, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False, "Authentication failed: malformed credentials", None
    if not colon or not principal:
        return False, "Authentication failed: malformed credentials", None
    if credentials is None:
        return False, "Authentication failed: authentication is disabled on this master", None
    expected = credentials.get(principal)
    if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
        return False, "Authentication failed: invalid principal or secret", None
    return True, "", principal
