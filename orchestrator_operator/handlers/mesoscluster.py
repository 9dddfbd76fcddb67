"""Kopf handlers for MESOS_CLUSTER: validate the spec and report it as accepted."""

from __future__ import annotations

from typing import Any

import kopf

from ..models import API_GROUP, API_VERSION, MESOS_CLUSTER
from .common import accept_spec

PENDING_MESSAGE = "spec is valid; reconciliation has not started yet"


@kopf.on.resume(API_GROUP, API_VERSION, "mesosclusters")
@kopf.on.create(API_GROUP, API_VERSION, "mesosclusters")
@kopf.on.update(API_GROUP, API_VERSION, "mesosclusters")
def reconcile(
    spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    accept_spec(MESOS_CLUSTER, spec, status, meta.get("generation"), patch, PENDING_MESSAGE)
