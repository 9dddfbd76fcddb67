"""Secrets in the pods of a MesosCluster: mounted as files, never in argv or the pod spec.

ZooKeeper digest credentials (`zookeeper.external.authSecretRef`, `user:password`) go into a
`zk://user:password@hosts/path` URL, which Mesos and Marathon parse themselves. An init
container builds the URLs at pod start from the mounted Secret into files on a memory-backed
emptyDir; the masters and agents read theirs with `--zk=file://...` / `--master=file://...`
(stout reads any flag value given as `file://`), and Marathon's start command exports them as
`MARATHON_ZK` / `MARATHON_MASTER` (Marathon's Main turns `MARATHON_*` variables into options
inside the JVM). So no process's command line holds the password (`/proc/<pid>/cmdline`
is world-readable); the init script's `printf` is a shell builtin, so neither does it.
"""

from __future__ import annotations

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.models.base import SecretKeyRef

ZK_AUTH_DIR = "/etc/orchestrator/zk-auth"
ZK_URL_DIR = "/run/orchestrator/zk"

# ZK_URLS: space-separated `name=hosts/path`; each becomes $ZK_URL_DIR/name holding
# zk://<user:password from $ZK_AUTH_FILE>@hosts/path. `$(cat ...)` drops trailing newlines.
ZK_URL_SCRIPT = """set -eu
umask 077
auth="$(cat "$ZK_AUTH_FILE")"
for entry in $ZK_URLS; do
  printf 'zk://%s@%s' "$auth" "${entry#*=}" > "$ZK_URL_DIR/${entry%%=*}"
done
"""

# Marathon reads --zk and --master from MARATHON_ZK / MARATHON_MASTER (Main.envToArgs);
# "$0" is Marathon's launcher, the container's args follow.
MARATHON_ZK_WRAPPER = (
    'MARATHON_MASTER="$(cat "$ZK_URL_DIR/mesos")"'
    ' && MARATHON_ZK="$(cat "$ZK_URL_DIR/marathon")"'
    " && export MARATHON_MASTER MARATHON_ZK"
    ' && exec "$0" "$@"'
)


def secret_volume(name: str, ref: SecretKeyRef, path: str, mode: int = 0o400) -> Manifest:
    """A volume with one key of a Secret as the file `path`."""
    return {
        "name": name,
        "secret": {
            "secretName": ref.name,
            "items": [{"key": ref.key, "path": path}],
            "defaultMode": mode,
        },
    }


def zk_url_file(name: str) -> str:
    """The `file://` flag value of one URL the init container writes."""
    return f"file://{ZK_URL_DIR}/{name}"


def zk_auth_parts(
    auth: SecretKeyRef, image: str, urls: dict[str, str], mode: int = 0o400
) -> tuple[Manifest, list[Manifest], list[Manifest]]:
    """(init container, volumes, main container mounts) for ZooKeeper credentials: `urls`
    maps a file name to `hosts/path`."""
    mounts: list[Manifest] = [{"name": "zk-url", "mountPath": ZK_URL_DIR, "readOnly": True}]
    init = {
        "name": "zk-url",
        "image": image,
        "command": ["/bin/sh", "-c", ZK_URL_SCRIPT],
        "env": [
            {"name": "ZK_AUTH_FILE", "value": f"{ZK_AUTH_DIR}/auth"},
            {"name": "ZK_URL_DIR", "value": ZK_URL_DIR},
            {"name": "ZK_URLS", "value": " ".join(f"{k}={v}" for k, v in urls.items())},
        ],
        "volumeMounts": [
            {"name": "zk-auth", "mountPath": ZK_AUTH_DIR, "readOnly": True},
            {"name": "zk-url", "mountPath": ZK_URL_DIR},
        ],
    }
    volumes = [
        secret_volume("zk-auth", auth, "auth", mode),
        {"name": "zk-url", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
    return init, volumes, mounts
