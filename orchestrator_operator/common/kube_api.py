"""The few Kubernetes API calls the handlers make: server-side apply and get.

The official client only reads the credentials (kubeconfig or in-cluster); requests go
through httpx. Children are written with server-side apply, so the operator owns exactly
the fields it sets and leaves the rest (HPA replicas, other controllers' fields) alone.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prometheus_client import Counter

from orchestrator_operator.common.manifest import Manifest, owned_by

FIELD_MANAGER = "orchestrator"
APPLY_CONCURRENCY = 8
_IRREGULAR_PLURALS: dict[str, str] = {"NetworkPolicy": "networkpolicies"}
KUBE_API_REQUESTS = Counter(
    "orchestrator_kube_api_requests_total",
    "Requests the handlers sent to the Kubernetes API, by verb and kind (the operator's own"
    " watches are not counted).",
    ["verb", "kind"],
)


def object_path(api_version: str, kind: str, namespace: str | None, name: str | None) -> str:
    """The REST path of an object (or of its collection when `name` is None)."""
    plural = _IRREGULAR_PLURALS.get(kind, kind.lower() + "s")
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
    return path + (f"/{name}" if name else "")


_METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_FIRST_KINDS = frozenset({"ServiceAccount", "Role", "ClusterRole"})


def apply_waves(manifests: list[Manifest]) -> list[list[Manifest]]:
    """The objects in the order their writes depend on: roles and accounts, then the rest."""
    first = [m for m in manifests if m["kind"] in _FIRST_KINDS]
    rest = [m for m in manifests if m["kind"] not in _FIRST_KINDS]
    return [wave for wave in (first, rest) if wave]


def _ssl_context(configuration: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class KubeApi:
    """Thread-safe: Kopf runs sync handlers in a thread pool."""

    _lock = threading.Lock()
    _shared: KubeApi | None = None

    def __init__(self) -> None:
        from kubernetes import client, config  # imported lazily: large, and only needed here

        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except config.ConfigException:
            # The library's default path is read from KUBECONFIG when it is imported; read
            # it now, so a KUBECONFIG set later (a test, a wrapper script) is honoured.
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG") or None,
                client_configuration=configuration,
            )
        self._configuration = configuration
        self._http = httpx.Client(
            base_url=configuration.host,
            verify=_ssl_context(configuration),
            timeout=30.0,
            limits=httpx.Limits(max_connections=APPLY_CONCURRENCY * 4),
        )
        self._pool = ThreadPoolExecutor(APPLY_CONCURRENCY, thread_name_prefix="kube-apply")

    @classmethod
    def shared(cls) -> KubeApi:
        with cls._lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    def _call(
        self,
        verb: str,
        kind: str,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        KUBE_API_REQUESTS.labels(verb, kind).inc()
        headers = {"Content-Type": content_type, "Accept": accept}
        # Token sources (service account, exec plugins) refresh through this call.
        token = self._configuration.get_api_key_with_prefix(
            "BearerToken"
        ) or self._configuration.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        content = json.dumps(body) if body is not None else None
        try:
            response = self._http.request(
                method, path, params=params, headers=headers, content=content
            )
        except httpx.TransportError:
            if method != "GET":
                raise
            # A read is safe to send again, on a new connection: one dropped or reset
            # under it (seen once as EBADF) should not cost a handler its retry delay.
            response = self._http.request(
                method, path, params=params, headers=headers, content=content
            )
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text[:2000])
        return response.json()

    def apply(self, manifest: Manifest) -> Manifest:
        """Server-side apply `manifest` (create or update the fields we own)."""
        meta = manifest["metadata"]
        path = object_path(
            manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"]
        )
        result: Manifest = self._call(
            "apply",
            manifest["kind"],
            "PATCH",
            path,
            body=manifest,  # JSON is YAML: the apply content type takes it as it is
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            content_type="application/apply-patch+yaml",
        )
        return result

    def create(self, manifest: Manifest) -> bool:
        """Create `manifest` unless an object of that name exists; True when it created one.

        For objects written once and never again (a generated Secret): needs only the
        `create` permission, not `get`.
        """
        meta = manifest["metadata"]
        path = object_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), None)
        try:
            self._call("create", manifest["kind"], "POST", path, body=manifest)
            return True
        except ApiError as error:
            if error.status == 409:
                return False
            raise

    def submit(self, manifest: Manifest, *, dry_run: bool = False) -> Manifest:
        """POST a new object and return what the server made of it (defaults applied).

        `dry_run=True` (`dryRun=All`): the server validates it (schema, CEL rules,
        admission) and stores nothing. An existing object of that name raises ApiError 409.
        """
        meta = manifest["metadata"]
        path = object_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), None)
        params = {"fieldManager": FIELD_MANAGER}
        if dry_run:
            params["dryRun"] = "All"
        result: Manifest = self._call(
            "create", manifest["kind"], "POST", path, body=manifest, params=params
        )
        return result

    def apply_all(self, manifests: list[Manifest]) -> None:
        """Apply objects concurrently: a reconcile waits for the slowest write, not for the
        sum of them. Roles go first: a binding's escalation check reads the role it names,
        and answers 404 while that role does not exist yet."""
        for wave in apply_waves(manifests):
            list(self._pool.map(self.apply, wave))  # re-raises the first failure

    def get(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        *,
        metadata_only: bool = False,
    ) -> Manifest | None:
        """The object, or None when there is none. `metadata_only`: its metadata alone (a
        PartialObjectMetadata): who owns it, without reading the rest (a Secret's data)."""
        try:
            path = object_path(api_version, kind, namespace, name)
            accept = _METADATA_ONLY if metadata_only else "application/json"
            result: Manifest = self._call("get", kind, "GET", path, accept=accept)
            return result
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    def metadata_of(self, manifests: Sequence[Manifest]) -> list[Manifest | None]:
        """The metadata of the live object under each manifest's name, concurrently."""

        def live(manifest: Manifest) -> Manifest | None:
            meta = manifest["metadata"]
            return self.get(
                manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"],
                metadata_only=True,
            )  # fmt: skip

        return list(self._pool.map(live, manifests))

    def list_with_version(
        self, api_version: str, kind: str, namespace: str | None, **selectors: str
    ) -> tuple[list[Manifest], str]:
        """As `list`, with the list's resourceVersion (to `watch` from)."""
        params = {
            {"field_selector": "fieldSelector", "label_selector": "labelSelector"}[k]: v
            for k, v in selectors.items()
        }
        path = object_path(api_version, kind, namespace, None)
        body = self._call("list", kind, "GET", path, params=params)
        return list(body["items"]), str(body["metadata"].get("resourceVersion", ""))

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        resource_version: str,
        timeout_seconds: int = 300,
        **selectors: str,
    ) -> Iterator[Manifest]:
        """The watch events (`{"type": ADDED|MODIFIED|DELETED|ERROR, "object": ...}`) after
        `resource_version`, until the server ends the watch (`timeout_seconds`)."""
        KUBE_API_REQUESTS.labels("watch", kind).inc()
        params = {
            {"field_selector": "fieldSelector", "label_selector": "labelSelector"}[k]: v
            for k, v in selectors.items()
        }
        params |= {
            "watch": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        headers = {"Accept": "application/json"}
        token = self._configuration.get_api_key_with_prefix(
            "BearerToken"
        ) or self._configuration.get_api_key_with_prefix("authorization")
        if token:
            headers["Authorization"] = token
        path = object_path(api_version, kind, namespace, None)
        timeout = httpx.Timeout(30.0, read=timeout_seconds + 30.0)
        with self._http.stream("GET", path, params=params, headers=headers, timeout=timeout) as r:
            if r.status_code >= 400:
                raise ApiError(r.status_code, r.read().decode("utf-8", "replace")[:2000])
            for line in r.iter_lines():
                if line.strip():
                    event: Manifest = json.loads(line)
                    yield event

    def list(
        self, api_version: str, kind: str, namespace: str | None, **selectors: str
    ) -> list[Manifest]:
        """Objects of a kind; `field_selector=` / `label_selector=` filter on the server."""
        params = {
            {"field_selector": "fieldSelector", "label_selector": "labelSelector"}[k]: v
            for k, v in selectors.items()
        }
        path = object_path(api_version, kind, namespace, None)
        items: list[Manifest] = self._call("list", kind, "GET", path, params=params)["items"]
        return items

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        body: Manifest,
        subresource: str | None = None,
    ) -> Manifest:
        """JSON merge patch (RFC 7386): for fields another manager owns, e.g. annotations,
        or one part of a `status` subresource that another process writes the rest of."""
        path = object_path(api_version, kind, namespace, name)
        path += f"/{subresource}" if subresource else ""
        result: Manifest = self._call(
            "patch", kind, "PATCH", path, body=body, content_type="application/merge-patch+json"
        )
        return result

    def delete_owned(
        self, owner_uid: str, namespace: str, targets: Sequence[tuple[str, str, str]]
    ) -> None:
        """Delete, concurrently, the (apiVersion, kind, name) objects of a namespace that
        `owner_uid` owns (`delete_if_owned`)."""
        results = self._pool.map(
            lambda target: self.delete_if_owned(
                owner_uid, target[0], target[1], namespace, target[2]
            ),
            targets,
        )
        list(results)  # re-raises the first failure

    def delete_if_owned(
        self, owner_uid: str, api_version: str, kind: str, namespace: str, name: str
    ) -> bool:
        """Delete the object if `owner_uid` owns it; True when it did. An object of that name
        the owner does not own is someone else's and stays (a name alone would let a
        resource's author delete it with the operator's rights)."""
        found = self.get(api_version, kind, namespace, name)
        if found is None or not owned_by(found, owner_uid):
            return False
        # the precondition: the object read, not another made under that name meanwhile
        return self.delete(api_version, kind, namespace, name, uid=found["metadata"]["uid"])

    def delete(
        self, api_version: str, kind: str, namespace: str | None, name: str, *, uid: str = ""
    ) -> bool:
        """Delete an object (only if its uid is `uid`, when given); False when it was already
        gone (or is another object by now)."""
        body = None
        if uid:
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": uid}}
        try:
            path = object_path(api_version, kind, namespace, name)
            self._call("delete", kind, "DELETE", path, body=body)
            return True
        except ApiError as error:
            if error.status == 404 or (uid and error.status == 409):
                return False
            raise
