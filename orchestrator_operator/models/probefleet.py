"""ProbeFleet: Scope-like monitoring: a probe on every node and an app that merges reports."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from orchestrator_operator.models.base import (
    Cidr,
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


LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{LABEL_NAME}$")
LabelKey = Annotated[str, Field(min_length=1, max_length=316, pattern=LABEL_KEY.pattern)]
LabelValue = Annotated[str, Field(max_length=63, pattern=rf"^({LABEL_NAME})?$")]


def _label_keys(labels: dict[str, str]) -> dict[str, str]:
    """A CRD schema cannot constrain a map's keys (the API server refuses propertyNames), so
    the operator checks them as Kubernetes checks label keys, and says which one is wrong."""
    for key in labels:
        if not LABEL_KEY.match(key):
            raise ValueError(f"{key!r} is not a label key ([prefix/]name, name at most 63)")
    return labels


Labels = Annotated[dict[str, LabelValue], Field(max_length=64), AfterValidator(_label_keys)]


class LabelSelectorRequirement(Model):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: Annotated[list[LabelValue], Field(max_length=64)] = Field(default_factory=list)


class LabelSelector(Model):
    """A Kubernetes label selector; empty selects everything (every pod of the fleet's
    namespace as a podSelector, every namespace as a namespaceSelector)."""

    match_labels: Labels = Field(default_factory=dict)
    match_expressions: Annotated[list[LabelSelectorRequirement], Field(max_length=16)] = Field(
        default_factory=list
    )


class IpBlock(Model):
    cidr: Cidr
    except_: Annotated[list[Cidr], Field(max_length=64)] = Field(
        default_factory=list, alias="except"
    )


PEER_MESSAGE = (
    "an allowFrom entry is either an ipBlock or a namespaceSelector and/or podSelector"
    " (as in a NetworkPolicy peer)"
)


class NetworkPeer(Model):
    """Who may reach the app: as a NetworkPolicy's `from` peer. podSelector alone: those pods
    of the fleet's namespace; namespaceSelector alone: every pod of those namespaces; both:
    those pods in those namespaces; ipBlock: addresses (outside the pod network, as the CNI
    sees them)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.ipBlock) != (has(self.namespaceSelector) || has(self.podSelector))",
                    PEER_MESSAGE,
                )
            ]
        }
    )

    namespace_selector: LabelSelector | None = None
    pod_selector: LabelSelector | None = None
    ip_block: IpBlock | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkPeer:
        selectors = self.namespace_selector is not None or self.pod_selector is not None
        if (self.ip_block is not None) == selectors:
            raise ValueError(PEER_MESSAGE)
        return self


class AppNetworkPolicy(Model):
    """The app's Ingress NetworkPolicy (builders/probefleet.py `app_network_policy`;
    docs/security.md "NetworkPolicies"): its port from the probes (the nodes' addresses), the
    operator's namespace, Prometheus' namespaces (/metrics is on the same port) and
    `allowFrom`, nothing else."""

    enabled: bool = Field(
        default=True,
        description="Make it (default). false: none, and one made earlier is deleted.",
    )
    node_cidrs: Annotated[list[Cidr], Field(max_length=64)] = Field(
        default_factory=list,
        description="The nodes' addresses: the probes use the node's network, so their reports"
        " come from these; empty: any address outside the pod network as the CNI tells it"
        " (0.0.0.0/0, ::/0), which some CNIs (Calico) also match for pods.",
    )
    operator_namespace: ObjectName = Field(
        default="orchestrator-system",
        description="The operator's namespace: it reads the app's /healthz for the status.",
    )
    monitoring_namespace_labels: Labels = Field(
        default={"orchestrator.dev/monitoring": "true"},
        description="Labels of the namespaces Prometheus scrapes /metrics from (the app's"
        " port); empty: no such rule.",
    )
    allow_from: Annotated[list[NetworkPeer], Field(max_length=32)] | None = Field(
        default=None,
        description="Who else reaches the UI and API (an ingress controller's namespace, the"
        " users' pods). Unset: the pods of the fleet's own namespace; []: no one else.",
    )


class AppSpec(Model):
    image: ImageName = "ghcr.io/orchestrator-dev/orchestrator"
    version: ImageVersion = "0.1.0"
    digest: ImageDigest | None = None
    replicas: Annotated[int, Field(ge=1, le=5)] = Field(default=1, json_schema_extra={"default": 1})
    resources: ResourceRequirements | None = None
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: Annotated[int, Field(ge=1, le=65535)] = 4040
    tls: AppTls | None = None
    network_policy: AppNetworkPolicy = Field(
        default_factory=AppNetworkPolicy, json_schema_extra={"default": {}}
    )
    metrics_auth: bool = Field(
        default=True,
        description="/metrics answers only a bearer token allowed `get` on the non-resource"
        " URL /metrics (a SubjectAccessReview; Prometheus' ServiceAccount holds it where it"
        " scrapes the API server and kubelets): scrape with its own token. false: open to"
        " whom the NetworkPolicy admits (counts only).",
    )


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
