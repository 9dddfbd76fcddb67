"""Marathon's health checks of app tasks: the checks, each task's health, the kills.

Marathon 1.11 sources followed (read, not copied):
- `core/health/HealthCheck.scala`: the protocols and defaults (gracePeriodSeconds 300,
  intervalSeconds 60, timeoutSeconds 20, maxConsecutiveFailures 3, delaySeconds 15 for Mesos
  checks, portIndex 0 when neither port nor portIndex is given, path "/");
- `core/health/impl/HealthCheckActor.scala`: the first check after min(interval, 5 s), then
  one every interval, of each running task; a failure is ignored while the task is not running
  or has never passed and is within its grace period (`ignoreFailures`); a counted failure
  publishes `failed_health_check_event`, and when the task had already failed
  maxConsecutiveFailures times in a row (the count before this failure; 0 never kills) the
  task is killed (`unhealthy_instance_kill_event`, KillReason.FailedHealthChecks); the task's
  health is stored after every result, so one failure ignored in the grace period already
  shows the task as not alive; `health_status_changed_event` when `alive` flips;
- `core/health/Health.scala`: alive = the last success is later than the last failure;
- `core/health/impl/HealthCheckWorker.scala`: HTTP(S) GET `http://<host>:<port><path>` is
  healthy for a status 200..399 (1xx ignored with `ignoreHttp1xx`), the failure cause is the
  status (`503 Service Unavailable`) or the error; TCP a connection within the timeout; the
  address is the task's host (host networking: the agent's hostname, `NetworkInfo.scala`);
- `api/v2/json/Formats.scala` and `core/event/Events.scala`: the events' fields;
  `raml/HealthConversion.scala`: a task's `healthCheckResults`.

Sim simplifications (documented in sim/README.md): COMMAND, MESOS_HTTP(S) and MESOS_TCP,
which Mesos' executor runs beside the task, are run by the sim Marathon in the same way (a
COMMAND as `sh -c` with the task's ports in its environment), first after delaySeconds; a
task failing one of them maxConsecutiveFailures times in a row is killed (Mesos' executor
kills it; Marathon publishes no unhealthy_instance_kill_event for those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from sim.marathon.layout import timestamp

log = logging.getLogger("sim.marathon.health")

MARATHON_PROTOCOLS = frozenset({"HTTP", "HTTPS", "TCP"})
MESOS_PROTOCOLS = frozenset({"MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP", "COMMAND"})
PROTOCOLS = MARATHON_PROTOCOLS | MESOS_PROTOCOLS
DEFAULTS: dict[str, Any] = {
    "gracePeriodSeconds": 300,
    "intervalSeconds": 60,
    "timeoutSeconds": 20,
    "maxConsecutiveFailures": 3,
    "delaySeconds": 15,
    "ignoreHttp1xx": False,
}
FIRST_CHECK_AFTER = 5.0  # HealthCheck.DefaultFirstHealthCheckAfter
MAX_CHECKS = 16
MAX_COMMAND = 4096


def validate(body: dict[str, Any]) -> str | None:
    checks = body.get("healthChecks")
    if checks is None:
        return None
    if not isinstance(checks, list) or len(checks) > MAX_CHECKS:
        return f"healthChecks must be a list of at most {MAX_CHECKS} objects"
    for index, check in enumerate(checks):
        where = f"healthChecks({index})"
        if not isinstance(check, dict):
            return f"{where} must be an object"
        protocol = check.get("protocol", "HTTP")
        if protocol not in PROTOCOLS:
            return f"{where}.protocol must be one of {', '.join(sorted(PROTOCOLS))}"
        for key in ("gracePeriodSeconds", "intervalSeconds", "timeoutSeconds", "delaySeconds"):
            value = check.get(key)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or value < 0
            ):
                return f"{where}.{key} must be a number >= 0"
        for key in ("maxConsecutiveFailures", "portIndex", "port"):
            value = check.get(key)
            if value is not None and (
                not isinstance(value, int) or isinstance(value, bool) or value < 0
            ):
                return f"{where}.{key} must be an integer >= 0"
        if check.get("intervalSeconds") == 0:
            return f"{where}.intervalSeconds must be > 0"
        path = check.get("path")
        if path is not None and (not isinstance(path, str) or len(path) > 1024):
            return f"{where}.path must be a string of at most 1024 characters"
        if protocol == "COMMAND":
            command = check.get("command")
            value = command.get("value") if isinstance(command, dict) else None
            if not isinstance(value, str) or not value or len(value) > MAX_COMMAND:
                return f"{where}: a COMMAND health check needs command.value"
    return None


def normalized(check: dict[str, Any]) -> dict[str, Any]:
    """The check with Marathon's defaults (as `GET /v2/apps` shows it)."""
    out = {**DEFAULTS, "protocol": "HTTP", **check}
    if out["protocol"] not in ("COMMAND",) and "port" not in out and "portIndex" not in out:
        out["portIndex"] = 0
    if out["protocol"] in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"):
        out.setdefault("path", "/")
    return out


@dataclass
class Health:
    """core/health/Health.scala."""

    first_success: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_failure_cause: str | None = None
    consecutive_failures: int = 0

    @property
    def alive(self) -> bool:
        if self.last_success is None:
            return False
        return self.last_failure is None or self.last_success > self.last_failure

    def passed(self, now: float) -> None:
        self.first_success = self.first_success or now
        self.last_success = now
        self.consecutive_failures = 0

    def failed(self, now: float, cause: str) -> None:
        self.last_failure = now
        self.last_failure_cause = cause
        self.consecutive_failures += 1

    def to_json(self, instance_id: str) -> dict[str, Any]:
        def ts(value: float | None) -> str | None:
            return timestamp(value) if value else None

        return {
            "alive": self.alive,
            "consecutiveFailures": self.consecutive_failures,
            "firstSuccess": ts(self.first_success),
            "lastFailure": ts(self.last_failure),
            "lastSuccess": ts(self.last_success),
            "lastFailureCause": self.last_failure_cause,
            "instanceId": instance_id,
        }


@dataclass(frozen=True)
class Result:
    ok: bool | None  # None: ignored (an HTTP 1xx with ignoreHttp1xx)
    cause: str = ""


async def probe(check: dict[str, Any], host: str, port: int | None, env: dict[str, str]) -> Result:
    protocol = check["protocol"]
    timeout = float(check["timeoutSeconds"]) or 0.001
    try:
        if protocol == "COMMAND":
            return await _command(str(check["command"]["value"]), env, timeout)
        if port is None:
            return Result(False, "Health check failed: unable to get the task's effectivePort")
        if protocol in ("TCP", "MESOS_TCP"):
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return Result(True)
        scheme = "https" if protocol in ("HTTPS", "MESOS_HTTPS") else "http"
        path = str(check.get("path") or "/")
        url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
        # HealthCheckWorker.https trusts any certificate; http needs no TLS.
        ctx: ssl.SSLContext | bool = scheme != "https"
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, ssl=ctx, allow_redirects=False) as response,
        ):
            if 200 <= response.status < 400:
                return Result(True)
            if check.get("ignoreHttp1xx") and 100 <= response.status < 200:
                return Result(None)
            return Result(False, f"{response.status} {response.reason or ''}".strip())
    except TimeoutError:
        return Result(False, f"Health check timed out after {timeout:g} seconds")
    except (aiohttp.ClientError, OSError) as exc:
        return Result(False, str(exc)[:300] or type(exc).__name__)


async def _command(command: str, env: dict[str, str], timeout: float) -> Result:
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        command,
        env=full,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        code = await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        return Result(False, f"Command timed out after {timeout:g} seconds")
    return Result(True) if code == 0 else Result(False, f"Command exited with status {code}")


Publish = Callable[[dict[str, Any]], None]
Kill = Callable[[dict[str, Any], str], None]


class HealthChecker:
    """Runs the checks of every running task (instance dicts of the scheduler) and keeps
    their health; `tick` is called from the scheduler's loop."""

    def __init__(self, publish: Publish, kill: Kill) -> None:
        self.publish = publish
        self.kill = kill
        self.health: dict[tuple[str, int], Health] = {}
        self.due: dict[tuple[str, int], float] = {}
        self.running: set[tuple[str, int]] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def results(self, instance: dict[str, Any]) -> list[dict[str, Any]]:
        iid = instance["instanceId"]
        checks = instance.get("healthChecks") or []
        return [
            self.health[(iid, i)].to_json(iid)
            for i in range(len(checks))
            if (iid, i) in self.health
        ]

    def healthy(self, instance: dict[str, Any]) -> bool | None:
        """True: every check alive; False: some check has a result and is not alive; None:
        no result yet (or no checks)."""
        checks = instance.get("healthChecks") or []
        if not checks:
            return None
        states = [self.health.get((instance["instanceId"], i)) for i in range(len(checks))]
        if any(h is not None and not h.alive for h in states):
            return False
        if all(h is not None and h.alive for h in states):
            return True
        return None

    def tick(
        self,
        instances: list[dict[str, Any]],
        env_of: Callable[[dict[str, Any]], dict[str, str]],
        now: float | None = None,
    ) -> None:
        now = time.time() if now is None else now
        live = {i["instanceId"] for i in instances}
        for key in [k for k in self.health if k[0] not in live]:
            self.health.pop(key, None)
        for key in [k for k in self.due if k[0] not in live]:
            self.due.pop(key, None)
        for instance in instances:
            if instance.get("state") != "TASK_RUNNING" or not instance.get("startedAt"):
                continue
            for index, raw in enumerate(instance.get("healthChecks") or []):
                check = normalized(raw)
                key = (instance["instanceId"], index)
                if key in self.running:
                    continue
                due = self.due.get(key)
                if due is None:
                    if check["protocol"] in MESOS_PROTOCOLS:
                        first = float(check["delaySeconds"])
                    else:
                        first = min(float(check["intervalSeconds"]), FIRST_CHECK_AFTER)
                    self.due[key] = float(instance["startedAt"]) + first
                    continue
                if now < due:
                    continue
                self.due[key] = now + float(check["intervalSeconds"])
                self.running.add(key)
                task = asyncio.get_running_loop().create_task(
                    self._check(instance, index, check, env_of(instance))
                )
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _check(
        self, instance: dict[str, Any], index: int, check: dict[str, Any], env: dict[str, str]
    ) -> None:
        key = (instance["instanceId"], index)
        try:
            host_ports: list[int] = list(instance.get("ports") or [])
            if "port" in check:
                port: int | None = int(check["port"])
            else:
                port_index = int(check.get("portIndex", 0))
                port = host_ports[port_index] if port_index < len(host_ports) else None
            result = await probe(check, str(instance.get("host") or ""), port, env)
            self._handle(instance, index, check, result, time.time())
        except Exception:  # a bug in a check must not stop the scheduler
            log.exception("health check %s of %s failed", index, instance["taskId"])
        finally:
            self.running.discard(key)

    def _handle(
        self,
        instance: dict[str, Any],
        index: int,
        check: dict[str, Any],
        result: Result,
        now: float,
    ) -> None:
        """HealthCheckActor.handleHealthResult and updateInstanceHealth."""
        if result.ok is None:
            return
        key = (instance["instanceId"], index)
        if key[0] not in {k[0] for k in self.due}:
            return  # the instance is gone meanwhile
        old = self.health.get(key, Health())
        new = Health(**vars(old))
        marathon_check = check["protocol"] in MARATHON_PROTOCOLS
        if result.ok:
            new.passed(now)
        elif instance.get("state") != "TASK_RUNNING" or (
            old.first_success is None
            and now < float(instance["startedAt"]) + float(check["gracePeriodSeconds"])
        ):
            pass  # ignored: the health is stored unchanged
        else:
            maximum = int(check["maxConsecutiveFailures"])
            if marathon_check:
                self.publish(failed_health_check(instance, check))
                if maximum > 0 and old.consecutive_failures >= maximum:
                    self.publish(unhealthy_kill(instance, result.cause or "unknown", now))
                    self.kill(instance, result.cause)
            elif maximum > 0 and old.consecutive_failures + 1 >= maximum:
                self.kill(instance, result.cause)
            new.failed(now, result.cause or "unknown")
        self.health[key] = new
        if old.alive != new.alive:
            self.publish(status_changed(instance, new.alive))

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()


# ---------------------------------------------------------------- events (Formats.scala)


def _raml_check(check: dict[str, Any]) -> dict[str, Any]:
    return normalized(check)


def failed_health_check(instance: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    return {
        "appId": instance["appId"],
        "eventType": "failed_health_check_event",
        "healthCheck": _raml_check(check),
        "taskId": instance["instanceId"],
        "timestamp": timestamp(time.time()),
    }


def status_changed(instance: dict[str, Any], alive: bool) -> dict[str, Any]:
    return {
        "appId": instance["appId"],
        "instanceId": instance["instanceId"],
        "version": instance["version"],
        "alive": alive,
        "eventType": "health_status_changed_event",
        "timestamp": timestamp(time.time()),
    }


def unhealthy_kill(instance: dict[str, Any], reason: str, now: float) -> dict[str, Any]:
    return {
        "appId": instance["appId"],
        "taskId": instance["taskId"],
        "instanceId": instance["instanceId"],
        "version": instance["version"],
        "reason": reason,
        "host": instance.get("host") or "unknown",
        "slaveId": instance.get("agentId") or None,
        "eventType": "unhealthy_instance_kill_event",
        "timestamp": timestamp(now),
    }
