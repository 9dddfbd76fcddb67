"""The operator's ZooKeeper client certificate, for managed ensembles with
spec.zookeeper.tls (docs/security.md, "ZooKeeper TLS").

A directory in cert-manager's form (`tls.crt`, `tls.key`, `ca.crt`), mounted from a Secret
of the operator's namespace: `--zookeeper-client-tls-dir`, else
$ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR, else the default mount when it holds a `ca.crt`
(k8s/base mounts the Secret `orchestrator-zookeeper-client-tls` there, optional). `ca.crt`
verifies the ensembles' servers (the same issuer signs the ensembles' certificates and the
operator's), so the operator reads no Secret of the clusters for it. The files are read
again for each new connection after they change (a renewed certificate needs no restart).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from orchestrator_operator.common.tls import CA, ReloadingTls, zk_client_tls

log = logging.getLogger(__name__)

DEFAULT_DIR = "/etc/orchestrator/zookeeper-client-tls"
DIR_ENV = "ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR"


def load_client_tls(path: str | None) -> ReloadingTls | None:
    """The client TLS from ``path``, else $ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR, else the
    default mount if it has a ``ca.crt``; None when there is none (ensembles with
    spec.zookeeper.tls then report that in their status). TlsError when a directory given
    by the flag or the variable does not load."""
    given = path or os.environ.get(DIR_ENV)
    if not given and not (Path(DEFAULT_DIR) / CA).is_file():
        log.info("ZooKeeper client TLS: none (no %s, %s unset)", DEFAULT_DIR, DIR_ENV)
        return None
    directory = Path(given or DEFAULT_DIR)
    tls = zk_client_tls(directory)
    own = "with" if tls.files.cert is not None else "without"
    log.info("ZooKeeper client TLS: from %s (%s a client certificate)", directory, own)
    return tls
