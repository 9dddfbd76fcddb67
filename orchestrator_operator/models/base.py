"""Shared building blocks of the custom resource models.

Field names are camelCase on the wire (Kubernetes convention) and snake_case in Python.
Models forbid unknown fields so a typo fails loudly in the operator as well as in the API
server (which rejects it under kubectl's strict field validation).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
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

# An IPv4 or IPv6 CIDR, as a NetworkPolicy's ipBlock takes it.
Cidr = Annotated[
    str,
    Field(
        pattern=r"^([0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*/[0-9]{1,3})$",
        max_length=49,
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


def cel_rule(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """One `x-kubernetes-validations` entry; fieldPath makes the API server name the field."""
    entry: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


ImageName = Annotated[
    str, Field(min_length=1, max_length=512, pattern=r"^[^\s:@]+(:[0-9]+/[^\s:@]+)?$")
]
ImageVersion = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")]
# An image digest: with it the container runs `image:version@digest`, which the container
# runtime resolves by the digest alone (the tag stays for people and labels), so what runs
# cannot change under the same tag.
ImageDigest = Annotated[
    str,
    Field(
        pattern=r"^sha256:[a-f0-9]{64}$",
        description="Pins the image by its digest (sha256:<64 hex>): the container runs"
        " image:version@digest, so a tag moved in the registry changes nothing.",
    ),
]

# Upper bounds on what a custom resource may ask for, so that a typo or a hostile value
# ("cpu: 1e18", "size: 9Ei") is refused by the API server instead of reaching the
# scheduler or a volume provisioner.
MAX_CPU = "1024"  # cores, per container
MAX_MEMORY = "16Ti"  # per container
MAX_STORAGE = "64Ti"  # per volume
_FACTORS: dict[str, int | str] = {
    "": 1, "m": "0.001", "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}  # fmt: skip
_SUFFIXES = {suffix: Decimal(factor) for suffix, factor in _FACTORS.items()}


def quantity_value(quantity: str) -> Decimal:
    """The value of a Kubernetes quantity matching QUANTITY_PATTERN ("500m" -> 0.5)."""
    number = quantity.rstrip("kMGTPEimn")
    suffix = quantity[len(number) :]
    try:
        if suffix not in _SUFFIXES:  # an exponent: "1e3"
            return Decimal(quantity)
        return Decimal(number) * _SUFFIXES[suffix]
    except InvalidOperation:
        raise ValueError(f"{quantity!r} is not a quantity") from None


def _at_most(field: str, value: str | None, limit: str) -> None:
    if value is not None and quantity_value(value) > quantity_value(limit):
        raise ValueError(f"{field} {value} is more than the most allowed, {limit}")


def _cel_at_most(field: str, limit: str) -> dict[str, Any]:
    return cel_rule(
        f"!has(self.{field}) || quantity(self.{field}).compareTo(quantity('{limit}')) <= 0",
        f"{field} is more than the most allowed, {limit}",
        f".{field}",
    )


class ResourceList(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel_at_most("cpu", MAX_CPU),
                _cel_at_most("memory", MAX_MEMORY),
            ]
        }
    )

    cpu: Quantity | None = None
    memory: Quantity | None = None

    @model_validator(mode="after")
    def _bounded(self) -> ResourceList:
        _at_most("cpu", self.cpu, MAX_CPU)
        _at_most("memory", self.memory, MAX_MEMORY)
        return self


class ResourceRequirements(Model):
    """Kubernetes container requests and limits (only cpu and memory are managed)."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None


class Storage(Model):
    """A PersistentVolumeClaim template."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [_cel_at_most("size", MAX_STORAGE)]}
    )

    size: Quantity = "10Gi"
    storage_class_name: ObjectName | None = None

    @model_validator(mode="after")
    def _bounded(self) -> Storage:
        _at_most("size", self.size, MAX_STORAGE)
        return self


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
    digest: ImageDigest | None = None
    resources: ResourceRequirements | None = None

    @property
    def image_ref(self) -> str:
        return image_ref(self.image, self.version, self.digest)


def image_ref(image: str, version: str, digest: str | None) -> str:
    """`image:version`, or `image:version@digest` when pinned (the runtime pulls by digest)."""
    return f"{image}:{version}@{digest}" if digest else f"{image}:{version}"


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(StatusModel):
    """A status condition following the Kubernetes API conventions."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None


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
