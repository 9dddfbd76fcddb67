"""ProbeFleet against the real control plane, with a real monitoring app and a real probe on
loopback: the children it makes, and a status that counts the probes that really report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from testenv.kube import KubeTestEnv
from testenv.operator import OperatorProcess
from testenv.processes import free_port
from tests.e2e.support import eventually, get_json

pytestmark = pytest.mark.kube
TOKEN = "e2e-probe-token"


def _fleet(name: str, port: int) -> str:
    return yaml.safe_dump({
        "apiVersion": "orchestrator.dev/v1alpha1",
        "kind": "ProbeFleet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"probe": {"intervalSeconds": 1}, "app": {"port": port}},
    })  # fmt: skip


def _status(env: KubeTestEnv, name: str) -> dict[str, Any]:
    return dict((get_json(env, "probefleet", name) or {}).get("status", {}))


def _conditions(env: KubeTestEnv, name: str) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in _status(env, name).get("conditions", [])}


@pytest.fixture
def monitoring_app() -> Iterator[tuple[int, Callable[[], subprocess.Popen[bytes]]]]:
    """A real `orchestrator app` on loopback, and a way to start real probes against it."""
    port = free_port()
    processes = [
        subprocess.Popen([sys.executable, "-m", "orchestrator_operator.cli", "app", "--listen",
                          "127.0.0.1", "--port", str(port), "--token", TOKEN])
    ]  # fmt: skip

    def start_probe() -> subprocess.Popen[bytes]:
        probe = subprocess.Popen([
            sys.executable, "-m", "orchestrator_operator.cli", "probe", "--app",
            f"http://127.0.0.1:{port}", "--token", TOKEN, "--interval", "1", "--no-docker",
            "--hostname", f"e2e-host-{len(processes)}",
        ])  # fmt: skip
        processes.append(probe)
        return probe

    yield port, start_probe
    for process in processes:
        process.terminate()
        process.wait(timeout=20)


def test_fleet_children_token_and_rbac(kube_env: KubeTestEnv, operator: OperatorProcess) -> None:
    assert kube_env.kubectl_run("apply", "-f", "-", input=_fleet("scope", 4040)).returncode == 0
    fleet = eventually(lambda: get_json(kube_env, "pf", "scope"), 30, "the ProbeFleet")
    uid = fleet["metadata"]["uid"]
    probe = eventually(lambda: get_json(kube_env, "daemonset", "scope-probe"), 60, "the probes")
    pod = probe["spec"]["template"]["spec"]
    assert pod["hostPID"] and pod["hostNetwork"]
    container = pod["containers"][0]
    assert container["args"][:3] == ["probe", "--app", "http://scope-app.default.svc:4040"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    children = [("deployment", "scope-app"), ("service", "scope-app"),
                ("serviceaccount", "scope-probe"), ("serviceaccount", "scope-app"),
                ("networkpolicy", "scope-app")]  # fmt: skip
    for kind, name in children:
        child = eventually(lambda k=kind, n=name: get_json(kube_env, k, n), 30, f"{kind}/{name}")  # type: ignore[misc]
        assert child["metadata"]["ownerReferences"][0]["uid"] == uid
    role = get_json(kube_env, "clusterrole", "orchestrator-probe-default-scope")
    assert role is not None
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods", "services"],
                              "verbs": ["get", "list", "watch"]}]  # fmt: skip

    # No shared token: the probes use their ServiceAccount tokens. A manifest written for an
    # earlier version still applies; the deprecated field is named in a Warning, not used.
    kube_env.kubectl_run("patch", "pf", "scope", "--type=merge", "-p",
                         '{"spec": {"probe": {"intervalSeconds": 5},'
                         ' "tokenSecretRef": {"name": "old-token", "key": "token"}}}')  # fmt: skip
    eventually(lambda: "5" in (get_json(kube_env, "daemonset", "scope-probe") or {})["spec"]
                ["template"]["spec"]["containers"][0]["args"], 30, "the new interval")  # fmt: skip
    warning = eventually(
        lambda: [e for e in (get_json(kube_env, "events") or {}).get("items", [])
                 if e["reason"] == "DeprecatedField" and e["involvedObject"]["uid"] == uid],
        30, "the DeprecatedField Warning")  # fmt: skip
    assert warning[0]["type"] == "Warning"
    assert "spec.tokenSecretRef ignored" in warning[0]["message"]
    assert get_json(kube_env, "secret", "scope-token") is None
    assert "old-token" not in json.dumps(get_json(kube_env, "daemonset", "scope-probe"))

    # The app's Ingress NetworkPolicy (issue 17 points 8, 12), as the API server stored it:
    # the app's port from the nodes, the operator's namespace, Prometheus' and the fleet's own.
    policy = (get_json(kube_env, "networkpolicy", "scope-app") or {})["spec"]
    assert policy["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/instance": "scope", "app.kubernetes.io/component": "app"}  # fmt: skip
    assert policy["policyTypes"] == ["Ingress"]
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {4040}
    assert [peer for rule in policy["ingress"] for peer in rule["from"]][-1] == {"podSelector": {}}
    # Naming the UI's users replaces the default; switching it off deletes the policy.
    ingress = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}}}

    def set_policy(policy: dict[str, Any]) -> None:
        patch = json.dumps({"spec": {"app": {"networkPolicy": policy}}})
        result = kube_env.kubectl_run("patch", "pf", "scope", "--type=merge", "-p", patch)
        assert result.returncode == 0, result.stderr

    def last_rule() -> list[Any]:
        stored = get_json(kube_env, "networkpolicy", "scope-app") or {}
        return list(stored["spec"]["ingress"][-1]["from"])

    set_policy({"allowFrom": [ingress]})
    eventually(lambda: last_rule() == [ingress], 30, "allowFrom in the policy")
    set_policy({"enabled": False})
    eventually(lambda: get_json(kube_env, "networkpolicy", "scope-app") is None, 30,
               "the policy deleted once switched off")  # fmt: skip

    assert kube_env.kubectl_run("delete", "pf", "scope", "--wait=true").returncode == 0
    for role_name in ("orchestrator-probe-default-scope", "orchestrator-app-default-scope"):
        eventually(lambda r=role_name: get_json(kube_env, "clusterrole", r) is None, 30,  # type: ignore[misc]
                   f"{role_name} removed with the fleet")  # fmt: skip


def test_status_counts_the_probes_that_really_report(
    kube_env: KubeTestEnv,
    operator: OperatorProcess,
    monitoring_app: tuple[int, Callable[[], subprocess.Popen[bytes]]],
) -> None:
    port, start_probe = monitoring_app
    assert kube_env.kubectl_run("apply", "-f", "-", input=_fleet("live", port)).returncode == 0
    # KWOK runs a probe pod on each of the 3 nodes, but none of them can report: only
    # real processes on this machine reach the app.
    start_probe()

    def one_of_three() -> bool:
        status = _status(kube_env, "live")
        return status.get("probesExpected") == 3 and status.get("probesReporting") == 1

    eventually(one_of_three, 60, "1 of 3 probes reporting")
    reporting = _conditions(kube_env, "live")["ProbesReporting"]
    assert (reporting["status"], reporting["reason"]) == ("False", "Missing")
    assert reporting["message"] == "1 of 3 expected probes reporting"
    assert _status(kube_env, "live")["phase"] == "Degraded"

    start_probe()
    start_probe()
    eventually(lambda: _status(kube_env, "live").get("phase") == "Ready", 60, "phase Ready")
    assert _conditions(kube_env, "live")["ProbesReporting"]["status"] == "True"


def test_unreachable_app_is_unknown_not_a_crash(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    port = free_port()  # nothing listens there
    assert kube_env.kubectl_run("apply", "-f", "-", input=_fleet("dark", port)).returncode == 0
    condition = eventually(lambda: _conditions(kube_env, "dark").get("ProbesReporting"), 60,
                            "a ProbesReporting condition")  # fmt: skip
    assert (condition["status"], condition["reason"]) == ("Unknown", "AppUnreachable")
    assert f"127.0.0.1:{port}" in condition["message"]
    assert _status(kube_env, "dark")["phase"] == "Progressing"
    assert operator.process.poll() is None


def test_a_label_key_the_schema_cannot_check_makes_the_fleet_invalid_naming_the_field(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    """A CRD cannot constrain a map's keys: the operator refuses the label key before it
    makes anything, and the condition names the field."""
    fleet = yaml.safe_load(_fleet("badlabel", 4040))
    fleet["spec"]["app"]["networkPolicy"] = {"monitoringNamespaceLabels": {"not a key": "x"}}
    applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(fleet))
    assert applied.returncode == 0, applied.stderr
    try:
        eventually(lambda: _status(kube_env, "badlabel").get("phase") == "Invalid", 30,
                   "phase Invalid")  # fmt: skip
        accepted = _conditions(kube_env, "badlabel")["Accepted"]
        assert accepted["status"] == "False"
        assert "app.networkPolicy.monitoringNamespaceLabels" in accepted["message"]
        assert "'not a key' is not a label key" in accepted["message"]
        assert get_json(kube_env, "deployment", "badlabel-app") is None
        assert get_json(kube_env, "networkpolicy", "badlabel-app") is None
    finally:
        kube_env.kubectl_run("delete", "pf", "badlabel", "--wait=false")


def test_a_fleet_whose_cluster_scoped_names_are_another_fleets_is_refused(
    kube_env: KubeTestEnv, operator: OperatorProcess
) -> None:
    # Fleet "mon" in namespace "pfa-x" and fleet "x-mon" in namespace "pfa" both name their
    # ClusterRoles orchestrator-{probe,app}-pfa-x-mon: the second must not take them over.
    for namespace in ("pfa-x", "pfa"):
        kube_env.kubectl_run("create", "namespace", namespace)
    first = yaml.safe_load(_fleet("mon", 4041)) | {
        "metadata": {"name": "mon", "namespace": "pfa-x"}
    }
    second = yaml.safe_load(_fleet("x-mon", 4042)) | {
        "metadata": {"name": "x-mon", "namespace": "pfa"}
    }
    role = "orchestrator-probe-pfa-x-mon"

    def binding_namespace() -> str | None:
        binding = get_json(kube_env, "clusterrolebinding", role)
        return str(binding["subjects"][0]["namespace"]) if binding else None

    try:
        applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(first))
        assert applied.returncode == 0, applied.stderr
        eventually(lambda: binding_namespace() == "pfa-x", 30, "the first fleet's binding")
        applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump(second))
        assert applied.returncode == 0, applied.stderr

        def refusal() -> str:
            fleet = get_json(kube_env, "pf", "x-mon", "-n", "pfa") or {}
            conditions = (fleet.get("status") or {}).get("conditions") or []
            accepted: dict[str, Any] = next((c for c in conditions if c["type"] == "Accepted"), {})
            return str(accepted.get("message", "")) if accepted.get("status") == "False" else ""

        message = eventually(refusal, 30, "the second fleet refused")
        assert f"{role} exists and is ProbeFleet pfa-x/mon's" in message
        assert binding_namespace() == "pfa-x", "the first fleet's binding was taken over"
        assert get_json(kube_env, "daemonset", "x-mon-probe", "-n", "pfa") is None

        deleted = kube_env.kubectl_run("delete", "pf", "x-mon", "-n", "pfa", "--wait=true")
        assert deleted.returncode == 0, deleted.stderr
        assert binding_namespace() == "pfa-x", "deleting the refused fleet deleted another's"
        assert get_json(kube_env, "clusterrole", role) is not None
        kube_env.kubectl_run("delete", "pf", "mon", "-n", "pfa-x", "--wait=true")
        eventually(lambda: get_json(kube_env, "clusterrole", role) is None, 30,
                   "the first fleet's ClusterRole deleted with it")  # fmt: skip
    finally:
        for namespace in ("pfa-x", "pfa"):
            kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")
