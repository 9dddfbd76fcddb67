"""ProbeFleet builders and status."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.operator.builders.probefleet import (
    build_children,
    cluster_scoped_owner,
    fleet_key,
    fleet_owner,
    rbac,
)
from orchestrator_operator.operator.probefleet.status import FleetObservation, build_fleet_status

OWNER = fleet_owner("scope", "monitoring", "u1")


def _kinds(spec: ProbeFleetSpec) -> dict[str, dict[str, object]]:
    return {c["kind"]: c for c in build_children(OWNER, spec)}


def test_collectors_map_to_probe_flags() -> None:
    spec = ProbeFleetSpec.model_validate({"probe": {"collectors": {"containers": False}}})
    args = _kinds(spec)["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]["args"]  # type: ignore[index]
    assert "--no-docker" in args and "--kubernetes" in args
    volumes = _kinds(spec)["DaemonSet"]["spec"]["template"]["spec"]["volumes"]  # type: ignore[index]
    # no Docker socket; only the probe's projected, audience-bound token (issue 17, point 5)
    assert volumes == [
        {"name": "monitor-token", "projected": {"sources": [{"serviceAccountToken": {
            "audience": "orchestrator-monitor", "expirationSeconds": 600, "path": "token"}}]}}
    ]  # fmt: skip
    assert "--token-file" in args


def test_the_apps_metrics_need_a_token_unless_the_fleet_says_otherwise() -> None:
    def args(spec: ProbeFleetSpec) -> list[str]:
        return list(_kinds(spec)["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"])  # type: ignore[index]

    assert "--metrics-auth" in args(ProbeFleetSpec())
    open_metrics = ProbeFleetSpec.model_validate({"app": {"metricsAuth": False}})
    assert "--metrics-auth" not in args(open_metrics)


def test_the_app_checks_identities_with_kubernetes_not_a_shared_token() -> None:
    app = _kinds(ProbeFleetSpec())["Deployment"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert app["args"][app["args"].index("--identities") + 1] == "kubernetes"
    assert "scope:scope-probe" in app["args"] or any("-probe" in a for a in app["args"])
    assert not [e for e in app["env"] if "TOKEN" in e["name"]]
    probe = _kinds(ProbeFleetSpec())["DaemonSet"]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert not [e for e in probe["env"] if "TOKEN" in e["name"]]


def _pods(spec: ProbeFleetSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    kinds: dict[str, Any] = _kinds(spec)
    return (
        kinds["DaemonSet"]["spec"]["template"]["spec"],
        kinds["Deployment"]["spec"]["template"]["spec"],
    )


def test_app_tls_serves_https_and_the_probes_verify_it_with_the_ca_only() -> None:
    spec = ProbeFleetSpec.model_validate({"app": {"tls": {"secretName": "scope-app-tls"}}})
    probe_pod, app_pod = _pods(spec)
    app = app_pod["containers"][0]
    args = app["args"]
    assert args[args.index("--tls-dir") + 1] == "/etc/orchestrator/tls"
    assert "--tls-client-auth" not in args  # none: the default
    assert {"name": "tls", "secret": {"secretName": "scope-app-tls", "defaultMode": 0o440}} in (
        app_pod["volumes"]
    )
    assert app_pod["securityContext"]["fsGroup"] == 10001  # the key, 0440, to the app's group
    assert app["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert app["ports"] == [{"name": "https", "containerPort": 4040}]
    probe = probe_pod["containers"][0]
    url = probe["args"][probe["args"].index("--app") + 1]
    assert url == "https://scope-app.monitoring.svc:4040"  # the name the certificate holds
    assert probe["args"][probe["args"].index("--tls-ca") + 1] == "/etc/orchestrator/app-ca/ca.crt"
    app_ca = next(v for v in probe_pod["volumes"] if v["name"] == "app-ca")
    # the probes on every node get the CA, never the app's private key
    assert app_ca["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert "--tls-client-dir" not in probe["args"]
    service = _kinds(spec)["Service"]
    assert service["spec"]["ports"][0]["name"] == "https"  # type: ignore[index]


def test_mutual_tls_gives_the_probes_their_certificate_and_the_kubelet_a_tcp_check() -> None:
    spec = ProbeFleetSpec.model_validate(
        {"app": {"tls": {"secretName": "app-tls", "clientAuth": "required",
                         "probeSecretName": "probe-tls"}}}
    )  # fmt: skip
    probe_pod, app_pod = _pods(spec)
    app = app_pod["containers"][0]
    assert app["args"][app["args"].index("--tls-client-auth") + 1] == "required"
    assert app["livenessProbe"] == {"tcpSocket": {"port": 4040}, "initialDelaySeconds": 10}
    probe = probe_pod["containers"][0]
    assert probe["args"][probe["args"].index("--tls-client-dir") + 1] == (
        "/etc/orchestrator/probe-tls"
    )
    mine = next(v for v in probe_pod["volumes"] if v["name"] == "probe-tls")
    assert mine["secret"]["secretName"] == "probe-tls"
    assert [i["key"] for i in mine["secret"]["items"]] == ["tls.crt", "tls.key"]
    assert probe_pod["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": 10001,
    }


def test_mutual_tls_without_a_probe_certificate_is_refused_naming_the_field() -> None:
    with pytest.raises(
        ValueError, match=r"app\.tls\.clientAuth required needs app\.tls\.probeSecretName"
    ):
        ProbeFleetSpec.model_validate(
            {"app": {"tls": {"secretName": "x", "clientAuth": "required"}}}
        )
    plain = _pods(ProbeFleetSpec())
    assert "volumes" not in plain[1] and "fsGroup" not in plain[1]["securityContext"]
    # both pods under the runtime's default seccomp profile, the probe's too
    for pod in plain:
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_no_shared_token_secret_and_the_deprecated_refs_are_named_not_used() -> None:
    spec = ProbeFleetSpec.model_validate(
        {
            "tokenSecretRef": {"name": "mine", "key": "t"},
            "readOnlyTokenSecretRef": {"name": "ro", "key": "t"},
        }
    )
    assert spec.ignored_fields() == ["tokenSecretRef", "readOnlyTokenSecretRef"]
    assert ProbeFleetSpec().ignored_fields() == []
    children = build_children(OWNER, spec)
    assert "Secret" not in {child["kind"] for child in children}
    assert children == build_children(OWNER, ProbeFleetSpec())


def test_probe_and_app_each_get_their_own_cluster_rbac_without_owner() -> None:
    children = build_children(OWNER, ProbeFleetSpec())
    bindings = {c["metadata"]["name"]: c for c in children if c["kind"] == "ClusterRoleBinding"}
    assert {name: b["subjects"][0]["name"] for name, b in bindings.items()} == {
        "orchestrator-probe-monitoring-scope": "scope-probe",
        "orchestrator-app-monitoring-scope": "scope-app",
    }
    for child in children:
        if child["kind"].startswith("Cluster"):
            assert "ownerReferences" not in child["metadata"]
    roles = {c["metadata"]["name"]: c["rules"] for c in children if c["kind"] == "ClusterRole"}
    assert roles["orchestrator-app-monitoring-scope"][0]["verbs"] == ["get", "list"]


def _status(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"probes_desired": 3, "probes_ready": 3, "app_desired": 1,
                               "app_ready": 1, "app_url": "http://app", "reporting": 3}  # fmt: skip
    base.update(changes)
    return build_fleet_status(FleetObservation(**base), 1, [], "2026-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_phase_follows_what_reports() -> None:
    assert _status()["phase"] == "Ready"
    assert _status(reporting=2)["phase"] == "Degraded"
    assert _status(reporting=None, app_error="refused")["phase"] == "Progressing"
    assert _status(app_ready=0, reporting=None)["appReady"] is False


def _probe_pod(**collectors: bool) -> dict[str, Any]:
    spec = ProbeFleetSpec.model_validate({"probe": {"collectors": collectors}})
    pod: dict[str, Any] = _kinds(spec)["DaemonSet"]["spec"]["template"]["spec"]  # type: ignore[index]
    return pod


@pytest.mark.parametrize(
    ("switch", "flag"),
    [
        ("processes", "--no-processes"),
        ("connections", "--no-connections"),
        ("containers", "--no-docker"),
    ],
)
def test_each_disabled_collector_adds_its_flag(switch: str, flag: str) -> None:
    flags = {"--no-processes", "--no-connections", "--no-docker"}
    all_on = _probe_pod()["containers"][0]["args"]
    assert flags.isdisjoint(all_on) and "--kubernetes" in all_on
    args = _probe_pod(**{switch: False})["containers"][0]["args"]
    assert flag in args and flags.intersection(args) == {flag}
    assert "--kubernetes" not in _probe_pod(pods=False)["containers"][0]["args"]


def test_privileges_follow_the_collectors() -> None:
    def caps(pod: dict[str, Any]) -> list[str]:
        added: list[str] = pod["containers"][0]["securityContext"]["capabilities"].get("add", [])
        return added

    full = _probe_pod()
    assert full["hostPID"] and full["hostNetwork"]
    assert caps(full) == ["SYS_PTRACE", "SYS_ADMIN", "DAC_READ_SEARCH"]
    assert full["containers"][0]["securityContext"]["runAsUser"] == 0
    # Processes alone: host pids and fd counts, no setns.
    processes = _probe_pod(connections=False)
    assert processes["hostPID"] and caps(processes) == ["SYS_PTRACE", "DAC_READ_SEARCH"]
    # Containers alone: host pids for the cgroup stats, root for the socket, no capability.
    containers = _probe_pod(processes=False, connections=False)
    assert containers["hostPID"] and caps(containers) == []
    assert containers["containers"][0]["securityContext"]["runAsUser"] == 0
    # Pods alone: the API only; host network still (host addresses), the image's own user.
    pods = _probe_pod(processes=False, connections=False, containers=False)
    security = pods["containers"][0]["securityContext"]
    assert pods["hostPID"] is False and pods["hostNetwork"] is True and caps(pods) == []
    assert security["runAsNonRoot"] is True and "runAsUser" not in security
    assert security["capabilities"]["drop"] == ["ALL"]
    assert [v["name"] for v in pods["volumes"]] == ["monitor-token"]  # no host path


def test_whose_cluster_scoped_rbac_is_read_from_the_annotation_or_the_binding() -> None:
    owner = fleet_owner("mon", "pfa-x", "u1")
    built = [m for m in rbac(owner) if m["kind"].startswith("Cluster")]
    assert {cluster_scoped_owner(m, None) for m in built} == {fleet_key(owner)} == {"pfa-x/mon"}
    # Made before the annotation: the binding's subject namespace and the instance label.
    legacy_role = {"metadata": {"labels": {"app.kubernetes.io/instance": "mon"}}}
    legacy_binding = {**legacy_role, "subjects": [{"kind": "ServiceAccount", "name": "mon-probe",
                                                   "namespace": "pfa-x"}]}  # fmt: skip
    assert cluster_scoped_owner(legacy_role, legacy_binding) == "pfa-x/mon"
    # Someone's own ClusterRole of that name: nobody's fleet.
    assert (
        cluster_scoped_owner({"metadata": {"name": "orchestrator-probe-pfa-x-mon"}}, None) is None
    )
