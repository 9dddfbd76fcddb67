"""ProbeFleet: Scope-like monitoring: a probe on every node and an app that merges reports."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from orchestrator_operator.models.base import (
    ImageDigest,
    ImageName,
    ImageVersion,
    Model,
    ObjectName,
    ResourceRequirements,
    ResourceStatus,
    SecretKeyRef,
    Toleration,
    cel_rule,
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


class AppTls(Model):
    """HTTPS for the app, verified by the probes (docs/security.md, "TLS for the monitoring
    app and its probes"): the app serves `tls.crt`/`tls.key` of `secretName` (a cert-manager
    Secret naming `<fleet>-app.<namespace>.svc`), reloaded on renewal; the probes get only its
    `ca.crt` and verify the app with it. Mutual TLS: the probes present `probeSecretName`'s
    certificate, signed by the same CA."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.clientAuth != 'required' || has(self.probeSecretName)",
                    "app.tls.clientAuth required needs app.tls.probeSecretName: the probes"
                    " must present a certificate",
                    ".probeSecretName",
                )
            ]
        }
    )

    secret_name: ObjectName = Field(
        description="Secret with tls.crt, tls.key and ca.crt (kubernetes.io/tls, as cert-manager"
        " writes it); its certificate names <fleet>-app.<namespace>.svc"
    )
    client_auth: Literal["none", "optional", "required"] = Field(
        default="none",
        description="Client certificates: none, optional (asked, not needed), required (mutual"
        " TLS: a client without one is refused at the handshake)",
    )
    probe_secret_name: ObjectName | None = Field(
        default=None,
        description="Secret with the tls.crt and tls.key the probes present (mutual TLS), signed"
        " by the app Secret's ca.crt",
    )

    @model_validator(mode="after")
    def _probes_can_present(self) -> AppTls:
        if self.client_auth == "required" and self.probe_secret_name is None:
            raise ValueError(
                "app.tls.clientAuth required needs app.tls.probeSecretName: the probes must"
                " present a certificate"
            )
        return self


class AppSpec(Model):
    image: ImageName = "ghcr.io/orchestrator-dev/orchestrator"
    version: ImageVersion = "0.1.0"
    digest: ImageDigest | None = None
    replicas: Annotated[int, Field(ge=1, le=5)] = Field(default=1, json_schema_extra={"default": 1})
    resources: ResourceRequirements | None = None
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: Annotated[int, Field(ge=1, le=65535)] = 4040
    tls: AppTls | None = None


class ProbeFleetSpec(Model):
    probe: ProbeSpec = Field(default_factory=ProbeSpec, json_schema_extra={"default": {}})
    app: AppSpec = Field(default_factory=AppSpec, json_schema_extra={"default": {}})
    # Kept so that manifests written for earlier versions still apply; nothing reads them.
    token_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Deprecated, ignored: probes authenticate with their ServiceAccount tokens "
        "and people through Kubernetes RBAC (docs/security.md, one identity per party).",
    )
    read_only_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Deprecated, ignored, as tokenSecretRef."
    )

    def ignored_fields(self) -> list[str]:
        """The deprecated fields this spec sets (a Warning Event names them)."""
        names = {"tokenSecretRef": self.token_secret_ref,
                 "readOnlyTokenSecretRef": self.read_only_token_secret_ref}  # fmt: skip
        return [name for name, value in names.items() if value is not None]


class ProbeFleetStatus(ResourceStatus):
    phase: WorkloadPhase | None = None
    probes_expected: int | None = None
    probes_reporting: int | None = None
    app_ready: bool | None = None
