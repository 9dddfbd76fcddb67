"""Marathon's credentials (pure): HTTP Basic auth on its API, and its Mesos framework credential.

HTTP (Marathon 1.11 `HttpConf.scala`, `api/HttpModule.scala`):
- `--http_credentials user:password`, also from the environment: `MESOSPHERE_HTTP_CREDENTIALS`
  (read by `HttpConf`) or `MARATHON_HTTP_CREDENTIALS` (`Main.envToArgs` turns every
  `MARATHON_*` variable into a flag inside the JVM, so neither shows in argv);
- the value must match the Scala regex `(.+):(.+)` in full: greedy, so the user is everything
  before the LAST `:` (a password holding `:` can never log in), and `.` does not match a line
  break (a value with a trailing newline does not match). A value that does not match is
  logged ("The HTTP credentials must be specified in the form of 'user:password'.") and the API
  runs WITHOUT authentication;
- otherwise Jetty's `ConstraintSecurityHandler` with a `BasicAuthenticator` guards `/*`, every
  route (`/ping` too): no or wrong credentials get 401 with `WWW-Authenticate: basic
  realm="<--http_realm>"` (Jetty 9.4 `BasicAuthenticator`, which splits the decoded
  `user:password` at its FIRST `:`).

Framework (`MarathonConf.scala`, `MarathonSchedulerDriver.scala`): with `--mesos_authentication`
(which needs `--mesos_authentication_principal`) the driver authenticates as the principal with
the secret read from `--mesos_authentication_secret_file` byte for byte (no trimming: a trailing
newline is part of the secret).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

MAX_SECRET_FILE = 64 * 1024
DEFAULT_REALM = "Mesosphere"
CREDENTIALS_FORMAT_ERROR = "The HTTP credentials must be specified in the form of 'user:password'."
_CREDENTIALS = re.compile(r"(.+):(.+)")  # Java regex: '.' matches no line terminator


@dataclass(frozen=True)
class HttpCredentials:
    user: str
    password: str = ""

    def __repr__(self) -> str:
        return f"HttpCredentials(user={self.user!r})"


def parse_http_credentials(value: str) -> HttpCredentials | None:
    """`createSecurityHandler`: None (no authentication) when the value does not match."""
    match = _CREDENTIALS.fullmatch(value)
    if match is None or "\r" in value or "\n" in value:
        return None
    return HttpCredentials(match.group(1), match.group(2))


def basic_ok(header: str | None, credentials: HttpCredentials) -> bool:
    """Jetty's `BasicAuthenticator.validateRequest` against the one configured user."""
    if not header:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("latin-1")
    except (binascii.Error, ValueError):
        return False
    user, colon, password = decoded.partition(":")
    if not colon:
        return False
    same_user = hmac.compare_digest(user.encode(), credentials.user.encode())
    same_password = hmac.compare_digest(password.encode(), credentials.password.encode())
    return same_user and same_password


def challenge(realm: str) -> str:
    return f'basic realm="{realm}"'


class SecretFileError(Exception):
    pass


def read_secret_file(path: str) -> str:
    """`ByteString.readFrom(new FileInputStream(secretFile)).toStringUtf8`: the whole file."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise SecretFileError(
            f"Cannot read --mesos_authentication_secret_file '{path}': {exc.strerror}"
        ) from None
    if len(data) > MAX_SECRET_FILE:
        raise SecretFileError(f"--mesos_authentication_secret_file '{path}' is too large")
    return data.decode("utf-8", "replace")


def basic_header(principal: str, secret: str) -> str:
    token = base64.b64encode(f"{principal}:{secret}".encode()).decode()
    return f"Basic {token}"
