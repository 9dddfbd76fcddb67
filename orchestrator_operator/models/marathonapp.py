"""MarathonApp: one Marathon application of a MesosCluster, from git.

`spec.app` is a Marathon app definition (Marathon 1.11's `AppDefinition`, the fields the
REST API's `/v2/apps` takes, camelCase as there), validated here and by the CRD's CEL rules;
what could break out of the agent is refused with a message saying why (privileged Docker
containers, `docker.parameters`, host-path volumes). `spec.strategy`, `spec.analysis`,
`spec.promote`/`spec.abort` drive blue-green and canary rollouts; `spec.autoscaling` the
built-in autoscaler; `status.rollout` and `status.autoscaling` are written by their code.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from orchestrator_operator.models.base import (
    Model,
    ObjectName,
    ResourceStatus,
    SecretKeyRef,
    StatusModel,
    cel_rule,
)
from orchestrator_operator.models.vocabulary import RolloutPhase, WorkloadPhase

# Marathon's PathId segments (state/PathId.scala `ID_PATH_SEGMENT_PATTERN`): lowercase
# letters, digits, '-' and '.', not starting nor ending with '-' or '.'; '.' and '..' are
# relative references Marathon resolves, which a declarative id must not use.
_SEGMENT = r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?"
APP_ID_PATTERN = rf"^/?{_SEGMENT}(/{_SEGMENT})*$"
APP_ID_MESSAGE = (
    "app.id must be a Marathon path such as /web or /team/web: segments of lowercase letters,"
    " digits, '-' and '.', each starting and ending with a letter or digit"
)
PRIVILEGED_MESSAGE = (
    "app.container.docker.privileged is refused: a privileged container owns the agent's"
    " host (and the Mesos agent with it); the operator never runs one"
)
PARAMETERS_MESSAGE = (
    "app.container.docker.parameters is refused: arbitrary `docker run` options (--privileged,"
    " --pid=host, -v /:/host, --cap-add ...) would bypass every other check"
)
HOST_VOLUME_MESSAGE = (
    "app.container.volumes[].hostPath is refused: a host path mounts the agent's filesystem"
    " into the task; use a persistent volume (persistent.size) instead"
)
VOLUME_KIND_MESSAGE = "app.container.volumes[]: a volume needs persistent.size (a local volume)"
CMD_OR_ARGS_MESSAGE = (
    "app: set cmd or args, not both (Marathon runs cmd through a shell, args as they are)"
)
ARGS_NEED_IMAGE_MESSAGE = (
    "app.args needs a Docker container (app.container.docker.image): without an image"
    " Marathon has nothing to pass the args to; use app.cmd"
)
COMMAND_NEEDED_MESSAGE = "app: set cmd, args or a Docker container image: there is nothing to run"
DOCKER_TYPE_MESSAGE = "app.container.docker is required when app.container.type is DOCKER"
HEALTH_PATH_MESSAGE = (
    "app.healthChecks[]: path is for HTTP, HTTPS and MESOS_HTTP checks, command (value) for"
    " COMMAND checks only, and a COMMAND check needs one"
)
PORT_INDEX_MESSAGE = (
    "app.healthChecks[].portIndex must name one of the app's ports (portDefinitions or"
    " container.docker.portMappings)"
)
CONSTRAINT_MESSAGE = (
    "app.constraints[]: each constraint is [field, operator] or [field, operator, value] with"
    " operator UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER or IS (LIKE, UNLIKE, MAX_PER"
    " and IS need a value)"
)
ENV_NAME_MESSAGE = (
    "app.env: names are letters, digits and '_', not starting with a digit (at most 128 characters)"
)
ENV_VALUE_MESSAGE = (
    'app.env values are strings ("value") or {secretKeyRef: {name, key}} (a key of a Secret'
    " in this namespace labelled orchestrator.dev/marathonapp-env=true)"
)
UPGRADE_MESSAGE = (
    "app.upgradeStrategy: minimumHealthCapacity and maximumOverCapacity are between 0 and 1,"
    " and not both 0 (Marathon could then neither stop an old task nor start a new one)"
)
STRATEGY_MESSAGE = (
    "strategy: blueGreen settings need type blueGreen, canary settings need type canary"
)
CANARY_STEP_MESSAGE = (
    "strategy.canary.steps[]: each step is exactly one of setWeight, pause or analysis"
)
CANARY_ANALYSIS_MESSAGE = (
    "strategy.canary.steps[].analysis needs strategy.canary.analysis (what to measure)"
)
AUTOSCALING_RANGE_MESSAGE = "autoscaling: minInstances must be at most maxInstances"
AUTOSCALING_TARGET_MESSAGE = (
    "autoscaling.target: set exactly one of cpuUtilization, memoryUtilization or requestsPerSecond"
)
AUTOSCALING_STRATEGY_MESSAGE = (
    "autoscaling works with strategy rolling only (a blue-green or canary rollout runs two"
    " apps whose instances its steps set)"
)
ANALYSIS_MESSAGE = (
    "analysis: set at least one of maxErrorRate, maxLatencyP99Milliseconds or prometheus"
)

ENV_LABEL = "orchestrator.dev/marathonapp-env"
ENV_LABEL_VALUE = "true"

AppId = Annotated[str, Field(pattern=APP_ID_PATTERN, min_length=1, max_length=253)]
Label = Annotated[str, Field(max_length=1024)]
LABEL_KEY_MESSAGE = "labels: keys are 1 to 253 characters"


def _label_keys(value: dict[str, str]) -> dict[str, str]:
    if not all(0 < len(key) <= 253 for key in value):
        raise ValueError(LABEL_KEY_MESSAGE)
    return value


Labels = Annotated[dict[str, Label], Field(max_length=64), AfterValidator(_label_keys)]
Seconds = Annotated[int, Field(ge=0, le=86400)]
Fraction = Annotated[float, Field(ge=0, le=1)]
ImageRef = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")]
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvSecret(Model):
    """An env value read from a Secret in the MarathonApp's namespace, which must be
    labelled orchestrator.dev/marathonapp-env=true (the operator reads no other)."""

    secret_key_ref: SecretKeyRef


EnvValue = Annotated[
    Annotated[str, Field(max_length=32768)] | EnvSecret,
    # A string or an object: the CRD keeps the value as written (a structural schema has no
    # unions, and CEL cannot see such a map); the model checks names and values, and the
    # Accepted condition names what is wrong.
    WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True}),
]


class PortMapping(Model):
    container_port: Annotated[int, Field(ge=0, le=65535)] = 0
    host_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        default=None, description="0: a port from the agent's offer (BRIDGE networking)."
    )
    service_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    protocol: Literal["tcp", "udp", "udp,tcp"] = "tcp"
    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=63)] | None = None
    labels: Labels | None = None


class DockerParameter(Model):
    key: Annotated[str, Field(max_length=253)]
    value: Annotated[str, Field(max_length=1024)] = ""


class DockerSpec(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("!has(self.privileged) || !self.privileged", PRIVILEGED_MESSAGE,
                         ".privileged"),
                cel_rule("!has(self.parameters) || size(self.parameters) == 0",
                         PARAMETERS_MESSAGE, ".parameters"),
            ]
        }
    )  # fmt: skip

    image: ImageRef
    network: Literal["BRIDGE", "HOST", "USER"] = "HOST"
    port_mappings: Annotated[list[PortMapping], Field(max_length=64)] | None = None
    force_pull_image: bool = False
    privileged: bool = Field(default=False, description="Refused: must be false.")
    parameters: Annotated[list[DockerParameter], Field(max_length=16)] | None = Field(
        default=None, description="Refused: must be empty."
    )

    @model_validator(mode="after")
    def _nothing_that_owns_the_host(self) -> DockerSpec:
        if self.privileged:
            raise ValueError(PRIVILEGED_MESSAGE)
        if self.parameters:
            raise ValueError(PARAMETERS_MESSAGE)
        return self


class PersistentVolume(Model):
    size: Annotated[int, Field(ge=1, le=1048576)] = Field(description="MiB.")


class Volume(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("!has(self.hostPath)", HOST_VOLUME_MESSAGE, ".hostPath"),
                cel_rule("has(self.persistent)", VOLUME_KIND_MESSAGE, ".persistent"),
            ]
        }
    )

    container_path: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^\s]+$")]
    mode: Literal["RW", "RO"] = "RW"
    host_path: Annotated[str, Field(max_length=512)] | None = Field(
        default=None, description="Refused: host paths are never mounted."
    )
    persistent: PersistentVolume | None = None

    @model_validator(mode="after")
    def _no_host_path(self) -> Volume:
        if self.host_path is not None:
            raise ValueError(HOST_VOLUME_MESSAGE)
        if self.persistent is None:
            raise ValueError(VOLUME_KIND_MESSAGE)
        return self


class Container(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("self.type != 'DOCKER' || has(self.docker)", DOCKER_TYPE_MESSAGE,
                         ".docker"),
            ]
        }
    )  # fmt: skip

    type: Literal["DOCKER", "MESOS"] = "DOCKER"
    docker: DockerSpec | None = None
    volumes: Annotated[list[Volume], Field(max_length=16)] | None = None

    @model_validator(mode="after")
    def _docker_for_docker(self) -> Container:
        if self.type == "DOCKER" and self.docker is None:
            raise ValueError(DOCKER_TYPE_MESSAGE)
        return self


class PortDefinition(Model):
    port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=0, description="The service port; 0: Marathon assigns one (from 10000)."
    )
    protocol: Literal["tcp", "udp", "udp,tcp"] = "tcp"
    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=63)] | None = None
    labels: Labels | None = None


class HealthCommand(Model):
    value: Annotated[str, Field(min_length=1, max_length=4096)]


class HealthCheck(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "(self.protocol == 'COMMAND') == has(self.command)"
                    " && (!has(self.path) || self.protocol in ['HTTP', 'HTTPS', 'MESOS_HTTP',"
                    " 'MESOS_HTTPS'])",
                    HEALTH_PATH_MESSAGE,
                ),
            ]
        }
    )

    protocol: Literal["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"]
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=1024)] | None = None
    port_index: Annotated[int, Field(ge=0, le=63)] | None = None
    command: HealthCommand | None = None
    grace_period_seconds: Seconds = 300
    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 60
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 20
    max_consecutive_failures: Annotated[int, Field(ge=0, le=1000)] = 3

    @model_validator(mode="after")
    def _fields_of_the_protocol(self) -> HealthCheck:
        http = self.protocol in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS")
        if (self.protocol == "COMMAND") != (self.command is not None) or (
            self.path is not None and not http
        ):
            raise ValueError(HEALTH_PATH_MESSAGE)
        return self


class UpgradeStrategy(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.minimumHealthCapacity > 0.0 || self.maximumOverCapacity > 0.0",
                    UPGRADE_MESSAGE,
                ),
            ]
        }
    )

    minimum_health_capacity: Fraction = Field(
        default=0.8, json_schema_extra={"default": 0.8},
        description="Share of instances kept healthy during a rolling replacement.",
    )  # fmt: skip
    maximum_over_capacity: Fraction = Field(
        default=0.2, json_schema_extra={"default": 0.2},
        description="Share of instances started beyond `instances` during the replacement.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _can_move(self) -> UpgradeStrategy:
        if self.minimum_health_capacity == 0 and self.maximum_over_capacity == 0:
            raise ValueError(UPGRADE_MESSAGE)
        return self


class UnreachableStrategy(Model):
    inactive_after_seconds: Seconds = 0
    expunge_after_seconds: Seconds = 0


def _constraint_ok(constraint: list[str]) -> bool:
    if not 2 <= len(constraint) <= 3 or not constraint[0]:
        return False
    operator = constraint[1]
    if operator not in CONSTRAINT_OPERATORS:
        return False
    return len(constraint) == 3 or operator in ("UNIQUE", "CLUSTER", "GROUP_BY")


CONSTRAINT_OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
Constraint = Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=3)]


class MarathonAppDefinition(Model):
    """A Marathon app definition (the fields of Marathon 1.11's /v2/apps the operator manages)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule("!(has(self.cmd) && has(self.args))", CMD_OR_ARGS_MESSAGE, ".args"),
                cel_rule(
                    "!has(self.args) || (has(self.container) && has(self.container.docker))",
                    ARGS_NEED_IMAGE_MESSAGE,
                    ".args",
                ),
                cel_rule(
                    "has(self.cmd) || has(self.args)"
                    " || (has(self.container) && has(self.container.docker))",
                    COMMAND_NEEDED_MESSAGE,
                ),
                cel_rule(
                    "!has(self.constraints) || self.constraints.all(c, c.size() >= 2"
                    " && c[0].size() > 0 && c[1] in ['UNIQUE', 'CLUSTER', 'GROUP_BY', 'LIKE',"
                    " 'UNLIKE', 'MAX_PER', 'IS'] && (c.size() == 3"
                    " || c[1] in ['UNIQUE', 'CLUSTER', 'GROUP_BY']))",
                    CONSTRAINT_MESSAGE,
                    ".constraints",
                ),
                cel_rule(
                    "!has(self.labels) || self.labels.all(k, k.size() > 0 && k.size() <= 253)",
                    LABEL_KEY_MESSAGE,
                    ".labels",
                ),
            ]
        }
    )

    id: AppId = Field(description="Marathon app id, e.g. /web (a leading / is added).")
    cmd: Annotated[str, Field(min_length=1, max_length=32768)] | None = None
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=256)] | None = (
        None
    )
    container: Container | None = None
    cpus: Annotated[float, Field(gt=0, le=1024)] = 1.0
    mem: Annotated[float, Field(ge=0, le=4194304)] = Field(default=128.0, description="MiB.")
    disk: Annotated[float, Field(ge=0, le=1073741824)] = Field(default=0.0, description="MiB.")
    instances: Annotated[int, Field(ge=0, le=10000)] = Field(
        default=1, json_schema_extra={"default": 1}
    )
    env: Annotated[dict[str, EnvValue], Field(max_length=256)] | None = Field(
        default=None,
        description='NAME: "value", or NAME: {secretKeyRef: {name, key}} for a Secret in this'
        " namespace labelled orchestrator.dev/marathonapp-env=true.",
    )
    labels: Labels | None = None
    port_definitions: Annotated[list[PortDefinition], Field(max_length=64)] | None = None
    constraints: Annotated[list[Constraint], Field(max_length=32)] | None = None
    health_checks: Annotated[list[HealthCheck], Field(max_length=8)] | None = None
    upgrade_strategy: UpgradeStrategy = Field(
        default_factory=UpgradeStrategy,
        json_schema_extra={"default": {"minimumHealthCapacity": 0.8, "maximumOverCapacity": 0.2}},
    )
    backoff_seconds: Annotated[float, Field(ge=0, le=3600)] = 1.0
    backoff_factor: Annotated[float, Field(ge=1, le=100)] = 1.15
    max_launch_delay_seconds: Annotated[float, Field(ge=0, le=86400)] = 300.0
    kill_selection: Literal["YOUNGEST_FIRST", "OLDEST_FIRST"] = "YOUNGEST_FIRST"
    unreachable_strategy: UnreachableStrategy | None = None
    task_kill_grace_period_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None

    @field_validator("id")
    @classmethod
    def _absolute(cls, value: str) -> str:
        return value if value.startswith("/") else "/" + value

    @field_validator("env", mode="before")
    @classmethod
    def _env_values(cls, value: Any) -> Any:
        if isinstance(value, dict):
            if not all(isinstance(k, str) and ENV_NAME.match(k) and len(k) <= 128 for k in value):
                raise ValueError(ENV_NAME_MESSAGE)
            for item in value.values():
                plain = isinstance(item, str | EnvSecret)
                if not plain and not (isinstance(item, dict) and set(item) == {"secretKeyRef"}):
                    raise ValueError(ENV_VALUE_MESSAGE)
        return value

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: list[list[str]] | None) -> list[list[str]] | None:
        for constraint in value or []:
            if not _constraint_ok(constraint):
                raise ValueError(CONSTRAINT_MESSAGE)
        return value

    @model_validator(mode="after")
    def _runnable(self) -> MarathonAppDefinition:
        docker = self.container.docker if self.container else None
        if self.cmd is not None and self.args is not None:
            raise ValueError(CMD_OR_ARGS_MESSAGE)
        if self.args is not None and docker is None:
            raise ValueError(ARGS_NEED_IMAGE_MESSAGE)
        if self.cmd is None and self.args is None and docker is None:
            raise ValueError(COMMAND_NEEDED_MESSAGE)
        ports = len(self.port_definitions or []) or len(
            (docker.port_mappings if docker else None) or []
        )
        for check in self.health_checks or []:
            index = check.port_index or 0
            if check.protocol != "COMMAND" and (ports == 0 or index >= ports):
                raise ValueError(PORT_INDEX_MESSAGE)
        return self

    @property
    def app_id(self) -> str:
        return self.id


class BlueGreen(Model):
    rollback_window_seconds: Annotated[int, Field(ge=0, le=86400)] = Field(
        default=300,
        json_schema_extra={"default": 300},
        description="How long the previous version is kept (scaled) after the switch.",
    )


class PrometheusAnalysis(Model):
    address: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=1024)]
    query: Annotated[str, Field(min_length=1, max_length=4096)]
    max_value: float = Field(description="The step fails when the query's value exceeds it.")


class Analysis(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.maxErrorRate) || has(self.maxLatencyP99Milliseconds)"
                    " || has(self.prometheus)",
                    ANALYSIS_MESSAGE,
                ),
            ]
        }
    )

    interval_seconds: Annotated[int, Field(ge=1, le=3600)] = 10
    count: Annotated[int, Field(ge=1, le=100)] = Field(default=3, description="Samples taken.")
    max_error_rate: Fraction | None = Field(
        default=None, description="Highest share of 5xx answers at the load balancer (0..1)."
    )
    max_latency_p99_milliseconds: Annotated[float, Field(gt=0, le=600000)] | None = None
    prometheus: PrometheusAnalysis | None = None

    @model_validator(mode="after")
    def _measures_something(self) -> Analysis:
        if (
            self.max_error_rate is None
            and self.max_latency_p99_milliseconds is None
            and self.prometheus is None
        ):
            raise ValueError(ANALYSIS_MESSAGE)
        return self


class Pause(Model):
    duration_seconds: Annotated[int, Field(ge=0, le=604800)] | None = Field(
        default=None, description="Unset: paused until spec.promote is bumped."
    )


class StepAnalysis(Model):
    """Run the canary's analysis (strategy.canary.analysis) before the next step."""


class CanaryStep(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0)"
                    " + (has(self.analysis) ? 1 : 0) == 1",
                    CANARY_STEP_MESSAGE,
                ),
            ]
        }
    )

    set_weight: Annotated[int, Field(ge=0, le=100)] | None = None
    pause: Pause | None = None
    analysis: StepAnalysis | None = None

    @model_validator(mode="after")
    def _one_thing(self) -> CanaryStep:
        if sum(x is not None for x in (self.set_weight, self.pause, self.analysis)) != 1:
            raise ValueError(CANARY_STEP_MESSAGE)
        return self


class Canary(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.analysis) || !has(self.steps)"
                    " || !self.steps.exists(s, has(s.analysis))",
                    CANARY_ANALYSIS_MESSAGE,
                    ".steps",
                ),
            ]
        }
    )

    steps: Annotated[list[CanaryStep], Field(max_length=32)] = Field(
        default_factory=lambda: [
            CanaryStep(set_weight=w) for w in (10, 25, 50, 75, 100)
        ],
        json_schema_extra={
            "default": [{"setWeight": w} for w in (10, 25, 50, 75, 100)]
        },
    )  # fmt: skip
    analysis: Analysis | None = None

    @model_validator(mode="after")
    def _analysis_defined(self) -> Canary:
        if self.analysis is None and any(s.analysis is not None for s in self.steps):
            raise ValueError(CANARY_ANALYSIS_MESSAGE)
        return self


class Strategy(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "(!has(self.blueGreen) || self.type == 'blueGreen')"
                    " && (!has(self.canary) || self.type == 'canary')",
                    STRATEGY_MESSAGE,
                ),
            ]
        }
    )

    type: Literal["rolling", "blueGreen", "canary"] = "rolling"
    blue_green: BlueGreen | None = None
    canary: Canary | None = None

    @model_validator(mode="after")
    def _settings_of_the_type(self) -> Strategy:
        if (self.blue_green is not None and self.type != "blueGreen") or (
            self.canary is not None and self.type != "canary"
        ):
            raise ValueError(STRATEGY_MESSAGE)
        return self


class AutoscalingTarget(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "(has(self.cpuUtilization) ? 1 : 0) + (has(self.memoryUtilization) ? 1 : 0)"
                    " + (has(self.requestsPerSecond) ? 1 : 0) == 1",
                    AUTOSCALING_TARGET_MESSAGE,
                ),
            ]
        }
    )

    cpu_utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    memory_utilization: Annotated[float, Field(gt=0, le=1)] | None = None
    requests_per_second: Annotated[float, Field(gt=0, le=1e9)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> AutoscalingTarget:
        chosen = (self.cpu_utilization, self.memory_utilization, self.requests_per_second)
        if sum(x is not None for x in chosen) != 1:
            raise ValueError(AUTOSCALING_TARGET_MESSAGE)
        return self


class Autoscaling(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "self.minInstances <= self.maxInstances", AUTOSCALING_RANGE_MESSAGE,
                    ".minInstances",
                ),
            ]
        }
    )  # fmt: skip

    min_instances: Annotated[int, Field(ge=0, le=10000)] = 1
    max_instances: Annotated[int, Field(ge=1, le=10000)]
    target: AutoscalingTarget
    scale_up_cooldown_seconds: Seconds = 30
    scale_down_cooldown_seconds: Seconds = 300
    max_step: Annotated[int, Field(ge=1, le=10000)] = Field(
        default=4, description="Most instances added or removed at once."
    )

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_instances > self.max_instances:
            raise ValueError(AUTOSCALING_RANGE_MESSAGE)
        return self


KUBERNETES_IMAGE_MESSAGE = (
    "kubernetes.image is required when app has no Docker image (app.container.docker.image):"
    " a cmd-only app has no image Kubernetes could run"
)
NODE_SELECTOR_MESSAGE = "kubernetes.nodeSelector: keys are 1 to 253 characters, values at most 63"


def _node_selector(value: dict[str, str]) -> dict[str, str]:
    if not all(0 < len(k) <= 253 and len(v) <= 63 for k, v in value.items()):
        raise ValueError(NODE_SELECTOR_MESSAGE)
    return value


SHIFT_ANALYSIS_MESSAGE = "kubernetes.shift: an analysis step needs kubernetes.shift.analysis"
SHIFT_STRATEGY_MESSAGE = (
    "kubernetes.shift works with strategy.type rolling only (a blue-green or canary rollout"
    " moves the same traffic)"
)


class Shift(Model):
    """The traffic shift from the Marathon tasks to the Kubernetes pods, through the
    cluster's load balancer (the canary's step, pause and analysis model)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "has(self.analysis) || !has(self.steps)"
                    " || !self.steps.exists(s, has(s.analysis))",
                    SHIFT_ANALYSIS_MESSAGE,
                    ".steps",
                ),
            ]
        }
    )

    steps: Annotated[list[CanaryStep], Field(max_length=32)] = Field(
        default_factory=lambda: [
            CanaryStep(set_weight=w) for w in (10, 25, 50, 75, 100)
        ],
        json_schema_extra={
            "default": [{"setWeight": w} for w in (10, 25, 50, 75, 100)]
        },
        description="setWeight: the Kubernetes pods' share in percent; pause; analysis."
        " After the last step the pods have 100 %.",
    )  # fmt: skip
    analysis: Analysis | None = None
    scale_marathon_to_zero: bool = Field(
        default=True, description="Scale the Marathon app to zero once Kubernetes has 100 %."
    )

    @model_validator(mode="after")
    def _analysis_defined(self) -> Shift:
        if self.analysis is None and any(s.analysis is not None for s in self.steps):
            raise ValueError(SHIFT_ANALYSIS_MESSAGE)
        return self


class KubernetesSpec(Model):
    """The app also as a Kubernetes Deployment and Service (the off-ramp, issue 21).

    Built by operator/builders/marathonapp_kubernetes.py from spec.app; these fields only
    say what spec.app cannot (the image of a cmd-only app) or override it."""

    image: ImageRef | None = Field(
        default=None,
        description="The container image; default the app's Docker image (required for a"
        " cmd-only app). Checked against the operator's image allow-list.",
    )
    command: (
        Annotated[list[Annotated[str, Field(max_length=4096)]], Field(min_length=1, max_length=256)]
        | None
    ) = Field(
        default=None,
        description='The container\'s command; default ["sh", "-c", app.cmd], or the image\'s'
        " entrypoint with app.args.",
    )
    replicas: Annotated[int, Field(ge=0, le=10000)] | None = Field(
        default=None, description="Default app.instances."
    )
    node_selector: (
        Annotated[
            dict[str, Annotated[str, Field(max_length=63)]],
            Field(max_length=32),
            AfterValidator(_node_selector),
        ]
        | None
    ) = Field(default=None, description="Merged with what app.constraints translate to.")
    shift: Shift | None = Field(
        default=None,
        description="Move the traffic from Marathon to the Deployment in steps (absent: the"
        " Deployment runs but gets no traffic). docs/offramp.md.",
    )


class MarathonAppSpec(Model):
    """Desired state of one Marathon application."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel_rule(
                    "!has(self.autoscaling) || !has(self.strategy)"
                    " || self.strategy.type == 'rolling'",
                    AUTOSCALING_STRATEGY_MESSAGE,
                    ".autoscaling",
                ),
                cel_rule(
                    "!has(self.kubernetes) || !has(self.kubernetes.shift)"
                    " || !has(self.strategy) || self.strategy.type == 'rolling'",
                    SHIFT_STRATEGY_MESSAGE,
                    ".kubernetes.shift",
                ),
                cel_rule(
                    "!has(self.kubernetes) || has(self.kubernetes.image)"
                    " || (has(self.app.container) && has(self.app.container.docker))",
                    KUBERNETES_IMAGE_MESSAGE,
                    ".kubernetes.image",
                ),
            ]
        }
    )

    cluster: ObjectName = Field(
        description="The MesosCluster (same namespace) whose Marathon runs the app."
    )
    app: MarathonAppDefinition
    strategy: Strategy = Field(default_factory=Strategy, json_schema_extra={"default": {}})
    promote: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Bump to promote the current canary pause."
    )
    abort: bool = Field(default=False, description="true: roll the new version back now.")
    drift: Literal["Revert", "Report"] = Field(
        default="Revert",
        description="A change made in Marathon behind git's back: put back, or only reported.",
    )
    deletion_policy: Literal["Delete", "Orphan"] = Field(
        default="Delete", description="Delete: the app leaves Marathon with the resource."
    )
    autoscaling: Autoscaling | None = None
    kubernetes: KubernetesSpec | None = Field(
        default=None,
        description="Also run the app as a Deployment and Service (absent: nothing in Kubernetes).",
    )

    @model_validator(mode="after")
    def _autoscale_rolling(self) -> MarathonAppSpec:
        if self.autoscaling is not None and self.strategy.type != "rolling":
            raise ValueError(AUTOSCALING_STRATEGY_MESSAGE)
        return self

    @model_validator(mode="after")
    def _shift_rolling(self) -> MarathonAppSpec:
        shift = self.kubernetes.shift if self.kubernetes else None
        if shift is not None and self.strategy.type != "rolling":
            raise ValueError(SHIFT_STRATEGY_MESSAGE)
        return self

    @model_validator(mode="after")
    def _kubernetes_image(self) -> MarathonAppSpec:
        docker = self.app.container.docker if self.app.container else None
        if self.kubernetes is not None and self.kubernetes.image is None and docker is None:
            raise ValueError(KUBERNETES_IMAGE_MESSAGE)
        return self


# --- status -------------------------------------------------------------------------------


class Deployment(StatusModel):
    id: str
    current_step: int = 0
    total_steps: int = 0
    steps: list[str] = Field(
        default_factory=list, description="Each step's actions, e.g. 'ScaleApplication /web'."
    )


class MarathonState(StatusModel):
    """What the leading Marathon reports for the app."""

    app_id: str | None = None
    version: str | None = None
    instances: int | None = None
    staged: int = 0
    running: int = 0
    healthy: int = 0
    unhealthy: int = 0
    relaunches: int = Field(default=0, description="Tasks that failed and were relaunched.")
    flapping: bool = Field(
        default=False, description="Tasks keep failing: Marathon delays their launches."
    )
    deployment: Deployment | None = None
    launch_delay_seconds: float | None = None


class DriftStatus(StatusModel):
    detected: bool = False
    fields: list[str] = Field(default_factory=list)
    last_reverted_at: datetime | None = None


class AnalysisResult(StatusModel):
    step: int
    metric: str
    value: float | None = None
    limit: float | None = None
    result: Literal["Pass", "Fail"]


class AnalysisRun(StatusModel):
    """The analysis step in progress: samples judged, when the next is due, the last result."""

    samples: int = 0
    next_at: str | None = None
    last: str | None = None


class RolloutStatus(StatusModel):
    """A blue-green or canary rollout (written by operator/marathonapp/strategy.py)."""

    strategy: Literal["rolling", "blueGreen", "canary"] | None = None
    phase: RolloutPhase | None = None
    step: int | None = None
    weights: dict[str, int] = Field(default_factory=dict)
    analysis: list[AnalysisResult] = Field(default_factory=list)
    stable_version: str | None = None
    canary_version: str | None = None
    promoted_generation: int | None = None
    message: str | None = None
    # Where the rollout is, so a restarted operator resumes (operator/marathonapp/strategy_plan.py).
    stage: str | None = None
    revision: str | None = Field(default=None, description="Digest of spec.app rolled out.")
    stable_app: str | None = None
    new_app: str | None = None
    previous_app: str | None = None
    started_at: str | None = None
    step_started_at: str | None = None
    weights_at: str | None = None
    switched_at: str | None = None
    analysis_run: AnalysisRun | None = None
    final: str | None = None
    reason: str | None = None
    outcome: str | None = None


class AutoscalingMetric(StatusModel):
    name: str
    value: float | None = None
    target: float | None = None


class AutoscalingStatus(StatusModel):
    """The built-in autoscaler's decision (written by operator/marathonapp/autoscale.py)."""

    desired_instances: int | None = None
    last_scale_at: datetime | None = None
    reason: str | None = None
    metric: AutoscalingMetric | None = None


class KubernetesStatus(StatusModel):
    """The translated Deployment (written by operator/marathonapp/handlers.py)."""

    deployment: str | None = None
    service: str | None = None
    replicas: int = Field(default=0, description="Desired.")
    ready_replicas: int = 0
    updated_replicas: int = 0
    available: bool = False
    conditions: list[dict[str, str]] = Field(
        default_factory=list, description="The Deployment's (type, status, reason, message)."
    )
    message: str | None = Field(
        default=None, description="Why nothing was created (a feature that does not translate)."
    )


class OffRampStatus(StatusModel):
    """The traffic shift to Kubernetes (written by operator/marathonapp/offramp.py)."""

    phase: (
        Literal["NotStarted", "Shifting", "Paused", "Analysing", "Shifted", "RolledBack", "Failed"]
        | None
    ) = None
    step: int | None = None
    kubernetes_weight: int = 0
    marathon_weight: int = 100
    message: str | None = None
    analysis: list[AnalysisResult] = Field(default_factory=list)
    # Where the shift is, so a restarted operator resumes (operator/marathonapp/offramp_plan.py).
    stage: str | None = None
    revision: str | None = Field(default=None, description="Digest of the shift's steps.")
    step_started_at: str | None = None
    weights_at: str | None = None
    promoted_generation: int | None = None
    analysis_run: AnalysisRun | None = None
    marathon_scaled_down: bool = False
    scale_down_unconfirmed: bool = Field(
        default=False,
        description="Marathon was scaled to zero without the load balancer confirming that its"
        " tasks got no requests (it could not be read).",
    )
    reason: str | None = None
    final: str | None = None


class ReadinessFinding(StatusModel):
    feature: str
    severity: Literal["Info", "Review", "Blocker"]
    message: str


class ReadinessStatus(StatusModel):
    """How spec.app translates to Kubernetes and what needs a person
    (operator/marathonapp/readiness.py; `orchestrator marathon plan` says the same)."""

    app_id: str | None = None
    verdict: Literal["Ready", "NeedsReview", "Blocked"] | None = None
    summary: str | None = None
    findings: list[ReadinessFinding] = Field(default_factory=list)


class MarathonAppStatus(ResourceStatus):
    phase: WorkloadPhase | None = None
    marathon: MarathonState | None = None
    drift: DriftStatus | None = None
    rollout: RolloutStatus | None = None
    autoscaling: AutoscalingStatus | None = None
    kubernetes: KubernetesStatus | None = None
    offramp: OffRampStatus | None = None
    readiness: ReadinessStatus | None = None
