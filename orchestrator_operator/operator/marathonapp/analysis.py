"""Pure: a canary analysis sample judged against the MarathonApp's limits.

A canary's `{analysis: {}}` step takes `count` samples `intervalSeconds` apart of what the
load balancer saw of the new app's servers (the share of 5xx answers since the previous
sample, the 99th percentile of response times) and of a Prometheus instant query; any value
over its limit fails the step, and the rollout rolls back. Reading the figures (HTTP to the
load balancer and to Prometheus) is `strategy.py`'s; this module only judges them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrometheusCheck:
    address: str
    query: str
    max_value: float


@dataclass(frozen=True)
class AnalysisConfig:
    interval_seconds: float
    count: int
    max_error_rate: float | None
    max_latency_p99_ms: float | None
    prometheus: PrometheusCheck | None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> AnalysisConfig:
        """From `spec.strategy.canary.analysis` (camelCase, as stored)."""
        prometheus = spec.get("prometheus")
        return cls(
            interval_seconds=float(spec.get("intervalSeconds", 10)),
            count=int(spec.get("count", 3)),
            max_error_rate=_float_or_none(spec.get("maxErrorRate")),
            max_latency_p99_ms=_float_or_none(spec.get("maxLatencyP99Milliseconds")),
            prometheus=(
                PrometheusCheck(
                    address=str(prometheus["address"]),
                    query=str(prometheus["query"]),
                    max_value=float(prometheus["maxValue"]),
                )
                if prometheus
                else None
            ),
        )

    @property
    def reads_load_balancer(self) -> bool:
        return self.max_error_rate is not None or self.max_latency_p99_ms is not None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class Sample:
    """One reading over the last `intervalSeconds`; a field is None when it was not asked
    for or not read, `*_error` says why a figure asked for could not be read."""

    requests: int | None = None  # the new app's requests the load balancer answered
    errors: int | None = None  # of which 5xx
    latency_p99_ms: float | None = None
    lb_error: str | None = None
    prometheus_value: float | None = None
    prometheus_error: str | None = None


@dataclass(frozen=True)
class Result:
    step: int
    metric: str
    value: float | None
    limit: float
    passed: bool
    detail: str

    def to_status(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "metric": self.metric,
            "value": self.value,
            "limit": self.limit,
            "result": "Pass" if self.passed else "Fail",
        }


def evaluate(config: AnalysisConfig, step: int, sample: Sample) -> list[Result]:
    """Judge one sample; a figure that was asked for and could not be read fails. No request
    to the new app in the window is no error (its p99 then passes unread: no answer was slow)."""
    results: list[Result] = []
    lb_read = sample.requests is not None and sample.errors is not None
    why = sample.lb_error or "no reading"
    if config.max_error_rate is not None:
        limit = config.max_error_rate
        if not lb_read:
            results.append(
                Result(step, "errorRate", None, limit, False, f"error rate unknown: {why}")
            )
        else:
            requests, errors = int(sample.requests or 0), int(sample.errors or 0)
            rate = errors / requests if requests else 0.0
            results.append(
                Result(
                    step,
                    "errorRate",
                    round(rate, 4),
                    limit,
                    rate <= limit,
                    f"error rate {rate:.1%} over {requests} requests (limit {limit:.1%})",
                )
            )
    if config.max_latency_p99_ms is not None:
        limit = config.max_latency_p99_ms
        value = sample.latency_p99_ms
        if not lb_read:
            results.append(
                Result(step, "latencyP99", None, limit, False, f"p99 latency unknown: {why}")
            )
        elif value is None:
            results.append(Result(step, "latencyP99", None, limit, True, "no requests"))
        else:
            results.append(
                Result(
                    step,
                    "latencyP99",
                    round(value, 1),
                    limit,
                    value <= limit,
                    f"p99 latency {value:.0f} ms (limit {limit:.0f} ms)",
                )
            )
    if config.prometheus is not None:
        limit = config.prometheus.max_value
        if sample.prometheus_value is None:
            why = sample.prometheus_error or "no reading"
            results.append(
                Result(step, "prometheus", None, limit, False, f"Prometheus query failed: {why}")
            )
        else:
            value = sample.prometheus_value
            results.append(
                Result(
                    step,
                    "prometheus",
                    value,
                    limit,
                    value <= limit,
                    f"Prometheus query value {value:g} (limit {limit:g})",
                )
            )
    return results


def lb_sample(view: Any, app_id: str) -> Sample:
    """The new app's figures from the load balancer's `GET /v1/backends/<name>/stats?seconds=N`
    (docs/loadbalancer.md): its entry under `apps`; none there means no request reached it."""
    if not isinstance(view, dict) or not isinstance(view.get("apps"), dict):
        return Sample(lb_error="the load balancer's answer holds no per-app figures")
    figures = view["apps"].get(app_id)
    if figures is None:
        return Sample(requests=0, errors=0)
    try:
        p99 = figures.get("latencyP99Ms")
        return Sample(
            requests=int(figures["requests"]),
            errors=int(figures["errors5xx"]),
            latency_p99_ms=None if p99 is None else float(p99),
        )
    except (KeyError, TypeError, ValueError):
        return Sample(lb_error="the load balancer's figures for the app are malformed")


def prometheus_scalar(body: Any) -> float | str:
    """The value of an instant query's answer (`/api/v1/query`), or why there is none: a
    vector must hold exactly one series (an empty one is no data, several are ambiguous)."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        return f"query refused: {error or 'not a Prometheus answer'}"
    data = body.get("data") or {}
    kind = data.get("resultType")
    result: Any = data.get("result")
    try:
        if kind in ("scalar", "string"):
            value = float(result[1])
        elif kind == "vector":
            if len(result) != 1:
                return f"the query returned {len(result)} series, not one"
            value = float(result[0]["value"][1])
        else:
            return f"the query returned a {kind}, not a scalar or a one-series vector"
    except (TypeError, ValueError, IndexError, KeyError):
        return "the query's answer holds no number"
    if math.isnan(value) or math.isinf(value):
        return f"the query's value is {value}"
    return value
