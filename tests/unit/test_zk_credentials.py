"""ZooKeeper credentials from Kubernetes Secrets (common/zk_credentials.py): the rule a
Secret must meet (the resource's own namespace, labelled orchestrator.dev/credentials=
zookeeper), its parsing, and which Secret serves which side of a migration. A refusal names
the rule and never holds the secret."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from orchestrator_operator.common.kube_api import ApiError
from orchestrator_operator.common.zk_credentials import (
    CREDENTIALS_LABEL,
    RULE,
    CredentialsRefused,
    credentials_from_secret,
    migration_secret_refs,
    read_zk_credentials,
)
from orchestrator_operator.models.base import SecretKeyRef
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.zkmigration import ZkMigrationSpec

REF = SecretKeyRef(name="zk-auth", key="digest")
SECRET_TEXT = "mesos:s3cret-pw"


def secret(text: str = SECRET_TEXT, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "zk-auth", "namespace": "prod",
                     "labels": {CREDENTIALS_LABEL: "zookeeper"} if labels is None else labels},
        "data": {"digest": base64.b64encode(text.encode()).decode()},
    }  # fmt: skip


def refusal(doc: dict[str, Any] | None, ref: SecretKeyRef = REF) -> str:
    with pytest.raises(CredentialsRefused) as caught:
        credentials_from_secret(doc, "prod", ref)
    message = str(caught.value)
    assert "s3cret" not in message
    return message


def test_a_labelled_secret_gives_its_digest_lines() -> None:
    text = "# the engine\nmesos:s3cret-pw\n\nsuper:other:pw\n"
    assert credentials_from_secret(secret(text), "prod", REF) == (
        ("digest", "mesos:s3cret-pw"),
        ("digest", "super:other:pw"),
    )


def test_an_unlabelled_secret_is_refused_with_the_rule() -> None:
    for labels in ({}, {CREDENTIALS_LABEL: "yes"}, {"app": "zookeeper"}):
        message = refusal(secret(labels=labels))
        assert message == (
            "Secret prod/zk-auth is not labelled orchestrator.dev/credentials=zookeeper: " + RULE
        )
    assert "own namespace" in RULE


def test_what_else_is_refused_says_what_is_wrong() -> None:
    assert refusal(None) == "Secret prod/zk-auth not found"
    assert refusal(secret(), SecretKeyRef(name="zk-auth", key="other")) == (
        "Secret prod/zk-auth has no key 'other'"
    )
    assert refusal(secret("mesos s3cret-pw")).endswith("line 1: expected user:password")
    assert refusal(secret("# nothing\n")).endswith("no user:password line")
    bad = secret()
    bad["data"]["digest"] = base64.b64encode(b"\xff\xfe").decode()
    assert refusal(bad).endswith("not UTF-8 text")
    assert "at most" in refusal(secret("\n".join(f"u{i}:s3cret" for i in range(17))))
    assert "at most" in refusal(secret("u:" + "s3cret" * 3000))


class FakeApi:
    def __init__(self, answer: dict[str, Any] | ApiError | None) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, str | None, str]] = []

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        self.calls.append((api_version, kind, namespace, name))
        if isinstance(self.answer, ApiError):
            raise self.answer
        return self.answer


def test_the_secret_is_read_from_the_resources_namespace_only() -> None:
    api = FakeApi(secret())
    assert read_zk_credentials(api, "prod", REF, cached=False) == (("digest", SECRET_TEXT),)
    assert api.calls == [("v1", "Secret", "prod", "zk-auth")]
    assert read_zk_credentials(api, "prod", None) == ()  # no reference: no call
    assert len(api.calls) == 1


def test_a_forbidden_get_is_a_refusal_naming_rbac() -> None:
    api = FakeApi(ApiError(403, "secrets is forbidden"))
    with pytest.raises(CredentialsRefused, match=r"may not get Secret prod/zk-auth \(RBAC\)"):
        read_zk_credentials(api, "prod", REF, cached=False)


def cluster(ref: SecretKeyRef | None) -> MesosClusterSpec:
    external: dict[str, Any] = {"connectString": "zk-a:2181"}
    if ref is not None:
        external["authSecretRef"] = ref.model_dump(by_alias=True)
    return MesosClusterSpec.model_validate({"zookeeper": {"external": external}})


def migration(**spec: Any) -> ZkMigrationSpec:
    return ZkMigrationSpec.model_validate({"clusterRef": "demo", **spec})


def test_which_secret_serves_which_side() -> None:
    a_ref = SecretKeyRef(name="a", key="k")
    b_ref = SecretKeyRef(name="b", key="k")
    external_b = {"external": {"connectString": "zk-b:2181"}}
    # A defaults to the cluster's ensemble and its authSecretRef
    assert migration_secret_refs(migration(target=external_b), cluster(a_ref)) == (a_ref, None)
    # an explicit source brings its own (none: none, whatever the cluster has)
    explicit = {"connectString": "zk-x:2181", "authSecretRef": {"name": "x", "key": "k"}}
    refs = migration_secret_refs(migration(source=explicit, target=external_b), cluster(a_ref))
    assert refs == (SecretKeyRef(name="x", key="k"), None)
    # an external B has only its own: A's secret is never sent to it implicitly
    with_b = {
        "external": {"connectString": "zk-b:2181", "authSecretRef": {"name": "b", "key": "k"}}
    }
    assert migration_secret_refs(migration(target=with_b), cluster(a_ref)) == (a_ref, b_ref)
    # the operator's own managed B gets A's unless it names one
    managed = {"managed": {"replicas": 3}}
    assert migration_secret_refs(migration(target=managed), cluster(a_ref)) == (a_ref, a_ref)
    own = {"managed": {"replicas": 3, "authSecretRef": {"name": "b", "key": "k"}}}
    assert migration_secret_refs(migration(target=own), cluster(None)) == (None, b_ref)
