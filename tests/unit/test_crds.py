"""crds/ is generated from the models; the generated schemas are structural."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from orchestrator_operator.models import KINDS, MARATHON_APP, MESOS_CLUSTER
from orchestrator_operator.operator.builders.crd import build_crd
from orchestrator_operator.operator.crds import render_crds

CRD_DIR = Path(__file__).parents[2] / "crds"


def test_checked_in_crds_match_the_models() -> None:
    rendered = render_crds()
    on_disk = {p.name: p.read_text() for p in CRD_DIR.glob("*.yaml")}
    assert on_disk == rendered, "crds/ is out of date: run `orchestrator crds`"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        if "properties" in node or "type" in node:
            found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found.extend(_walk(value, f"{path}.{key}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


def test_schemas_are_structural() -> None:
    for kind in KINDS:
        schema = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            assert "type" in node, f"{kind.kind}{path} has no type"
            for forbidden in ("$ref", "anyOf", "title", "$defs"):
                assert forbidden not in node, f"{kind.kind}{path} keeps {forbidden}"
            assert node.get("additionalProperties") is not False, f"{kind.kind}{path}"


def test_cel_rules_guard_related_fields() -> None:
    spec = yaml.safe_load(render_crds()[f"{MESOS_CLUSTER.crd_name}.yaml"])
    props = spec["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    zk_rules = [r["rule"] for r in props["properties"]["zookeeper"]["x-kubernetes-validations"]]
    master_rules = [r["rule"] for r in props["properties"]["masters"]["x-kubernetes-validations"]]
    assert any("% 2 == 1" in rule for rule in zk_rules)
    assert any("self.replicas % 2 == 1" in rule for rule in master_rules)
    assert any("self.quorum == (has(self.replicas)" in rule for rule in master_rules)


def test_printer_columns_short_names_and_category() -> None:
    for kind in KINDS:
        crd = build_crd(kind)
        assert crd["spec"]["names"]["categories"] == ["orchestrator"]
        assert crd["spec"]["names"]["shortNames"]
        columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
        assert "Phase" in columns
        subresources = crd["spec"]["versions"][0]["subresources"]
        assert subresources["status"] == {}
        assert ("scale" in subresources) == (kind is MARATHON_APP), kind.kind


def test_status_schemas_carry_no_defaults_and_specs_keep_theirs() -> None:
    """A partial status patch (the sync controller writes only status.sync) must come back as
    written, not with fields the API server filled in."""
    for kind in KINDS:
        version = build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert '"default"' not in json.dumps(version["properties"]["status"]), kind.kind
        assert '"default"' in json.dumps(version["properties"]["spec"]), kind.kind
