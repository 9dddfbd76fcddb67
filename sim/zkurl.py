"""`zk://[user:password@]host:port[,host:port]/path` URLs, as Mesos and Marathon take them.

Follows Mesos 1.11 `include/mesos/zookeeper/url.hpp` (`URL::parse`): the value is trimmed,
the credentials are everything before the last `@` of the server part and become ZooKeeper
`digest` authentication; a trailing `/` of the path is dropped (`src/zookeeper/group.cpp`).
A flag value `file:///path` is read from that file first (stout `flags/fetch.hpp`), so the
credentials need not appear in argv.

`str(url)` never shows the password (logs, `/master/state` flags); `url.with_secret()` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.flagfile import flag_path, read_bounded

MAX_FLAG_FILE = 64 * 1024
REDACTED = "********"


@dataclass(frozen=True)
class ZkUrl:
    hosts: str
    path: str
    credentials: str | None = field(default=None, repr=False)  # "user:password" (digest)

    @classmethod
    def parse(cls, url: str) -> ZkUrl:
        text = url.strip()
        if not text.startswith("zk://"):
            raise ValueError("not a zk:// URL (expected zk://[user:password@]host:port/path)")
        rest = text[len("zk://") :]
        servers, slash, path = rest.partition("/")
        credentials: str | None = None
        if "@" in servers:
            credentials, _, servers = servers.rpartition("@")
            user, colon, password = credentials.partition(":")
            if not user or not colon or not password:
                raise ValueError("ZooKeeper credentials must be user:password (digest)")
        if not servers:
            raise ValueError(f"no ZooKeeper hosts in zk://{servers}/{path}")
        path = "/" + path.rstrip("/") if slash else "/"
        if path == "/":
            raise ValueError(
                f"a cluster path is required in zk://{servers}/ (e.g. zk://host:2181/mesos)"
            )
        if "//" in path:
            # ZooKeeper refuses a path with an empty element (Mesos fails to create it).
            raise ValueError(f"invalid ZooKeeper path {path!r}: empty path element")
        return cls(hosts=servers, path=path, credentials=credentials)

    @classmethod
    def flag(cls, value: str) -> ZkUrl:
        """A `--zk` flag value: a zk:// URL, or `file:///path` holding one."""
        if value.startswith("file://"):
            path = flag_path(value)
            try:
                data = read_bounded(path, MAX_FLAG_FILE)
            except OSError as exc:
                raise ValueError(f"Error reading file '{path}': {exc.strerror}") from None
            if data is None:
                raise ValueError(f"file '{path}' is larger than {MAX_FLAG_FILE} bytes")
            try:
                return cls.parse(data.decode())
            except UnicodeDecodeError:
                raise ValueError(f"file '{path}' is not UTF-8 text") from None
        return cls.parse(value)

    @property
    def user(self) -> str | None:
        return self.credentials.partition(":")[0] if self.credentials else None

    def with_secret(self) -> str:
        """The URL with its password: only for files and child processes' flag files."""
        auth = f"{self.credentials}@" if self.credentials else ""
        return f"zk://{auth}{self.hosts}{self.path}"

    def __str__(self) -> str:
        auth = f"{self.user}:{REDACTED}@" if self.credentials else ""
        return f"zk://{auth}{self.hosts}{self.path}"
