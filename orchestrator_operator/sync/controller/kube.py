"""The sync controller's Kubernetes adapter: the two calls it makes on ZkMigrations (list
them, merge-patch ``status.sync`` on the status subresource) and the reporter that writes a
migration's ``status.sync`` through them, logging rather than raising when the write fails
(the next report retries)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.models.base import API_GROUP, API_VERSION
from orchestrator_operator.sync.controller.status import Key

log = logging.getLogger("orchestrator.zk_sync.controller")

API = f"{API_GROUP}/{API_VERSION}"
KIND = "ZkMigration"

StatusDoc = dict[str, Any]
Reporter = Callable[[Key, StatusDoc], None]


class MigrationApi(Protocol):
    def list_migrations(self, namespace: str | None) -> list[dict[str, Any]]: ...

    def patch_sync(self, namespace: str, name: str, sync: StatusDoc) -> None: ...


class ZkMigrationApi(KubeApi):
    """The operator's API client (kube_api.py) with the two calls the controller makes."""

    def list_migrations(self, namespace: str | None) -> list[dict[str, Any]]:
        return self.list(API, KIND, namespace)

    def patch_sync(self, namespace: str, name: str, sync: StatusDoc) -> None:
        """Merge patch of ``status.sync`` only, on the status subresource."""
        self.merge_patch(API, KIND, namespace, name, {"status": {"sync": sync}}, "status")


def reporter_for(api: MigrationApi) -> Reporter:
    def report(key: Key, sync: StatusDoc) -> None:
        namespace, name = key
        try:
            api.patch_sync(namespace, name, sync)
        except ApiError as exc:
            if exc.status == 404:
                log.debug("%s/%s is gone; status not written", namespace, name)
            else:
                log.warning("cannot write status.sync of %s/%s: %s", namespace, name, exc)
        except Exception as exc:  # network trouble: the next report retries
            log.warning("cannot write status.sync of %s/%s: %s", namespace, name, exc)

    return report
