"""MarathonApp's schema: what a user may write, and the words for what is refused.

Each refusal is checked twice: by the pydantic model (the operator's Accepted condition) and
by the CRD's CEL rules as the API server evaluates them (operator/render.py's evaluator),
so `kubectl apply` already says what is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_operator.models import MARATHON_APP
from orchestrator_operator.models.marathonapp import (
    ARGS_NEED_IMAGE_MESSAGE,
    AUTOSCALING_RANGE_MESSAGE,
    AUTOSCALING_STRATEGY_MESSAGE,
    AUTOSCALING_TARGET_MESSAGE,
    CANARY_ANALYSIS_MESSAGE,
    CANARY_STEP_MESSAGE,
    CMD_OR_ARGS_MESSAGE,
    COMMAND_NEEDED_MESSAGE,
    CONSTRAINT_MESSAGE,
    ENV_NAME_MESSAGE,
    ENV_VALUE_MESSAGE,
    HEALTH_PATH_MESSAGE,
    HOST_VOLUME_MESSAGE,
    PARAMETERS_MESSAGE,
    PORT_INDEX_MESSAGE,
    PRIVILEGED_MESSAGE,
    STRATEGY_MESSAGE,
    UPGRADE_MESSAGE,
    MarathonAppSpec,
    MarathonAppStatus,
)
from orchestrator_operator.operator.builders.crd import build_crd
from orchestrator_operator.operator.reconcile import validation_message
from orchestrator_operator.operator.render import _defaulted, cel_problems

SCHEMA: dict[str, Any] = build_crd(MARATHON_APP)["spec"]["versions"][0]["schema"][
    "openAPIV3Schema"
]["properties"]["spec"]

WEB: dict[str, Any] = {
    "cluster": "prod",
    "app": {
        "id": "/web",
        "cmd": "python3 -m http.server $PORT0",
        "instances": 2,
        "portDefinitions": [{"port": 0, "name": "http"}],
        "healthChecks": [{"protocol": "HTTP", "path": "/", "gracePeriodSeconds": 10}],
        "env": {"GREETING": "hello", "TOKEN": {"secretKeyRef": {"name": "web-env", "key": "t"}}},
    },
}


def with_app(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(WEB)
    spec["app"].update(changes)
    return spec


def refusal(spec: dict[str, Any]) -> tuple[str, list[str]]:
    """The model's message and the CEL rules' messages for `spec`."""
    with pytest.raises(ValidationError) as raised:
        MarathonAppSpec.model_validate(spec)
    return validation_message(raised.value), cel_problems(
        SCHEMA, _defaulted(SCHEMA, copy.deepcopy(spec))
    )


def test_a_web_app_is_accepted_with_marathons_defaults_and_the_issues_upgrade_strategy() -> None:
    spec = MarathonAppSpec.model_validate(WEB)
    assert cel_problems(SCHEMA, _defaulted(SCHEMA, copy.deepcopy(WEB))) == []
    assert spec.app.upgrade_strategy.minimum_health_capacity == 0.8
    assert spec.app.upgrade_strategy.maximum_over_capacity == 0.2
    assert spec.strategy.type == "rolling"
    assert spec.drift == "Revert"
    assert spec.deletion_policy == "Delete"
    assert spec.app.env is not None
    assert spec.app.env["GREETING"] == "hello"


def test_an_id_without_a_leading_slash_is_made_absolute() -> None:
    assert MarathonAppSpec.model_validate(with_app(id="team/web")).app.id == "/team/web"


@pytest.mark.parametrize("bad", ["/Web", "/web/", "/-web", "/web/../db", "/we b", ""])
def test_an_id_marathon_would_refuse_is_refused(bad: str) -> None:
    message, _ = refusal(with_app(id=bad))
    assert "spec.app.id" in message


@pytest.mark.parametrize(
    ("docker", "expected"),
    [
        ({"image": "nginx", "privileged": True}, PRIVILEGED_MESSAGE),
        ({"image": "nginx", "parameters": [{"key": "pid", "value": "host"}]}, PARAMETERS_MESSAGE),
    ],
)
def test_docker_options_that_own_the_host_are_refused_saying_why(
    docker: dict[str, Any], expected: str
) -> None:
    spec = with_app(container={"type": "DOCKER", "docker": docker})
    del spec["app"]["cmd"]
    message, cel = refusal(spec)
    assert expected in message
    assert any(expected in problem for problem in cel), cel


def test_a_host_volume_is_refused_saying_why() -> None:
    spec = with_app(
        container={
            "type": "DOCKER",
            "docker": {"image": "nginx"},
            "volumes": [{"containerPath": "/data", "hostPath": "/", "mode": "RW"}],
        }
    )
    message, cel = refusal(spec)
    assert HOST_VOLUME_MESSAGE in message
    assert any(HOST_VOLUME_MESSAGE in problem for problem in cel), cel


def test_a_persistent_volume_is_accepted() -> None:
    spec = with_app(
        container={
            "type": "DOCKER",
            "docker": {"image": "nginx"},
            "volumes": [{"containerPath": "data", "persistent": {"size": 100}}],
        }
    )
    MarathonAppSpec.model_validate(spec)
    assert cel_problems(SCHEMA, _defaulted(SCHEMA, copy.deepcopy(spec))) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"args": ["-p", "80"]}, CMD_OR_ARGS_MESSAGE),
        ({"cmd": None, "args": ["serve"]}, ARGS_NEED_IMAGE_MESSAGE),
        ({"cmd": None}, COMMAND_NEEDED_MESSAGE),
        ({"constraints": [["hostname", "LIKE"]]}, CONSTRAINT_MESSAGE),
        ({"constraints": [["hostname", "SOMETIMES", "x"]]}, CONSTRAINT_MESSAGE),
        ({"healthChecks": [{"protocol": "TCP", "path": "/"}]}, HEALTH_PATH_MESSAGE),
        ({"healthChecks": [{"protocol": "COMMAND"}]}, HEALTH_PATH_MESSAGE),
        ({"upgradeStrategy": {"minimumHealthCapacity": 0, "maximumOverCapacity": 0}},
         UPGRADE_MESSAGE),
    ],
)  # fmt: skip
def test_an_app_marathon_cannot_run_is_refused_by_model_and_cel(
    changes: dict[str, Any], expected: str
) -> None:
    spec = with_app(**changes)
    spec["app"] = {k: v for k, v in spec["app"].items() if v is not None}
    message, cel = refusal(spec)
    assert expected in message
    assert any(expected in problem for problem in cel), cel


def test_an_env_name_must_be_a_shell_name() -> None:
    """Checked by the model only: CEL cannot type a map of strings-or-objects."""
    message, _ = refusal(with_app(env={"1BAD": "x"}))
    assert ENV_NAME_MESSAGE in message


@pytest.mark.parametrize(
    "value", [3, ["a"], {"secret": "x"}, {"secretKeyRef": {"name": "s"}}, {"value": "x"}]
)
def test_an_env_value_must_be_a_string_or_a_secret_key_ref(value: Any) -> None:
    message, _ = refusal(with_app(env={"NAME": value}))
    assert "spec.app.env" in message
    if not (isinstance(value, dict) and "secretKeyRef" in value):
        assert ENV_VALUE_MESSAGE in message


def test_a_health_check_needs_a_port_to_check() -> None:
    message, _ = refusal(with_app(portDefinitions=[]))
    assert PORT_INDEX_MESSAGE in message
    message, _ = refusal(
        with_app(healthChecks=[{"protocol": "TCP", "portIndex": 1}], portDefinitions=[{}])
    )
    assert PORT_INDEX_MESSAGE in message


def test_unknown_fields_are_refused() -> None:
    message, _ = refusal(with_app(privilegedMode=True))
    assert "spec.app.privilegedMode" in message


def test_strategies_and_autoscaling() -> None:
    canary = {"type": "canary", "canary": {"steps": [{"setWeight": 10}, {"pause": {}}]}}
    spec = MarathonAppSpec.model_validate({**WEB, "strategy": canary})
    assert spec.strategy.canary is not None
    assert spec.strategy.canary.steps[1].pause is not None
    assert spec.strategy.canary.steps[1].pause.duration_seconds is None
    default = MarathonAppSpec.model_validate({**WEB, "strategy": {"type": "canary", "canary": {}}})
    assert default.strategy.canary is not None
    assert [s.set_weight for s in default.strategy.canary.steps] == [10, 25, 50, 75, 100]
    blue_green = MarathonAppSpec.model_validate({**WEB, "strategy": {"type": "blueGreen"}})
    assert blue_green.strategy.type == "blueGreen"
    scaled = MarathonAppSpec.model_validate(
        {**WEB, "autoscaling": {"maxInstances": 5, "target": {"cpuUtilization": 0.6}}}
    )
    assert scaled.autoscaling is not None
    assert scaled.autoscaling.min_instances == 1


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"strategy": {"type": "rolling", "canary": {}}}, STRATEGY_MESSAGE),
        ({"strategy": {"type": "canary", "canary": {"steps": [{"setWeight": 10, "pause": {}}]}}},
         CANARY_STEP_MESSAGE),
        ({"strategy": {"type": "canary", "canary": {"steps": [{"analysis": {}}]}}},
         CANARY_ANALYSIS_MESSAGE),
        ({"autoscaling": {"minInstances": 5, "maxInstances": 2,
                          "target": {"cpuUtilization": 0.5}}}, AUTOSCALING_RANGE_MESSAGE),
        ({"autoscaling": {"maxInstances": 2,
                          "target": {"cpuUtilization": 0.5, "requestsPerSecond": 10}}},
         AUTOSCALING_TARGET_MESSAGE),
        ({"strategy": {"type": "blueGreen"},
          "autoscaling": {"maxInstances": 2, "target": {"cpuUtilization": 0.5}}},
         AUTOSCALING_STRATEGY_MESSAGE),
    ],
)  # fmt: skip
def test_strategy_and_autoscaling_mistakes_are_refused(
    extra: dict[str, Any], expected: str
) -> None:
    message, cel = refusal({**copy.deepcopy(WEB), **extra})
    assert expected in message
    assert any(expected in problem for problem in cel), cel


def test_the_status_model_reads_what_the_other_writers_write() -> None:
    status = MarathonAppStatus.model_validate(
        {
            "phase": "Ready",
            "marathon": {"appId": "/web", "running": 2, "deployment": {"id": "d1"}},
            "rollout": {"strategy": "canary", "phase": "Paused", "weights": {"/web": 90}},
            "autoscaling": {"desiredInstances": 3, "metric": {"name": "cpu", "value": 0.7}},
            "drift": {"detected": True, "fields": ["instances"]},
        }
    )
    assert status.marathon is not None
    assert status.marathon.running == 2
    assert status.rollout is not None
    assert status.rollout.phase == "Paused"
    assert status.autoscaling is not None
    assert status.autoscaling.desired_instances == 3
