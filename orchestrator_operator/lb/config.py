"""From Marathon's apps, tasks and the traffic weights to HAProxy's frontends, backends and
servers (pure: no I/O).

The rules follow marathon-lb's label conventions (its `utils.py`/`config.py`, read for the
names only): an app is served when its `HAPROXY_GROUP` label (default `external`) is one of
the LB's groups; its port is `HAPROXY_0_PORT`, else its first service port; `HAPROXY_0_VHOST`
(comma-separated) routes on the Host header of the shared HTTP (and HTTPS) frontend; the apps
sharing a `HAPROXY_DEPLOYMENT_GROUP` form ONE backend on their common port (the blue-green
and canary versions of one service). A task is a server when it is `TASK_RUNNING` and healthy
(every health check alive, or the app has none); a `TASK_KILLING` task is drained at once.

Every backend has a fixed number of server slots (`srv1..srvN`, a power of two, at least
`MIN_SLOTS`), so servers come and go and change weight through HAProxy's runtime API;
only a change of the frontends, backends or slot counts (`Layout`) needs a new config and a
reload. A task keeps its slot while it lives (`assign_slots`), so a re-sync never moves a
live server.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator_operator.lb.weights import DEFAULT_WEIGHT, KUBERNETES_PREFIX, server_weights

# The request log HAProxy sends the lb (lb/requestlog.py): backend, server, status, Tr, Tt.
LOG_FORMAT = "lbreq %b %s %ST %Tr %Tt"
GROUP_LABEL = "HAPROXY_GROUP"
PORT_LABEL = "HAPROXY_0_PORT"
VHOST_LABEL = "HAPROXY_0_VHOST"
DEPLOYMENT_GROUP_LABEL = "HAPROXY_DEPLOYMENT_GROUP"
DEFAULT_GROUP = "external"
RUNNING, KILLING = "TASK_RUNNING", "TASK_KILLING"
MIN_SLOTS, MAX_SLOTS = 8, 1024
MAX_VHOSTS = 16
MAX_NAME = 100
# Server states as the runtime API names them (`set server <b>/<s> state ...`).
READY, DRAIN, MAINT = "ready", "drain", "maint"
_NAME = re.compile(r"[^A-Za-z0-9_.-]")
_VHOST = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


class ConfigError(ValueError):
    """An app whose labels cannot be served (the LB logs it and leaves the app out)."""


@dataclass(frozen=True)
class Server:
    """One task as a server: where it listens, its weight, ready or draining."""

    task_id: str
    app_id: str
    host: str
    port: int
    weight: int
    state: str  # READY | DRAIN


@dataclass(frozen=True)
class Backend:
    name: str
    port: int  # the service port: its own frontend binds it
    vhosts: tuple[str, ...]
    apps: tuple[str, ...]  # the Marathon app ids behind it (several in a deployment group)
    deployment_group: str | None
    servers: tuple[Server, ...]


@dataclass(frozen=True)
class Options:
    """How the LB listens; everything the config needs besides Marathon's state."""

    groups: tuple[str, ...] = (DEFAULT_GROUP,)
    bind_address: str = "0.0.0.0"
    http_port: int | None = 80  # the vhost frontend; None: none
    https_port: int | None = None  # with `tls_certificate`
    tls_certificate: str | None = None  # a PEM with the certificate chain and the key
    stats_port: int = 9090  # HAProxy's Prometheus exporter (/metrics) and stats (/stats;csv)
    admin_socket: str = "/var/run/lb/admin.sock"
    connect_timeout_ms: int = 2000
    client_timeout_ms: int = 30000
    server_timeout_ms: int = 30000
    http_request_timeout_ms: int = 10000
    maxconn: int | None = None  # None: HAProxy's own, from the file descriptor limit
    log_target: str | None = None  # host:port of the lb's request-log receiver (UDP)


@dataclass(frozen=True)
class Layout:
    """What a config reload changes: frontends, backends and their slot counts, TLS."""

    backends: tuple[tuple[str, int, tuple[str, ...], int], ...]  # (name, port, vhosts, slots)
    tls_digest: str | None = None

    def slots(self, backend: str) -> int:
        return next((b[3] for b in self.backends if b[0] == backend), 0)


@dataclass(frozen=True)
class Plan:
    backends: tuple[Backend, ...]
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlotState:
    """What one server slot should be: `MAINT` (empty) or a task's address, weight, state."""

    task_id: str | None
    host: str = "127.0.0.1"
    port: int = 1
    weight: int = 1
    state: str = MAINT


@dataclass
class Assignment:
    """Backend -> task id -> slot number (1-based); kept between syncs."""

    slots: dict[str, dict[str, int]] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """An HAProxy identifier from an app id or group: `/shop/web` -> `shop_web`."""
    name = _NAME.sub("_", text.strip("/")) or "root"
    return name[:MAX_NAME]


def _port(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 1 <= port <= 65535 else None


def app_port(app: Mapping[str, Any]) -> int:
    """`HAPROXY_0_PORT`, else the first service port (Marathon assigns one from 10000)."""
    labels = app.get("labels") or {}
    if PORT_LABEL in labels:
        port = _port(labels[PORT_LABEL])
        if port is None:
            raise ConfigError(
                f"{app.get('id')}: label {PORT_LABEL}={labels[PORT_LABEL]!r} is not a port"
                " (1-65535)"
            )
        return port
    for candidates in (
        app.get("portDefinitions") or [],
        ((app.get("container") or {}).get("portMappings") or []),
        ((app.get("container") or {}).get("docker") or {}).get("portMappings") or [],
    ):
        for definition in candidates:
            port = _port(definition.get("servicePort") or definition.get("port"))
            if port is not None:
                return port
    tasks = app.get("tasks") or []
    for task in tasks:
        for service_port in task.get("servicePorts") or []:
            port = _port(service_port)
            if port is not None:
                return port
    raise ConfigError(f"{app.get('id')}: no {PORT_LABEL} label and no service port")


def app_vhosts(app: Mapping[str, Any]) -> tuple[str, ...]:
    raw = str((app.get("labels") or {}).get(VHOST_LABEL, "")).strip()
    if not raw:
        return ()
    hosts = tuple(h.strip().lower() for h in raw.split(",") if h.strip())
    if len(hosts) > MAX_VHOSTS:
        raise ConfigError(f"{app.get('id')}: more than {MAX_VHOSTS} names in {VHOST_LABEL}")
    for host in hosts:
        if len(host) > 253 or not _VHOST.match(host):
            raise ConfigError(f"{app.get('id')}: {VHOST_LABEL} {host!r} is not a host name")
    return hosts


def app_group(app: Mapping[str, Any]) -> str:
    return str((app.get("labels") or {}).get(GROUP_LABEL) or DEFAULT_GROUP)


def task_healthy(app: Mapping[str, Any], task: Mapping[str, Any], was_ready: bool = False) -> bool:
    """Marathon's healthy: every health check has a result and all are alive (an app
    without health checks: running is enough). A task with no result at all that was a
    ready server stays one: a new Marathon leader knows no health results until its own
    checks have run (health is kept in the leader's memory), and that is not a failure."""
    checks = app.get("healthChecks") or []
    if not checks:
        return True
    results = task.get("healthCheckResults") or []
    unknown = all(not r.get("lastSuccess") and not r.get("lastFailure") for r in results)
    if was_ready and unknown:  # no result yet, or only placeholders that never ran
        return True
    return len(results) >= len(checks) and all(bool(r.get("alive")) for r in results)


def task_address(task: Mapping[str, Any], app: Mapping[str, Any]) -> tuple[str, int] | None:
    """(host, first port) a task serves on; None without a port."""
    ports = task.get("ports") or []
    port = _port(ports[0]) if ports else None
    host = str(task.get("host") or "")
    if port is None or not host:
        return None
    return host, port


def build_plan(
    apps: Iterable[Mapping[str, Any]],
    weights: Mapping[str, Mapping[str, int]],
    groups: Sequence[str],
    reserved: Mapping[int, str] | None = None,
    ready_before: frozenset[str] = frozenset(),
    kubernetes: Mapping[str, Sequence[Server]] | None = None,
) -> Plan:
    """The backends and their servers. `weights`: deployment group (or a lone app's id) ->
    app id -> share (the traffic ConfigMaps); a group without weights spreads requests
    evenly over its servers. `kubernetes`: the same key -> the Kubernetes endpoints
    (lb/endpoints.py) that serve beside the Marathon tasks, their app id `kubernetes:<svc>`.
    `reserved`: the LB's own ports (port -> what) no app may take: HAProxy would refuse the
    whole config. `ready_before`: the task ids that were ready servers (`task_healthy`)."""
    problems: list[str] = []
    reserved = reserved or {}
    by_key: dict[str, list[tuple[Mapping[str, Any], int, tuple[str, ...]]]] = {}
    for app in sorted(apps, key=lambda a: str(a.get("id", ""))):
        if app_group(app) not in groups:
            continue
        try:
            port, vhosts = app_port(app), app_vhosts(app)
        except ConfigError as error:
            problems.append(str(error))
            continue
        group = (app.get("labels") or {}).get(DEPLOYMENT_GROUP_LABEL)
        key = f"dg:{group}" if group else f"app:{app.get('id')}"
        by_key.setdefault(key, []).append((app, port, vhosts))

    backends: list[Backend] = []
    used_ports: dict[int, str] = {}
    for key in sorted(by_key):
        members = by_key[key]
        group = key[3:] if key.startswith("dg:") else None
        port = members[0][1]
        for app, other_port, _ in members[1:]:
            if other_port != port:
                problems.append(
                    f"{app.get('id')}: deployment group {group} serves port {port};"
                    f" the app's port {other_port} is ignored"
                )
        name = f"{safe_name(group if group else str(members[0][0].get('id')))}_{port}"
        if port in reserved:
            problems.append(
                f"{', '.join(str(m[0].get('id')) for m in members)}: port {port} is the load"
                f" balancer's {reserved[port]}; left out"
            )
            continue
        if port in used_ports:
            problems.append(
                f"{', '.join(str(m[0].get('id')) for m in members)}: port {port} is already"
                f" served by {used_ports[port]}; left out"
            )
            continue
        used_ports[port] = name
        vhosts = tuple(sorted({h for m in members for h in m[2]}))
        traffic_key = group if group else str(members[0][0].get("id"))
        shares = weights.get(traffic_key) or {}
        extra = list((kubernetes or {}).get(traffic_key) or ())
        servers = _servers([m[0] for m in members], shares, ready_before, extra)
        extra_apps = tuple(sorted({s.app_id for s in extra} | _kubernetes_ids(shares)))
        backends.append(
            Backend(
                name=name,
                port=port,
                vhosts=vhosts,
                apps=tuple(str(m[0].get("id")) for m in members) + extra_apps,
                deployment_group=group,
                servers=tuple(servers),
            )
        )
    return Plan(tuple(backends), tuple(problems))


def _kubernetes_ids(shares: Mapping[str, int]) -> set[str]:
    return {app for app in shares if app.startswith(KUBERNETES_PREFIX)}


def _servers(
    apps: Sequence[Mapping[str, Any]],
    shares: Mapping[str, int],
    ready_before: frozenset[str],
    extra: Sequence[Server] = (),
) -> list[Server]:
    ready: dict[str, list[tuple[str, str, int]]] = {}
    draining: list[Server] = []
    for server in sorted(extra, key=lambda s: s.task_id):
        if server.state == READY:
            ready.setdefault(server.app_id, []).append((server.task_id, server.host, server.port))
        else:
            draining.append(replace(server, weight=0, state=DRAIN))
    for app in apps:
        app_id = str(app.get("id"))
        for task in sorted(app.get("tasks") or [], key=lambda t: str(t.get("id"))):
            address = task_address(task, app)
            if address is None:
                continue
            state = task.get("state")
            if state == RUNNING and task_healthy(app, task, str(task["id"]) in ready_before):
                ready.setdefault(app_id, []).append((str(task["id"]), *address))
            elif state == KILLING:
                draining.append(Server(str(task["id"]), app_id, *address, 0, DRAIN))
    counts = {app_id: len(tasks) for app_id, tasks in ready.items()}
    per_server = server_weights(shares, counts) if shares else {}
    servers = [
        Server(task_id, app_id, host, port, per_server.get(app_id, DEFAULT_WEIGHT), READY)
        for app_id, tasks in sorted(ready.items())
        for task_id, host, port in tasks
    ]
    return servers + draining


def slot_count(servers: int) -> int:
    """Slots for a backend: a power of two with room to double, at least MIN_SLOTS."""
    slots = MIN_SLOTS
    while slots < 2 * servers and slots < MAX_SLOTS:
        slots *= 2
    return slots


def assign_slots(
    plan: Plan, previous: Assignment, layout: Layout | None
) -> tuple[Assignment, dict[str, list[SlotState]]]:
    """Each backend's slots: a task keeps the slot it had; new tasks take the free ones in
    order. The slot count is the layout's when the servers fit (no reload), else grows."""
    assignment = Assignment()
    slots_by_backend: dict[str, list[SlotState]] = {}
    for backend in plan.backends:
        before = previous.slots.get(backend.name, {})
        count = layout.slots(backend.name) if layout else 0
        if count < len(backend.servers) or count == 0:  # a new backend: MIN_SLOTS at least
            count = slot_count(len(backend.servers))
        count = min(count, MAX_SLOTS)
        kept = {s.task_id: before[s.task_id] for s in backend.servers if s.task_id in before}
        kept = {t: n for t, n in kept.items() if n <= count}
        taken = set(kept.values())
        free = (n for n in range(1, count + 1) if n not in taken)
        mapping = dict(kept)
        for server in backend.servers:
            if server.task_id not in mapping:
                slot = next(free, None)
                if slot is None:
                    break  # more than MAX_SLOTS tasks: the rest waits
                mapping[server.task_id] = slot
        states = [SlotState(None) for _ in range(count)]
        for server in backend.servers:
            if server.task_id in mapping:
                states[mapping[server.task_id] - 1] = SlotState(
                    server.task_id, server.host, server.port, max(server.weight, 0), server.state
                )
        assignment.slots[backend.name] = mapping
        slots_by_backend[backend.name] = states
    return assignment, slots_by_backend


def layout_of(
    plan: Plan, slots: Mapping[str, Sequence[SlotState]], tls_digest: str | None
) -> Layout:
    return Layout(
        tuple((b.name, b.port, b.vhosts, len(slots[b.name])) for b in plan.backends),
        tls_digest,
    )


def tls_digest(pem: bytes | None) -> str | None:
    return hashlib.sha256(pem).hexdigest()[:16] if pem is not None else None


def _server_line(number: int, slot: SlotState, resolve: Mapping[str, str]) -> str:
    if slot.task_id is None:
        return f"    server srv{number} 127.0.0.1:1 disabled"
    address = resolve.get(slot.host, slot.host)
    weight = 0 if slot.state == DRAIN else max(0, min(256, slot.weight))
    return f"    server srv{number} {address}:{slot.port} weight {weight}"


def render(
    plan: Plan,
    slots: Mapping[str, Sequence[SlotState]],
    options: Options,
    resolve: Mapping[str, str] | None = None,
) -> str:
    """haproxy.cfg. `resolve`: host name -> IP of the tasks' hosts (the I/O part resolves
    them; the runtime API takes addresses only)."""
    resolve = resolve or {}
    bind = options.bind_address
    out = [
        "# Written by `orchestrator lb`; changes here are overwritten.",
        "global",
        *([f"    maxconn {options.maxconn}"] if options.maxconn else []),
        f"    stats socket {options.admin_socket} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        *(
            [f"    log {options.log_target} len 1024 format raw local0 info"]
            if options.log_target
            else []
        ),
        "",
        "defaults",
        "    mode http",
        *(["    log global", f'    log-format "{LOG_FORMAT}"'] if options.log_target else []),
        "    option dontlognull",
        "    option redispatch 1",
        "    retries 3",
        "    retry-on conn-failure empty-response",
        f"    timeout connect {options.connect_timeout_ms}ms",
        f"    timeout client {options.client_timeout_ms}ms",
        f"    timeout server {options.server_timeout_ms}ms",
        f"    timeout http-request {options.http_request_timeout_ms}ms",
        f"    timeout http-keep-alive {options.http_request_timeout_ms}ms",
        "    timeout queue 10s",
        "    default-server inter 2s",
        "",
        "frontend stats",
        f"    bind {bind}:{options.stats_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    stats enable",
        "    stats uri /stats",
        "    stats refresh 10s",
        "    http-request set-log-level silent",
        "",
    ]
    vhost_backends = [b for b in plan.backends if b.vhosts]
    if options.http_port is not None:
        out += _vhost_frontend("http_in", f"{bind}:{options.http_port}", vhost_backends, False)
    if options.https_port is not None and options.tls_certificate:
        out += _vhost_frontend(
            "https_in",
            f"{bind}:{options.https_port} ssl crt {options.tls_certificate}",
            vhost_backends,
            True,
        )
    for backend in plan.backends:
        out += [
            f"frontend port_{backend.port}",
            f"    bind {bind}:{backend.port}",
            f"    default_backend {backend.name}",
            "",
        ]
    for backend in plan.backends:
        apps = ", ".join(backend.apps)
        out += [
            f"backend {backend.name}",
            f"    # Marathon apps: {apps}",
            "    balance roundrobin",
            "    option forwardfor",
            # A request a server may have started on is replayed only when it is safe to.
            "    http-request disable-l7-retry if !METH_GET !METH_OPTIONS",
            "    http-request set-header X-Forwarded-Port %[dst_port]",
        ]
        out += [
            _server_line(n, slot, resolve) for n, slot in enumerate(slots[backend.name], start=1)
        ]
        out.append("")
    return "\n".join(out) + "\n"


def _vhost_frontend(name: str, bind: str, backends: Sequence[Backend], tls: bool) -> list[str]:
    lines = [f"frontend {name}", f"    bind {bind}"]
    if tls:
        lines.append("    http-request set-header X-Forwarded-Proto https")
    for backend in backends:
        acl = f"host_{backend.name}"
        for host in backend.vhosts:
            if host.startswith("*."):
                lines.append(f"    acl {acl} hdr(host),field(1,:) -i -m end {host[1:]}")
            else:
                lines.append(f"    acl {acl} hdr(host),field(1,:) -i {host}")
        lines.append(f"    use_backend {backend.name} if {acl}")
    lines.append("")
    return lines


def runtime_commands(
    backend: str, number: int, before: SlotState | None, after: SlotState, address: str
) -> list[str]:
    """Runtime API commands taking a slot from `before` (None: unknown) to `after`."""
    server = f"{backend}/srv{number}"
    if after.task_id is None:
        if before is not None and before.task_id is None:
            return []
        return [f"set server {server} state maint"]
    commands: list[str] = []
    moved = before is None or (before.host, before.port) != (after.host, after.port)
    if moved or before is None or before.task_id != after.task_id:
        if before is not None and before.task_id is not None and before.task_id != after.task_id:
            commands.append(f"set server {server} state maint")
        commands.append(f"set server {server} addr {address} port {after.port}")
    weight = 0 if after.state == DRAIN else max(0, min(256, after.weight))
    if before is None or moved or before.weight != after.weight or before.state != after.state:
        commands.append(f"set server {server} weight {weight}")
    if before is None or moved or before.state != after.state or before.task_id != after.task_id:
        commands.append(f"set server {server} state {after.state}")
    return commands


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
