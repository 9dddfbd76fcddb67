"""The operator's key for ZooKeeper's super user, which dynamic reconfiguration requires.

One secret key for the operator (a file, mounted from the Secret `orchestrator-zk-super-key`
of its own namespace by the kubelet, so the operator needs no right to read Secrets); each
managed ensemble's super password is derived from it and the cluster's namespace and name.
The servers only ever see the password's digest (the cluster's `<name>-zookeeper-super`
Secret, which the operator creates and never reads). Without a key, scaling a managed
ensemble by reconfiguration is off and its StatefulSet is resized directly.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_KEY_FILE = "/etc/orchestrator/zk-super-key/key"
KEY_FILE_ENV = "ORCHESTRATOR_ZK_SUPER_KEY_FILE"
MIN_KEY_BYTES = 16


class SuperKeyInvalid(ValueError):
    """A key file that exists but cannot serve; the message is for the user."""


def read_key(path: Path) -> bytes | None:
    """The key in ``path`` (surrounding whitespace dropped); None when there is no file."""
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SuperKeyInvalid(f"cannot read the ZooKeeper super key {path}: {error}") from None
    if len(key) < MIN_KEY_BYTES:
        raise SuperKeyInvalid(
            f"the ZooKeeper super key {path} has {len(key)} bytes; at least {MIN_KEY_BYTES}"
            " are needed (e.g. `head -c 32 /dev/urandom | base64`)"
        )
    return key


def cluster_password(key: bytes, namespace: str, name: str) -> str:
    """The super password of one MesosCluster's managed ensemble."""
    return hmac.new(key, f"zookeeper-super/{namespace}/{name}".encode(), hashlib.sha256).hexdigest()


def load_key(path: str | None) -> bytes | None:
    """The key from ``path``, else $ORCHESTRATOR_ZK_SUPER_KEY_FILE, else the default mount;
    None when there is none (scaling by reconfiguration stays off)."""
    chosen = Path(path or os.environ.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE)
    key = read_key(chosen)
    if key is None:
        log.info("ZooKeeper scaling by reconfiguration: off (no key at %s)", chosen)
    else:
        log.info("ZooKeeper scaling by reconfiguration: on (key from %s)", chosen)
    return key
