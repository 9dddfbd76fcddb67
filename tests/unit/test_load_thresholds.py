"""The load-test runner's verdict (tests/load/run.py): Locust's statistics CSV against the
thresholds of tests/load/thresholds.yaml. A run with errors, a slow request name, a name
that never ran or too few requests fails; a run within every threshold passes."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.load.run import LOCUSTFILES, check, read_stats

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
    "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
    "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)


def _csv(tmp_path: Path, rows: list[tuple[str, str, int, int, int]]) -> Path:
    """rows: (type, name, requests, failures, p95 ms), as Locust writes <prefix>_stats.csv."""
    lines = [HEADER]
    for type_, name, requests, failures, p95 in rows:
        pcts = [str(p95 // 2)] * 5 + [str(p95)] * 6
        lines.append(
            f"{type_},{name},{requests},{failures},{p95 // 2},{p95 // 2},1,{p95},100,1.0,0.0,"
            + ",".join(pcts)
        )
    path = tmp_path / "app_stats.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


LIMITS = {"max_error_rate": 0.01, "min_requests": 100, "p95_ms": {"GET /x": 500, "WS": 1000}}


def test_a_run_within_every_threshold_passes(tmp_path: Path) -> None:
    rows = read_stats(_csv(tmp_path, [
        ("GET", "GET /x", 300, 1, 400), ("WS", "WS", 10, 0, 900), ("", "Aggregated", 310, 1, 450),
    ]))  # fmt: skip
    assert rows["GET /x"].p95 == 400
    assert check(rows, LIMITS) == []


def test_errors_a_slow_name_a_missing_name_and_too_few_requests_each_fail(tmp_path: Path) -> None:
    rows = read_stats(_csv(tmp_path, [
        ("GET", "GET /x", 60, 3, 800), ("", "Aggregated", 60, 3, 800),
    ]))  # fmt: skip
    failed = check(rows, LIMITS)
    assert failed == [
        "60 requests, fewer than the minimum 100",
        "error rate 5.00% (3/60) over 1.00%",
        "GET /x: p95 800 ms over 500 ms",
        "WS: no requests (expected some)",
    ]


def test_no_statistics_at_all_fails(tmp_path: Path) -> None:
    rows = read_stats(_csv(tmp_path, [("", "Aggregated", 0, 0, 0)]))
    assert check(rows, LIMITS) == ["no requests were made"]


def test_the_thresholds_file_names_only_requests_the_locustfiles_make() -> None:
    limits = yaml.safe_load((Path(LOCUSTFILES["app"]).parent / "thresholds.yaml").read_text())
    assert set(limits) == set(LOCUSTFILES)
    sources = {suite: path.read_text() for suite, path in LOCUSTFILES.items()}
    for suite, suite_limits in limits.items():
        for name in suite_limits["p95_ms"]:
            # a literal name, or "<Kind> created|updated -> status" / "create|patch <Kind>"
            kind = name.split()[0] if "->" in name else name.split()[-1]
            assert name in sources[suite] or kind in sources[suite], (suite, name)
