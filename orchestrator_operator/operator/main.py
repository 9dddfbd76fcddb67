"""`orchestrator run`: the Kopf operator with its health and metrics endpoints."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import kopf

from orchestrator_operator.common.health_server import Readiness, start_server
from orchestrator_operator.common.logs import configure_logging
from orchestrator_operator.common.tls import load_zk_client_tls
from orchestrator_operator.models import KINDS

# Importing the kinds' handler modules (and the MarathonApps' autoscaler) and the indexes
# registers them with Kopf.
from orchestrator_operator.operator import (
    indexes,  # noqa: F401
    zk_super_key,
)
from orchestrator_operator.operator.allowlist import ALLOW_ALL, AllowList
from orchestrator_operator.operator.marathonapp import autoscale as _autoscale  # noqa: F401
from orchestrator_operator.operator.marathonapp import handlers as _marathonapp  # noqa: F401
from orchestrator_operator.operator.marathonapp import rollout_metrics as _rollout  # noqa: F401
from orchestrator_operator.operator.mesoscluster import handlers as _mesoscluster  # noqa: F401
from orchestrator_operator.operator.metrics import create_reconcile_series
from orchestrator_operator.operator.probefleet import handlers as _probefleet  # noqa: F401
from orchestrator_operator.operator.settings import OperatorSettings
from orchestrator_operator.operator.zkmigration import handlers as _zkmigration  # noqa: F401
from orchestrator_operator.zk.clients import ZK_POOL

ANNOTATION_PREFIX = "orchestrator.dev"


@dataclass(frozen=True)
class OperatorOptions:
    namespaces: tuple[str, ...]  # () = all namespaces (cluster-wide)
    health_host: str
    health_port: int
    max_workers: int = 32
    # Where the operator asks each ProbeFleet's app how many probes report; a template
    # over {name}, {namespace} and {port}. None: the app's Service DNS name.
    monitoring_app_url: str | None = None
    # ZooKeeper's super key (zk_super_key); None: $ORCHESTRATOR_ZK_SUPER_KEY_FILE or
    # the Secret's mount. No key: managed ensembles are resized without reconfiguration.
    zk_super_key_file: str | None = None
    # The ZooKeeper client certificate directory (common.tls.load_zk_client_tls); None:
    # $ORCHESTRATOR_ZOOKEEPER_CLIENT_TLS_DIR or the Secret's mount, if any.
    zookeeper_client_tls_dir: str | None = None
    # MesosCluster status: refreshed on events (False: a poll every second), and the
    # safety-net interval for a settled cluster.
    status_watches: bool = True
    status_resync_seconds: float = 10.0
    # What custom resources may make the operator run (operator/allowlist.py).
    allowlist: AllowList = ALLOW_ALL


def _missing_crds() -> list[str]:
    """Names of our CRDs that the API server does not have (blocking: runs in a thread)."""
    from kubernetes import client, config  # imported lazily: it is large and used once

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.ApiextensionsV1Api()
    present = {
        crd.metadata.name for crd in api.list_custom_resource_definition().items if crd.metadata
    }
    return [kind.crd_name for kind in KINDS if kind.crd_name not in present]


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    options: OperatorOptions = memo["options"]
    # Progress and the last-handled spec live in annotations: our status schema is strict.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.posting.level = logging.INFO
    # Sync handlers and timers share this pool; one slow ZooKeeper or master must not
    # starve the reconciles of every other cluster.
    settings.execution.max_workers = options.max_workers

    create_reconcile_series([kind.kind for kind in KINDS])
    readiness = Readiness()
    memo["readiness"] = readiness
    memo["health_runner"] = await start_server(readiness, options.health_host, options.health_port)
    missing = await asyncio.to_thread(_missing_crds)
    if missing:
        raise kopf.PermanentError(
            f"CRDs not installed: {', '.join(missing)}; apply crds/ first (kubectl apply -f crds/)"
        )
    readiness.set(True)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    readiness: Readiness | None = memo.get("readiness")
    if readiness:
        readiness.set(False)
    runner = memo.get("health_runner")
    if runner is not None:
        await runner.cleanup()


def run(options: OperatorOptions, log_format: str = "plain", verbose: bool = False) -> int:
    """Raises SuperKeyInvalid (before anything starts) for a key file that cannot serve,
    TlsError for a ZooKeeper client TLS directory that does not load."""
    # Our handler and format rather than kopf.configure's: the same lines as the other
    # programs (common/logs.py), timer successes at DEBUG, repeated warnings held back.
    configure_logging(verbose=verbose, log_format=log_format)
    if not verbose:
        # one line per event, not one per HTTP request to the API server
        logging.getLogger("httpx").setLevel(logging.WARNING)
        # asyncio's own debug chatter, as kopf.configure keeps it out
        logging.getLogger("asyncio").setLevel(logging.WARNING)
    super_key = zk_super_key.load_key(options.zk_super_key_file)
    client_tls = load_zk_client_tls(options.zookeeper_client_tls_dir)
    # the observers take their sessions from the pool (zk/clients.py)
    ZK_POOL.configure_tls(client_tls)
    settings = OperatorSettings(
        zk_super_key=super_key,
        status_watches=options.status_watches,
        status_resync_seconds=options.status_resync_seconds,
        allowlist=options.allowlist,
        zk_client_tls=client_tls,
    )
    logging.getLogger(__name__).info("allow-list: %s", options.allowlist.describe())
    kopf.run(
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        memo=kopf.Memo(options=options, settings=settings),
    )
    return 0
