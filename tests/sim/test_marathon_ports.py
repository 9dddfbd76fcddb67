"""Conformance: an app's ports in Marathon 1.11 and the agents' port resources (Mesos 1.11).

Sources (read, not copied): Mesos `src/slave/containerizer/containerizer.cpp` and
`src/slave/constants.hpp` (an agent offers `ports:[31000-32000]` unless `--resources` names
ports); Marathon `api/v2/AppNormalization.scala` (the default port definition),
`core/group/impl/AssignDynamicServiceLogic.scala` (service ports from 10000),
`mesos/EnvironmentHelper.scala` (`PORT0`.., `PORT`, `PORTS`, `PORT_<n>`, `PORT_<NAME>`),
`mesos/TaskBuilder.scala` (`HOST`, `MESOS_TASK_ID`, `MARATHON_APP_ID`, `MARATHON_APP_VERSION`,
the app's env last), `raml/TaskConversion.scala` (a task's `ports` and `servicePorts`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sim import resources as res
from sim.cluster import SimCluster
from sim.marathon import ports
from sim.procs import free_ports
from sim.tasks import PortRequest, ports_env
from testenv.zookeeper import ZkEnsemble
from tests.sim.marathon_support import marathon_cluster

# A task that serves its sandbox (where it wrote its environment) on its first port.
SERVE = "env > env.txt && exec python3 -m http.server $PORT0 --bind 127.0.0.1"


@pytest.fixture(scope="module")
def cluster(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SimCluster]:
    with marathon_cluster(
        _zk_ensemble_module.connect_string, tmp_path_factory.mktemp("ports")
    ) as sim:
        yield sim


def _app(app_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": app_id, "instances": 1, "cpus": 0.1, "mem": 32, "cmd": SERVE, **fields}


def _running(url: str, app_id: str, count: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    tasks: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{url}/v2/apps{app_id}/tasks", timeout=5).json()["tasks"]
        if sum(1 for t in tasks if t["state"] == "TASK_RUNNING") >= count:
            return tasks
        time.sleep(0.2)
    raise TimeoutError(f"{app_id}: {count} running tasks expected, saw {tasks}")


def _get(url: str, timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_agent_port_ranges_default_and_parse() -> None:
    # containerizer.cpp: no `ports` in --resources -> DEFAULT_PORTS [31000-32000]
    assert res.parse_ports("cpus:4;mem:4096") == [(31000, 32000)]
    assert res.parse_ports("cpus:1;ports(*):[8000-8001, 9000-9000]") == [(8000, 8001), (9000, 9000)]
    with pytest.raises(ValueError, match="bad port range"):
        res.parse_ports("ports:[9-3]")
    # a fixed port outside the ranges or taken cannot be given; dynamic ones come from them
    assert res.pick_ports([(31000, 31001)], {31000}, [31000], 0) is None
    assert res.pick_ports([(31000, 31001)], set(), [32000], 0) is None
    port = free_ports(1)[0]
    assert res.pick_ports([(port, port)], set(), [], 1) == [port]
    assert res.pick_ports([(port, port)], {port}, [], 1) is None


def test_ports_env_follows_environment_helper() -> None:
    # EnvironmentHelper.portsEnv: PORT<i> host ports; PORT_<declared> (a dynamic one under its
    # own number); PORT_<NAME>; PORT the first; PORTS all.
    env = ports_env([PortRequest("http", 0, 0), PortRequest(None, 8080, 0)], [31005, 31007])
    assert env == {
        "PORT0": "31005",
        "PORT1": "31007",
        "PORT_31005": "31005",
        "PORT_8080": "31007",
        "PORT_HTTP": "31005",
        "PORT": "31005",
        "PORTS": "31005,31007",
    }
    # a container port without a host port: PORT<i> is the container port, which is neither
    # PORT nor in PORTS (only host and generated ports are)
    bridge = ports_env([PortRequest(None, 80, None)], [None])
    assert bridge == {"PORT0": "80", "PORT_80": "80", "PORTS": ""}


def test_service_ports_are_assigned_from_10000() -> None:
    # AssignDynamicServiceLogic: service port 0 -> the lowest free one of 10000..20000, the
    # previous version's first; AppNormalization: no portDefinitions -> one "default" port.
    web = ports.normalize({"id": "/web"}, default=True)
    assert web["portDefinitions"] == [
        {"port": 0, "protocol": "tcp", "labels": {}, "name": "default"}
    ]
    first = ports.assign_service_ports(web, None, [])
    assert ports.service_ports(first) == [10000]
    other = ports.assign_service_ports(
        ports.normalize({"id": "/b", "portDefinitions": [{"port": 0}, {"port": 0}]}, False),
        None,
        [first],
    )
    assert ports.service_ports(other) == [10001, 10002]
    again = ports.assign_service_ports({**web, "instances": 3}, first, [other])
    assert ports.service_ports(again) == [10000]


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_a_task_gets_host_ports_env_and_serves_on_port0(cluster: SimCluster) -> None:
    url = cluster.marathon_url()
    created = httpx.post(
        url + "/v2/apps",
        json=_app(
            "/ports/web",
            portDefinitions=[{"port": 0, "name": "http"}, {"port": 0}],
            env={"GREETING": "hello", "PORT1": "overridden by the app"},
            labels={"team": "a"},
        ),
        timeout=10,
    )
    assert created.status_code == 201, created.text
    app = httpx.get(url + "/v2/apps/ports/web", timeout=5).json()["app"]
    service = [d["port"] for d in app["portDefinitions"]]
    assert all(10000 <= p <= 20000 for p in service) and len(set(service)) == 2
    task = _running(url, "/ports/web", 1)[0]
    assert len(task["ports"]) == 2
    assert all(31000 <= p <= 32000 for p in task["ports"])
    assert task["servicePorts"] == service
    assert task["host"] == "127.0.0.1"
    listed = httpx.get(url + "/v2/tasks", timeout=5).json()["tasks"]
    assert any(t["id"] == task["id"] and t["ports"] == task["ports"] for t in listed)

    page = _get(f"http://127.0.0.1:{task['ports'][0]}/env.txt")
    assert page.status_code == 200
    env = dict(line.split("=", 1) for line in page.text.splitlines() if "=" in line)
    assert env["PORT0"] == env["PORT"] == env["PORT_HTTP"] == str(task["ports"][0])
    assert env["PORTS"] == ",".join(str(p) for p in task["ports"])
    assert env["PORT1"] == "overridden by the app"  # the app's env wins
    assert env["HOST"] == "127.0.0.1"
    assert env["MESOS_TASK_ID"] == task["id"]
    assert env["MARATHON_APP_ID"] == "/ports/web"
    assert env["MARATHON_APP_VERSION"] == app["version"]
    assert env["MARATHON_APP_LABEL_TEAM"] == "a" and env["GREETING"] == "hello"


@pytest.mark.zookeeper
@pytest.mark.timeout(120)
def test_an_agent_without_free_ports_cannot_take_more_tasks(
    _zk_ensemble_module: ZkEnsemble, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Mesos accounts ports like any resource: an agent offering one port runs one task that
    # needs a port; Marathon keeps the other in its launch queue (/v2/queue, count 1).
    port = free_ports(1)[0]
    with marathon_cluster(
        _zk_ensemble_module.connect_string,
        tmp_path_factory.mktemp("one-port"),
        agent_resources=f"cpus:4;mem:4096;disk:10240;ports:[{port}-{port}]",
    ) as sim:
        url = sim.marathon_url()
        state = sim.http.get(sim.leader_url() + "/master/state").json()
        assert state["slaves"][0]["resources"]["ports"] == f"[{port}-{port}]"
        assert httpx.post(url + "/v2/apps", json=_app("/one", instances=2)).status_code == 201
        tasks = [t for t in _running(url, "/one", 1) if t["state"] == "TASK_RUNNING"]
        assert [t["ports"] for t in tasks] == [[port]]
        deadline = time.monotonic() + 30
        queue: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            queue = httpx.get(url + "/v2/queue", timeout=5).json()["queue"]
            if queue and queue[0]["count"] == 1:
                break
            time.sleep(0.2)
        assert queue and queue[0]["app"]["id"] == "/one" and queue[0]["count"] == 1
        time.sleep(1.5)  # a few scheduler rounds: still one task
        tasks = httpx.get(url + "/v2/apps/one/tasks", timeout=5).json()["tasks"]
        assert [t["ports"] for t in tasks if t["state"] == "TASK_RUNNING"] == [[port]]


@pytest.mark.zookeeper
@pytest.mark.timeout(60)
def test_bad_ports_and_checks_are_422_with_a_message(cluster: SimCluster) -> None:
    # Marathon validates the app (AppDefinition.validAppDefinition, HealthCheck's portIndex
    # validator) and answers 422 "Object is not valid" naming the problem.
    url = cluster.marathon_url()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"portDefinitions": [{"port": 70000}]}, "port must be an integer"),
        ({"ports": "8080"}, "ports must be a list"),
        ({"healthChecks": [{"protocol": "HTTP", "portIndex": 1}]}, "port indices"),
        ({"healthChecks": [{"protocol": "SMTP"}]}, "protocol must be one of"),
        ({"taskKillGracePeriodSeconds": -1}, "taskKillGracePeriodSeconds"),
        ({"args": ["a", 1], "cmd": None}, "args must be a list of strings"),
    ]
    for fields, message in bad:
        answer = httpx.post(url + "/v2/apps", json=_app("/ports/bad", **fields), timeout=10)
        assert answer.status_code == 422, (fields, answer.text)
        assert message in answer.json()["message"], answer.text
