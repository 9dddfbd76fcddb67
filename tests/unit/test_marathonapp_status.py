"""The MarathonApp's pure parts: the Marathon app sent, drift, and what status says."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orchestrator_operator.mesos.marathon_api import app_path, latch_sequence, parse_credentials
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.marathonapp import ENV_LABEL, ENV_LABEL_VALUE, MarathonAppSpec
from orchestrator_operator.operator.marathonapp import metrics
from orchestrator_operator.operator.marathonapp.secrets import SecretRefused, secret_value
from orchestrator_operator.operator.marathonapp.status import (
    MarathonObservation,
    app_definition,
    build_status,
    claim_winner,
    desired_instances,
    drift_fields,
    settled,
)

SPEC = MarathonAppSpec.model_validate(
    {
        "cluster": "prod",
        "app": {
            "id": "web",
            "cmd": "python3 -m http.server $PORT0",
            "instances": 3,
            "portDefinitions": [{"port": 0}],
            "env": {"MODE": "prod", "TOKEN": {"secretKeyRef": {"name": "env", "key": "token"}}},
        },
    }
)


def marathon_view(definition: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The app as Marathon answers GET /v2/apps/{id}: its defaults filled in, service ports
    picked, counts beside the definition."""
    app = copy.deepcopy(definition)
    app.update(
        version="2026-12-03T21:00:00.000Z", user=None, executor="", fetch=[], gpus=0,
        tasksStaged=0, tasksRunning=3, tasksHealthy=0, tasksUnhealthy=0, deployments=[],
    )  # fmt: skip
    app["portDefinitions"] = [{"port": 10003, "protocol": "tcp", "labels": {}}]
    app["upgradeStrategy"] = {"minimumHealthCapacity": 0.8, "maximumOverCapacity": 0.2}
    app.update(changes)
    return app


def test_the_app_sent_has_the_secret_values_and_the_instances_decided() -> None:
    sent = app_definition(SPEC, {"TOKEN": "s3cret"}, 5)
    assert sent["id"] == "/web"
    assert sent["instances"] == 5
    assert sent["env"] == {"MODE": "prod", "TOKEN": "s3cret"}
    assert sent["upgradeStrategy"] == {"minimumHealthCapacity": 0.8, "maximumOverCapacity": 0.2}
    assert "strategy" not in sent and "cluster" not in sent


def test_a_docker_app_is_sent_without_the_refused_fields() -> None:
    spec = MarathonAppSpec.model_validate(
        {"cluster": "c", "app": {"id": "/d", "container": {"docker": {"image": "nginx"}}}}
    )
    docker = app_definition(spec, {}, 1)["container"]["docker"]
    assert docker == {"image": "nginx", "network": "HOST", "forcePullImage": False}


def test_marathons_defaults_and_picked_ports_are_no_drift() -> None:
    sent = app_definition(SPEC, {"TOKEN": "s3cret"}, 3)
    assert drift_fields(sent, marathon_view(sent)) == []


def test_a_change_made_in_marathon_is_drift_named_by_field() -> None:
    sent = app_definition(SPEC, {"TOKEN": "s3cret"}, 3)
    scaled = marathon_view(sent, instances=1)
    assert drift_fields(sent, scaled) == ["instances"]
    more_env = marathon_view(sent, env={**sent["env"], "DEBUG": "1"})
    assert drift_fields(sent, more_env) == ["env"]
    other_cmd = marathon_view(sent, cmd="sleep 1000", cpus=2)
    assert drift_fields(sent, other_cmd) == ["cmd", "cpus"]


def test_autoscaling_sends_the_autoscalers_decision_within_min_and_max() -> None:
    spec = MarathonAppSpec.model_validate(
        {
            **SPEC.model_dump(by_alias=True, exclude_none=True),
            "autoscaling": {
                "minInstances": 2,
                "maxInstances": 6,
                "target": {"cpuUtilization": 0.5},
            },
        }
    )
    assert desired_instances(spec, {}) == 3  # nothing decided yet: spec.app.instances
    assert desired_instances(spec, {"autoscaling": {"desiredInstances": 5}}) == 5
    assert desired_instances(spec, {"autoscaling": {"desiredInstances": 50}}) == 6
    assert desired_instances(spec, {"autoscaling": {"desiredInstances": 0}}) == 2
    assert desired_instances(SPEC, {"autoscaling": {"desiredInstances": 9}}) == 3


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def status_of(obs: MarathonObservation, spec: MarathonAppSpec = SPEC) -> dict[str, Any]:
    return build_status(spec, obs, 3, [], 4, "2026-12-03T21:00:00Z")


def test_a_deployed_app_is_ready() -> None:
    sent = app_definition(SPEC, {"TOKEN": "x"}, 3)
    status = status_of(MarathonObservation("/web", app=marathon_view(sent)))
    assert status["phase"] == "Ready"
    assert status["marathon"]["running"] == 3
    found = conditions(status)
    assert found["Available"][:2] == ("True", "MinimumInstancesHealthy")
    assert found["Progressing"][:2] == ("False", "Deployed")
    assert found["Degraded"][:2] == ("False", "Healthy")
    assert settled(status)


def test_a_running_deployment_is_progressing_with_its_step() -> None:
    sent = app_definition(SPEC, {"TOKEN": "x"}, 3)
    deployment = {
        "id": "d-1", "currentStep": 2, "totalSteps": 2,
        "steps": [{"actions": [{"action": "StartApplication", "app": "/web"}]},
                  {"actions": [{"action": "ScaleApplication", "app": "/web"}]}],
    }  # fmt: skip
    obs = MarathonObservation(
        "/web", app=marathon_view(sent, tasksRunning=1, tasksStaged=2), deployment=deployment
    )
    status = status_of(obs)
    assert status["phase"] == "Progressing"
    assert status["marathon"]["deployment"] == {
        "id": "d-1", "currentStep": 2, "totalSteps": 2,
        "steps": ["StartApplication /web", "ScaleApplication /web"],
    }  # fmt: skip
    found = conditions(status)
    assert found["Progressing"] == (
        "True", "Deploying", "deployment d-1 at step 2 of 2: ScaleApplication /web",
    )  # fmt: skip
    assert found["Available"][:2] == ("False", "InstancesUnavailable")
    assert not settled(status)


def test_health_checks_count_healthy_instances_and_flapping_is_degraded() -> None:
    spec = MarathonAppSpec.model_validate(
        {
            **SPEC.model_dump(by_alias=True, exclude_none=True),
            "app": {
                **SPEC.app.model_dump(by_alias=True, exclude_none=True),
                "healthChecks": [{"protocol": "HTTP", "path": "/"}],
            },
        }
    )
    sent = app_definition(spec, {"TOKEN": "x"}, 3)
    obs = MarathonObservation(
        "/web",
        app=marathon_view(sent, tasksRunning=3, tasksHealthy=1, tasksUnhealthy=2),
        queue_entry={"app": {"id": "/web"}, "delay": {"timeLeftSeconds": 12, "overdue": False}},
        relaunches=4,
    )
    status = status_of(obs, spec)
    assert status["marathon"]["flapping"] is True
    assert status["marathon"]["launchDelaySeconds"] == 12
    found = conditions(status)
    assert found["Available"] == (
        "False", "InstancesUnavailable", "1 of 3 instances healthy (at least 3 needed)",
    )  # fmt: skip
    assert found["Degraded"][:2] == ("True", "Flapping")
    assert "4 relaunches" in found["Degraded"][2]
    assert status["phase"] == "Degraded"


def test_reported_drift_is_degraded_and_named() -> None:
    spec = SPEC.model_copy(update={"drift": "Report"})
    sent = app_definition(spec, {"TOKEN": "x"}, 3)
    obs = MarathonObservation("/web", app=marathon_view(sent), drift=["instances"])
    status = status_of(obs, spec)
    assert status["drift"] == {"detected": True, "fields": ["instances"], "lastRevertedAt": None}
    assert conditions(status)["Degraded"][:2] == ("True", "DriftReported")


def test_no_cluster_or_no_marathon_says_so_and_keeps_the_last_marathon_figures() -> None:
    obs = MarathonObservation(
        "/web", problem=("ClusterNotFound", "MesosCluster prod does not exist in namespace apps")
    )
    status = status_of(obs)
    assert "marathon" not in status  # what was last seen stays as it was
    found = conditions(status)
    assert found["Available"] == (
        "False", "ClusterNotFound", "MesosCluster prod does not exist in namespace apps",
    )  # fmt: skip
    assert status["phase"] == "Degraded"
    unreachable = status_of(MarathonObservation("/web", problem=("MarathonUnreachable", "x")))
    assert conditions(unreachable)["Available"][0] == "Unknown"


def test_an_unavailable_strategy_is_rolled_out_as_rolling_and_says_so() -> None:
    spec = SPEC.model_copy(update={"strategy": SPEC.strategy.model_copy(update={"type": "canary"})})
    sent = app_definition(spec, {"TOKEN": "x"}, 3)
    found = conditions(status_of(MarathonObservation("/web", app=marathon_view(sent)), spec))
    assert found["Progressing"][:2] == ("True", "StrategyPending")
    assert "canary" in found["Progressing"][2]


def test_the_oldest_claim_manages_the_app() -> None:
    claims = [("2026-12-03T21:00:05Z", "web-b"), ("2026-12-03T21:00:01Z", "web-a")]
    assert claim_winner(claims) == "web-a"
    assert claim_winner([("2026-12-03T21:00:01Z", "b"), ("2026-12-03T21:00:01Z", "a")]) == "a"
    assert claim_winner([]) is None


def test_client_helpers() -> None:
    assert app_path("/team/web") == "/v2/apps/team/web"
    assert latch_sequence("_c_5c6e-latch-0000000012") == 12
    assert latch_sequence("json.info_0000000001") is None
    credentials = parse_credentials("ops:pa55\n")
    assert (credentials.user, credentials.password) == ("ops", "pa55")
    assert "pa55" not in repr(credentials)


def _secret(labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"name": "web-env", "labels": labels}, "data": encoded}


def test_an_env_secret_is_read_only_when_labelled_for_it() -> None:
    ref = SecretKeyRef(name="web-env", key="token")
    labelled = _secret({ENV_LABEL: ENV_LABEL_VALUE}, {"token": "s3cret"})
    assert secret_value(labelled, "apps", ref, ENV_LABEL, ENV_LABEL_VALUE) == "s3cret"
    for secret, words in (
        (_secret({}, {"token": "s3cret"}), "is not labelled orchestrator.dev/marathonapp-env=true"),
        (_secret({ENV_LABEL: ENV_LABEL_VALUE}, {"other": "s3cret"}), "has no key 'token'"),
        (None, "Secret apps/web-env not found"),
    ):
        with pytest.raises(SecretRefused) as refused:
            secret_value(secret, "apps", ref, ENV_LABEL, ENV_LABEL_VALUE)
        assert words in str(refused.value)
        assert "s3cret" not in str(refused.value)


def test_the_series_follow_the_status_and_go_with_the_app() -> None:
    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"namespace": "apps", "name": "web", **labels})

    sent = app_definition(SPEC, {"TOKEN": "x"}, 3)
    deployment = {"id": "d-1", "currentStep": 1, "totalSteps": 1, "steps": []}
    obs = MarathonObservation(
        "/web", app=marathon_view(sent, tasksRunning=2), deployment=deployment
    )
    metrics.export_status("apps", "web", status_of(obs), 3)
    assert value("orchestrator_marathonapp_instances", state="desired") == 3
    assert value("orchestrator_marathonapp_instances", state="running") == 2
    assert value("orchestrator_marathonapp_deployment_in_progress") == 1
    assert value("orchestrator_marathonapp_condition", condition="Progressing") == 1
    metrics.drift_reverted("apps", "web")
    assert value("orchestrator_marathonapp_drift_reverted_total") == 1
    metrics.forget("apps", "web")
    assert value("orchestrator_marathonapp_instances", state="running") is None
    assert value("orchestrator_marathonapp_drift_reverted_total") is None
