"""Traffic weights (pure): the `<app>-traffic` ConfigMaps and HAProxy's per-server weights.

A ConfigMap labelled `orchestrator.dev/traffic-for: <cluster>` holds `weights.json`:
`{"group": "<HAPROXY_DEPLOYMENT_GROUP>", "weights": {"/web": 90, "/web-canary": 10}}`
(integers 0-100 summing to 100). The group may also be a lone app's id (`"/web"`, an app
without `HAPROXY_DEPLOYMENT_GROUP`): the weights then apply to that app's backend.

The off-ramp (docs/offramp.md) names the Kubernetes side of the same backend with an
optional `kubernetes` object: `{"group": "/web", "weights": {"/web": 50}, "kubernetes":
{"service": "web", "port": "port0", "weight": 50}}`: the ready endpoints of the Service
`web`'s EndpointSlices (in the lb's namespace) on the port named `port0` (optional: the
slices' only port, else `port0`, else the first) are servers beside the Marathon tasks and
get `weight` percent; the Marathon weights and this one sum to 100. ConfigMaps without it
read as before. Each app of the group then gets its share of the
requests whatever its number of healthy servers: a server's HAProxy weight is the app's
share divided by the app's healthy servers, scaled so the largest is 256 (HAProxy's
maximum; 1 is the smallest non-zero weight, so a share below 1/256 of the largest
per-server share is rounded up to it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

TRAFFIC_LABEL = "orchestrator.dev/traffic-for"
WEIGHTS_KEY = "weights.json"
MAX_WEIGHT = 256
DEFAULT_WEIGHT = 100  # every server the same when a group has no weights
MAX_APPS = 16
MAX_BYTES = 16 * 1024
KUBERNETES_PREFIX = "kubernetes:"  # the Kubernetes side's id among the apps of a backend
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")  # a Service name (RFC 1035)
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$")  # an IANA_SVC_NAME-like port


@dataclass(frozen=True)
class KubernetesShare:
    """The Kubernetes pods of a Service as one more member of the backend."""

    service: str
    port: str | None
    weight: int

    @property
    def app_id(self) -> str:
        return kubernetes_id(self.service)


@dataclass(frozen=True)
class Traffic:
    group: str
    weights: dict[str, int]
    kubernetes: KubernetesShare | None = None


def kubernetes_id(service: str) -> str:
    """`kubernetes:<service>`: how the Kubernetes side appears among a backend's apps (in
    `/v1/backends`, the request log's per-app figures and the weights)."""
    return KUBERNETES_PREFIX + service


class TrafficError(ValueError):
    pass


def parse_traffic(name: str, data: Mapping[str, str] | None) -> Traffic:
    """A traffic ConfigMap's `weights.json`; TrafficError says what is wrong with it."""
    raw = (data or {}).get(WEIGHTS_KEY)
    if raw is None:
        raise TrafficError(f"configmap {name}: no {WEIGHTS_KEY} key")
    if len(raw) > MAX_BYTES:
        raise TrafficError(f"configmap {name}: {WEIGHTS_KEY} is larger than {MAX_BYTES} bytes")
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise TrafficError(f"configmap {name}: {WEIGHTS_KEY} is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise TrafficError(f"configmap {name}: {WEIGHTS_KEY} must be an object")
    group, weights = body.get("group"), body.get("weights")
    if not isinstance(group, str) or not group:
        raise TrafficError(f"configmap {name}: {WEIGHTS_KEY} needs a non-empty string 'group'")
    if not isinstance(weights, dict) or not weights:
        raise TrafficError(f"configmap {name}: {WEIGHTS_KEY} needs 'weights' {{app id: int}}")
    if len(weights) > MAX_APPS:
        raise TrafficError(f"configmap {name}: more than {MAX_APPS} apps in 'weights'")
    out: dict[str, int] = {}
    for app, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
            raise TrafficError(
                f"configmap {name}: the weight of {app!r} must be an integer 0-100, not {weight!r}"
            )
        out["/" + str(app).strip("/")] = weight
    kubernetes = _kubernetes(name, body.get("kubernetes"))
    total = sum(out.values()) + (kubernetes.weight if kubernetes else 0)
    if total != 100:
        with_kube = " (with kubernetes.weight)" if kubernetes else ""
        raise TrafficError(
            f"configmap {name}: the weights{with_kube} sum to {total}, they must sum to 100"
        )
    return Traffic(group, out, kubernetes)


def _kubernetes(name: str, raw: object) -> KubernetesShare | None:
    if raw is None:
        return None
    where = f"configmap {name}: {WEIGHTS_KEY}'s 'kubernetes'"
    if not isinstance(raw, dict):
        raise TrafficError(f"{where} must be an object {{service, port, weight}}")
    unknown = sorted(set(raw) - {"service", "port", "weight"})
    if unknown:
        raise TrafficError(f"{where} has unknown keys {unknown} (service, port, weight)")
    service, port, weight = raw.get("service"), raw.get("port"), raw.get("weight")
    if not isinstance(service, str) or not _DNS_LABEL.match(service):
        raise TrafficError(
            f"{where}: 'service' must be a Service name (a DNS label, 1-63 characters),"
            f" not {service!r}"
        )
    if port is not None and (not isinstance(port, str) or not _PORT_NAME.match(port)):
        raise TrafficError(f"{where}: 'port' must be a port name (1-15 characters), not {port!r}")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise TrafficError(f"{where}: 'weight' must be an integer 0-100, not {weight!r}")
    return KubernetesShare(service, port, weight)


def server_weights(shares: Mapping[str, int], healthy: Mapping[str, int]) -> dict[str, int]:
    """App id -> the HAProxy weight of each of its servers, so that the app gets `shares[app]`
    percent of the requests with `healthy[app]` servers. An app not in `shares` gets 0.
    When no app with a share has a healthy server, every server weighs the same: serving
    the group beats refusing it for a stale ConfigMap."""
    ratios = {app: shares.get(app, 0) / count for app, count in healthy.items() if count > 0}
    top = max(ratios.values(), default=0.0)
    if top <= 0:
        return {app: DEFAULT_WEIGHT for app in healthy}
    return {
        app: 0 if ratio <= 0 else max(1, min(MAX_WEIGHT, round(MAX_WEIGHT * ratio / top)))
        for app, ratio in ratios.items()
    } | {app: 0 for app, count in healthy.items() if count <= 0}


def expected_shares(weights: Mapping[str, int], healthy: Mapping[str, int]) -> dict[str, float]:
    """App id -> the fraction of requests it gets with these per-server weights (what a
    client measures over many requests under round robin)."""
    total = sum(weights.get(app, 0) * count for app, count in healthy.items())
    if total <= 0:
        return {app: 0.0 for app in healthy}
    return {app: weights.get(app, 0) * count / total for app, count in healthy.items()}
