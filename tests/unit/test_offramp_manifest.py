"""offramp/manifest.py: a MarathonApp manifest from a Marathon app as /v2/apps answers it,
which the operator adopts without a PUT (issue 21, item 1)."""

from __future__ import annotations

from typing import Any

import yaml

from orchestrator_operator.models.marathonapp import MarathonAppSpec
from orchestrator_operator.offramp.manifest import build, build_all, group_of, name_for
from orchestrator_operator.operator.marathonapp.status import app_definition, drift_fields

# /v2/apps/{id} of Marathon 1.11 for a Docker app in a group (fields Marathon adds itself
# included: version, versionInfo, executor, fetch, networks, task counts ...).
MARATHON_APP: dict[str, Any] = {
    "id": "/shop/web", "cmd": None, "args": None, "user": None,
    "env": {"MODE": "prod", "API_TOKEN": "t0k3n-value", "DATABASE_URL": "pg://app:pw@db/app"},
    "instances": 3, "cpus": 0.25, "mem": 64.0, "disk": 0.0, "gpus": 0, "executor": "",
    "constraints": [["hostname", "UNIQUE"]], "uris": [], "fetch": [], "storeUrls": [],
    "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300,
    "container": {"type": "DOCKER", "volumes": [], "docker": {
        "image": "nginx:1.27", "network": "BRIDGE", "forcePullImage": False,
        "privileged": False, "parameters": [],
        "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10001,
                          "protocol": "tcp", "name": "http", "labels": {}}]}},
    "healthChecks": [{"protocol": "MESOS_HTTP", "path": "/", "portIndex": 0,
                      "gracePeriodSeconds": 30, "intervalSeconds": 5, "timeoutSeconds": 2,
                      "maxConsecutiveFailures": 3, "delaySeconds": 15, "ipProtocol": "IPv4"}],
    "readinessChecks": [], "dependencies": [],
    "upgradeStrategy": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1},
    "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.org"},
    "killSelection": "YOUNGEST_FIRST",
    "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
    "requirePorts": False, "portDefinitions": [], "networks": [{"mode": "container/bridge"}],
    "version": "2026-12-04T02:00:00.000Z",
    "versionInfo": {"lastScalingAt": "2026-12-04T02:00:00.000Z",
                    "lastConfigChangeAt": "2026-12-04T02:00:00.000Z"},
    "tasksStaged": 0, "tasksRunning": 3, "tasksHealthy": 3, "tasksUnhealthy": 0,
    "deployments": [],
}  # fmt: skip


def test_the_manifest_holds_the_app_and_is_adopted_as_it_is() -> None:
    item = build(MARATHON_APP, "prod", "apps")
    assert item.name == "shop-web" and item.file_name == "shop-web.yaml"
    assert item.changes == ()
    assert item.text is not None and item.manifest is not None
    manifest = yaml.safe_load(item.text)
    assert manifest == item.manifest
    assert manifest["kind"] == "MarathonApp"
    assert manifest["metadata"]["labels"] == {"orchestrator.dev/marathon-group": "shop"}
    assert manifest["spec"]["deletionPolicy"] == "Orphan"
    app = manifest["spec"]["app"]
    assert app["id"] == "/shop/web"
    assert app["labels"]["HAPROXY_0_VHOST"] == "shop.example.org"
    # Marathon's own fields stay out; the spec's defaults are not repeated.
    for key in ("version", "versionInfo", "executor", "fetch", "networks", "tasksRunning"):
        assert key not in app
    assert "killSelection" not in app and "backoffFactor" not in app
    # What the operator would send equals what Marathon runs: adopted, no PUT.
    spec = MarathonAppSpec.model_validate(manifest["spec"])
    env = {"API_TOKEN": "t0k3n-value", "DATABASE_URL": "pg://app:pw@db/app"}
    assert drift_fields(app_definition(spec, env, spec.app.instances), MARATHON_APP) == []


def test_secret_values_never_reach_the_manifest() -> None:
    item = build(MARATHON_APP, "prod", "apps")
    assert item.text is not None
    assert "t0k3n-value" not in item.text and "pw@db" not in item.text
    env = yaml.safe_load(item.text)["spec"]["app"]["env"]
    assert env["MODE"] == "prod"
    assert env["API_TOKEN"] == {"secretKeyRef": {"name": "shop-web-env", "key": "API_TOKEN"}}
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "shop-web-env", "key": "DATABASE_URL"}}
    assert item.secret_name == "shop-web-env"
    assert item.secret_keys == ("API_TOKEN", "DATABASE_URL")
    assert "NEEDS A PERSON" in item.text and "kubectl -n apps create secret generic" in item.text
    assert {str(f.feature) for f in item.readiness.findings} >= {"secret in env"}


def test_a_marathon_secret_reference_is_not_importable() -> None:
    # Marathon's env holds a secrets-plugin reference a MarathonApp cannot hold.
    app = {**MARATHON_APP, "env": {"MODE": "prod", "DB": {"secret": "db"}}}
    item = build(app, "prod", "apps")
    assert item.manifest is None
    assert item.readiness.verdict == "Blocked"
    assert "no manifest written" in item.readiness.findings[-1].message


def test_what_a_marathonapp_refuses_is_not_imported() -> None:
    docker = {**MARATHON_APP["container"]["docker"], "privileged": True}
    app = {**MARATHON_APP, "container": {**MARATHON_APP["container"], "docker": docker}}
    item = build(app, "prod", "apps")
    assert item.text is None and item.problem and "privileged" in item.problem
    assert item.readiness.verdict == "Blocked"


def test_names_and_groups() -> None:
    assert name_for("/web") == "web"
    assert name_for("/team.a/web") == "team-a-web"
    assert len(name_for("/" + "a" * 80)) <= 63
    assert group_of("/web") is None
    assert group_of("/team/api/web") == "team.api"
    items = build_all([{**MARATHON_APP, "id": "/a/b"}, {**MARATHON_APP, "id": "/a-b"}], "c", "n")
    assert len({i.name for i in items}) == 2


def test_fields_marathon_leaves_out_are_its_defaults_not_drift() -> None:
    # An app created by hand with the short Docker form: Marathon's answer omits
    # forcePullImage and the port mapping's protocol; the spec carries the defaults.
    posted: dict[str, Any] = {"type": "DOCKER", "docker": {"image": "nginx", "network": "BRIDGE",
              "portMappings": [{"containerPort": 80, "hostPort": 0}]}}  # fmt: skip
    app = {**MARATHON_APP, "env": {}, "container": posted}
    item = build(app, "prod", "apps")
    assert item.changes == ()
    assert item.manifest is not None
    spec = MarathonAppSpec.model_validate(item.manifest["spec"])
    sent = app_definition(spec, {}, 3)
    assert sent["container"]["docker"]["forcePullImage"] is False
    # ... but a value other than the default is drift.
    forced = {**posted, "docker": {**posted["docker"], "forcePullImage": True}}
    assert drift_fields(sent, {**app, "container": forced}) == ["container"]
