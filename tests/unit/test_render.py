"""`orchestrator render`: the children the operator would apply for the examples, from the
same builders its handlers call, as multi-document YAML in a stable order; bad input is
named with its file, document and field, and exits 2. (tests/e2e/test_render.py compares the
output with what the operator really creates.)"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.cli import main
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, ZkRouting
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.builders import probefleet, zookeeper
from orchestrator_operator.operator.builders.cluster import build_children

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "examples/mesoscluster.yaml"
FLEET = REPO / "examples/probefleet.yaml"
MIGRATION = REPO / "examples/zkmigration.yaml"


def _render(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _example(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_the_example_cluster_renders_to_the_handler_s_children_in_apply_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _render(capsys, "-f", str(CLUSTER))
    assert (code, err) == (0, "")
    example = _example(CLUSTER)
    owner = Owner(name="demo", namespace="default", uid="")
    expected = build_children(owner, MesosClusterSpec.model_validate(example["spec"]))
    assert _documents(out) == expected
    assert [(d["kind"], d["metadata"]["name"]) for d in _documents(out)][:5] == [
        ("ConfigMap", "demo-zookeeper"),
        ("Service", "demo-zookeeper-headless"),
        ("Service", "demo-zookeeper-client"),
        ("PodDisruptionBudget", "demo-zookeeper"),
        ("StatefulSet", "demo-zookeeper"),
    ]
    # Each document says whose it is; multi-line values are literal blocks (diffable).
    assert out.count("---\n# MesosCluster default/demo\n") == len(expected)
    assert "  zoo.cfg: |\n    tickTime=2000\n" in out


def test_the_example_fleet_renders_every_child_and_no_token_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _render(capsys, "-f", str(FLEET))
    assert code == 0
    owner = probefleet.fleet_owner("scope", "default", "")
    spec = ProbeFleetSpec.model_validate(_example(FLEET)["spec"])
    assert _documents(out) == probefleet.build_children(owner, spec)
    assert "scope-token" not in out
    assert all(d["kind"] != "Secret" for d in _documents(out))


def test_the_example_migration_renders_ensemble_b_from_its_cluster_s_zookeeper_spec(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = _render(capsys, "-f", str(CLUSTER), "-f", str(MIGRATION))
    assert code == 0
    documents = _documents(out)
    cluster = MesosClusterSpec.model_validate(_example(CLUSTER)["spec"])
    migration = ZkMigrationSpec.model_validate(_example(MIGRATION)["spec"])
    assert migration.target.managed is not None
    owner = Owner(
        name="demo-to-zk-b", namespace="default", uid="",
        kind="ZkMigration", api_version="orchestrator.dev/v1alpha1",
    )  # fmt: skip
    ensemble_b = zookeeper.build_migration_target(owner, migration.target.managed, cluster)
    assert documents[-len(ensemble_b) :] == ensemble_b
    statefulset = documents[-1]
    assert statefulset["metadata"]["name"] == "demo-to-zk-b-zookeeper"
    assert statefulset["metadata"]["ownerReferences"][0]["kind"] == "ZkMigration"
    # the cluster's storage size would be 5Gi; B has the migration's (default) storage
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"] == {
        "requests": {"storage": "10Gi"}
    }


def test_a_migration_without_its_cluster_in_the_input_says_which_file_to_add(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _render(capsys, "-f", str(MIGRATION))
    assert (code, out) == (2, "")
    assert "MesosCluster default/demo's ZooKeeper spec, which is not in the input" in err
    assert "-f cluster.yaml -f migration.yaml" in err


def test_a_migration_to_an_external_ensemble_has_no_children(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = yaml.safe_dump({
        "apiVersion": "orchestrator.dev/v1alpha1", "kind": "ZkMigration",
        "metadata": {"name": "m"},
        "spec": {"clusterRef": "demo", "target": {"external": {"connectString": "zk-b:2181"}}},
    })  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, _ = _render(capsys, "-f", "-")
    assert code == 0
    assert out == "# ZkMigration default/m: no children: the target ensemble is external\n"


def test_several_documents_stdin_and_stable_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [CLUSTER, FLEET, MIGRATION]
    _, separate, _ = _render(capsys, *(arg for f in files for arg in ("-f", str(f))))
    stream = "---\n".join(f.read_text() for f in files)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stream.encode())))
    code, from_stdin, _ = _render(capsys, "-f", "-")
    assert code == 0 and from_stdin == separate
    owners = [line for line in from_stdin.splitlines() if line.startswith("# ")]
    assert owners[0] == "# MesosCluster default/demo" and owners[-1].startswith("# ZkMigration")
    _, again, _ = _render(capsys, *(arg for f in files for arg in ("-f", str(f))))
    assert again == separate


def test_a_routing_annotation_on_the_cluster_is_rendered_as_the_operator_applies_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster as `kubectl get -o yaml` shows it mid-migration: its uid in the owner
    references, and a second masters set on B that the routing annotation asks for."""
    cluster = _example(CLUSTER)
    routing = ZkRouting(migration="m", target="zk-b:2181", target_masters=1)
    cluster["metadata"]["uid"] = "0f0e"
    cluster["metadata"]["annotations"] = {ROUTING_ANNOTATION: routing.model_dump_json()}
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(cluster))
    code, out, err = _render(capsys, "-f", str(path))
    assert code == 0, err
    owner = Owner(name="demo", namespace="default", uid="0f0e")
    spec = MesosClusterSpec.model_validate(cluster["spec"])
    assert _documents(out) == build_children(owner, spec, routing)
    assert "demo-master-b" in {d["metadata"]["name"] for d in _documents(out)}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (
            "apiVersion: orchestrator.dev/v1alpha1\nkind: MesosCluster\nmetadata: {name: x}\n"
            "spec: {masters: {replicas: 2}, agents: {offered: {cpus: -1}}}\n",
            [
                "x.yaml, document 1: MesosCluster x: invalid spec: spec.masters:",
                "masters.replicas must be odd",
                "spec.agents.offered.cpus: Input should be greater",
            ],
        ),
        (
            "apiVersion: orchestrator.dev/v1alpha1\nkind: ProbeFleet\nmetadata: {name: p}\n"
            "spec: {app: {port: 99999}}\n",
            ["ProbeFleet p: invalid spec: spec.app.port:"],
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
            ["apiVersion 'v1' kind 'Pod' is not one of the operator's custom resources"],
        ),
        (
            "apiVersion: orchestrator.dev/v1alpha1\nkind: MesosCluster\nmetadata: {}\n",
            ["MesosCluster: metadata.name: a non-empty string is required"],
        ),
        ("kind: [\n", ["x.yaml: not valid YAML:", "(line 2, column 1)"]),
        (
            "apiVersion: orchestrator.dev/v1alpha1\nkind: MesosCluster\nmetadata: {name: a}\n"
            "kind: ProbeFleet\n",
            ["key 'kind' given twice in one mapping (line 4, column 1)"],
        ),
        ("# nothing\n", ["no custom resource in the input"]),
    ],
)
def test_bad_input_names_the_file_document_and_field_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, words: list[str]
) -> None:
    (tmp_path / "x.yaml").write_text(document)
    code, out, err = _render(capsys, "-f", str(tmp_path / "x.yaml"))
    assert (code, out) == (2, "")
    assert err.startswith("orchestrator render: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def test_a_missing_file_and_an_oversized_one_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _render(capsys, "-f", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: No such file or directory" in err
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (4 * 1024 * 1024 + 1))
    code, _, err = _render(capsys, "-f", str(big))
    assert code == 2 and "big.yaml: larger than 4194304 bytes" in err


def test_the_installed_command_reads_stdin_and_exits_non_zero_on_bad_input() -> None:
    command = [sys.executable, "-m", "orchestrator_operator.cli", "render", "-f", "-"]
    ok = subprocess.run(command, input=FLEET.read_text(), capture_output=True, text=True)
    assert ok.returncode == 0 and "# ProbeFleet default/scope\n" in ok.stdout
    bad = subprocess.run(command, input="kind: Nope\n", capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "orchestrator render: <stdin>, document 1:" in bad.stderr


def _zk_migration(spec: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "apiVersion": "orchestrator.dev/v1alpha1", "kind": "ZkMigration",
        "metadata": {"name": "m"}, "spec": spec,
    })  # fmt: skip


@pytest.mark.parametrize(
    ("document", "words"),
    [
        (
            _zk_migration({"clusterRef": "demo", "target": {"managed": {"replicas": 2}}}),
            "spec.target.managed.replicas: target.managed.replicas must be odd (1, 3, 5 or 7)",
        ),
        (
            _zk_migration({"clusterRef": "demo", "target": {}}),
            "spec.target: target needs exactly one of target.external or target.managed",
        ),
        (
            _zk_migration(
                {
                    "clusterRef": "demo",
                    "source": {"connectString": "a:2181"},
                    "target": {"external": {"connectString": "a:2181"}},
                }
            ),
            "spec.target.external.connectString: source and target must be different",
        ),
        (
            "apiVersion: orchestrator.dev/v1alpha1\nkind: MesosCluster\nmetadata: {name: c}\n"
            "spec: {zookeeper: {replicas: 2}}\n",
            "spec.zookeeper.replicas: zookeeper.replicas must be odd",
        ),
    ],
)
def test_the_crd_s_cel_rules_refuse_what_the_api_server_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, words: str
) -> None:
    """Rules only the CRD has (the models accept these specs): render evaluates them as the
    API server does, after filling in the schema's defaults."""
    (tmp_path / "x.yaml").write_text(document)
    code, out, err = _render(capsys, "-f", str(tmp_path / "x.yaml"))
    assert (code, out) == (2, "")
    assert "invalid spec: " in err and words in err, err


def test_every_cel_rule_of_the_crds_compiles_for_render() -> None:
    """A rule render could not evaluate would fail every document of that kind."""
    from orchestrator_operator.models import MESOS_CLUSTER, PROBE_FLEET, ZK_MIGRATION
    from orchestrator_operator.operator import render

    rules = []
    for kind in (MESOS_CLUSTER, PROBE_FLEET, ZK_MIGRATION):
        stack: list[Any] = [render._spec_schema(kind)]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for entry in node.get("x-kubernetes-validations") or []:
                    render._cel_program(entry["rule"])
                    rules.append(entry["rule"])
                stack += node.values()
            elif isinstance(node, list):
                stack += node
    assert len(rules) >= 17  # as in crds/*.yaml today
