"""Pure builder: pydantic models -> CustomResourceDefinition manifests.

Pydantic emits JSON Schema (draft 2020-12); the API server wants a structural OpenAPI v3.0
schema. This module translates: it inlines `$ref`s, turns `Optional[X]` into X, rewrites
numeric exclusive bounds into the v3.0 boolean form, drops `additionalProperties: false`
(forbidden in structural schemas; strict field validation rejects unknown fields instead) and
titles, and keeps CEL rules (`x-kubernetes-validations`) and defaults.
"""

from __future__ import annotations

from typing import Any

from orchestrator_operator.models import API_GROUP, API_VERSION, CATEGORY, ResourceKind

JsonSchema = dict[str, Any]

_DROPPED_KEYS = {"title", "$defs"}


def openapi_schema(model_schema: JsonSchema) -> JsonSchema:
    """Translate one pydantic JSON schema (with its `$defs`) into a structural schema."""
    defs: dict[str, JsonSchema] = model_schema.get("$defs", {})
    return _translate(model_schema, defs)


def _translate(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    if "$ref" in node:
        resolved = defs[node["$ref"].rsplit("/", 1)[-1]]
        # Keys beside a $ref (description, default) describe this use of the definition.
        merged = {**resolved, **{k: v for k, v in node.items() if k != "$ref"}}
        return _translate(merged, defs)
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"unions are not supported in CRD schemas: {node['anyOf']}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if rest.get("default", ...) is None:
            del rest["default"]
        return _translate({**variants[0], **rest}, defs)

    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or (key == "default" and value is None):
            continue
        if key == "additionalProperties":
            if value is False:
                continue
            out[key] = _translate(value, defs)
        elif key == "properties":
            out[key] = {name: _translate(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _translate(value, defs)
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "const":
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        out["type"] = _json_type(out["enum"][0])
    if out.get("format") == "date-time":
        out["type"] = "string"
    return out


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def without_defaults(schema: JsonSchema) -> JsonSchema:
    """A schema with no `default` anywhere: status says what its writer wrote, and a partial
    status patch (another process's part of it) must not come back with fields filled in."""
    result: JsonSchema = {}
    for key, value in schema.items():
        if key == "default":
            continue
        if key == "properties":  # field names, not keywords: a field may be called "default"
            value = {name: without_defaults(field) for name, field in value.items()}
        elif isinstance(value, dict):
            value = without_defaults(value)
        elif isinstance(value, list):
            value = [without_defaults(v) if isinstance(v, dict) else v for v in value]
        result[key] = value
    return result


def _subresources(kind: ResourceKind) -> JsonSchema:
    subresources: JsonSchema = {"status": {}}
    if kind.scale:
        subresources["scale"] = {
            "specReplicasPath": kind.scale.spec_replicas_path,
            "statusReplicasPath": kind.scale.status_replicas_path,
        }
    return subresources


def build_crd(kind: ResourceKind) -> JsonSchema:
    """The CustomResourceDefinition of one kind."""
    spec_schema = openapi_schema(kind.spec.model_json_schema(by_alias=True, mode="validation"))
    status_schema = without_defaults(
        openapi_schema(kind.status.model_json_schema(by_alias=True, mode="serialization"))
    )
    spec_schema["description"] = f"Desired state of the {kind.kind}."
    status_schema["description"] = f"Observed state of the {kind.kind}, written by the operator."
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": kind.crd_name,
            "labels": {"app.kubernetes.io/part-of": "orchestrator"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": _subresources(kind),
                    "additionalPrinterColumns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "jsonPath": c.json_path,
                            **({"priority": c.priority} if c.priority else {}),
                        }
                        for c in kind.columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }
