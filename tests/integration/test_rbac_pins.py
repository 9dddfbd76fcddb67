"""What each of the product's ServiceAccounts may do, asked of the real API server and pinned.

The accounts: the operator's and the sync controller's (k8s/base: rbac.yaml,
sync-controller.yaml), and a ProbeFleet's probe and monitoring app (the operator makes them,
builders/probefleet.py `rbac`). Each acts through a TokenRequest token
(KubeTestEnv.service_account_kubeconfig) and asks the API server what it may do, as
`kubectl auth can-i --list` does (a SelfSubjectRulesReview); the answer, less what every
authenticated account gets (asked the same way as an account bound to nothing), must be
exactly the list below. A rule added to a role (a verb, a resource, a wildcard) fails this
test until the list is changed with it. Then a few SubjectAccessReviews (`kubectl auth
can-i`) say the refusals a reviewer looks for: no Secret listing, no escalation through
RoleBindings, impersonation or `escalate`/`bind`, nothing in a namespace not granted.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from orchestrator_operator.operator.builders.probefleet import fleet_owner, rbac
from testenv.kube import KubeTestEnv

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "orchestrator-system"  # k8s/base's namespace
FLEET_NAMESPACE = "rbac-pins"  # a ProbeFleet's namespace, and where the rules are asked
NOBODY = "rbac-pins-nobody"  # an account bound to nothing: what everyone gets

# (API group, resource) -> verbs; "" is the core group.
Rights = dict[tuple[str, str], frozenset[str]]


def _rights(**by_resource: str) -> Rights:
    """`_rights(**{"apps/deployments": "get list", "pods": "get"})`: the pins, compactly;
    a key's first segment is its API group when it has a dot or is `apps` or `policy`."""
    rights: Rights = {}
    for key, verbs in by_resource.items():
        first, _, rest = key.partition("/")
        grouped = rest and ("." in first or first in ("apps", "policy"))
        group, resource = (first, rest) if grouped else ("", key)
        rights[(group, resource)] = frozenset(verbs.split())
    return rights


OPERATOR = _rights(
    **{
        "orchestrator.dev/mesosclusters": "get list watch patch",
        "orchestrator.dev/zkmigrations": "get list watch patch",
        "orchestrator.dev/probefleets": "get list watch patch",
        "orchestrator.dev/marathonapps": "get list watch patch",
        "orchestrator.dev/mesosclusters/status": "get patch",
        "orchestrator.dev/zkmigrations/status": "get patch",
        "orchestrator.dev/probefleets/status": "get patch",
        "orchestrator.dev/marathonapps/status": "get patch",
        "apiextensions.k8s.io/customresourcedefinitions": "get list watch",
        "configmaps": "get list watch create patch delete",
        "discovery.k8s.io/endpointslices": "get list watch",
        "services": "get list watch create patch delete",
        "serviceaccounts": "get create patch delete",
        "rbac.authorization.k8s.io/roles": "get create patch delete",
        "rbac.authorization.k8s.io/rolebindings": "get create patch delete",
        "secrets": "get create",
        "rbac.authorization.k8s.io/clusterroles": "get create patch delete",
        "rbac.authorization.k8s.io/clusterrolebindings": "get create patch delete",
        "apps/statefulsets": "get list watch create patch delete",
        "apps/daemonsets": "get list watch create patch",
        "apps/deployments": "get list watch create patch delete",
        "policy/poddisruptionbudgets": "get create patch delete",
        "networking.k8s.io/networkpolicies": "get create patch delete",
        "pods": "get list watch delete",
        "nodes": "list",
        "events": "create patch",
        "authentication.k8s.io/tokenreviews": "create",
        "authorization.k8s.io/subjectaccessreviews": "create",
    }
)
SYNC_CONTROLLER = _rights(
    **{
        "orchestrator.dev/zkmigrations": "list",
        "orchestrator.dev/zkmigrations/status": "patch",
        "secrets": "get",
    }
)
PROBE = _rights(pods="get list watch", services="get list watch")
APP = _rights(
    **{
        "orchestrator.dev/mesosclusters": "get list",
        "orchestrator.dev/zkmigrations": "get list",
        "orchestrator.dev/marathonapps": "get list",
        "authentication.k8s.io/tokenreviews": "create",
        "authorization.k8s.io/subjectaccessreviews": "create",
        "events": "create",  # in its namespace (a Role): the audit Events of controls
    }
)


def _ok(result: subprocess.CompletedProcess[str], what: str) -> str:
    assert result.returncode == 0, f"{what}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def accounts(kube_env: KubeTestEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A kubeconfig acting as each account, its RBAC applied as the install applies it."""
    rendered = _ok(kube_env.kubectl_run("kustomize", str(REPO / "k8s/base")), "kustomize")
    wanted = ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    objects = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in wanted]
    kube_env.kubectl_run("create", "namespace", FLEET_NAMESPACE)
    owner = fleet_owner("fleet", FLEET_NAMESPACE, "00000000-0000-0000-0000-0000000000f1")
    for manifest in rbac(owner):
        # no owner here: the garbage collector would delete what a missing fleet owns
        manifest["metadata"].pop("ownerReferences", None)
        objects.append(manifest)
    objects.append(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": NOBODY, "namespace": FLEET_NAMESPACE}}
    )  # fmt: skip
    _ok(
        kube_env.kubectl_run(
            "apply", "--server-side", "--force-conflicts", "-f", "-",
            input=yaml.safe_dump_all(objects),
        ),
        "applying the accounts and their rights",
    )  # fmt: skip
    directory = tmp_path_factory.mktemp("rbac-pins")
    names = {
        "operator": ("orchestrator", SYSTEM),
        "sync-controller": ("orchestrator-sync-controller", SYSTEM),
        "probe": (owner.child_name("probe"), FLEET_NAMESPACE),
        "app": (owner.child_name("app"), FLEET_NAMESPACE),
        "nobody": (NOBODY, FLEET_NAMESPACE),
    }
    return {
        who: kube_env.service_account_kubeconfig(name, namespace, directory / f"{who}.kubeconfig")
        for who, (name, namespace) in names.items()
    }


def _as(kube_env: KubeTestEnv, kubeconfig: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kube_env.kubectl), f"--kubeconfig={kubeconfig}", *args],
            capture_output=True, text=True, input=input, check=False,
        )  # fmt: skip

    return run


def _effective(kube_env: KubeTestEnv, kubeconfig: Path, namespace: str) -> Rights:
    """The account's rules in `namespace` (its namespaced and cluster-wide ones), as the API
    server states them to the account itself (`kubectl auth can-i --list`)."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace},
    }
    answer = json.loads(
        _ok(
            _as(kube_env, kubeconfig)(
                "create", "--validate=false", "-o", "json", "-f", "-", input=json.dumps(review)
            ),
            "SelfSubjectRulesReview",
        )
    )
    status = answer["status"]
    assert not status.get("incomplete"), status
    rights: dict[tuple[str, str], set[str]] = {}
    for rule in status["resourceRules"]:
        # a rule limited to some objects by name would be a different pin: none is expected
        assert not rule.get("resourceNames"), rule
        for group in rule.get("apiGroups", [""]):
            for resource in rule["resources"]:
                rights.setdefault((group, resource), set()).update(rule["verbs"])
    return {key: frozenset(verbs) for key, verbs in rights.items()}


def _own(kube_env: KubeTestEnv, accounts: dict[str, Path], who: str, namespace: str) -> Rights:
    """What `who` may do beyond what every authenticated account may."""
    everyone = _effective(kube_env, accounts["nobody"], namespace)
    own: Rights = {}
    for key, verbs in _effective(kube_env, accounts[who], namespace).items():
        extra = verbs - everyone.get(key, frozenset())
        if extra:
            own[key] = extra
    return own


def test_what_every_account_gets_is_only_asking_about_itself(
    kube_env: KubeTestEnv, accounts: dict[str, Path]
) -> None:
    """The baseline subtracted below: the self reviews of system:basic-user, nothing else."""
    everyone = _effective(kube_env, accounts["nobody"], FLEET_NAMESPACE)
    assert set(everyone) <= {
        ("authorization.k8s.io", "selfsubjectaccessreviews"),
        ("authorization.k8s.io", "selfsubjectrulesreviews"),
        ("authentication.k8s.io", "selfsubjectreviews"),
    }, everyone
    assert all(verbs == {"create"} for verbs in everyone.values()), everyone


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("operator", OPERATOR),
        ("sync-controller", SYNC_CONTROLLER),
        ("probe", PROBE),
        ("app", APP),
    ],
)
def test_each_account_may_do_exactly_what_is_pinned(
    kube_env: KubeTestEnv, accounts: dict[str, Path], who: str, expected: Rights
) -> None:
    own = _own(kube_env, accounts, who, FLEET_NAMESPACE)
    wider = {k: sorted(v - expected.get(k, frozenset())) for k, v in own.items()}
    narrower = {k: sorted(v - own.get(k, frozenset())) for k, v in expected.items()}
    assert {k: v for k, v in wider.items() if v} == {}, f"{who} may do more than pinned"
    assert {k: v for k, v in narrower.items() if v} == {}, f"{who} may do less than pinned"


@pytest.mark.parametrize("who", ["operator", "sync-controller", "probe", "app"])
def test_no_account_reads_every_secret_or_escalates(
    kube_env: KubeTestEnv, accounts: dict[str, Path], who: str
) -> None:
    """The refusals a reviewer checks first, each a SubjectAccessReview (`kubectl auth
    can-i`): no listing or watching Secrets anywhere; no `escalate` or `bind` on roles or
    cluster roles (RBAC's escalation guard stays on: a Role or ClusterRole the operator
    writes, and one it binds, holds only what the operator holds; the operator writes a Role
    and RoleBinding for a MesosCluster's load balancer, builders/loadbalancer.py); no
    impersonation; no pods/exec; no wildcard."""

    def can_i(*args: str) -> str:
        return _as(kube_env, accounts[who])("auth", "can-i", *args).stdout.strip()

    refused = [
        ("list", "secrets", "--all-namespaces"),
        ("watch", "secrets", "--all-namespaces"),
        ("list", "secrets", "-n", SYSTEM),
        ("escalate", "roles.rbac.authorization.k8s.io", "-n", FLEET_NAMESPACE),
        ("bind", "roles.rbac.authorization.k8s.io", "-n", FLEET_NAMESPACE),
        ("escalate", "clusterroles.rbac.authorization.k8s.io"),
        ("bind", "clusterroles.rbac.authorization.k8s.io"),
        ("impersonate", "serviceaccounts", "--all-namespaces"),
        ("impersonate", "users"),
        ("create", "pods", "--subresource=exec", "-n", FLEET_NAMESPACE),
        ("create", "pods", "-n", FLEET_NAMESPACE),
        ("*", "*", "--all-namespaces"),
        ("update", "customresourcedefinitions.apiextensions.k8s.io"),
        ("patch", "nodes"),
    ]
    if who != "operator":  # the operator writes the probes', app's and LB's RBAC (below)
        refused += [
            ("create", "rolebindings.rbac.authorization.k8s.io", "-n", FLEET_NAMESPACE),
            ("create", "roles.rbac.authorization.k8s.io", "-n", FLEET_NAMESPACE),
            ("create", "clusterroles.rbac.authorization.k8s.io"),
            ("create", "clusterrolebindings.rbac.authorization.k8s.io"),
        ]
    allowed = [args for args in refused if can_i(*args) != "no"]
    assert allowed == [], f"{who} may: {allowed}"


def test_the_operator_cannot_grant_more_than_it_holds(
    kube_env: KubeTestEnv, accounts: dict[str, Path]
) -> None:
    """The operator may write ClusterRoles and bindings (a ProbeFleet's), but without
    `escalate` and `bind` the API server's RBAC escalation check holds it to what it has:
    a role reading every Secret, or a binding to cluster-admin, is refused."""
    operator = _as(kube_env, accounts["operator"])
    role = operator(
        "create", "clusterrole", "rbac-pins-escalation", "--verb=list", "--resource=secrets"
    )
    assert role.returncode != 0, "the operator made a ClusterRole listing Secrets"
    assert "attempting to grant RBAC permissions not currently held" in role.stderr, role.stderr
    binding = operator(
        "create", "clusterrolebinding", "rbac-pins-admin", "--clusterrole=cluster-admin",
        f"--serviceaccount={FLEET_NAMESPACE}:{NOBODY}",
    )  # fmt: skip
    assert binding.returncode != 0, "the operator bound cluster-admin"
    assert "forbidden" in binding.stderr, binding.stderr


def test_the_sync_controller_and_the_app_write_no_workload_anywhere(
    kube_env: KubeTestEnv, accounts: dict[str, Path]
) -> None:
    """The accounts that used to share the operator's (the sync controller) or that run on
    every node (the probe) hold no write on any workload or on custom resources' specs."""
    for who in ("sync-controller", "probe", "app"):

        def can_i(*args: str, who: str = who) -> str:
            return _as(kube_env, accounts[who])("auth", "can-i", *args).stdout.strip()

        for verb, resource in [
            ("create", "deployments.apps"),
            ("patch", "daemonsets.apps"),
            ("delete", "pods"),
            ("patch", "zkmigrations.orchestrator.dev"),
            ("patch", "mesosclusters.orchestrator.dev"),
            ("create", "secrets"),
        ]:
            assert can_i(verb, resource, "-n", FLEET_NAMESPACE) == "no", (who, verb, resource)
