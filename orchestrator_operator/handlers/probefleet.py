"""Kopf handlers for PROBE_FLEET: validate the spec and report it as accepted."""

from __future__ import annotations

from typing import Any

import kopf

from ..models import API_GROUP, API_VERSION, PROBE_FLEET
from .common import accept_spec

PENDING_MESSAGE = "spec is valid; reconciliation has not started yet"


@kopf.on.resume(API_GROUP, API_VERSION, "probefleets")
@kopf.on.create(API_GROUP, API_VERSION, "probefleets")
@kopf.on.update(API_GROUP, API_VERSION, "probefleets")
def reconcile(
    spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, patch: kopf.Patch, **_: Any
) -> None:
    accept_spec(PROBE_FLEET, spec, status, meta.get("generation"), patch, PENDING_MESSAGE)
