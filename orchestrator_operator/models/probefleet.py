"""ProbeFleet: Scope-like monitoring: a probe on every node and an app that merges reports."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from orchestrator_operator.models.base import (
    ImageDigest,
    ImageName,
    ImageVersion,
    Model,
    ResourceRequirements,
    ResourceStatus,
    SecretKeyRef,
    Toleration,
)
from orchestrator_operator.models.vocabulary import WorkloadPhase


class Collectors(Model):
    """Which collectors the probes run."""

    processes: bool = True
    connections: bool = True
    containers: bool = True
    pods: bool = True


class ProbeSpec(Model):
    image: ImageName = "ghcr.io/orchestrator-dev/orchestrator"
    version: ImageVersion = "0.1.0"
    digest: ImageDigest | None = None
    interval_seconds: Annotated[int, Field(ge=1, le=60)] = Field(
        default=3, json_schema_extra={"default": 3}, description="Seconds between reports."
    )
    resources: ResourceRequirements | None = None
    collectors: Collectors = Field(default_factory=Collectors)
    node_selector: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]], Field(max_length=64)
    ] = Field(default_factory=dict)
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)


class AppSpec(Model):
    image: ImageName = "ghcr.io/orchestrator-dev/orchestrator"
    version: ImageVersion = "0.1.0"
    digest: ImageDigest | None = None
    replicas: Annotated[int, Field(ge=1, le=5)] = Field(default=1, json_schema_extra={"default": 1})
    resources: ResourceRequirements | None = None
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: Annotated[int, Field(ge=1, le=65535)] = 4040


class ProbeFleetSpec(Model):
    probe: ProbeSpec = Field(default_factory=ProbeSpec, json_schema_extra={"default": {}})
    app: AppSpec = Field(default_factory=AppSpec, json_schema_extra={"default": {}})
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Probe/app token. Default: a Secret the operator generates."
    )
    read_only_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="A token that may read but not send container controls."
    )


class ProbeFleetStatus(ResourceStatus):
    phase: WorkloadPhase | None = None
    probes_expected: int | None = None
    probes_reporting: int | None = None
    app_ready: bool | None = None
