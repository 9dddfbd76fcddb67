"""A Service's EndpointSlices as servers of a backend (pure: no I/O).

The off-ramp (docs/offramp.md) puts the Kubernetes pods of a MarathonApp's Service beside
its Marathon tasks in one HAProxy backend. The pods are read from the Service's
EndpointSlices (label `kubernetes.io/service-name`, discovery.k8s.io/v1), as kube-proxy
reads them: an endpoint whose `conditions.ready` is true (or unset: the API says to read
an unknown state as ready) is a server; one that is terminating but still `serving` is
drained (no new requests, the ones in flight finish); any other is left out. Only IPv4
addresses are used (HAProxy's runtime API is given addresses, and the Marathon side is
IPv4). A slice holds at most 1,000 endpoints (the API's own limit); at most
`MAX_ENDPOINTS` per Service are taken.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator_operator.lb.config import DRAIN, READY, Server, is_ip
from orchestrator_operator.lb.weights import KubernetesShare

SERVICE_LABEL = "kubernetes.io/service-name"
DEFAULT_PORT_NAME = "port0"
MAX_ENDPOINTS = 512


def service_of(slice_: Mapping[str, Any]) -> str | None:
    labels = (slice_.get("metadata") or {}).get("labels") or {}
    name = labels.get(SERVICE_LABEL)
    return str(name) if name else None


def _port(slice_: Mapping[str, Any], wanted: str | None) -> int | None:
    """The slice's port named `wanted`; without a name: its only port, else `port0`, else
    the first."""
    ports = [p for p in slice_.get("ports") or [] if isinstance(p, Mapping)]
    ports = [p for p in ports if isinstance(p.get("port"), int) and 1 <= p["port"] <= 65535]
    ports = [p for p in ports if str(p.get("protocol") or "TCP") == "TCP"]
    if wanted is not None:
        found = [p for p in ports if p.get("name") == wanted]
    elif len(ports) == 1:
        found = ports
    else:
        found = [p for p in ports if p.get("name") == DEFAULT_PORT_NAME] or ports[:1]
    return int(found[0]["port"]) if found else None


def endpoint_servers(slices: Iterable[Mapping[str, Any]], share: KubernetesShare) -> list[Server]:
    """The servers of `share.service` from the namespace's EndpointSlices (any order; other
    Services' slices are passed over)."""
    servers: dict[str, Server] = {}
    for slice_ in sorted(slices, key=lambda s: str((s.get("metadata") or {}).get("name"))):
        if service_of(slice_) != share.service:
            continue
        if str(slice_.get("addressType") or "IPv4") != "IPv4":
            continue
        port = _port(slice_, share.port)
        if port is None:
            continue
        for endpoint in slice_.get("endpoints") or []:
            if not isinstance(endpoint, Mapping):
                continue
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready")
            if ready is None:
                ready = not conditions.get("terminating", False)
            serving = conditions.get("serving", ready)
            if ready:
                state = READY
            elif serving and conditions.get("terminating"):
                state = DRAIN
            else:
                continue
            target = endpoint.get("targetRef") or {}
            for address in (endpoint.get("addresses") or [])[:1]:  # one pod: one address
                address = str(address)
                if not is_ip(address) or ":" in address:
                    continue
                key = f"{share.app_id}/{target.get('name') or address}:{port}"
                if key in servers or len(servers) >= MAX_ENDPOINTS:
                    continue
                servers[key] = Server(
                    task_id=key,
                    app_id=share.app_id,
                    host=address,
                    port=port,
                    weight=0,
                    state=state,
                )
    return list(servers.values())
