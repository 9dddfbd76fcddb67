"""Pure: the built-in autoscaler of a MarathonApp (`spec.autoscaling`), and the metrics it reads.

The rule is Kubernetes' HorizontalPodAutoscaler's, for clusters without a metrics adapter:

- utilisation (CPU or memory, 0..1 of what each task was given): the mean over the tasks
  that have a measurement, and `desired = ceil(current * mean / target)`;
- requests per second (the load balancer's rate for the app, all its tasks together), the
  target being per instance: `desired = ceil(rate / target)`;
- within a tolerance of 10 % of the target nothing changes (no see-saw around it);
- the result is clamped to [min, max]; a move is at most `maxStep` instances; a scale up
  waits `scaleUpCooldownSeconds` after the last scale, a scale down
  `scaleDownCooldownSeconds`; no measurement (no running task, the first sample of a rate)
  keeps the current count.
- bounds win over everything: an instance count outside [min, max] (min or max just
  changed in git) is brought inside at once, whatever the cooldowns and step.

Each decision carries its reason in words, written to `status.autoscaling.reason`.

CPU utilisation is Mesos' per-executor statistics (`/monitor/statistics` on each agent):
the growth of `cpus_user_time_secs + cpus_system_time_secs` between two samples over the
time between them, divided by `cpus_limit`. Memory utilisation is `mem_rss_bytes /
mem_limit_bytes` of one sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

TOLERANCE = 0.1


class Metric(StrEnum):
    CPU = "cpuUtilization"
    MEMORY = "memoryUtilization"
    REQUESTS = "requestsPerSecond"


@dataclass(frozen=True)
class Policy:
    min_instances: int
    max_instances: int
    metric: Metric
    target: float
    scale_up_cooldown_seconds: float
    scale_down_cooldown_seconds: float
    max_step: int


@dataclass(frozen=True)
class Measurement:
    """The metric's value now: the mean utilisation (0..1 and above) over `samples` tasks, or
    the app's total requests per second (`samples` = tasks behind the load balancer)."""

    value: float
    samples: int


@dataclass(frozen=True)
class Decision:
    desired: int
    scaled: bool  # desired differs from current: lastScaleAt becomes now
    reason: str
    metric: Metric
    value: float | None
    target: float


def _fmt(metric: Metric, value: float) -> str:
    if metric is Metric.REQUESTS:
        return f"{value:.1f} requests/s"
    return f"{value * 100:.0f}%"


def _ideal(policy: Policy, current: int, measured: Measurement) -> int:
    if policy.metric is Metric.REQUESTS:
        return math.ceil(measured.value / policy.target - 1e-9)
    return math.ceil(current * measured.value / policy.target - 1e-9)


def _within_tolerance(policy: Policy, current: int, measured: Measurement) -> bool:
    if policy.metric is Metric.REQUESTS:
        per_instance = measured.value / max(current, 1)
        return abs(per_instance / policy.target - 1) <= TOLERANCE + 1e-9
    return abs(measured.value / policy.target - 1) <= TOLERANCE + 1e-9


def decide(
    policy: Policy,
    current: int,
    measured: Measurement | None,
    last_scale_at: datetime | None,
    now: datetime,
) -> Decision:
    """How many instances the app should run now, and why.

    `current` is the count the autoscaler last decided (spec.app.instances before its first
    decision); `last_scale_at` when it last changed it.
    """
    low, high = policy.min_instances, policy.max_instances
    if policy.target <= 0:
        raise ValueError("the autoscaling target must be above 0")
    if low < 0 or high < low:
        raise ValueError(f"autoscaling bounds {low}..{high} are not 0 <= min <= max")
    if policy.max_step < 1:
        raise ValueError("autoscaling maxStep must be at least 1")

    def decision(desired: int, reason: str) -> Decision:
        return Decision(
            desired=desired,
            scaled=desired != current,
            reason=reason,
            metric=policy.metric,
            value=None if measured is None else measured.value,
            target=policy.target,
        )

    target_words = _fmt(policy.metric, policy.target)
    if current < low:
        return decision(low, f"{current} instances is below the minimum {low}: scaled to {low}")
    if current > high:
        return decision(high, f"{current} instances is above the maximum {high}: scaled to {high}")
    if measured is None or measured.samples == 0:
        return decision(
            current,
            f"no {policy.metric.value} measurement yet (no running task measured twice): "
            f"kept {current} instances",
        )

    value_words = f"{_fmt(policy.metric, measured.value)} against a target of {target_words}"
    if policy.metric is Metric.REQUESTS:
        value_words = (
            f"{_fmt(policy.metric, measured.value)} over {current} instances against a target "
            f"of {target_words} each"
        )
    if _within_tolerance(policy, current, measured):
        return decision(current, f"{value_words}: within 10%, kept {current} instances")

    ideal = min(max(_ideal(policy, current, measured), low), high)
    if ideal == current:
        bound = "maximum" if ideal == high else "minimum"
        return decision(current, f"{value_words}: kept {current} instances, the {bound}")

    up = ideal > current
    cooldown = policy.scale_up_cooldown_seconds if up else policy.scale_down_cooldown_seconds
    if last_scale_at is not None:
        since = (now - last_scale_at).total_seconds()
        if since < cooldown:
            direction = "up" if up else "down"
            return decision(
                current,
                f"{value_words}: would scale {direction} to {ideal}, but the last scale was "
                f"{since:.0f} s ago (scale-{direction} cooldown {cooldown:.0f} s): "
                f"kept {current} instances",
            )
    step = min(abs(ideal - current), policy.max_step)
    desired = current + step if up else current - step
    limited = "" if desired == ideal else f" (wanted {ideal}, at most {policy.max_step} a step)"
    return decision(
        desired,
        f"{value_words}: scaled {'up' if up else 'down'} from {current} to {desired}{limited}",
    )


@dataclass(frozen=True)
class TaskSample:
    """One executor's statistics from an agent's /monitor/statistics."""

    task_id: str
    timestamp: float
    cpu_seconds: float  # cpus_user_time_secs + cpus_system_time_secs
    cpus_limit: float | None
    mem_rss_bytes: float | None
    mem_limit_bytes: float | None


def cpu_utilisation(previous: TaskSample, current: TaskSample) -> float | None:
    """The task's CPU use between two samples as a share of its cpus_limit; None when the
    two samples cannot give one (same time, a counter that went back: a new executor)."""
    elapsed = current.timestamp - previous.timestamp
    used = current.cpu_seconds - previous.cpu_seconds
    if elapsed <= 0 or used < 0 or not current.cpus_limit or current.cpus_limit <= 0:
        return None
    return used / elapsed / current.cpus_limit


def memory_utilisation(sample: TaskSample) -> float | None:
    if sample.mem_rss_bytes is None or not sample.mem_limit_bytes or sample.mem_limit_bytes <= 0:
        return None
    return sample.mem_rss_bytes / sample.mem_limit_bytes


def measure_utilisation(
    metric: Metric,
    previous: dict[str, TaskSample],
    current: dict[str, TaskSample],
) -> Measurement | None:
    """The mean utilisation over the app's tasks in `current` (task id -> sample); CPU needs
    the same task in `previous`. None when no task gives a value."""
    if metric is Metric.REQUESTS:
        raise ValueError(f"{metric.value} is not a utilisation")
    values: list[float] = []
    for task_id, sample in current.items():
        if metric is Metric.CPU:
            before = previous.get(task_id)
            value = None if before is None else cpu_utilisation(before, sample)
        else:
            value = memory_utilisation(sample)
        if value is not None:
            values.append(value)
    if not values:
        return None
    return Measurement(value=sum(values) / len(values), samples=len(values))


def request_rate(
    previous: tuple[float, float] | None, current: tuple[float, float], servers: int
) -> Measurement | None:
    """Requests per second from two readings (time in seconds, cumulative request count) of
    the load balancer's counter; None on the first reading, or when the counter went back
    (the load balancer restarted)."""
    if previous is None:
        return None
    elapsed = current[0] - previous[0]
    grown = current[1] - previous[1]
    if elapsed <= 0 or grown < 0:
        return None
    return Measurement(value=grown / elapsed, samples=max(servers, 1))


def parse_statistics(entries: object) -> dict[str, TaskSample]:
    """Mesos' /monitor/statistics answer (a list of {executor_id, framework_id, statistics})
    keyed by executor id (Marathon's command executor is named after the task). Malformed
    entries are left out; bounded by what the caller read."""
    samples: dict[str, TaskSample] = {}
    if not isinstance(entries, list):
        return samples
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        executor = entry.get("executor_id")
        stats = entry.get("statistics")
        if not isinstance(executor, str) or not isinstance(stats, dict):
            continue
        timestamp = _number(stats.get("timestamp"))
        if timestamp is None:
            continue
        user = _number(stats.get("cpus_user_time_secs")) or 0.0
        system = _number(stats.get("cpus_system_time_secs")) or 0.0
        samples[executor] = TaskSample(
            task_id=executor,
            timestamp=timestamp,
            cpu_seconds=user + system,
            cpus_limit=_number(stats.get("cpus_limit")),
            mem_rss_bytes=_number(stats.get("mem_rss_bytes")),
            mem_limit_bytes=_number(stats.get("mem_limit_bytes")),
        )
    return samples


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return float(value)
