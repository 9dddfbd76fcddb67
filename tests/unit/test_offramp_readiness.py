"""operator/marathonapp/readiness.py: each feature the issue names gets its words and the
verdict it deserves (issue 21, item 2)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.operator.marathonapp.readiness import (
    Feature,
    Severity,
    Verdict,
    assess,
    blocking,
    looks_secret,
    summary,
)
from orchestrator_operator.operator.marathonapp.status import readiness_status

PORTS = [{"containerPort": 80, "hostPort": 0}]
DOCKER: dict[str, Any] = {
    "type": "DOCKER",
    "docker": {"image": "nginx", "network": "BRIDGE", "portMappings": PORTS},
}


def _app(**fields: Any) -> dict[str, Any]:
    return {"id": "/web", "container": DOCKER, "cpus": 0.5, "mem": 64, **fields}


def _features(app: dict[str, Any]) -> dict[str, str]:
    return {str(f.feature): str(f.severity) for f in assess(app).findings}


def test_a_plain_docker_app_with_http_checks_is_ready() -> None:
    report = assess(_app(healthChecks=[{"protocol": "MESOS_HTTP", "path": "/health"}]))
    assert report.verdict == Verdict.READY
    assert [str(f.feature) for f in report.findings] == ["health check"]
    assert "httpGet" in report.findings[0].message
    assert summary(report) == "Ready: every feature translates by itself"


@pytest.mark.parametrize(
    ("constraint", "feature", "words"),
    [
        (["hostname", "UNIQUE"], "constraint", "anti-affinity on kubernetes.io/hostname"),
        (["rack", "IS", "r1"], "constraint", "node selector rack=r1"),
        (["rack", "LIKE", "r1"], "constraint", "node selector rack=r1"),
        (["rack", "UNLIKE", "r2"], "constraint", "NotIn [r2]"),
        (["rack", "LIKE", "r[12]"], "constraint without a clean affinity equivalent",
         "regular expression"),
        (["rack", "GROUP_BY"], "constraint without a clean affinity equivalent",
         "topology spread"),
        (["hostname", "MAX_PER", "2"], "constraint without a clean affinity equivalent",
         "no per-domain maximum"),
        (["rack", "CLUSTER"], "constraint without a clean affinity equivalent",
         "whichever the first task"),
    ],
)  # fmt: skip
def test_constraints_map_to_affinity_where_clean(
    constraint: list[str], feature: str, words: str
) -> None:
    report = assess(_app(constraints=[constraint]))
    (finding,) = report.findings
    assert str(finding.feature) == feature
    assert words in finding.message
    clean = feature == "constraint"
    assert report.verdict == (Verdict.READY if clean else Verdict.NEEDS_REVIEW)


def test_each_named_feature_blocks_or_asks_for_review() -> None:
    volumes = {**DOCKER, "volumes": [{"containerPath": "data", "mode": "RW",
                                      "persistent": {"size": 512}}]}  # fmt: skip
    assert _features(_app(container=volumes)) == {"persistent volume": "Blocker"}
    assert _features(_app(fetch=[{"uri": "https://example.org/app.tgz"}])) == {
        "fetch URI": "Blocker"
    }
    assert _features(_app(executor="/opt/my-executor")) == {"executor-specific feature": "Blocker"}
    fixed = [{"containerPort": 80, "hostPort": 8080}]
    hosts = {**DOCKER, "docker": {**DOCKER["docker"], "portMappings": fixed}}
    assert _features(_app(container=hosts)) == {"host port": "Review"}
    command = {"protocol": "COMMAND", "command": {"value": "pgrep nginx"}}
    assert _features(_app(healthChecks=[command])) == {"command health check": "Review"}
    assert _features(_app(acceptedResourceRoles=["slave_public"])) == {
        "Mesos-only feature": "Review"
    }
    assert _features(_app(dependencies=["/db"])) == {"dependency": "Review"}
    assert _features(_app(user="nobody")) == {"user": "Review"}
    assert _features(_app(unreachableStrategy={"inactiveAfterSeconds": 60})) == {
        "Mesos-only feature": "Review"
    }
    assert _features(_app(gpus=1)) == {"GPUs": "Review"}
    assert _features(_app(env={"DB_PASSWORD": "x"})) == {"secret in env": "Review"}
    assert _features(_app(env={"DB": {"secret": "db"}})) == {"Marathon secret": "Review"}
    # A command with no image: nothing for a pod to run, until spec.kubernetes.image.
    bare = {"id": "/job", "cmd": "./run.sh", "fetch": [{"uri": "http://x/run.sh"}]}
    assert assess(bare).verdict == Verdict.BLOCKED
    assert {str(f.feature) for f in blocking(assess(bare))} == {
        "executor-specific feature",
        "fetch URI",
    }
    assert assess(bare, image="registry/job:1").verdict == Verdict.READY


def test_requireports_in_host_networking_is_a_host_port() -> None:
    app = {"id": "/h", "cmd": "x", "container": DOCKER, "requirePorts": True,
           "networks": [{"mode": "host"}], "portDefinitions": [{"port": 9000}]}  # fmt: skip
    app["container"] = {"type": "DOCKER", "docker": {"image": "i"}}
    (finding,) = assess(app).findings
    assert finding.feature == Feature.HOST_PORT and "9000" in finding.message


def test_secret_looking_env() -> None:
    assert looks_secret("API_TOKEN", "abc")
    assert looks_secret("db_password", "abc")
    assert looks_secret("DATABASE_URL", "postgres://app:hunter2@db:5432/app")
    assert not looks_secret("DATABASE_URL", "postgres://db:5432/app")
    assert not looks_secret("MODE", "production")


def test_status_readiness_is_computed_from_spec_app() -> None:
    spec = MarathonAppSpec.model_validate({"cluster": "c", "app": {
        "id": "/web", "cmd": "python3 -m http.server $PORT0", "portDefinitions": [{"port": 0}],
        "constraints": [["hostname", "MAX_PER", "1"]],
        "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"}}],
    }})  # fmt: skip
    status = readiness_status(spec)
    assert status["verdict"] == "Blocked"
    assert {f["feature"] for f in status["findings"]} == {
        "executor-specific feature",
        "constraint without a clean affinity equivalent",
        "command health check",
    }
    assert status["summary"].startswith("Blocked: executor-specific feature")
    assert all(f["severity"] in {s.value for s in Severity} for f in status["findings"])


def test_the_ui_summary_carries_the_verdict_and_findings() -> None:
    from orchestrator_operator.monitor.app.platform import marathonapp_summary

    spec = {"cluster": "c", "app": {"id": "/db", "cmd": "postgres"}}
    status = readiness_status(MarathonAppSpec.model_validate(spec))
    obj = {"metadata": {"name": "db", "namespace": "n"}, "spec": spec,
           "status": {"readiness": status}}  # fmt: skip
    shown = marathonapp_summary(obj)["readiness"]
    assert shown["verdict"] == "Blocked"
    assert shown["findings"][0]["feature"] == "executor-specific feature"
    assert shown["summary"] == status["summary"]
    assert marathonapp_summary({**obj, "status": {}})["readiness"] is None
