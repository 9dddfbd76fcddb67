"""The OpenAPI 3.1 document of the monitoring app's HTTP API."""

from __future__ import annotations

from typing import Any

from orchestrator_operator.monitor.app.topology import TOPOLOGIES
from orchestrator_operator.monitor.report import CONTROLS

_NODE = {
    "type": "object",
    "required": ["id", "topology", "label"],
    "properties": {
        "id": {"type": "string"},
        "topology": {"type": "string", "enum": list(TOPOLOGIES)},
        "label": {"type": "string"},
        "label_minor": {"type": "string"},
        "host": {"type": "string"},
        "probe": {"type": "string"},
        "parents": {"type": "object", "additionalProperties": {"type": "string"}},
        "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
        "adjacency": {"type": "array", "items": {"type": "string"}},
        "controls": {"type": "array", "items": {"type": "string", "enum": list(CONTROLS)}},
    },
}

_TOPOLOGY_PARAM = {
    "name": "topology",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": list(TOPOLOGIES)},
}
_FILTERS = [
    {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "substring"},
    {"name": "host", "in": "query", "schema": {"type": "string"}},
    {"name": "state", "in": "query", "schema": {"type": "string"}},
    {"name": "namespace", "in": "query", "schema": {"type": "string"}},
    {
        "name": "meta.{key}",
        "in": "query",
        "schema": {"type": "string"},
        "description": "exact match on a metadata key, e.g. meta.image=busybox",
    },
]
_ERR = {"description": "error", "content": {"application/json": {"schema": {"type": "object"}}}}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "orchestrator monitoring app", "version": "1"},
        "components": {
            "schemas": {"Node": _NODE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/report": {
                "post": {
                    "summary": "Submit a probe report (JSON, optionally gzip Content-Encoding)",
                    "requestBody": {
                        "content": {"application/json": {"schema": {"type": "object"}}}
                    },
                    "responses": {
                        "200": _json({"type": "object"}),
                        "400": _ERR,
                        "401": _ERR,
                        "413": _ERR,
                        "422": _ERR,
                        "429": _ERR,
                    },
                }
            },
            "/api/topology": {
                "get": {
                    "summary": "List topologies with node counts",
                    "responses": {"200": _json({"type": "array", "items": {"type": "object"}})},
                }
            },
            "/api/topology/{topology}": {
                "get": {
                    "summary": "One topology's nodes, filtered",
                    "parameters": [_TOPOLOGY_PARAM, *_FILTERS],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "topology": {"type": "string"},
                                    "nodes": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "$ref": "#/components/schemas/Node"
                                        },
                                    },
                                },
                            }
                        ),
                        "404": _ERR,
                    },
                }
            },
            "/api/topology/{topology}/ws": {
                "get": {
                    "summary": "WebSocket: a reset message with the whole (filtered) topology, "
                    "then {add, update, remove, metrics} diffs (metrics: [{id, metrics}] for "
                    "nodes whose only change is their metrics)",
                    "parameters": [_TOPOLOGY_PARAM, *_FILTERS],
                    "responses": {"101": {"description": "switching protocols"}},
                }
            },
            "/api/topology/{topology}/{node}": {
                "get": {
                    "summary": "A node with its 15 s series for the last hour and its children",
                    "parameters": [
                        _TOPOLOGY_PARAM,
                        {
                            "name": "node",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {"200": _json({"type": "object"}), "404": _ERR},
                }
            },
            "/api/search": {
                "get": {
                    "summary": "Nodes of every topology whose id, label or metadata contain q",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/api/control/{node}/{action}": {
                "post": {
                    "summary": "Run a container control through the probe that owns it "
                    "(needs the read-write token)",
                    "parameters": [
                        {
                            "name": "node",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "action",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(CONTROLS)},
                        },
                    ],
                    "responses": {
                        "200": _json({"type": "object"}),
                        "400": _ERR,
                        "403": _ERR,
                        "404": _ERR,
                        "502": _ERR,
                        "503": _ERR,
                    },
                }
            },
            "/api/probe/control": {
                "get": {"summary": "WebSocket control channel of a probe (X-Probe-Id header)"}
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": []}},
            "/healthz": {"get": {"summary": "Liveness", "security": []}},
        },
    }
