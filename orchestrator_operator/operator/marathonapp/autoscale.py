"""The built-in autoscaler of MarathonApps (`spec.autoscaling`): measures, decides, writes
`status.autoscaling`; the reconcile (handlers.py) sends `status.autoscaling.desiredInstances`
to Marathon.

Every `INTERVAL_SECONDS` for each MarathonApp with `spec.autoscaling`:

- CPU or memory utilisation: the app's tasks from Marathon (`/v2/apps/<id>/tasks`: their
  agent), each agent's address from the leading Mesos master (`/master/state`, the
  MesosCluster's `status.leadingMaster`), and each agent's per-executor statistics
  (`/monitor/statistics`, Mesos' format; a Marathon command task's executor is named after the
  task). CPU needs two samples of the same task: the previous one is kept in the object's Kopf
  memo (an operator restart loses one interval, nothing else).
- requests per second: the cluster's load balancer's HAProxy stats (`/stats;csv` on its stats
  port): the `req_tot` of the BACKEND serving the app's service port (`HAPROXY_0_PORT`, else
  its first service port; the LB names each backend `<name>_<port>`), two readings apart.
- then `autoscale_plan.decide`; the decision, its reason, the metric and, when it moved,
  `lastScaleAt` go to `status.autoscaling`. Failures to measure (an agent or the LB that does
  not answer) are a decision too: the count is kept and the reason says what failed.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import kopf

from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.mesos.marathon_api import MarathonError
from orchestrator_operator.models import API_GROUP, API_VERSION
from orchestrator_operator.models.marathonapp import Autoscaling
from orchestrator_operator.operator.marathonapp import observe
from orchestrator_operator.operator.marathonapp.autoscale_plan import (
    Decision,
    Measurement,
    Metric,
    Policy,
    TaskSample,
    decide,
    measure_utilisation,
    parse_statistics,
    request_rate,
)

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 15.0
HTTP_TIMEOUT_SECONDS = 3.0
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
# The load balancer's HAProxy stats (operator/builders/loadbalancer.py: Service <cluster>-lb,
# HAProxy's `stats uri /stats` on its stats port, docs/loadbalancer.md).
LB_STATS_URL = "http://{cluster}-lb.{namespace}.svc:9090/stats;csv"
PORT_LABEL = "HAPROXY_0_PORT"
# Reads shared by every app of a cluster for a few seconds: an agent serves at most two
# /monitor/statistics a second (Mesos' statisticsLimiter queues the rest), so 100 apps on
# one agent must not each ask it. A sample keeps its own timestamp, so a shared one does not
# bias a rate.
SHARED_SECONDS = 5.0
_MASTER_STATES = TtlCache[str, Any](ttl_seconds=SHARED_SECONDS)
_STATISTICS = TtlCache[str, Any](ttl_seconds=SHARED_SECONDS)
_LB_STATS = TtlCache[str, "tuple[float, str]"](ttl_seconds=2.0)


class MeasureError(Exception):
    """A source of the metric could not be read; the message says which and why."""


@dataclass
class Samples:
    """What the previous interval measured, kept per object (Kopf memo)."""

    tasks: dict[str, TaskSample] = field(default_factory=dict)
    requests: tuple[float, float] | None = None  # (time, the backend's req_tot)


def policy_of(autoscaling: dict[str, Any]) -> Policy:
    spec = Autoscaling.model_validate(autoscaling)
    target = spec.target
    if target.cpu_utilization is not None:
        metric, value = Metric.CPU, target.cpu_utilization
    elif target.memory_utilization is not None:
        metric, value = Metric.MEMORY, target.memory_utilization
    else:
        assert target.requests_per_second is not None  # the model wants exactly one
        metric, value = Metric.REQUESTS, target.requests_per_second
    return Policy(
        min_instances=spec.min_instances,
        max_instances=spec.max_instances,
        metric=metric,
        target=value,
        scale_up_cooldown_seconds=spec.scale_up_cooldown_seconds,
        scale_down_cooldown_seconds=spec.scale_down_cooldown_seconds,
        max_step=spec.max_step,
    )


def _get(client: httpx.Client, url: str, what: str, auth: tuple[str, str] | None = None) -> bytes:
    """A bounded GET; MeasureError naming `what` on any failure (never the URL's secrets:
    credentials travel in the Authorization header, not in URLs)."""
    try:
        with client.stream("GET", url, auth=auth) as response:
            if response.status_code != 200:
                raise MeasureError(f"{what} answered {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise MeasureError(f"{what} answered more than {MAX_RESPONSE_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as error:
        raise MeasureError(f"{what} cannot be reached: {type(error).__name__}") from error


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as error:
        raise MeasureError(f"{what} answered something that is not JSON") from error


def agent_addresses(master_state: Any) -> dict[str, str]:
    """Agent id -> `ip:port`, from the master's state (`pid` is `slave(1)@ip:port`)."""
    addresses: dict[str, str] = {}
    agents = master_state.get("slaves") if isinstance(master_state, dict) else None
    for agent in agents if isinstance(agents, list) else []:
        if not isinstance(agent, dict):
            continue
        pid = agent.get("pid")
        if isinstance(agent.get("id"), str) and isinstance(pid, str) and "@" in pid:
            addresses[agent["id"]] = pid.split("@", 1)[1]
    return addresses


def _statistics(client: httpx.Client, address: str) -> Any:
    what = f"agent {address}'s /monitor/statistics"
    return _json(_get(client, f"http://{address}/monitor/statistics", what), what)


def task_samples(
    client: httpx.Client, master: str, tasks: list[dict[str, Any]]
) -> dict[str, TaskSample]:
    """The statistics of the running tasks, read from their agents (one request per agent)."""
    running = [t for t in tasks if t.get("state", "TASK_RUNNING") == "TASK_RUNNING"]
    if not running:
        return {}
    state = _MASTER_STATES.get_or_compute(
        master,
        lambda: _json(_get(client, f"http://{master}/master/state", "the Mesos master"), "master"),
    )
    addresses = agent_addresses(state)
    by_agent: dict[str, set[str]] = {}
    for task in running:
        agent = str(task.get("slaveId") or task.get("agentId") or "")
        by_agent.setdefault(agent, set()).add(str(task.get("id")))
    samples: dict[str, TaskSample] = {}
    for agent, ids in sorted(by_agent.items()):
        address = addresses.get(agent)
        if address is None:
            raise MeasureError(
                f"agent {agent} of the app's tasks is not registered with the master"
            )
        entries = _STATISTICS.get_or_compute(
            address, functools.partial(_statistics, client, address)
        )
        for task_id, sample in parse_statistics(entries).items():
            if task_id in ids:
                samples[task_id] = sample
        # A custom executor's statistics name the task in `source` rather than executor_id.
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("source") in ids:
                for sample in parse_statistics([entry]).values():
                    samples[str(entry["source"])] = sample
    return samples


def service_port(app: dict[str, Any]) -> int | None:
    labels = app.get("labels") or {}
    if PORT_LABEL in labels:
        try:
            return int(labels[PORT_LABEL])
        except (TypeError, ValueError):
            return None
    for definition in app.get("portDefinitions") or []:
        if isinstance(definition, dict) and definition.get("port"):
            return int(definition["port"])
    for task in app.get("tasks") or []:
        for port in task.get("servicePorts") or []:
            return int(port)
    return None


def backend_requests(stats_csv: str, port: int) -> float | None:
    """The cumulative request count of the backend serving `port` (HAProxy's `show stat` CSV:
    the BACKEND row named `*_<port>`), None when there is no such backend."""
    lines = stats_csv.lstrip("# ").splitlines()
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("svname") == "BACKEND" and str(row.get("pxname", "")).endswith(f"_{port}"):
            value = row.get("req_tot") or row.get("stot") or ""
            try:
                return float(value)
            except ValueError:
                return None
    return None


def measure(
    client: httpx.Client,
    policy: Policy,
    app: dict[str, Any],
    master: str | None,
    lb_stats_url: str,
    previous: Samples,
    now: float,
) -> tuple[Measurement | None, Samples]:
    """The metric now, and the samples to keep for the next interval."""
    tasks = [t for t in app.get("tasks") or [] if isinstance(t, dict)]
    if policy.metric is Metric.REQUESTS:
        port = service_port(app)
        if port is None:
            raise MeasureError(
                f"the app has no {PORT_LABEL} label and no service port: the load balancer"
                " does not serve it"
            )
        what = "the load balancer's stats"
        read_at, text = _LB_STATS.get_or_compute(
            lb_stats_url,
            lambda: (time.time(), _get(client, lb_stats_url, what).decode("utf-8", "replace")),
        )
        total = backend_requests(text, port)
        if total is None:
            raise MeasureError(f"the load balancer has no backend for port {port}")
        reading = (read_at, total)
        running = sum(1 for t in tasks if t.get("state", "TASK_RUNNING") == "TASK_RUNNING")
        return request_rate(previous.requests, reading, running), Samples(requests=reading)
    if master is None:
        raise MeasureError("the MesosCluster reports no leading master")
    current = task_samples(client, master, tasks)
    return measure_utilisation(policy.metric, previous.tasks, current), Samples(tasks=current)


def status_of(decision: Decision, now: datetime, last_scale_at: datetime | None) -> dict[str, Any]:
    scaled_at = now if decision.scaled else last_scale_at
    return {
        "desiredInstances": decision.desired,
        "lastScaleAt": scaled_at.isoformat().replace("+00:00", "Z") if scaled_at else None,
        "reason": decision.reason,
        "metric": {
            "name": decision.metric.value,
            "value": None if decision.value is None else round(decision.value, 4),
            "target": decision.target,
        },
    }


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def autoscale_once(
    client: httpx.Client,
    spec: dict[str, Any],
    status: dict[str, Any],
    get_app: Callable[[str], dict[str, Any] | None],
    master: str | None,
    lb_stats_url: str,
    previous: Samples,
    now: datetime,
) -> tuple[dict[str, Any], Samples]:
    """One interval for one MarathonApp: (its status.autoscaling, the samples to keep).

    `get_app` is the app in the cluster's leading Marathon with its tasks (None: no such app;
    MeasureError: Marathon cannot say)."""
    policy = policy_of(spec["autoscaling"])
    before = status.get("autoscaling") or {}
    current = before.get("desiredInstances")
    if not isinstance(current, int):
        current = int(spec["app"].get("instances", 1))
    last_scale_at = _parse_time(before.get("lastScaleAt"))
    kept = previous
    try:
        app = get_app(spec["app"]["id"])
        if app is None:
            raise MeasureError(f"Marathon has no app {spec['app']['id']} yet")
        measured, kept = measure(
            client, policy, app, master, lb_stats_url, previous, now.timestamp()
        )
    except MeasureError as error:
        decision = decide(policy, current, None, last_scale_at, now)
        if not decision.scaled:
            decision = Decision(
                desired=decision.desired,
                scaled=False,
                reason=f"cannot measure {policy.metric.value}: {error}; kept {current} instances",
                metric=decision.metric,
                value=None,
                target=decision.target,
            )
        return status_of(decision, now, last_scale_at), kept
    decision = decide(policy, current, measured, last_scale_at, now)
    if decision.scaled:
        log.info("autoscaling %s: %s", spec["app"]["id"], decision.reason)
    return status_of(decision, now, last_scale_at), kept


def _autoscaling_on(spec: kopf.Spec, meta: kopf.Meta, **_: Any) -> bool:
    return bool(spec.get("autoscaling")) and not meta.get("deletionTimestamp")


@kopf.timer(API_GROUP, API_VERSION, "marathonapps", interval=INTERVAL_SECONDS, when=_autoscaling_on)
def autoscale(
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    memo: kopf.Memo,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    """Every interval: measure, decide, write status.autoscaling (the reconcile sends its
    desiredInstances to Marathon). The previous samples live in this object's memo."""
    namespace, cluster = str(meta["namespace"]), str(spec["cluster"])
    previous: Samples = memo.get("autoscale_samples") or Samples()
    master: str | None = None
    get_app: Callable[[str], dict[str, Any] | None]
    try:
        found = observe.find_marathon(namespace, cluster)
        cluster_body = observe.mesoscluster(namespace, cluster) or {}
        master = (cluster_body.get("status") or {}).get("leadingMaster")

        def get_app(app_id: str) -> dict[str, Any] | None:
            try:
                return found.client.get_app(app_id)
            except MarathonError as error:
                raise MeasureError(f"Marathon: {error}") from error

    except observe.Unobservable as error:
        message = error.message

        def get_app(app_id: str) -> dict[str, Any] | None:
            raise MeasureError(message)

    lb_stats_url = str(memo.get("lb_stats_url") or LB_STATS_URL).format(
        cluster=cluster, namespace=namespace
    )
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
        written, kept = autoscale_once(
            client,
            dict(spec),
            dict(status),
            get_app,
            master,
            lb_stats_url,
            previous,
            datetime.now(UTC),
        )
    memo["autoscale_samples"] = kept
    if written != (status.get("autoscaling") or {}):
        patch.status["autoscaling"] = written
