"""The two kinds of Secret a MarathonApp makes the operator read, each only when labelled.

- env values (`spec.app.env.NAME.secretKeyRef`): only Secrets in the MarathonApp's namespace
  labelled `orchestrator.dev/marathonapp-env: "true"`, so a user who may create a
  MarathonApp but not read Secrets cannot have the operator copy any Secret it can read into
  a Marathon app (whose env anyone reading Marathon's API sees);
- Marathon's HTTP credentials (the MesosCluster's `marathon.credentialsSecretRef`,
  `user:password`): only a Secret labelled `orchestrator.dev/credentials: marathon`, as the
  ZooKeeper credentials need `orchestrator.dev/credentials: zookeeper`
  (common/zk_credentials.py): the operator sends them to the address it reads in ZooKeeper.

A refusal is a SecretRefused whose message names the rule, never the value. One GET per
Secret, kept CACHE_SECONDS (observers ask on every tick). The operator's RBAC has `get`
on Secrets, never list or watch.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.common.ttl_cache import TtlCache
from orchestrator_operator.mesos.marathon_api import Credentials, parse_credentials
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.marathonapp import ENV_LABEL, ENV_LABEL_VALUE, EnvSecret

CREDENTIALS_LABEL = "orchestrator.dev/credentials"
MARATHON_CREDENTIALS = "marathon"
CACHE_SECONDS = 10.0
MAX_VALUE_BYTES = 32 * 1024


class SecretRefused(Exception):
    """A Secret the operator may not or cannot use; the message says why (never the value)."""


_CACHE = TtlCache[tuple[str, str], Mapping[str, Any] | ApiError | None](CACHE_SECONDS)


def _secret(api: KubeApi, namespace: str, name: str) -> Mapping[str, Any] | None:
    def fetch() -> Mapping[str, Any] | ApiError | None:
        try:
            return api.get("v1", "Secret", namespace, name)
        except ApiError as error:
            return error

    found = _CACHE.get_or_compute((namespace, name), fetch)
    if isinstance(found, ApiError):
        if found.status == 403:
            raise SecretRefused(f"the operator may not get Secret {namespace}/{name} (RBAC)")
        raise SecretRefused(f"Secret {namespace}/{name}: {found}")
    return found


def secret_value(
    secret: Mapping[str, Any] | None, namespace: str, ref: SecretKeyRef, label: str, value: str
) -> str:
    """Pure: the text in `ref`'s key of `secret`, if the Secret carries `label`=`value`."""
    where = f"Secret {namespace}/{ref.name}"
    if secret is None:
        raise SecretRefused(f"{where} not found")
    labels = (secret.get("metadata") or {}).get("labels") or {}
    if labels.get(label) != value:
        raise SecretRefused(
            f"{where} is not labelled {label}={value}: the operator reads only Secrets so"
            " labelled for this use"
        )
    encoded = (secret.get("data") or {}).get(ref.key)
    if not isinstance(encoded, str):
        raise SecretRefused(f"{where} has no key {ref.key!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise SecretRefused(f"{where}, key {ref.key!r}: not UTF-8 text") from None
    if len(raw) > MAX_VALUE_BYTES:
        raise SecretRefused(
            f"{where}, key {ref.key!r}: {len(raw)} bytes, at most {MAX_VALUE_BYTES}"
        )
    return text


def env_values(
    api: KubeApi, namespace: str, env: Mapping[str, str | EnvSecret] | None
) -> dict[str, str]:
    """NAME -> value for each env entry that names a Secret key."""
    values = {}
    for name, entry in (env or {}).items():
        if isinstance(entry, EnvSecret):
            ref = entry.secret_key_ref
            try:
                values[name] = secret_value(
                    _secret(api, namespace, ref.name), namespace, ref, ENV_LABEL, ENV_LABEL_VALUE
                )
            except SecretRefused as error:
                raise SecretRefused(f"env {name}: {error}") from None
    return values


def marathon_credentials(
    api: KubeApi, namespace: str, ref: SecretKeyRef | None
) -> Credentials | None:
    if ref is None:
        return None
    text = secret_value(
        _secret(api, namespace, ref.name), namespace, ref, CREDENTIALS_LABEL, MARATHON_CREDENTIALS
    )
    try:
        return parse_credentials(text)
    except ValueError as error:
        raise SecretRefused(f"Secret {namespace}/{ref.name}, key {ref.key!r}: {error}") from None
