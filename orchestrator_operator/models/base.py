"""Shared building blocks of the custom resource models.

Field names are camelCase on the wire (Kubernetes convention) and snake_case in Python.
Models forbid unknown fields so a typo fails loudly in the operator as well as in the API
server (which rejects it under kubectl's strict field validation).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

API_GROUP = "orchestrator.dev"
API_VERSION = "v1alpha1"

# A Kubernetes resource quantity that cannot be negative ("500m", "2", "1.5Gi", "512Mi").
QUANTITY_PATTERN = r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)([eE][0-9]+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
# DNS-1123 subdomain, the shape of most Kubernetes object names.
ObjectName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", min_length=1, max_length=253)
]
ZkPath = Annotated[str, Field(pattern=r"^(/[^/\s]+)+$", max_length=512)]
ZkConnectString = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}(,[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5})*(/[^\s]*)?$",
        max_length=1024,
        description="ZooKeeper connect string: host:port[,host:port...][/chroot].",
    ),
]


class Model(BaseModel):
    """Base of every spec model: camelCase aliases, unknown fields forbidden."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class StatusModel(BaseModel):
    """Base of status models: camelCase aliases, tolerant of fields written by newer versions."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


ImageName = Annotated[
    str, Field(min_length=1, max_length=512, pattern=r"^[^\s:@]+(:[0-9]+/[^\s:@]+)?$")
]
ImageVersion = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")]


class ResourceList(Model):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class ResourceRequirements(Model):
    """Kubernetes container requests and limits (only cpu and memory are managed)."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None


class Storage(Model):
    """A PersistentVolumeClaim template."""

    size: Quantity = "10Gi"
    storage_class_name: ObjectName | None = None


class SecretKeyRef(Model):
    """A key of a Secret in the resource's namespace; the operator never copies its value."""

    name: ObjectName
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class Toleration(Model):
    """A Kubernetes pod toleration."""

    key: Annotated[str, Field(max_length=316)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class Component(Model):
    """What every component has: the container image and its version (the image tag)."""

    image: ImageName
    version: ImageVersion
    resources: ResourceRequirements | None = None

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.version}"


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A status condition following the Kubernetes API conventions."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None


def cel_rule(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; fieldPath makes the API server name the field."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def connect_string_problem(connect: str) -> str | None:
    """Why Mesos and Marathon cannot use `connect` as the hosts part of a zk:// URL, or None.

    Their path is appended to it (`zk://<connect><zkPath>`): a trailing `/` gives
    `zk://h:2181//mesos`, a path element ZooKeeper refuses (empty), as does `//` inside."""
    _, slash, chroot = connect.partition("/")
    if slash and (chroot.endswith("/") or not chroot or "//" in chroot):
        return CONNECT_STRING_SLASH_MESSAGE
    return None


CONNECT_STRING_SLASH_MESSAGE = (
    "connectString must not end with '/' nor contain '//': the masters' and Marathon's"
    " zkPath is appended to it, and 'zk:2181/' would give zk://zk:2181//mesos, which"
    " ZooKeeper refuses (write the chroot without a trailing slash: zk:2181/chroot)"
)


class ZooKeeperEndpoint(Model):
    """An existing ensemble, reached by its connect string (the operator does not manage it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!self.connectString.endsWith('/') && !self.connectString.contains('//')",
                    CONNECT_STRING_SLASH_MESSAGE,
                    ".connectString",
                ),
            ]
        }
    )

    connect_string: ZkConnectString
    auth_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding 'user:password' for ZooKeeper digest auth: masters,"
        " agents and Marathon connect with zk://user:password@<connectString>/<path>, built"
        " in the pod from the mounted Secret (never in argv or the pod spec).",
    )

    @field_validator("connect_string")
    @classmethod
    def _no_empty_path_element(cls, value: str) -> str:
        problem = connect_string_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class ResourceStatus(StatusModel):
    """What every kind's status has: a short phase, conditions, the generation they describe."""

    phase: str | None = None  # each kind narrows it to its enum from models/vocabulary.py
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
