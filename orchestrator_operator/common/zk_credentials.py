"""ZooKeeper digest credentials from Kubernetes Secrets, for the operator's own ZooKeeper
sessions and the sync controller's engines.

The rule (docs/zk-sync.md, "Credentials from Kubernetes Secrets"): a custom resource names
a key of a Secret in its own namespace (a ``SecretKeyRef`` has no namespace field), and the
Secret must be labelled ``orchestrator.dev/credentials: zookeeper``. The label is the
Secret author's opt-in: a user who may create a ZkMigration or a MesosCluster but not read
Secrets cannot make the operator send somebody else's secret to a ZooKeeper of their
choosing (digest auth sends the password to the server). The operator's ServiceAccount may
``get`` Secrets, never list or watch them. A refusal is a ``CredentialsRefused`` whose
message names the rule and never holds the secret.

``credentials_from_secret`` and ``migration_secret_refs`` are pure; ``read_zk_credentials``
makes the one API call (cached for a few seconds: observers ask on every tick).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol

from orchestrator_operator.common.kube_api import ApiError
from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ZkMigrationSpec

CREDENTIALS_LABEL = "orchestrator.dev/credentials"
CREDENTIALS_LABEL_VALUE = "zookeeper"
RULE = (
    f"the operator reads ZooKeeper credentials only from a Secret in the resource's own "
    f"namespace labelled {CREDENTIALS_LABEL}={CREDENTIALS_LABEL_VALUE}"
)
MAX_CREDENTIAL_BYTES = 16 * 1024
MAX_CREDENTIAL_LINES = 16
CACHE_SECONDS = 10.0

# (scheme, credential) pairs as kazoo's ``auth_data`` takes them: ("digest", "user:password")
Credentials = tuple[tuple[str, str], ...]


class CredentialsRefused(Exception):
    """The credentials cannot be used; the message says why (never the secret)."""


class SecretGetter(Protocol):
    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None: ...


def parse_digest_credentials(text: str, where: str) -> list[tuple[str, str]]:
    """`user:password` lines (blank lines and `#` comments skipped) as kazoo auth data.
    A malformed line is named by its number, never quoted."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError(f"{where}, line {number}: expected user:password")
        out.append(("digest", line))
    return out


def credentials_from_secret(
    secret: Mapping[str, Any] | None, namespace: str, ref: SecretKeyRef
) -> Credentials:
    """The digest credentials in ``ref``'s key of ``secret`` (as the API returned it, or
    None when there is none), or CredentialsRefused naming what is wrong."""
    where = f"Secret {namespace}/{ref.name}"
    if secret is None:
        raise CredentialsRefused(f"{where} not found")
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(CREDENTIALS_LABEL) != CREDENTIALS_LABEL_VALUE:
        raise CredentialsRefused(f"{where} is not labelled {CREDENTIALS_LABEL}="
                                 f"{CREDENTIALS_LABEL_VALUE}: {RULE}")  # fmt: skip
    encoded = (secret.get("data") or {}).get(ref.key)
    if not isinstance(encoded, str):
        raise CredentialsRefused(f"{where} has no key {ref.key!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise CredentialsRefused(f"{where}, key {ref.key!r}: not UTF-8 text") from None
    if len(raw) > MAX_CREDENTIAL_BYTES:
        raise CredentialsRefused(
            f"{where}, key {ref.key!r}: {len(raw)} bytes, at most {MAX_CREDENTIAL_BYTES}"
        )
    try:
        pairs = parse_digest_credentials(text, f"{where}, key {ref.key!r}")
    except ValueError as exc:
        raise CredentialsRefused(str(exc)) from None
    if not pairs:
        raise CredentialsRefused(f"{where}, key {ref.key!r}: no user:password line")
    if len(pairs) > MAX_CREDENTIAL_LINES:
        raise CredentialsRefused(
            f"{where}, key {ref.key!r}: {len(pairs)} credentials, at most {MAX_CREDENTIAL_LINES}"
        )
    return tuple(pairs)


def cluster_secret_ref(cluster: MesosClusterSpec) -> SecretKeyRef | None:
    """The Secret key with the credentials of a MesosCluster's external ensemble."""
    external = cluster.zookeeper.external
    return external.auth_secret_ref if external is not None else None


def migration_secret_refs(
    spec: ZkMigrationSpec, cluster: MesosClusterSpec
) -> tuple[SecretKeyRef | None, SecretKeyRef | None]:
    """The Secret keys holding the credentials for ensembles A and B of a migration.

    A: ``spec.source.authSecretRef``; with no ``spec.source``, the MesosCluster's
    ``zookeeper.external.authSecretRef`` (A is the ensemble the cluster uses). B:
    ``spec.target.external.authSecretRef``, or ``spec.target.managed.authSecretRef``; a
    managed B (the operator's own ensemble, in the same namespace) without one gets A's,
    since the engine copies A's digest ACLs there. An external B never gets A's implicitly.
    """
    source = spec.source.auth_secret_ref if spec.source is not None else cluster_secret_ref(cluster)
    if spec.target.external is not None:
        return source, spec.target.external.auth_secret_ref
    managed = spec.target.managed
    own = managed.auth_secret_ref if managed is not None else None
    return source, own or source


_CACHE = TtlCache[tuple[str, str, str], Credentials | CredentialsRefused](CACHE_SECONDS)


def read_zk_credentials(
    api: SecretGetter, namespace: str, ref: SecretKeyRef | None, *, cached: bool = True
) -> Credentials:
    """The credentials ``ref`` names in ``namespace`` (none without a ref): one ``get`` of
    the Secret, kept for CACHE_SECONDS (a refusal too). CredentialsRefused otherwise."""
    if ref is None:
        return ()

    def fetch() -> Credentials | CredentialsRefused:
        try:
            secret = api.get("v1", "Secret", namespace, ref.name)
        except ApiError as exc:
            if exc.status == 403:
                return CredentialsRefused(
                    f"the operator may not get Secret {namespace}/{ref.name} (RBAC)"
                )
            raise
        try:
            return credentials_from_secret(secret, namespace, ref)
        except CredentialsRefused as exc:
            return exc

    key = (namespace, ref.name, ref.key)
    result = _CACHE.get_or_compute(key, fetch) if cached else fetch()
    if isinstance(result, CredentialsRefused):
        raise CredentialsRefused(str(result))
    return result


def zk_auth_by_hosts(
    api: SecretGetter, namespace: str, refs: Mapping[str, SecretKeyRef | None]
) -> dict[str, Credentials]:
    """{connect string: credentials} for ``zk.clients.zk_credentials``, each read from the
    Secret key ``refs`` names for it (none: no credentials). CredentialsRefused for the
    first that cannot be used."""
    return {hosts: read_zk_credentials(api, namespace, ref) for hosts, ref in refs.items()}
