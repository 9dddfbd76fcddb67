"""The off-ramp's translation (operator/builders/marathonapp_kubernetes.py): a MarathonApp
with spec.kubernetes as a Deployment and a Service, what Marathon gives a task as what a pod
gets (issue 21 item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.models.marathonapp import KUBERNETES_IMAGE_MESSAGE, MarathonAppSpec
from orchestrator_operator.operator.builders import marathonapp_kubernetes as builder
from orchestrator_operator.operator.marathonapp import kubernetes as io

OWNER = builder.owner_of("web", "shop", "uid-1")


def spec(app: dict[str, Any], **kubernetes: Any) -> MarathonAppSpec:
    full = {"id": "/web", "cmd": "serve --port $PORT0", **app}
    return MarathonAppSpec.model_validate(
        {"cluster": "prod", "app": full, "kubernetes": {"image": "reg/web:1", **kubernetes}}
    )


def deployment(app: dict[str, Any], **kubernetes: Any) -> Manifest:
    return builder.deployment(OWNER, spec(app, **kubernetes))


def container(app: dict[str, Any], **kubernetes: Any) -> Manifest:
    result: Manifest = deployment(app, **kubernetes)["spec"]["template"]["spec"]["containers"][0]
    return result


def env_of(c: Manifest) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_named_after_the_marathonapp_owned_by_it_and_labelled() -> None:
    built = builder.build(OWNER, spec({"portDefinitions": [{"port": 0}]}))
    assert [(m["kind"], m["metadata"]["name"], m["metadata"]["namespace"]) for m in built] == [
        ("Deployment", "web", "shop"),
        ("Service", "web", "shop"),
    ]
    for manifest in built:
        assert manifest["metadata"]["labels"] == {
            "orchestrator.dev/marathonapp": "web",
            "app.kubernetes.io/managed-by": "orchestrator",
        }
        ref = manifest["metadata"]["ownerReferences"][0]
        assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
            "MarathonApp",
            "web",
            "uid-1",
            True,
        )
    selector = built[0]["spec"]["selector"]["matchLabels"]
    assert selector == {"orchestrator.dev/marathonapp": "web"}
    assert built[1]["spec"]["selector"] == selector
    assert built[0]["spec"]["template"]["metadata"]["labels"]["orchestrator.dev/marathonapp"] == (
        "web"
    )


def test_cpus_and_mem_are_requests_and_equal_limits() -> None:
    resources = container({"cpus": 0.25, "mem": 100.5})["resources"]
    assert resources == {
        "requests": {"cpu": "250m", "memory": "101Mi"},
        "limits": {"cpu": "250m", "memory": "101Mi"},
    }


def test_instances_are_replicas_unless_spec_kubernetes_says_otherwise() -> None:
    assert deployment({"instances": 4})["spec"]["replicas"] == 4
    assert deployment({"instances": 4}, replicas=0)["spec"]["replicas"] == 0


def test_upgrade_strategy_is_the_rolling_update() -> None:
    strategy = {"minimumHealthCapacity": 0.75, "maximumOverCapacity": 0.1}
    rolling = deployment({"upgradeStrategy": strategy})["spec"]["strategy"]
    assert rolling == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "10%"},
    }
    # Marathon's default (0.8, 0.2); (1, 0), which Kubernetes refuses as both 0, surges one.
    assert deployment({})["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": "20%",
        "maxSurge": "20%",
    }
    strict = {"minimumHealthCapacity": 1, "maximumOverCapacity": 0}
    assert deployment({"upgradeStrategy": strict})["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": 0,
        "maxSurge": 1,
    }


def test_ports_env_and_service_follow_marathons_names_and_order() -> None:
    app = {"portDefinitions": [{"port": 0, "name": "http"}, {"port": 9090}, {"port": 0}]}
    c = container(app)
    assert [(p.get("name"), p["containerPort"]) for p in c["ports"]] == [
        ("http", 8080),
        ("port1", 9090),
        ("port2", 8082),
    ]
    env = env_of(c)
    assert (env["PORT0"], env["PORT1"], env["PORT2"], env["PORT"], env["PORTS"]) == (
        "8080",
        "9090",
        "8082",
        "8080",
        "8080,9090,8082",
    )
    assert env["HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["MARATHON_APP_ID"] == "/web"
    service = builder.service(OWNER, spec(app))
    assert service is not None
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("http", 8080, 8080),
        ("port1", 9090, 9090),
        ("port2", 8082, 8082),
    ]


def test_docker_port_mappings_give_the_container_ports() -> None:
    app = {
        "cmd": None,
        "container": {
            "type": "DOCKER",
            "docker": {
                "image": "reg/web:2",
                "network": "BRIDGE",
                "portMappings": [{"containerPort": 80, "hostPort": 0, "name": "web"}],
            },
        },
    }
    c = builder.deployment(
        OWNER,
        MarathonAppSpec.model_validate(
            {"cluster": "p", "app": {"id": "/web", **{k: v for k, v in app.items() if v}},
             "kubernetes": {}}
        ),
    )["spec"]["template"]["spec"]["containers"][0]  # fmt: skip
    assert c["image"] == "reg/web:2"  # the app's Docker image when spec.kubernetes has none
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP", "name": "web"}]
    assert env_of(c)["PORT0"] == "80"
    assert "command" not in c  # the image's entrypoint, as Marathon runs it


def test_no_ports_no_service() -> None:
    assert builder.service(OWNER, spec({})) is None
    assert [m["kind"] for m in builder.build(OWNER, spec({}))] == ["Deployment"]


def test_cmd_runs_through_a_shell_args_as_they_are_and_command_overrides() -> None:
    assert container({})["command"] == ["sh", "-c", "serve --port $PORT0"]
    assert container({}, command=["/bin/web", "--fast"])["command"] == ["/bin/web", "--fast"]
    docker = {"type": "DOCKER", "docker": {"image": "reg/web:2"}}
    with_args = MarathonAppSpec.model_validate(
        {"cluster": "p", "app": {"id": "/w", "args": ["--x", "1"], "container": docker},
         "kubernetes": {}}
    )  # fmt: skip
    c = builder.deployment(OWNER, with_args)["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == ["--x", "1"]
    assert "command" not in c


def test_env_values_stay_and_secret_refs_stay_secret_refs() -> None:
    env = env_of(
        container({"env": {"MODE": "prod", "TOKEN": {"secretKeyRef": {"name": "s", "key": "t"}}}})
    )
    assert env["MODE"] == "prod"
    assert env["TOKEN"] == {"secretKeyRef": {"name": "s", "key": "t"}}


def test_an_env_name_of_the_app_wins_over_marathons() -> None:
    assert env_of(container({"env": {"HOST": "0.0.0.0"}}))["HOST"] == "0.0.0.0"


@pytest.mark.parametrize(
    ("check", "action"),
    [
        ({"protocol": "HTTP", "path": "/health"},
         {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}}),
        ({"protocol": "MESOS_HTTPS", "path": "/h"},
         {"httpGet": {"path": "/h", "port": 8080, "scheme": "HTTPS"}}),
        ({"protocol": "TCP"}, {"tcpSocket": {"port": 8080}}),
        ({"protocol": "MESOS_TCP"}, {"tcpSocket": {"port": 8080}}),
        ({"protocol": "COMMAND", "command": {"value": "test -f /tmp/ok"}},
         {"exec": {"command": ["sh", "-c", "test -f /tmp/ok"]}}),
    ],
)  # fmt: skip
def test_health_checks_are_probes(check: dict[str, Any], action: dict[str, Any]) -> None:
    timing = {"intervalSeconds": 5, "timeoutSeconds": 3, "gracePeriodSeconds": 60,
              "maxConsecutiveFailures": 4}  # fmt: skip
    c = container({"portDefinitions": [{"port": 0}], "healthChecks": [{**check, **timing}]})
    assert c["readinessProbe"] == {**action, "periodSeconds": 5, "timeoutSeconds": 3,
                                   "failureThreshold": 1, "successThreshold": 1}  # fmt: skip
    # The grace period: failures within it do not count (startupProbe, 60 s / 5 s).
    assert c["startupProbe"] == {**action, "periodSeconds": 5, "timeoutSeconds": 3,
                                 "failureThreshold": 12}  # fmt: skip
    assert c["livenessProbe"] == {**action, "periodSeconds": 5, "timeoutSeconds": 3,
                                  "failureThreshold": 4}  # fmt: skip


def test_a_check_that_never_kills_has_no_liveness_probe_and_port_index_picks_the_port() -> None:
    check = {"protocol": "TCP", "portIndex": 1, "maxConsecutiveFailures": 0}
    c = container({"portDefinitions": [{"port": 0}, {"port": 7000}], "healthChecks": [check]})
    assert "livenessProbe" not in c
    assert c["readinessProbe"]["tcpSocket"] == {"port": 7000}


def test_constraints_that_map_become_node_selection_affinity_and_spread() -> None:
    constraints = [
        ["hostname", "UNIQUE"],
        ["rack", "CLUSTER", "r1"],
        ["zone", "IS", "z2"],
        ["disk", "LIKE", "ssd|nvme"],
        ["pool", "UNLIKE", "old"],
        ["dc", "GROUP_BY"],
        ["rack", "MAX_PER", "2"],  # no clean equivalent: left out (readiness reports it)
        ["host", "LIKE", "web-[0-9]+"],  # a regular expression: left out
    ]
    pod = deployment({"constraints": constraints}, nodeSelector={"team": "a"})["spec"]["template"][
        "spec"
    ]
    assert pod["nodeSelector"] == {"rack": "r1", "team": "a", "zone": "z2"}
    assert pod["affinity"]["podAntiAffinity"] == {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {
                "labelSelector": {"matchLabels": {"orchestrator.dev/marathonapp": "web"}},
                "topologyKey": "kubernetes.io/hostname",
            }
        ]
    }
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "disk", "operator": "In", "values": ["ssd", "nvme"]},
                {"key": "pool", "operator": "NotIn", "values": ["old"]},
            ]
        }
    ]
    assert [(s["topologyKey"], s["maxSkew"]) for s in pod["topologySpreadConstraints"]] == [
        ("dc", 1)
    ]
    assert not builder.untranslatable(spec({"constraints": constraints}))


def test_labels_valid_in_kubernetes_are_pod_labels_the_rest_annotations() -> None:
    labels = {"team": "shop", "HAPROXY_0_VHOST": "web.example.com", "note": "a b c"}
    template = deployment({"labels": labels})["spec"]["template"]["metadata"]
    assert template["labels"]["team"] == "shop"
    assert template["labels"]["HAPROXY_0_VHOST"] == "web.example.com"
    assert "note" not in template["labels"]
    assert template["annotations"] == {"marathon.orchestrator.dev/label.note": "a b c"}


def test_the_pod_is_hardened() -> None:
    pod = deployment({})["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    assert pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_a_cmd_only_app_needs_an_image() -> None:
    with pytest.raises(ValidationError, match=r"kubernetes\.image is required"):
        MarathonAppSpec.model_validate(
            {"cluster": "p", "app": {"id": "/w", "cmd": "x"}, "kubernetes": {}}
        )
    assert "cmd-only" in KUBERNETES_IMAGE_MESSAGE


def test_persistent_volumes_are_refused_in_words() -> None:
    volumes = [{"containerPath": "data", "persistent": {"size": 100}}]
    app = spec({"container": {"type": "MESOS", "volumes": volumes}})
    with pytest.raises(ValueError, match="persistent volumes"):
        builder.build(OWNER, app)
    problem = io.refusal(app)
    assert problem is not None
    assert problem.startswith("not translated to Kubernetes: ")
    assert "persistent volume" in problem


def test_a_translatable_app_is_not_refused() -> None:
    assert io.refusal(spec({"portDefinitions": [{"port": 0}]})) is None


def test_a_docker_app_runs_its_own_image_and_is_not_refused() -> None:
    plain = MarathonAppSpec.model_validate(
        {"cluster": "p", "app": {"id": "/w", "container": {"docker": {"image": "reg/a:1"}}},
         "kubernetes": {}}
    )  # fmt: skip
    assert io.refusal(plain) is None
    assert builder.image_of(plain) == "reg/a:1"


def test_moving_while_replicas_are_not_ready() -> None:
    app = spec({})
    assert io.moving(app, {})
    assert io.moving(app, {"kubernetes": {"replicas": 2, "readyReplicas": 1, "updatedReplicas": 2}})
    assert not io.moving(
        app, {"kubernetes": {"replicas": 2, "readyReplicas": 2, "updatedReplicas": 2}}
    )
    assert not io.moving(app, {"kubernetes": {"replicas": 0, "message": "refused"}})
    gone = MarathonAppSpec.model_validate({"cluster": "p", "app": {"id": "/w", "cmd": "x"}})
    assert io.moving(gone, {"kubernetes": {"replicas": 1}})
    assert not io.moving(gone, {})
