"""Who approved a ZkMigration's phases or asked for its rollback (issue 17 point 6), checked
by the real API server: the admission policy of k8s/admission lets the annotation
orchestrator.dev/decided-by name only the user making the request; `zk-migrate advance`
sets it to the user it runs as; a decision by someone else must rename or drop it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.models.zkmigration import DECIDED_BY_ANNOTATION
from testenv.kube import KubeTestEnv

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "k8s/admission/zkmigration-decisions.yaml"


class Team:
    def __init__(self, kube_env: KubeTestEnv, namespace: str, directory: Path) -> None:
        self.kube_env = kube_env
        self.namespace = namespace
        self.directory = directory

    def user(self, name: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{name}"

    def kubeconfig(self, name: str) -> Path:
        return self.kube_env.service_account_kubeconfig(
            name, self.namespace, self.directory / f"{name}.kubeconfig"
        )

    def patch_as(self, name: str, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.kube_env.kubectl), "--kubeconfig", str(self.kubeconfig(name)), "patch",
             "zkmigration", "move", "-n", self.namespace, "--type=merge", "-p",
             json.dumps(body)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip

    def zk_migrate_as(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator_operator.cli", "zk-migrate", *args,
             "-n", self.namespace],
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig(name))},
            capture_output=True, text=True, check=False, cwd=REPO,
        )  # fmt: skip

    def migration(self) -> dict[str, Any]:
        result = self.kube_env.kubectl_run(
            "get", "zkmigration", "move", "-n", self.namespace, "-o", "json"
        )
        assert result.returncode == 0, result.stderr
        found: dict[str, Any] = json.loads(result.stdout)
        return found

    def decided_by(self) -> str | None:
        annotations = self.migration()["metadata"].get("annotations") or {}
        return annotations.get(DECIDED_BY_ANNOTATION)

    def approved(self) -> int:
        return int(self.migration()["spec"]["approval"]["approvedThroughPhase"])


@pytest.fixture(scope="module")
def team(kube_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    namespace = f"decided-{secrets.token_hex(3)}"
    t = Team(kube_env, namespace, tmp_path_factory.mktemp("decided"))
    applied = kube_env.kubectl_run("apply", "-f", str(POLICY))
    assert applied.returncode == 0, applied.stderr
    assert kube_env.kubectl_run("create", "namespace", namespace).returncode == 0
    objects: list[dict[str, Any]] = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "migrators", "namespace": namespace},
         "rules": [{"apiGroups": ["orchestrator.dev"], "resources": ["zkmigrations"],
                    "verbs": ["get", "list", "patch"]}]},
    ]  # fmt: skip
    for person in ("alice", "bob"):
        objects += [
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": person, "namespace": namespace}},
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
             "metadata": {"name": f"{person}-migrates", "namespace": namespace},
             "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                         "name": "migrators"},
             "subjects": [{"kind": "ServiceAccount", "name": person, "namespace": namespace}]},
        ]  # fmt: skip
    objects.append(
        {"apiVersion": "orchestrator.dev/v1alpha1", "kind": "ZkMigration",
         "metadata": {"name": "move", "namespace": namespace},
         "spec": {"clusterRef": "demo", "target": {"managed": {"replicas": 3}},
                  "approval": {"mode": "Manual", "approvedThroughPhase": 1}}}
    )  # fmt: skip
    applied = kube_env.kubectl_run("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    assert applied.returncode == 0, applied.stderr
    try:
        yield t
    finally:
        kube_env.kubectl_run("delete", "namespace", namespace, "--wait=false")
        kube_env.kubectl_run("delete", "-f", str(POLICY), "--ignore-not-found")


def test_only_the_requesting_user_can_be_named_as_the_decider(team: Team) -> None:
    alice, bob = team.user("alice"), team.user("bob")
    # The policy takes effect once the API server has compiled it: until then a forged
    # name would pass, so wait for the first refusal of one.
    deadline = time.monotonic() + 60
    while True:
        forged = team.patch_as("bob", {"metadata": {"annotations": {DECIDED_BY_ANNOTATION: alice}}})
        if forged.returncode != 0 or time.monotonic() > deadline:
            break
        team.kube_env.kubectl_run(
            "annotate", "zkmigration", "move", "-n", team.namespace, f"{DECIDED_BY_ANNOTATION}-"
        )
        time.sleep(1)
    assert forged.returncode != 0, "bob named alice as the decider"
    assert f"says {alice}, but this request is made by {bob}" in forged.stderr, forged.stderr

    advanced = team.zk_migrate_as("alice", "advance", "move", "--through", "2")
    assert advanced.returncode == 0, advanced.stdout + advanced.stderr
    assert (team.approved(), team.decided_by()) == (2, alice)

    # bob decides without touching the annotation: it would credit alice, so refused
    kept = team.patch_as("bob", {"spec": {"approval": {"approvedThroughPhase": 3}}})
    assert kept.returncode != 0 and f"set it to {bob}" in kept.stderr, kept.stderr
    # nor may he keep alice's name on his decision explicitly
    signed_as_alice = team.patch_as(
        "bob",
        {"metadata": {"annotations": {DECIDED_BY_ANNOTATION: alice}},
         "spec": {"approval": {"approvedThroughPhase": 3}}},
    )  # fmt: skip
    assert signed_as_alice.returncode != 0
    assert (team.approved(), team.decided_by()) == (2, alice)

    # zk-migrate signs with the user it runs as
    advanced = team.zk_migrate_as("bob", "advance", "move", "--through", "3")
    assert advanced.returncode == 0, advanced.stdout + advanced.stderr
    assert (team.approved(), team.decided_by()) == (3, bob)

    # a decision may go unattributed (the annotation removed with it), never misattributed
    unsigned = team.patch_as(
        "alice",
        {"metadata": {"annotations": {DECIDED_BY_ANNOTATION: None}},
         "spec": {"approval": {"approvedThroughPhase": 4}}},
    )  # fmt: skip
    assert unsigned.returncode == 0, unsigned.stderr
    assert (team.approved(), team.decided_by()) == (4, None)
    # and without the annotation, plain patches (kubectl, a GitOps sync) work as before
    plain = team.patch_as("bob", {"spec": {"approval": {"approvedThroughPhase": 5}}})
    assert plain.returncode == 0, plain.stderr
    assert (team.approved(), team.decided_by()) == (5, None)
