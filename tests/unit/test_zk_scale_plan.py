"""Scaling a ZooKeeper ensemble: one member at a time, pod before reconfig on the way up,
reconfig before pod on the way down, followers before the leader, never without a majority."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestrator_operator.common.kube_api import KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.routing import ZkRouting
from orchestrator_operator.operator import zk_super_key
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.mesoscluster import quorum
from orchestrator_operator.operator.mesoscluster import zk_scale as zk_scale_runner
from orchestrator_operator.operator.mesoscluster.zk_scale import (
    ScaleResult,
    StatefulSetFleet,
    scale_step,
)
from orchestrator_operator.operator.mesoscluster.zk_scale_plan import (
    Action,
    ConfigMember,
    Done,
    EnsembleConfig,
    PodState,
    Reconfig,
    ScaleStatefulSet,
    Wait,
    next_scale_action,
    parse_config,
)
from orchestrator_operator.operator.settings import OperatorSettings
from orchestrator_operator.operator.workloads import WorkloadSummary
from orchestrator_operator.zk.clients import ZkUnreachable


def line(server_id: int, role: str = "participant") -> str:
    return f"server.{server_id}=zk-{server_id - 1}.zk:2888:3888:{role};2181"


def config(*ids: int, observers: tuple[int, ...] = ()) -> EnsembleConfig:
    members = [ConfigMember(i, line(i), "participant") for i in ids]
    members += [ConfigMember(i, line(i, "observer"), "observer") for i in observers]
    return EnsembleConfig(tuple(members), 0x100000000)


def pods(count: int, leader: int = 1, **overrides: PodState) -> dict[int, PodState]:
    """`count` ready pods; server `leader` leads; overrides by name `o<ordinal>`."""
    result = {
        o: PodState(o, ready=True, mode="leader" if o + 1 == leader else "follower")
        for o in range(count)
    }
    for key, state in overrides.items():
        result[int(key[1:])] = state
    return result


def plan(desired: int, replicas: int, cfg: EnsembleConfig, state: dict[int, PodState]) -> Action:
    return next_scale_action(desired, replicas, cfg, state, line)


def test_parse_config_reads_voters_observers_and_version() -> None:
    text = (
        "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181\n"
        "server.2=10.0.0.2:2888:3888:observer;2181\n"
        "server.3=10.0.0.3:2888:3888;2181\n"
        "version=10000000a\n"
    )
    parsed = parse_config(text)
    assert [m.id for m in parsed.members] == [1, 2, 3]
    assert parsed.voters == {1, 3}
    assert parsed.version == 0x10000000A
    assert parsed.members[0].line == "server.1=10.0.0.1:2888:3888:participant;0.0.0.0:2181"
    assert parse_config("").members == () and parse_config("").version is None


def test_nothing_to_do_at_the_desired_size() -> None:
    assert plan(3, 3, config(1, 2, 3), pods(3)) == Done()


def test_three_to_five_one_member_at_a_time_pod_before_reconfig() -> None:
    # Pod of server 4 first.
    step = plan(5, 3, config(1, 2, 3), pods(3))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 4
    # Its pod is starting: wait, with what it waits for.
    starting = pods(4, o3=PodState(3, ready=False, mode=None))
    step = plan(5, 4, config(1, 2, 3), starting)
    assert isinstance(step, Wait) and "server 4" in step.reason
    assert isinstance(plan(5, 4, config(1, 2, 3), {**pods(3)}), Wait)  # pod not there yet
    # Ready but still looking for the leader: not synced, wait.
    looking = pods(4, o3=PodState(3, ready=True, mode=None))
    assert isinstance(plan(5, 4, config(1, 2, 3), looking), Wait)
    # Synced as a (non-voting) follower: reconfigure it in.
    step = plan(5, 4, config(1, 2, 3), pods(4))
    assert step == Reconfig((line(4),), (), step.reason if isinstance(step, Reconfig) else "")
    # Then the pod of server 5, wait, reconfig.
    step = plan(5, 4, config(1, 2, 3, 4), pods(4))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 5
    starting = pods(5, o4=PodState(4, ready=False, mode=None))
    assert isinstance(plan(5, 5, config(1, 2, 3, 4), starting), Wait)
    step = plan(5, 5, config(1, 2, 3, 4), pods(5))
    assert isinstance(step, Reconfig) and step.joining == (line(5),) and step.leaving == ()
    assert plan(5, 5, config(1, 2, 3, 4, 5), pods(5)) == Done()


def test_an_observer_that_has_synced_counts_as_ready_to_join() -> None:
    state = pods(4, o3=PodState(3, ready=True, mode="observer"))
    step = plan(5, 4, config(1, 2, 3), state)
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_five_to_three_reconfig_out_before_removing_the_pod() -> None:
    step = plan(3, 5, config(1, 2, 3, 4, 5), pods(5))
    assert isinstance(step, Reconfig) and step.leaving == (5,) and step.joining == ()
    # Server 5 is out of the configuration (its server now looks for a quorum): drop its pod.
    gone = pods(5, o4=PodState(4, ready=False, mode=None))
    step = plan(3, 5, config(1, 2, 3, 4), gone)
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 4
    step = plan(3, 4, config(1, 2, 3, 4), pods(4))
    assert isinstance(step, Reconfig) and step.leaving == (4,)
    step = plan(3, 4, config(1, 2, 3), pods(4))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 3
    assert plan(3, 3, config(1, 2, 3), pods(3)) == Done()


def test_the_leader_leaves_last() -> None:
    # Server 5 leads: server 4 goes first although 5 has the higher id.
    step = plan(3, 5, config(1, 2, 3, 4, 5), pods(5, leader=5))
    assert isinstance(step, Reconfig) and step.leaving == (4,)
    assert "follower" in step.reason
    # Only the leader is left to go: now it leaves (ZooKeeper hands leadership over).
    state = pods(5, leader=5, o3=PodState(3, ready=False, mode=None))
    step = plan(3, 5, config(1, 2, 3, 5), state)
    assert isinstance(step, Reconfig) and step.leaving == (5,)
    assert "leader" in step.reason


def test_no_action_without_a_ready_majority() -> None:
    down = PodState(1, ready=False, mode=None)
    state = pods(3, o1=down, o2=PodState(2, ready=True, mode=None))
    for desired in (1, 3, 5):
        step = plan(desired, 3, config(1, 2, 3), state)
        assert isinstance(step, Wait)
        assert "only 1 of 3 voting members are ready" in step.reason
    # With a majority ready, scaling up goes ahead; removing a member still needs a
    # majority of the remaining voters.
    state = pods(3, o1=down)
    assert isinstance(plan(5, 3, config(1, 2, 3), state), ScaleStatefulSet)
    state = pods(5, o1=down, o2=PodState(2, ready=False, mode=None))
    step = plan(3, 5, config(1, 2, 3, 4, 5), state)
    assert isinstance(step, Wait) and "remaining 4 voters" in step.reason


def test_joining_needs_a_majority_of_the_new_configuration() -> None:
    # 1 voter out of 2 ready after adding 2: fine (2 of 2 with the joiner). A 3-voter
    # ensemble with one down joins a 4th: 3 of 4 ready, fine. Two down: waits above.
    state = pods(4, o2=PodState(2, ready=False, mode=None))
    step = plan(5, 4, config(1, 2, 3), state)
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_repairs_a_pod_added_but_never_reconfigured_in() -> None:
    # The spec went 3 -> 5 -> 3 while pod 4 was starting: it is not a voter, remove it.
    step = plan(3, 4, config(1, 2, 3), pods(4))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 3
    # Still 5 wanted: reconfigure it in.
    step = plan(5, 4, config(1, 2, 3), pods(4))
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_repairs_a_voter_whose_pod_is_gone() -> None:
    # Someone scaled the StatefulSet from 5 to 3 by hand, spec still 5: bring the pods
    # back first (their volumes were kept), even without a majority.
    step = plan(5, 3, config(1, 2, 3, 4, 5), pods(3))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 5
    no_majority = pods(2)
    step = plan(5, 2, config(1, 2, 3, 4, 5), no_majority)
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 5
    # The spec says 3: reconfigure the orphaned voters out instead, highest first.
    step = plan(3, 3, config(1, 2, 3, 4, 5), pods(3))
    assert isinstance(step, Reconfig) and step.leaving == (5,)
    step = plan(3, 3, config(1, 2, 3, 4), pods(3))
    assert isinstance(step, Reconfig) and step.leaving == (4,)
    assert plan(3, 3, config(1, 2, 3), pods(3)) == Done()


def test_observers_in_the_config_do_not_count_as_voters() -> None:
    cfg = config(1, 2, 3, observers=(4,))
    step = plan(5, 4, cfg, pods(4, o3=PodState(3, ready=True, mode="observer")))
    assert isinstance(step, Reconfig) and step.joining == (line(4),)


def test_an_empty_configuration_is_never_acted_on() -> None:
    step = plan(3, 3, EnsembleConfig((), None), pods(3))
    assert isinstance(step, Wait)


def test_scale_from_one_to_three_and_back() -> None:
    step = plan(3, 1, config(1), pods(1))
    assert isinstance(step, ScaleStatefulSet) and step.replicas == 2
    step = plan(3, 2, config(1), pods(2))
    assert isinstance(step, Reconfig) and step.joining == (line(2),)
    step = plan(1, 3, config(1, 2, 3), pods(3, leader=3))
    assert isinstance(step, Reconfig) and step.leaving == (2,)


# ---------------------------------------------------------------- builder and executor level

OWNER = Owner(name="prod", namespace="mesos", uid="uid-1")
SPEC5 = MesosClusterSpec.model_validate({"zookeeper": {"replicas": 5}})
RECONFIG_OFF = OperatorSettings()
RECONFIG_ON = OperatorSettings(zk_super_key=b"k" * 32)


def _statefulset(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in manifests if m["kind"] == "StatefulSet")


def test_the_reconcile_holds_the_live_size_and_the_config_map_follows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert zookeeper.held_replicas(SPEC5, None) == 5  # a new cluster starts at its size
    held = zookeeper.held_replicas(SPEC5, {"spec": {"replicas": 3}})
    assert held == 3
    built = zookeeper.build(OWNER, zookeeper.with_replicas(SPEC5, held), scale_by_reconfig=True)
    assert _statefulset(built)["spec"]["replicas"] == 3
    assert built[0]["data"]["zoo.cfg"].count("server.") == 3
    container = _statefulset(built)["spec"]["template"]["spec"]["containers"][0]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {
        "name": "prod-zookeeper-super",
        "key": "digest",
        "optional": True,
    }
    secret = zookeeper.super_secret(OWNER, "pw")
    assert secret["metadata"]["name"] == "prod-zookeeper-super"
    assert secret["stringData"] == {"digest": zookeeper.super_digest("pw")}  # no password
    assert zookeeper.super_digest("pw").startswith("super:")


def test_while_off_the_ensemble_is_built_as_before() -> None:
    container = _statefulset(zookeeper.build(OWNER, SPEC5))["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert "env" not in container
    assert "cp /config/zoo.cfg /data/zoo.cfg" in container["command"][2]
    assert _statefulset(zookeeper.build(OWNER, SPEC5))["spec"]["replicas"] == 5


def _run_start_script(tmp_path: Path, hostname: str, config_lines: list[str]) -> str:
    """Run the container's start script with sh; a fake zkServer.sh prints the config."""
    data, config, bin_dir = tmp_path / "data", tmp_path / "config", tmp_path / "bin"
    for directory in (data, config, bin_dir):
        directory.mkdir(exist_ok=True)
    (config / "zoo.cfg").write_text("tickTime=2000\ndataDir=/data\n" + "".join(config_lines))
    fake = bin_dir / "zkServer.sh"
    fake.write_text('#!/bin/sh\ncat "$2"\n')
    fake.chmod(0o755)
    script = zookeeper.start_script(OWNER, data=str(data), config=str(config))
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOSTNAME": hostname,
        "ZK_SUPER_DIGEST": "super:abc=",
    }
    done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_start_script_seeds_a_joiner_and_keeps_a_members_own_dynamic_config(
    tmp_path: Path,
) -> None:
    cm_lines = [line + "\n" for line in zookeeper.server_lines(OWNER, 3)]
    # First start of pod 3 (server 4): the ConfigMap's members plus itself.
    out = _run_start_script(tmp_path, "prod-zookeeper-3", cm_lines)
    assert (tmp_path / "data" / "myid").read_text().strip() == "4"
    server_lines = [line for line in out.splitlines() if line.startswith("server.")]
    assert server_lines == zookeeper.server_lines(OWNER, 4)
    assert "DigestAuthenticationProvider.superDigest=super:abc=" in out
    assert "tickTime=2000" in out
    # ZooKeeper moved the members to its own dynamic file and lists server 4 there: kept.
    dynamic = tmp_path / "data" / "zoo.cfg.dynamic.100000004"
    dynamic.write_text("".join(line + "\n" for line in zookeeper.server_lines(OWNER, 5)))
    (tmp_path / "data" / "zoo.cfg").write_text(f"tickTime=2000\ndynamicConfigFile={dynamic}\n")
    out = _run_start_script(tmp_path, "prod-zookeeper-3", cm_lines)
    assert f"dynamicConfigFile={dynamic}" in out
    assert not [line for line in out.splitlines() if line.startswith("server.")]
    # Reconfigured out earlier (its last dynamic file lacks it): it joins afresh.
    dynamic.write_text("".join(line + "\n" for line in zookeeper.server_lines(OWNER, 3)))
    out = _run_start_script(tmp_path, "prod-zookeeper-3", cm_lines)
    assert "dynamicConfigFile" not in out
    assert [line for line in out.splitlines() if line.startswith("server.")] == (
        zookeeper.server_lines(OWNER, 4)
    )
    # A first member of a new ensemble: the ConfigMap's lines, itself not twice.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    out = _run_start_script(fresh, "prod-zookeeper-0", cm_lines)
    assert sorted(line for line in out.splitlines() if line.startswith("server.")) == (
        zookeeper.server_lines(OWNER, 3)
    )


class FakeKube:
    """A StatefulSet whose pods are ready as soon as it has them."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.patches: list[int] = []
        self.config_maps: list[int] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Any:
        if kind == "StatefulSet":
            return {"spec": {"replicas": self.replicas}}
        ordinal = int(name.rsplit("-", 1)[1])
        if kind == "Pod" and ordinal < self.replicas:
            ready = [{"type": "Ready", "status": "True"}]
            return {"metadata": {"name": name}, "status": {"podIP": f"10.0.0.{ordinal}",
                                                           "conditions": ready}}  # fmt: skip
        return None

    def merge_patch(self, api_version: str, kind: str, ns: str, name: str, body: Any) -> None:
        self.replicas = body["spec"]["replicas"]
        self.patches.append(self.replicas)


class FakeZk:
    def __init__(self, voters: int) -> None:
        self.lines = {i: zookeeper.server_lines(OWNER, i)[-1] for i in range(1, voters + 1)}
        self.version = 0x100000000

    def get(self, path: str) -> tuple[bytes, None]:
        assert path == "/zookeeper/config"
        text = "".join(f"{line}\n" for line in self.lines.values())
        return (text + f"version={self.version:x}\n").encode(), None

    def reconfigure(self, action: Reconfig, version: int | None) -> None:
        assert version == self.version
        for line in action.joining:
            self.lines[int(line.split("=", 1)[0][len("server.") :])] = line
        for server_id in action.leaving:
            del self.lines[server_id]
        self.version += 1


def _drive(kube: FakeKube, zk: FakeZk, spec: MesosClusterSpec) -> list[tuple[str, int]]:
    """Observer ticks, each followed by a reconcile; what the StatefulSet was applied with."""
    applied: list[tuple[str, int]] = []
    desired = spec.zookeeper.managed_replicas
    for _ in range(20):
        summary = WorkloadSummary(kube.replicas, kube.replicas, kube.replicas, 1, 1, "r")
        fleet = StatefulSetFleet(
            cast(Any, kube), "mesos", "prod-zookeeper", summary, 2181,
            before_scale=kube.config_maps.append,
        )  # fmt: skip
        result = scale_step(
            zk,
            fleet,
            desired,
            lambda i: zookeeper.server_lines(OWNER, i)[-1],
            zk.reconfigure,
        )
        live = kube.get("apps/v1", "StatefulSet", "mesos", "prod-zookeeper")
        held = zookeeper.with_replicas(spec, zookeeper.held_replicas(spec, live))
        built = zookeeper.build(OWNER, held, scale_by_reconfig=True)
        replicas = _statefulset(built)["spec"]["replicas"]
        applied.append((type(result.action).__name__, replicas))
        if result.done:
            return applied
    raise AssertionError(f"not done: {applied}")


def test_the_statefulset_steps_one_member_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        zk_scale_runner, "server_mode", lambda ip, port, timeout: "follower" if ip[-1] != "0"
        else "leader"
    )  # fmt: skip
    kube, zk = FakeKube(3), FakeZk(3)
    up = _drive(kube, zk, SPEC5)
    assert up == [
        ("ScaleStatefulSet", 4),
        ("Reconfig", 4),
        ("ScaleStatefulSet", 5),
        ("Reconfig", 5),
        ("Done", 5),
    ]
    assert kube.patches == [4, 5] and kube.config_maps == [4, 5]
    assert sorted(zk.lines) == [1, 2, 3, 4, 5]
    down = _drive(kube, zk, zookeeper.with_replicas(SPEC5, 3))
    assert down == [
        ("Reconfig", 5),
        ("ScaleStatefulSet", 4),
        ("Reconfig", 4),
        ("ScaleStatefulSet", 3),
        ("Done", 3),
    ]
    assert kube.patches == [4, 5, 4, 3] and sorted(zk.lines) == [1, 2, 3]


# ---------------------------------------------------------------- the handler's call site


class FakeWorkloads:
    def __init__(self, summary: WorkloadSummary | None) -> None:
        self.summary = summary

    def get(self, kind: str, namespace: str, name: str) -> WorkloadSummary | None:
        return self.summary if (kind, name) == ("StatefulSet", "prod-zookeeper") else None


class HandlerKube(FakeKube):
    def __init__(self, replicas: int, password: str | None) -> None:
        super().__init__(replicas)
        self.password = password
        self.applied: list[dict[str, Any]] = []

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Any:
        if kind == "Secret":
            if self.password is None:
                return None
            return {"data": {"password": base64.b64encode(self.password.encode()).decode()}}
        return super().get(api_version, kind, namespace, name)

    def apply(self, manifest: dict[str, Any]) -> None:
        self.applied.append(manifest)


class FakePool:
    def __init__(self, zk: FakeZk | None) -> None:
        self.zk = zk

    def get(self, hosts: str) -> FakeZk:
        assert hosts == "prod-zookeeper-client.mesos.svc:2181"
        if self.zk is None:
            raise ZkUnreachable(f"cannot reach ZooKeeper at {hosts}")
        return self.zk


def _scale(
    monkeypatch: pytest.MonkeyPatch, kube: HandlerKube, zk: FakeZk | None, desired: int
) -> str:
    spec = zookeeper.with_replicas(SPEC5, desired)
    monkeypatch.setattr(KubeApi, "shared", classmethod(lambda cls: kube))
    monkeypatch.setattr(quorum, "ZK_POOL", FakePool(zk))
    summary = WorkloadSummary(kube.replicas, kube.replicas, kube.replicas, 1, 1, "r")
    workloads = cast(Any, FakeWorkloads(summary))
    return quorum.scale_zookeeper(OWNER, spec, workloads, RECONFIG_ON).message


def test_call_site_derives_the_super_password_and_applies_the_config_map_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(zk_scale_runner, "server_mode", lambda ip, port, timeout: "follower")
    auths: list[Any] = []

    def fake_kazoo_reconfigure(hosts: str, auth: Any, tls: Any = None) -> Any:
        auths.append(auth)
        return zk.reconfigure

    monkeypatch.setattr(quorum, "kazoo_reconfigure", fake_kazoo_reconfigure)
    kube, zk = HandlerKube(3, password=None), FakeZk(3)
    message = _scale(monkeypatch, kube, zk, 5)
    assert message == (
        "zookeeper scaling to 5: adding the pod of server 4 before reconfiguring it in"
    )
    assert kube.patches == [4]
    assert kube.applied[0]["kind"] == "ConfigMap"
    assert kube.applied[0]["data"]["zoo.cfg"].count("server.") == 4
    assert sorted(zk.lines) == [1, 2, 3]
    assert _scale(monkeypatch, kube, zk, 5) == "zookeeper scaling to 5: reconfiguring server 4 in"
    password = zk_super_key.cluster_password(b"k" * 32, OWNER.namespace, OWNER.name)
    assert auths == [("digest", f"super:{password}")] and sorted(zk.lines) == [1, 2, 3, 4]


def test_call_site_with_zookeeper_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    # At the spec's size nothing is known to be pending: the roll is not held up.
    assert _scale(monkeypatch, HandlerKube(3, "pw"), None, 3) == ""
    message = _scale(monkeypatch, HandlerKube(3, "pw"), None, 5)
    assert message == (
        "zookeeper scaling to 5: waiting: cannot reach ZooKeeper at "
        "prod-zookeeper-client.mesos.svc:2181"
    )


def test_no_scaling_while_off_or_during_a_zk_migration(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fake_scale(*args: Any) -> ScaleResult:
        calls.append(1)
        return ScaleResult(Wait("w"), "x")

    monkeypatch.setattr(quorum, "scale_zookeeper", fake_scale)
    monkeypatch.setattr(KubeApi, "shared", classmethod(lambda cls: HandlerKube(5, "")))
    observation = cast(Any, SimpleNamespace(election=None))
    workloads = cast(Any, FakeWorkloads(None))
    off, on = RECONFIG_OFF, RECONFIG_ON
    assert quorum.roll_quorum_members(OWNER, SPEC5, observation, workloads, off) == ""
    assert calls == []
    migrating = ZkRouting(migration="m", target="b:2181")
    assert quorum.roll_quorum_members(OWNER, SPEC5, observation, workloads, on, migrating) == ""
    assert calls == []
    assert quorum.roll_quorum_members(OWNER, SPEC5, observation, workloads, on) == "x"
    assert calls == [1]


def test_a_refused_super_user_lets_the_roll_restart_the_servers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Servers started before the Secret existed refuse the reconfig; the rolling restart
    (which gives them the digest) goes on, and status shows the refusal until then."""
    refused = ScaleResult(Reconfig((), (5,), "r"), "refused", auth_refused=True)
    monkeypatch.setattr(quorum, "scale_zookeeper", lambda *args: refused)
    monkeypatch.setattr(KubeApi, "shared", classmethod(lambda cls: HandlerKube(5, "")))
    rolled: list[str] = []

    def fake_roll(api: Any, namespace: str, name: str, *args: Any) -> Any:
        rolled.append(name)
        message = "prod-zookeeper: restarted prod-zookeeper-4" if "zookeeper" in name else ""
        return SimpleNamespace(message=message)

    monkeypatch.setattr(quorum, "roll_statefulset", fake_roll)
    observation = cast(Any, SimpleNamespace(election=None))
    workloads = cast(Any, FakeWorkloads(None))
    result = quorum.roll_quorum_members(OWNER, SPEC5, observation, workloads, RECONFIG_ON)
    assert result == "prod-zookeeper: restarted prod-zookeeper-4" and rolled == ["prod-zookeeper"]
    # Nothing left to roll: the refusal is what status shows; the masters wait.
    monkeypatch.setattr(quorum, "roll_statefulset", lambda *args: SimpleNamespace(message=""))
    result = quorum.roll_quorum_members(OWNER, SPEC5, observation, workloads, RECONFIG_ON)
    assert result == "refused"
