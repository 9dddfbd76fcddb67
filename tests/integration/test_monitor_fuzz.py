"""Schemathesis over the monitoring app's own OpenAPI document (issue 17, point 11): every
operation, generated from the document the running app serves, with the read-write token, the
read-only token and no token, positive and negative data, against a real app process. No
response may be a 5xx, and each must conform to the document (status code, content type,
schema). The number of cases is bounded (EXAMPLES per operation, mode and identity) so the run
takes well under a minute; the figures are printed (-s) and quoted in docs/security.md.

    .venv/bin/pytest -s -q tests/integration/test_monitor_fuzz.py
"""

from __future__ import annotations

import contextlib
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator_operator.monitor.report import encode_report
from testenv.monitor_app import MonitorAppProcess
from testenv.synthetic_reports import synthetic_report

TOKEN = "fuzz-write-token"
READ_TOKEN = "fuzz-read-token"
EXAMPLES = 30
# not_a_server_error is replaced by the count below: the platform routes answer a documented
# 503 when the app cannot reach Kubernetes (none here), and controls a 503 when the container's
# probe has no control channel (no probe here); any other 5xx fails the test.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
IDENTITIES: dict[str, dict[str, str]] = {
    "read-write": {"Authorization": f"Bearer {TOKEN}"},
    "read-only": {"Authorization": f"Bearer {READ_TOKEN}"},
    "none": {},
}


def test_every_operation_survives_generated_requests(tmp_path: Path) -> None:
    with MonitorAppProcess(
        tmp_path,
        TOKEN,
        read_only_token=READ_TOKEN,
        kubeconfig=tmp_path / "no-kubeconfig",  # the platform routes answer 503
    ) as app:
        auth = IDENTITIES["read-write"]
        for i in range(2):  # something to read: hosts, containers, processes
            body = gzip.compress(encode_report(synthetic_report(i, 2, containers=3)))
            r = requests.post(
                f"{app.url}/api/report",
                data=body,
                headers={**auth, "Content-Encoding": "gzip"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
        assert requests.get(f"{app.url}/api/openapi.json", timeout=30).status_code == 401
        schema = schemathesis.openapi.from_url(f"{app.url}/api/openapi.json", headers=auth)
        session = requests.Session()
        statuses: Counter[tuple[str, int]] = Counter()
        failures: list[str] = []
        results = list(schema.get_all_operations())
        operations = [result.ok() for result in results if isinstance(result, Ok)]
        assert len(operations) == len(results), "the app's OpenAPI document has invalid parts"
        # schemathesis leaves out the document's own URL (checked above: 401 without a token)
        assert len(operations) >= 12, " ".join(op.label for op in operations)

        def fuzz(operation: Any, mode: schemathesis.GenerationMode, who: str) -> None:
            label = f"{operation.label} [{mode.value}, {who}]"

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                # the identity's Authorization (or none) over whatever headers were generated
                headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
                case.headers = {**headers, **IDENTITIES[who]}
                response = case.call(base_url=app.url, session=session, timeout=30)
                statuses[(who, response.status_code)] += 1
                if response.status_code >= 500 and not (
                    response.status_code == 503
                    and operation.path.startswith(("/api/platform/", "/api/control/"))
                ):
                    failures.append(f"{label} {response.status_code}: {response.text[:400]}")
                try:
                    case.validate_response(response, checks=CHECKS)
                except (Exception, BaseExceptionGroup) as error:  # reported below
                    failures.append(f"{label} {response.status_code}: {str(error)[:600]}")

            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                run()  # Unsatisfiable: no negative data can be generated for an operation

        for operation in operations:
            for mode in schemathesis.GenerationMode:
                for who in IDENTITIES:
                    fuzz(operation, mode, who)

        total = sum(statuses.values())
        server_errors = sum(n for (_, status), n in statuses.items() if status >= 500)
        documented_503 = sum(n for (_, status), n in statuses.items() if status == 503)
        by_status = Counter[int]()
        for (_, status), n in statuses.items():
            by_status[status] += n
        print(
            f"\nschemathesis: {len(operations)} operations, {total} requests "
            f"({EXAMPLES} examples per operation, mode and identity); statuses "
            f"{dict(sorted(by_status.items()))}; 5xx: {server_errors} "
            f"({documented_503} documented 503s: platform routes without Kubernetes, "
            "controls without a probe)"
        )
        assert not failures, "\n".join(failures[:20])
        assert total >= len(operations) * 3
        # the app still merges and answers (the first reports have expired by now: 15 s TTL)
        assert app.running()
        body = gzip.compress(encode_report(synthetic_report(7, 8, containers=3)))
        headers = {**auth, "Content-Encoding": "gzip"}
        r = requests.post(f"{app.url}/api/report", data=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        r = requests.get(f"{app.url}/api/topology/hosts", headers=auth, timeout=30)
        assert r.status_code == 200 and "host:host-7" in r.json()["nodes"]
