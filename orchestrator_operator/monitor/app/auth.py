"""Who may do what in the monitoring app: one identity per party (issue 17, point 5).

Two modes, chosen by ``orchestrator app --identities``:

- ``kubernetes``: probes present their projected, audience-bound ServiceAccount token. The app
  checks it with a TokenReview for its audience, accepts only the ProbeFleet's probe account,
  and binds the probe to the node and pod the token was issued for (the token's
  ``authentication.kubernetes.io/node-name`` and ``pod-name`` extras, set by the API server
  for a token bound to a pod). People present their own Kubernetes bearer token; a TokenReview
  says who they are and a SubjectAccessReview on the app's own resources (API group
  ``monitor.orchestrator.dev``: ``topologies`` get, ``logs`` get, ``controls`` create, in the
  app's namespace) says what they may do, so access is granted with RoleBindings. A scraper
  of ``/metrics`` (``--metrics-auth``) is asked ``get`` on the non-resource URL ``/metrics``,
  which Prometheus' ServiceAccount holds where it scrapes the API server and kubelets.
- ``static``: tokens given on the command line, each with roles (docker-compose, no
  Kubernetes). The read-write token may view, read logs and run controls, and report unless
  a separate probe token is given; the read-only token may view; both may scrape
  ``/metrics`` when it needs a token.

Review answers are cached for a few seconds (bounded), keyed by a hash of the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator_operator.common.kube_api import KubeApi

log = logging.getLogger(__name__)

# The roles a person may hold, and the resource of group GROUP each one is asked as.
VIEW, LOGS, CONTROL = "view", "logs", "control"
PROBE = "probe"
# Scraping /metrics (with --metrics-auth): asked as the non-resource URL, the way
# kube-rbac-proxy and the API server itself authorize a Prometheus scrape.
METRICS = "metrics"
METRICS_PATH = "/metrics"
GROUP = "monitor.orchestrator.dev"
RESOURCES: dict[str, tuple[str, str]] = {
    VIEW: ("topologies", "get"),
    LOGS: ("logs", "get"),
    CONTROL: ("controls", "create"),
}
DEFAULT_AUDIENCE = "orchestrator-monitor"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"
SA_PREFIX = "system:serviceaccount:"


class AuthError(Exception):
    """Refused: 401 (no valid credential), 403 (valid, not allowed) or 503 (cannot check)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ProbeIdentity:
    """A probe that authenticated. ``principal`` owns the probe ids it reports under;
    ``node`` is the node it must report as (None: not bound, static mode); ``pod`` is
    (namespace, name) of its pod in Kubernetes mode."""

    principal: str
    node: str | None = None
    pod: tuple[str, str] | None = None


class Authenticator(Protocol):
    mode: str

    async def probe(self, token: bytes) -> ProbeIdentity:
        """The probe presenting `token`, or AuthError."""
        ...

    async def person(self, token: bytes, role: str) -> str:
        """The name of the caller presenting `token` when it holds `role`, else AuthError."""
        ...

    async def holds(self, token: bytes, role: str) -> bool:
        """Whether the caller holds `role` (False on any refusal)."""
        ...


class StaticAuth:
    """Static tokens with roles (docker-compose). Compared in constant time, as bytes."""

    mode = "static"

    def __init__(self, tokens: list[tuple[str, str, frozenset[str]]]) -> None:
        """`tokens`: (name, token, roles)."""
        self._tokens = [(name, token.encode(), roles) for name, token, roles in tokens if token]
        if not self._tokens:
            raise ValueError("static mode needs at least one token")

    @classmethod
    def from_tokens(
        cls, token: str, read_only_token: str | None = None, probe_token: str | None = None
    ) -> StaticAuth:
        admin = frozenset({VIEW, LOGS, CONTROL, METRICS} | (set() if probe_token else {PROBE}))
        tokens = [("read-write token", token, admin)]
        if read_only_token:
            tokens.append(("read-only token", read_only_token, frozenset({VIEW, METRICS})))
        if probe_token:
            tokens.append(("probe token", probe_token, frozenset({PROBE})))
        return cls(tokens)

    def _match(self, presented: bytes) -> tuple[str, frozenset[str]] | None:
        found: tuple[str, frozenset[str]] | None = None
        for name, token, roles in self._tokens:  # every one compared: no early exit
            if hmac.compare_digest(presented, token) and found is None:
                found = (name, roles)
        return found

    async def probe(self, token: bytes) -> ProbeIdentity:
        match = self._match(token)
        if match is None:
            raise AuthError(401, "a valid probe token is required")
        if PROBE not in match[1]:
            raise AuthError(403, f"the {match[0]} may not report or hold a control channel")
        return ProbeIdentity(principal=f"static:{match[0]}")

    async def person(self, token: bytes, role: str) -> str:
        match = self._match(token)
        if match is None:
            raise AuthError(401, "a valid token is required")
        if role not in match[1]:
            raise AuthError(403, _static_refusal(match[0], role))
        return match[0]

    async def holds(self, token: bytes, role: str) -> bool:
        match = self._match(token)
        return match is not None and role in match[1]


def _static_refusal(name: str, role: str) -> str:
    if role == CONTROL:
        return "controls need the read-write token"
    if role == LOGS:
        return "logs need the read-write token"
    return f"the {name} may not {role}"


class _Cache:
    """A bounded, expiring map (least recently stored goes first)."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[tuple[str, ...], tuple[float, Any]] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> Any:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return None
        return hit[1]

    def put(self, key: tuple[str, ...], value: Any) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


@dataclass(frozen=True)
class _User:
    name: str
    uid: str
    groups: tuple[str, ...]
    extra: dict[str, list[str]]


class KubeAuth:
    """TokenReview and SubjectAccessReview through the app's own ServiceAccount."""

    mode = "kubernetes"

    def __init__(
        self,
        namespace: str,
        probe_accounts: frozenset[str],
        audience: str = DEFAULT_AUDIENCE,
        api_factory: Callable[[], KubeApi] | None = None,
        cache_ttl: float = 10.0,
        cache_size: int = 4096,
        timeout: float = 10.0,
    ) -> None:
        """`namespace`: where people's access is asked (the app's). `probe_accounts`:
        ``namespace:name`` of the ServiceAccounts whose tokens may report."""
        if not namespace:
            raise ValueError("Kubernetes mode needs the app's namespace")
        self.namespace = namespace
        self.probe_accounts = probe_accounts
        self.audience = audience
        self._factory: Callable[[], KubeApi] = api_factory or KubeApi
        self._api: KubeApi | None = None
        self._cache = _Cache(cache_ttl, cache_size)
        self._timeout = timeout
        # Reviews in flight at once: tokens nobody has seen (an anonymous flood included) each
        # cost one review; the others wait here rather than piling onto the API server.
        self._slots: asyncio.Semaphore | None = None
        self.max_in_flight = 8

    def _client(self) -> KubeApi:
        if self._api is None:
            self._api = self._factory()
        return self._api

    def _submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._client().submit(body)  # in a worker thread: the first builds the client

    async def _call(self, what: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_in_flight)
        try:
            async with self._slots:
                result = await asyncio.wait_for(
                    asyncio.to_thread(self._submit, body), self._timeout
                )
        except Exception as error:  # ApiError, OSError, timeouts, configuration
            # the exception (addresses, API server text) goes to the log only
            log.warning("%s failed: %s: %s", what, type(error).__name__, error)
            raise AuthError(
                503, f"cannot check credentials with the Kubernetes API ({what})"
            ) from None
        status: dict[str, Any] = dict(result.get("status") or {})
        return status

    async def _review(self, token: bytes, audience: str | None) -> _User | None:
        """The authenticated user of `token` for `audience` (None: the API server's own
        audiences, as for a person's token), or None when the token is not valid."""
        digest = hashlib.sha256(token).hexdigest()
        key = ("review", digest, audience or "")
        cached = self._cache.get(key)
        if cached is not None:
            return cached or None  # False: refused, cached too
        try:
            text = token.decode()
        except UnicodeDecodeError:
            return None
        if not text:
            return None
        spec: dict[str, Any] = {"token": text}
        if audience:
            spec["audiences"] = [audience]
        status = await self._call(
            "TokenReview",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
             "metadata": {}, "spec": spec},
        )  # fmt: skip
        user: _User | None = None
        audiences = status.get("audiences") or []
        if status.get("authenticated") and (not audience or audience in audiences):
            info = status.get("user") or {}
            user = _User(
                name=str(info.get("username", "")),
                uid=str(info.get("uid", "")),
                groups=tuple(str(g) for g in info.get("groups") or ()),
                extra={str(k): [str(x) for x in v] for k, v in (info.get("extra") or {}).items()},
            )
        self._cache.put(key, user or False)
        return user

    async def probe(self, token: bytes) -> ProbeIdentity:
        user = await self._review(token, self.audience)
        if user is None:
            raise AuthError(
                401,
                f"a valid ServiceAccount token for audience {self.audience!r} is required",
            )
        account = user.name.removeprefix(SA_PREFIX) if user.name.startswith(SA_PREFIX) else ""
        if account not in self.probe_accounts:
            raise AuthError(403, f"{user.name} is not a probe account of this app")
        pod = (user.extra.get(POD_NAME_EXTRA) or [""])[0]
        node = (user.extra.get(NODE_NAME_EXTRA) or [""])[0]
        if not pod or not node:
            raise AuthError(
                403,
                "the token is not bound to a pod on a node: mount a projected ServiceAccount "
                "token (Kubernetes 1.30 or later names the node in it)",
            )
        namespace = account.split(":", 1)[0]
        return ProbeIdentity(principal=f"pod:{namespace}/{pod}", node=node, pod=(namespace, pod))

    async def _allowed(self, user: _User, role: str) -> bool:
        key = ("access", user.name, user.uid, ",".join(user.groups), role)
        cached = self._cache.get(key)
        if cached is not None:
            return bool(cached)
        spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
        if role == METRICS:
            spec["nonResourceAttributes"] = {"path": METRICS_PATH, "verb": "get"}
        else:
            resource, verb = RESOURCES[role]
            spec["resourceAttributes"] = {
                "group": GROUP, "resource": resource, "verb": verb, "namespace": self.namespace,
            }  # fmt: skip
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = user.extra
        status = await self._call(
            "SubjectAccessReview",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
             "metadata": {}, "spec": spec},
        )  # fmt: skip
        allowed = bool(status.get("allowed")) and not status.get("denied")
        self._cache.put(key, allowed)
        return allowed

    async def person(self, token: bytes, role: str) -> str:
        user = await self._review(token, None)
        if user is None:
            raise AuthError(401, "a valid Kubernetes bearer token is required")
        if not await self._allowed(user, role):
            if role == METRICS:
                raise AuthError(
                    403,
                    f"{user.name} may not get {METRICS_PATH} (grant it with a ClusterRole"
                    f" allowing get on nonResourceURLs [{METRICS_PATH}], as Prometheus' own)",
                )
            resource, verb = RESOURCES[role]
            raise AuthError(
                403,
                f"{user.name} may not {verb} {resource}.{GROUP} in namespace "
                f"{self.namespace} (grant it with a RoleBinding)",
            )
        return user.name

    async def holds(self, token: bytes, role: str) -> bool:
        try:
            await self.person(token, role)
        except AuthError:
            return False
        return True
