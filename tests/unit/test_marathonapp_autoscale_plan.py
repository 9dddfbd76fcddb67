"""The MarathonApp autoscaler's decision (operator/marathonapp/autoscale_plan.py): the HPA rule
on utilisation and on requests per second, the tolerance, bounds, cooldowns, the maximum step,
no measurement, and the reason in words; and the metrics from Mesos' /monitor/statistics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestrator_operator.operator.marathonapp.autoscale_plan import (
    Decision,
    Measurement,
    Metric,
    Policy,
    TaskSample,
    cpu_utilisation,
    decide,
    measure_utilisation,
    memory_utilisation,
    parse_statistics,
    request_rate,
)

NOW = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)


def policy(
    metric: Metric = Metric.CPU,
    target: float = 0.5,
    low: int = 1,
    high: int = 10,
    up: float = 60,
    down: float = 300,
    step: int = 10,
) -> Policy:
    return Policy(
        min_instances=low,
        max_instances=high,
        metric=metric,
        target=target,
        scale_up_cooldown_seconds=up,
        scale_down_cooldown_seconds=down,
        max_step=step,
    )


def run(
    p: Policy, current: int, value: float | None, ago: float | None = None, samples: int = 2
) -> Decision:
    measured = None if value is None else Measurement(value=value, samples=samples)
    last = None if ago is None else NOW - timedelta(seconds=ago)
    return decide(p, current, measured, last, NOW)


# --- utilisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "value", "expected"),
    [
        (2, 1.0, 4),  # twice the target: twice the instances
        (3, 0.9, 6),  # ceil(3 * 0.9 / 0.5) = ceil(5.4)
        (4, 0.25, 2),  # half the target: half the instances
        (5, 0.05, 1),  # ceil(0.5) = 1
        (4, 0.0, 1),  # idle: down to the minimum
        (1, 5.0, 10),  # ceil(10) = 10, the maximum
    ],
)
def test_cpu_follows_the_hpa_rule(current: int, value: float, expected: int) -> None:
    result = run(policy(), current, value)
    assert result.desired == expected
    assert result.scaled
    assert result.metric is Metric.CPU and result.value == value and result.target == 0.5


def test_memory_uses_the_same_rule() -> None:
    result = run(policy(Metric.MEMORY, target=0.8), 2, 1.2)
    assert result.desired == 3  # ceil(2 * 1.5)
    assert "120% against a target of 80%" in result.reason
    assert "scaled up from 2 to 3" in result.reason


def test_exactly_on_target_keeps_the_count_even_when_the_division_is_inexact() -> None:
    # 3 * 0.3 / 0.3 computes as 3.0000000000000004 in floating point: still 3
    result = run(policy(target=0.3), 3, 0.3)
    assert result.desired == 3 and not result.scaled


@pytest.mark.parametrize("value", [0.45, 0.5, 0.55])
def test_within_ten_percent_of_the_target_nothing_changes(value: float) -> None:
    result = run(policy(), 4, value)
    assert result.desired == 4 and not result.scaled
    assert "within 10%" in result.reason and "kept 4 instances" in result.reason


@pytest.mark.parametrize(("value", "expected"), [(0.56, 5), (0.44, 4)])
def test_just_outside_the_tolerance_scales(value: float, expected: int) -> None:
    # 4 * 0.56 / 0.5 = 4.48 -> 5; 4 * 0.44 / 0.5 = 3.52 -> 4 (ceil: a scale down needs a
    # whole instance of slack)
    result = run(policy(), 4, value)
    assert result.desired == expected


# --- requests per second -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "rate", "expected"),
    [
        (2, 250.0, 3),  # 250 / 100 per instance -> ceil(2.5)
        (2, 400.0, 4),
        (5, 120.0, 2),
        (3, 0.0, 1),  # no traffic: the minimum
        (2, 5000.0, 10),  # the maximum
    ],
)
def test_requests_per_second_is_a_target_per_instance(
    current: int, rate: float, expected: int
) -> None:
    result = run(policy(Metric.REQUESTS, target=100), current, rate)
    assert result.desired == expected
    assert result.metric is Metric.REQUESTS


def test_requests_within_tolerance_per_instance() -> None:
    result = run(policy(Metric.REQUESTS, target=100), 3, 310.0)
    assert result.desired == 3 and not result.scaled
    assert "310.0 requests/s over 3 instances against a target of 100.0 requests/s each" in (
        result.reason
    )


# --- bounds ----------------------------------------------------------------------------------


def test_the_result_is_clamped_to_the_maximum_and_says_so() -> None:
    result = run(policy(high=4), 4, 2.0)
    assert result.desired == 4 and not result.scaled
    assert "the maximum" in result.reason


def test_the_result_is_clamped_to_the_minimum_and_says_so() -> None:
    result = run(policy(low=3), 3, 0.01)
    assert result.desired == 3 and not result.scaled
    assert "the minimum" in result.reason


def test_below_the_minimum_is_corrected_at_once_whatever_the_cooldown_and_step() -> None:
    result = run(policy(low=5, step=1, up=3600), 2, None, ago=1)
    assert result.desired == 5 and result.scaled
    assert result.reason == "2 instances is below the minimum 5: scaled to 5"


def test_above_the_maximum_is_corrected_at_once() -> None:
    result = run(policy(high=3, step=1, down=3600), 8, 0.5, ago=1)
    assert result.desired == 3 and result.scaled
    assert "above the maximum 3" in result.reason


def test_min_equal_to_max_pins_the_count() -> None:
    assert run(policy(low=2, high=2), 2, 3.0).desired == 2
    assert run(policy(low=2, high=2), 2, 0.0).desired == 2


def test_a_minimum_of_zero_scales_an_idle_app_to_zero() -> None:
    result = run(policy(Metric.REQUESTS, target=10, low=0), 2, 0.0)
    assert result.desired == 0


# --- cooldowns -------------------------------------------------------------------------------


def test_scale_up_waits_for_its_cooldown() -> None:
    held = run(policy(up=60), 2, 1.0, ago=30)
    assert held.desired == 2 and not held.scaled
    assert "would scale up to 4" in held.reason
    assert "last scale was 30 s ago (scale-up cooldown 60 s)" in held.reason
    after = run(policy(up=60), 2, 1.0, ago=60)
    assert after.desired == 4 and after.scaled


def test_scale_down_waits_for_its_own_longer_cooldown() -> None:
    p = policy(up=60, down=300)
    held = run(p, 4, 0.1, ago=120)
    assert held.desired == 4
    assert "would scale down to 1" in held.reason and "scale-down cooldown 300 s" in held.reason
    assert run(p, 4, 0.1, ago=300).desired == 1
    # the scale-up cooldown has passed at 120 s: an up move is allowed then
    assert run(p, 4, 1.0, ago=120).desired == 8


def test_no_previous_scale_means_no_cooldown() -> None:
    assert run(policy(up=3600, down=3600), 2, 1.0, ago=None).desired == 4


def test_a_zero_cooldown_allows_a_move_every_time() -> None:
    assert run(policy(up=0, down=0), 2, 1.0, ago=0).desired == 4


# --- maximum step ----------------------------------------------------------------------------


def test_a_scale_up_moves_at_most_max_step() -> None:
    result = run(policy(step=2), 2, 2.5)  # ideal ceil(10) = 10
    assert result.desired == 4
    assert "scaled up from 2 to 4 (wanted 10, at most 2 a step)" in result.reason


def test_a_scale_down_moves_at_most_max_step() -> None:
    result = run(policy(step=1), 8, 0.1)  # ideal ceil(1.6) = 2
    assert result.desired == 7
    assert "scaled down from 8 to 7 (wanted 2, at most 1 a step)" in result.reason


def test_a_step_within_max_step_does_not_mention_it() -> None:
    result = run(policy(step=5), 2, 1.0)
    assert result.reason.endswith("scaled up from 2 to 4")


# --- no measurement --------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [0])
def test_no_measurement_keeps_the_count(samples: int) -> None:
    for result in (run(policy(), 3, None), run(policy(), 3, 0.9, samples=samples)):
        assert result.desired == 3 and not result.scaled
        assert "no cpuUtilization measurement yet" in result.reason
        assert "kept 3 instances" in result.reason


def test_no_measurement_still_corrects_bounds() -> None:
    assert run(policy(low=2), 1, None).desired == 2


# --- invalid policies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "message"),
    [
        (policy(target=0), "target must be above 0"),
        (policy(low=5, high=2), "5..2"),
        (policy(low=-1), "-1..10"),
        (policy(step=0), "maxStep"),
    ],
)
def test_an_impossible_policy_is_refused_with_a_clear_message(p: Policy, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(p, 2, 0.5)


# --- metrics from the agents' statistics --------------------------------------------------


def sample(
    task: str = "t1",
    ts: float = 100.0,
    cpu: float = 0.0,
    limit: float | None = 0.5,
    rss: float | None = 64e6,
    mem_limit: float | None = 128e6,
) -> TaskSample:
    return TaskSample(task, ts, cpu, limit, rss, mem_limit)


def test_cpu_utilisation_is_the_time_counters_rate_over_cpus_limit() -> None:
    # 2.5 CPU seconds in 10 s on a 0.5 CPU limit: 0.25 CPU used, 50 % of the limit
    assert cpu_utilisation(sample(ts=100, cpu=10), sample(ts=110, cpu=12.5)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (sample(ts=100, cpu=1), sample(ts=100, cpu=2)),  # no time passed
        (sample(ts=100, cpu=5), sample(ts=110, cpu=1)),  # counter went back: new executor
        (sample(ts=100), sample(ts=110, cpu=1, limit=None)),  # no limit reported
        (sample(ts=100), sample(ts=110, cpu=1, limit=0)),
    ],
)
def test_cpu_utilisation_none_when_the_samples_cannot_give_one(
    before: TaskSample, after: TaskSample
) -> None:
    assert cpu_utilisation(before, after) is None


def test_memory_utilisation_is_rss_over_the_limit() -> None:
    assert memory_utilisation(sample(rss=96e6, mem_limit=128e6)) == pytest.approx(0.75)
    assert memory_utilisation(sample(rss=None)) is None
    assert memory_utilisation(sample(mem_limit=0)) is None


def test_the_mean_cpu_over_tasks_sampled_twice() -> None:
    previous = {"a": sample("a", 100, 0), "b": sample("b", 100, 0)}
    current = {
        "a": sample("a", 110, 5),  # 0.5 CPU of 0.5: 100 %
        "b": sample("b", 110, 1),  # 0.1 of 0.5: 20 %
        "c": sample("c", 110, 3),  # new task, no previous sample: left out
    }
    measured = measure_utilisation(Metric.CPU, previous, current)
    assert measured is not None
    assert measured.value == pytest.approx(0.6)
    assert measured.samples == 2


def test_the_first_cpu_sample_gives_no_measurement() -> None:
    assert measure_utilisation(Metric.CPU, {}, {"a": sample("a")}) is None


def test_the_mean_memory_over_tasks_needs_one_sample() -> None:
    current = {"a": sample("a", rss=32e6), "b": sample("b", rss=96e6), "c": sample("c", rss=None)}
    measured = measure_utilisation(Metric.MEMORY, {}, current)
    assert measured is not None
    assert measured.value == pytest.approx(0.5)
    assert measured.samples == 2


def test_requests_are_not_a_utilisation() -> None:
    with pytest.raises(ValueError, match="requestsPerSecond is not a utilisation"):
        measure_utilisation(Metric.REQUESTS, {}, {})


def test_request_rate_from_two_readings_of_the_counter() -> None:
    assert request_rate(None, (10.0, 500), 3) is None
    assert request_rate((10.0, 500), (20.0, 2500), 3) == Measurement(value=200.0, samples=3)
    assert request_rate((10.0, 500), (20.0, 100), 3) is None  # restarted load balancer
    assert request_rate((10.0, 500), (10.0, 600), 3) is None


def test_parse_statistics_reads_mesos_format_and_drops_malformed_entries() -> None:
    entries = [
        {
            "executor_id": "web.1234",
            "framework_id": "f-1",
            "statistics": {
                "timestamp": 1700000000.5,
                "cpus_user_time_secs": 1.25,
                "cpus_system_time_secs": 0.75,
                "cpus_limit": 0.6,
                "mem_rss_bytes": 1048576,
                "mem_limit_bytes": 33554432,
            },
        },
        {"executor_id": "no-stats"},
        {"executor_id": 5, "statistics": {"timestamp": 1}},
        {"executor_id": "no-timestamp", "statistics": {"cpus_limit": 1}},
        {"executor_id": "nan", "statistics": {"timestamp": float("nan")}},
        {"executor_id": "bool", "statistics": {"timestamp": True}},
        "garbage",
    ]
    parsed = parse_statistics(entries)
    assert list(parsed) == ["web.1234"]
    assert parsed["web.1234"] == TaskSample(
        "web.1234", 1700000000.5, 2.0, 0.6, 1048576.0, 33554432.0
    )
    assert parse_statistics({"not": "a list"}) == {}
