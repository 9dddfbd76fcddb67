"""An app's ports (pure): port definitions, service ports, the host ports its tasks ask for,
and the environment Marathon gives each task.

Marathon 1.11 sources followed (read, not copied):
- `api/v2/AppNormalization.scala` (`applyDefaultPortDefinitions`) and `raml/Apps.scala`: an app
  in host networking posted without `portDefinitions` (or `ports`) gets one,
  `{port: 0, name: "default", protocol: "tcp"}`; a PUT without them keeps the app's;
- `core/group/impl/AssignDynamicServiceLogic.scala`: a service port 0 (`portDefinitions[i].port`
  or `portMappings[i].servicePort`) is given one from `--local_port_min`..`--local_port_max`
  (10000..20000, `MarathonConf.scala`): first those the app's previous version had and the new
  one no longer names, then the lowest not used by any app;
- `mesos/TaskBuilder.scala` (`taskContextEnv`, the ports and `HOST`, then the app's `env`, which
  wins): `MESOS_TASK_ID`, `MARATHON_APP_ID`, `MARATHON_APP_VERSION`, `MARATHON_APP_RESOURCE_*`,
  `MARATHON_APP_DOCKER_IMAGE`, `MARATHON_APP_LABELS` and `MARATHON_APP_LABEL_<NAME>`
  (`EnvironmentHelper.labelsToEnvVars`); a host port is the declared port itself only with
  `requirePorts`, else any port of the offer.
"""

from __future__ import annotations

import re
from typing import Any

LOCAL_PORT_MIN = 10000
LOCAL_PORT_MAX = 20000
MAX_PORT_DEFINITIONS = 64
DEFAULT_PORT_DEFINITION: dict[str, Any] = {
    "port": 0,
    "protocol": "tcp",
    "name": "default",
    "labels": {},
}
MAX_LABEL_ENV = 512  # EnvironmentHelper.maxEnvironmentVarLength
LABEL_PREFIX = "MARATHON_APP_LABEL_"


def docker(app: dict[str, Any]) -> dict[str, Any] | None:
    container = app.get("container")
    if isinstance(container, dict) and isinstance(container.get("docker"), dict):
        return dict(container["docker"])
    return None


def network_mode(app: dict[str, Any]) -> str:
    """HOST, BRIDGE or USER (the legacy `container.docker.network`, else `networks[0].mode`)."""
    info = docker(app)
    if info and info.get("network") in ("HOST", "BRIDGE", "USER"):
        return str(info["network"])
    networks = app.get("networks")
    if isinstance(networks, list) and networks and isinstance(networks[0], dict):
        mode = str(networks[0].get("mode", "host")).lower()
        return {"container/bridge": "BRIDGE", "container": "USER"}.get(mode, "HOST")
    return "HOST"


def port_mappings(app: dict[str, Any]) -> list[dict[str, Any]]:
    info = docker(app)
    mappings = (info or {}).get("portMappings")
    container = app.get("container")
    if mappings is None and isinstance(container, dict):
        mappings = container.get("portMappings")
    return [m for m in mappings or [] if isinstance(m, dict)]


def validate(body: dict[str, Any]) -> str | None:
    """A problem with the body's ports (422), or None."""
    legacy = body.get("ports")
    if legacy is not None and (
        not isinstance(legacy, list)
        or len(legacy) > MAX_PORT_DEFINITIONS
        or not all(_port_ok(p) for p in legacy)
    ):
        return f"ports must be a list of at most {MAX_PORT_DEFINITIONS} ports (0..65535)"
    value = body.get("portDefinitions")
    if value is not None:
        if not isinstance(value, list) or len(value) > MAX_PORT_DEFINITIONS:
            return f"portDefinitions must be a list of at most {MAX_PORT_DEFINITIONS} objects"
        for index, item in enumerate(value):
            if not isinstance(item, dict) or not _port_ok(item.get("port", 0)):
                return f"portDefinitions({index}).port must be an integer between 0 and 65535"
    names = [d.get("name") for d in body.get("portDefinitions") or [] if d.get("name")]
    if len(names) != len(set(names)):
        return "portDefinitions: port names must be unique"
    info = docker(body)
    container = body.get("container")
    for raw in ((info or {}).get("portMappings"), (container or {}).get("portMappings")):
        if raw is not None and (
            not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw)
        ):
            return "portMappings must be a list of objects"
    args = body.get("args")
    if args is not None and (
        not isinstance(args, list) or not all(isinstance(a, str) for a in args)
    ):
        return "args must be a list of strings"
    env = body.get("env")
    if env is not None and (
        not isinstance(env, dict) or not all(isinstance(v, str | dict) for v in env.values())
    ):
        return "env must be an object of strings (or secret references)"
    labels = body.get("labels")
    if labels is not None and (
        not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values())
    ):
        return "labels must be an object of strings"
    mappings = port_mappings(body)
    if len(mappings) > MAX_PORT_DEFINITIONS:
        return f"portMappings must have at most {MAX_PORT_DEFINITIONS} entries"
    for index, item in enumerate(mappings):
        for key in ("containerPort", "hostPort", "servicePort"):
            if key in item and not _port_ok(item[key]):
                return f"portMappings({index}).{key} must be an integer between 0 and 65535"
    tkgp = body.get("taskKillGracePeriodSeconds")
    if tkgp is not None and (
        not isinstance(tkgp, int | float) or isinstance(tkgp, bool) or tkgp < 0
    ):
        return "taskKillGracePeriodSeconds must be a number >= 0"
    return None


def _port_ok(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


def normalize(app: dict[str, Any], default: bool) -> dict[str, Any]:
    """Port definitions as Marathon stores them; `default`: the body named none (and no
    `ports`), so a host-networking app gets the default one."""
    out = dict(app)
    if network_mode(out) != "HOST":
        out["portDefinitions"] = []
        return out
    definitions = out.get("portDefinitions") or []
    if default:
        definitions = [DEFAULT_PORT_DEFINITION]
    out["portDefinitions"] = [
        {"port": int(d.get("port", 0)), "protocol": str(d.get("protocol", "tcp")), "labels": {}}
        | ({"name": str(d["name"])} if d.get("name") else {})
        | ({"labels": dict(d["labels"])} if isinstance(d.get("labels"), dict) else {})
        for d in definitions
    ]
    return out


def service_ports(app: dict[str, Any]) -> list[int]:
    if network_mode(app) != "HOST" and port_mappings(app):
        return [int(m.get("servicePort", 0)) for m in port_mappings(app)]
    return [int(d.get("port", 0)) for d in app.get("portDefinitions") or []]


def assign_service_ports(
    app: dict[str, Any], previous: dict[str, Any] | None, others: list[dict[str, Any]]
) -> dict[str, Any]:
    """AssignDynamicServiceLogic: each service port 0 gets one (see the module doc). Raises
    ValueError when the range is exhausted."""
    wanted = service_ports(app)
    if 0 not in wanted:
        return app
    used = {p for other in others for p in service_ports(other)} | set(wanted)
    reuse = [
        p
        for p in (service_ports(previous) if previous else [])
        if LOCAL_PORT_MIN <= p <= LOCAL_PORT_MAX and p not in wanted
    ]
    fresh = (p for p in range(LOCAL_PORT_MIN, LOCAL_PORT_MAX + 1) if p not in used)
    assigned: list[int] = []
    for port in wanted:
        if port:
            assigned.append(port)
            continue
        if reuse:
            assigned.append(reuse.pop(0))
            continue
        nxt = next(fresh, None)
        if nxt is None:
            raise ValueError(
                f"All service ports in the range [{LOCAL_PORT_MIN}, {LOCAL_PORT_MAX}] are "
                "already used"
            )
        assigned.append(nxt)
    out = dict(app)
    if network_mode(app) != "HOST" and port_mappings(app):
        mappings = [
            {**m, "servicePort": p} for m, p in zip(port_mappings(app), assigned, strict=True)
        ]
        container = dict(out["container"])
        if isinstance(container.get("docker"), dict) and "portMappings" in container["docker"]:
            container["docker"] = {**container["docker"], "portMappings": mappings}
        else:
            container["portMappings"] = mappings
        out["container"] = container
    else:
        out["portDefinitions"] = [
            {**d, "port": p} for d, p in zip(out["portDefinitions"], assigned, strict=True)
        ]
    return out


def port_requests(app: dict[str, Any]) -> list[dict[str, Any]]:
    """The host ports a task of the app needs (`{name, port, host}`: see sim/tasks.PortRequest)."""
    mode = network_mode(app)
    if mode != "HOST" and port_mappings(app):
        out = []
        for m in port_mappings(app):
            host = m.get("hostPort", 0 if mode == "BRIDGE" else None)
            out.append(
                {"name": m.get("name"), "port": int(m.get("containerPort", 0)), "host": host}
            )
        return out
    require = bool(app.get("requirePorts"))
    return [
        {"name": d.get("name"), "port": int(d["port"]), "host": int(d["port"]) if require else 0}
        for d in app.get("portDefinitions") or []
    ]


def context_env(app: dict[str, Any], task_id: str) -> dict[str, str]:
    """TaskBuilder.taskContextEnv (the ports and HOST are added where the task is placed)."""
    env = {
        "MESOS_TASK_ID": task_id,
        "MARATHON_APP_ID": str(app["id"]),
        "MARATHON_APP_VERSION": str(app["version"]),
        "MARATHON_APP_RESOURCE_CPUS": str(float(app.get("cpus", 0))),
        "MARATHON_APP_RESOURCE_MEM": str(float(app.get("mem", 0))),
        "MARATHON_APP_RESOURCE_DISK": str(float(app.get("disk", 0))),
        "MARATHON_APP_RESOURCE_GPUS": str(int(app.get("gpus", 0))),
    }
    info = docker(app)
    if info and info.get("image"):
        env["MARATHON_APP_DOCKER_IMAGE"] = str(info["image"])
    labels = app.get("labels") if isinstance(app.get("labels"), dict) else {}
    valid = {
        re.sub(r"[^a-zA-Z0-9_]+", "_", k).upper(): str(v)
        for k, v in (labels or {}).items()
        if len(k) < MAX_LABEL_ENV - len(LABEL_PREFIX) and len(str(v)) < MAX_LABEL_ENV
    }
    env["MARATHON_APP_LABELS"] = " ".join(valid)
    env.update({LABEL_PREFIX + k: v for k, v in valid.items()})
    return env


def app_env(app: dict[str, Any]) -> dict[str, str]:
    """The app's own `env` (string values; a `{"secret": ...}` reference needs Marathon's
    secrets plugin, which the sim has not)."""
    env = app.get("env")
    if not isinstance(env, dict):
        return {}
    return {str(k): v for k, v in env.items() if isinstance(v, str)}


def container_info(app: dict[str, Any]) -> dict[str, Any] | None:
    """The app's container as its tasks' ContainerInfo, the docker network made explicit
    (`networks: [{mode: container/bridge}]` is the legacy BRIDGE)."""
    container = app.get("container")
    info = docker(app)
    if not isinstance(container, dict) or info is None:
        return container if isinstance(container, dict) else None
    return {**container, "docker": {**info, "network": network_mode(app)}}


def check_port_indices(app: dict[str, Any]) -> str | None:
    """HealthCheck.scala's validator: a check's portIndex must address a port of the app."""
    count = len(port_requests(app))
    for check in app.get("healthChecks") or []:
        if check.get("protocol") == "COMMAND" or "port" in check:
            continue
        if int(check.get("portIndex", 0)) >= count:
            return (
                "Health check port indices must address an element of the ports array or "
                "container port mappings."
            )
    return None
