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
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
}
_ERR = {"description": "error", "content": {"application/json": {"schema": _ERROR_SCHEMA}}}
_NOT_UPGRADE = {**_ERR, "description": "not a WebSocket upgrade"}
_PLATFORM_KIND = {
    "name": "kind",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": ["mesosclusters", "zkmigrations"]},
}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document() -> dict[str, Any]:
    document = _document()
    # Every operation with security: 401 without a valid credential, 403 for one without the
    # role (a read-only token reporting; a person without the RoleBinding), 503 when the
    # Kubernetes API cannot check it (--identities kubernetes).
    for operations in document["paths"].values():
        for operation in operations.values():
            if operation.get("security") == []:
                continue
            for status in ("401", "403", "503"):
                operation["responses"].setdefault(status, _ERR)
    return document


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "orchestrator monitoring app", "version": "1"},
        "components": {
            "schemas": {"Node": _NODE},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        # Tokens go in the Authorization header only (a token in the URL is refused).
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
                        "415": _ERR,
                        "422": _ERR,
                        "429": _ERR,
                    },
                }
            },
            "/api/topology": {
                "get": {
                    "summary": "List topologies with node counts",
                    "responses": {
                        "200": _json({"type": "array", "items": {"type": "object"}}),
                        "401": _ERR,
                    },
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
                        "400": _ERR,
                        "401": _ERR,
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
                    "description": "A browser offers the subprotocols orchestrator.monitor.v1 "
                    "and base64url.bearer.orchestrator.dev.<base64url(token)> instead of the "
                    "Authorization header; an Origin other than the app's own is refused (403).",
                    "responses": {
                        "101": {"description": "switching protocols"},
                        "400": _NOT_UPGRADE,
                        "401": _ERR,
                        "403": _ERR,
                        "404": _ERR,
                    },
                }
            },
            "/api/topology/{topology}/{node}": {
                "get": {
                    "summary": "A node with its 15 s series for the last hour and its children "
                    "(a process: its command line for the control role only)",
                    "parameters": [
                        _TOPOLOGY_PARAM,
                        {
                            "name": "node",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {"200": _json({"type": "object"}), "401": _ERR, "404": _ERR},
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
                    "responses": {"200": _json({"type": "object"}), "400": _ERR, "401": _ERR},
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
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "tail": {"type": "integer", "minimum": 1, "maximum": 10000},
                                        "timeout": {
                                            "type": "integer",
                                            "minimum": 0,
                                            "maximum": 300,
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json({"type": "object"}),
                        "400": _ERR,
                        "401": _ERR,
                        "403": _ERR,
                        "404": _ERR,
                        "413": _ERR,
                        "422": _ERR,
                        "502": _ERR,
                        "503": _ERR,
                    },
                }
            },
            "/api/probe/control": {
                "get": {
                    "summary": "WebSocket control channel of a probe (X-Probe-Id header)",
                    "parameters": [
                        {
                            "name": "X-Probe-Id",
                            "in": "header",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 253},
                        }
                    ],
                    "responses": {
                        "101": {"description": "switching protocols"},
                        "400": {**_ERR, "description": "no or bad X-Probe-Id, or not an upgrade"},
                        "401": _ERR,
                        "403": _ERR,
                    },
                }
            },
            "/api/platform/{kind}": {
                "get": {
                    "summary": "Every MesosCluster or ZkMigration (all namespaces), summarised",
                    "parameters": [_PLATFORM_KIND],
                    "responses": {
                        "200": _json({"type": "object", "required": ["kind", "items"]}),
                        "401": _ERR,
                        "404": _ERR,
                        "503": _ERR,
                    },
                }
            },
            "/api/platform/{kind}/{namespace}/{name}": {
                "get": {
                    "summary": "One MesosCluster or ZkMigration: summary, spec and status",
                    "parameters": [
                        _PLATFORM_KIND,
                        {
                            "name": "namespace",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": _json({"type": "object"}),
                        "401": _ERR,
                        "404": _ERR,
                        "503": _ERR,
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}), "401": _ERR},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (counts only); with --metrics-auth only for a"
                    " bearer token allowed get on /metrics (docs/security.md)",
                    "security": [{}, {"bearer": []}],
                    "responses": {"200": {"description": "OK", "content": {"text/plain": {}}}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": _json({"type": "object"})},
                }
            },
        },
    }
