"""Kopf handlers, one module per kind; importing this package registers them all."""

from . import mesoscluster, probefleet, workloads, zkmigration

__all__ = ["mesoscluster", "probefleet", "workloads", "zkmigration"]
