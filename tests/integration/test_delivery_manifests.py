"""Every manifest under k8s/ and deploy/, rendered by `kubectl kustomize`, is accepted by a
server-side dry run against the real API server of testenv, with the CRDs of ArgoCD, Argo
Rollouts and prometheus-operator (from their release Go modules) installed first; the
operator's namespace enforces the restricted Pod Security Standard and no workload violates
it; the ClusterRole grants what the operator uses and nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator_operator.operator.crds import stale_crds
from testenv.kube import KubeTestEnv

from .delivery_crds import third_party_crds

pytestmark = pytest.mark.kube

REPO = Path(__file__).resolve().parents[2]
KUSTOMIZATIONS = (
    "k8s/base",
    "k8s/overlays/dev",
    "k8s/overlays/staging",
    "k8s/overlays/prod",
    "k8s/overlays/namespaced",
    "deploy/argocd",
    "deploy/rollouts",
    "deploy/monitoring",
)
# Namespaces the rendered objects go into that the manifests do not create themselves.
EXTRA_NAMESPACES = ("argocd", "mesos")  # mesos: the one k8s/overlays/namespaced serves
NAMESPACE = "orchestrator-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{NAMESPACE}:orchestrator"


def _ok(result: Any, what: str) -> str:
    assert result.returncode == 0, f"{what}: {result.stderr}"
    return str(result.stdout)


@pytest.fixture(scope="module")
def delivery_env(kube_env: KubeTestEnv) -> Iterator[KubeTestEnv]:
    """testenv with the third-party CRDs installed and the target namespaces present."""
    for path in third_party_crds():
        _ok(
            kube_env.kubectl_run("apply", "--server-side", "--force-conflicts", "-f", str(path)),
            f"installing {path.name}",
        )
    _ok(
        kube_env.kubectl_run(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "applications.argoproj.io",
            "applicationsets.argoproj.io",
            "appprojects.argoproj.io",
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "servicemonitors.monitoring.coreos.com",
            "podmonitors.monitoring.coreos.com",
            "prometheusrules.monitoring.coreos.com",
        ),
        "waiting for the third-party CRDs",
    )
    # The namespace (with its Pod Security labels) for real, so that the dry runs of the
    # namespaced objects have somewhere to go and are checked against restricted.
    namespace = _render("k8s/base", kube_env)
    namespace_doc = next(d for d in namespace if d["kind"] == "Namespace")
    _ok(
        kube_env.kubectl_run("apply", "--server-side", "-f", "-", input=json.dumps(namespace_doc)),
        "creating the namespace",
    )
    for name in EXTRA_NAMESPACES:
        kube_env.kubectl_run("create", "namespace", name)
    yield kube_env


_RENDERED: dict[str, str] = {}


def _render(directory: str, env: KubeTestEnv) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY`, once per directory and test run."""
    if directory not in _RENDERED:
        result = env.kubectl_run("kustomize", str(REPO / directory))
        _RENDERED[directory] = _ok(result, f"kustomize {directory}")
    return [d for d in yaml.safe_load_all(_RENDERED[directory]) if d]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_server_side_dry_run_accepts_every_rendered_manifest(
    delivery_env: KubeTestEnv, directory: str
) -> None:
    documents = _render(directory, delivery_env)
    assert documents, f"{directory} renders nothing"
    text = yaml.safe_dump_all(documents)
    result = delivery_env.kubectl_run(
        "apply", "--dry-run=server", "--server-side", "--force-conflicts",
        "--field-manager=delivery-test", "-f", "-", "-o", "name",
        input=text,
    )  # fmt: skip
    assert result.returncode == 0, f"{directory}: {result.stderr}"
    accepted = set(result.stdout.split())
    assert len(accepted) == len(documents), (directory, sorted(accepted))
    # Admission warnings (Pod Security "would violate", deprecated APIs) fail the test too.
    assert "Warning" not in result.stderr, f"{directory}: {result.stderr}"


def test_client_side_dry_run_accepts_the_overlays_too(delivery_env: KubeTestEnv) -> None:
    """`kubectl apply --dry-run=server` without --server-side, as the issue says."""
    for directory in KUSTOMIZATIONS:
        if directory == "k8s/base" or directory.startswith("k8s/"):
            documents = [d for d in _render(directory, delivery_env)
                         if d["kind"] != "CustomResourceDefinition"]  # fmt: skip
        else:
            documents = _render(directory, delivery_env)
        result = delivery_env.kubectl_run(
            "apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(documents)
        )
        assert result.returncode == 0, f"{directory}: {result.stderr}"


def test_every_manifest_file_is_rendered_by_some_kustomization(delivery_env: KubeTestEnv) -> None:
    """Nothing under k8s/ or deploy/ escapes the dry runs above."""
    rendered = {
        (d["kind"], d["metadata"]["name"])
        for directory in KUSTOMIZATIONS
        for d in _render(directory, delivery_env)
    }
    missing = []
    for root in ("k8s", "deploy"):
        for path in sorted((REPO / root).rglob("*.yaml")):
            if path.name == "kustomization.yaml":
                continue
            for document in yaml.safe_load_all(path.read_text()):
                if isinstance(document, dict) and "kind" in document:
                    key = (document["kind"], document["metadata"]["name"])
                    if key not in rendered:
                        missing.append(f"{path.relative_to(REPO)}: {key}")
    assert not missing, missing


def test_base_crds_are_the_generated_ones() -> None:
    """k8s/base/crds are copies (kustomize will not read ../../crds): same as generated."""
    assert stale_crds(REPO / "k8s" / "base" / "crds") == []
    assert sorted(p.name for p in (REPO / "k8s/base/crds").iterdir()) == sorted(
        p.name for p in (REPO / "crds").glob("*.yaml")
    )


def test_overlays_set_image_tag_resources_and_log_level(delivery_env: KubeTestEnv) -> None:
    deployments = {}
    for env in ("dev", "staging", "prod"):
        documents = _render(f"k8s/overlays/{env}", delivery_env)
        deployments[env] = next(d for d in documents if d["kind"] == "Deployment")
    containers = {env: d["spec"]["template"]["spec"]["containers"][0] for env, d in
                  deployments.items()}  # fmt: skip
    # Each overlay pins its own tag (promotion rewrites them); none runs the base's :latest.
    for container in containers.values():
        assert container["image"].startswith("ghcr.io/orchestrator-dev/orchestrator:")
        assert not container["image"].endswith(":latest"), container["image"]
    assert "--verbose" in containers["dev"]["args"]
    assert "--verbose" not in containers["prod"]["args"]
    assert all(c["args"][:3] == ["run", "--log-format", "json"] for c in containers.values())
    limits = {env: c["resources"]["limits"]["memory"] for env, c in containers.items()}
    assert len(set(limits.values())) == 3, limits
    for deployment in deployments.values():
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_sync_controller_container(delivery_env: KubeTestEnv) -> None:
    """The sync controller's own Deployment runs `zk-sync controller` from the operator's
    image under its own ServiceAccount, with its own health port and probes, the restricted
    security context and a writable state directory (the root filesystem is read-only)."""
    from orchestrator_operator.cli import build_parser

    for directory in ("k8s/base", "k8s/overlays/prod"):
        rendered = _render(directory, delivery_env)
        deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
        assert set(deployments) == {"orchestrator", "orchestrator-sync-controller"}
        (operator,) = deployments["orchestrator"]["spec"]["template"]["spec"]["containers"]
        pod = deployments["orchestrator-sync-controller"]["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "orchestrator-sync-controller"
        (sync,) = pod["containers"]
        assert sync["name"] == "sync-controller" and sync["image"] == operator["image"]
        args = build_parser().parse_args(sync["args"])
        assert (args.command, args.zk_sync_action) == ("zk-sync", "controller")
        ports = {p["name"]: p["containerPort"] for p in sync["ports"]}
        assert ports == {"http-sync": args.health_port} and args.health_port != 8080
        assert sync["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-sync"}
        assert sync["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-sync"}
        assert sync["securityContext"] == operator["securityContext"]
        mounts = {m["mountPath"]: m["name"] for m in sync["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts[str(args.state_dir)]]
        assert "emptyDir" in volumes[mounts["/tmp"]]


def test_the_zookeeper_super_key_is_mounted_where_the_operator_reads_it(
    delivery_env: KubeTestEnv,
) -> None:
    """The key comes from a Secret the kubelet mounts (optional: no key, no scaling by
    reconfiguration), at the path `orchestrator run` reads by default; no RBAC on Secrets."""
    from pathlib import PurePosixPath

    from orchestrator_operator.operator.zk_super_key import DEFAULT_KEY_FILE

    for directory in ("k8s/base", "k8s/overlays/prod"):
        deployment = next(d for d in _render(directory, delivery_env) if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        operator = pod["containers"][0]
        mounts = {m["mountPath"]: m for m in operator["volumeMounts"]}
        key = PurePosixPath(DEFAULT_KEY_FILE)
        mount = mounts[str(key.parent)]
        assert mount["readOnly"] is True
        secret = {v["name"]: v for v in pod["volumes"]}[mount["name"]]["secret"]
        assert secret["secretName"] == "orchestrator-zk-super-key" and secret["optional"] is True
        assert [item["path"] for item in secret["items"]] == [key.name]
        assert "--zk-super-key-file" not in operator["args"]  # the default path serves


# What the operator's code does with the API (operator/ with common/kube_api.py,
# and Kopf: watches, finalizers and annotations, events; the sync controller lists
# zkmigrations and patches zkmigrations/status), and a few things it must not do.
ALLOWED = [
    ("list", "mesosclusters.orchestrator.dev"), ("watch", "mesosclusters.orchestrator.dev"),
    ("get", "mesosclusters.orchestrator.dev"), ("patch", "mesosclusters.orchestrator.dev"),
    ("patch", "mesosclusters.orchestrator.dev/status"),
    ("list", "zkmigrations.orchestrator.dev"), ("watch", "zkmigrations.orchestrator.dev"),
    ("patch", "zkmigrations.orchestrator.dev/status"),
    ("list", "probefleets.orchestrator.dev"), ("watch", "probefleets.orchestrator.dev"),
    ("patch", "probefleets.orchestrator.dev/status"),
    ("list", "marathonapps.orchestrator.dev"), ("watch", "marathonapps.orchestrator.dev"),
    ("patch", "marathonapps.orchestrator.dev"), ("patch", "marathonapps.orchestrator.dev/status"),
    ("list", "customresourcedefinitions.apiextensions.k8s.io"),
    ("get", "customresourcedefinitions.apiextensions.k8s.io"),
    ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
    ("create", "configmaps"), ("patch", "configmaps"), ("get", "configmaps"),
    ("create", "services"), ("patch", "services"), ("get", "services"),
    ("patch", "statefulsets.apps"), ("create", "statefulsets.apps"), ("get", "statefulsets.apps"),
    ("patch", "daemonsets.apps"), ("get", "daemonsets.apps"),
    ("patch", "deployments.apps"), ("get", "deployments.apps"),
    ("list", "statefulsets.apps"), ("watch", "daemonsets.apps"), ("watch", "deployments.apps"),
    ("patch", "poddisruptionbudgets.policy"), ("get", "poddisruptionbudgets.policy"),
    ("get", "pods"), ("delete", "pods"),
    ("delete", "configmaps"), ("delete", "services"), ("delete", "statefulsets.apps"),
    ("delete", "poddisruptionbudgets.policy"), ("delete", "deployments.apps"),
    ("list", "nodes"),
    ("create", "events"), ("patch", "events"),
    # ProbeFleet: the probe's ServiceAccount, token Secret (create only) and cluster RBAC,
    # and pods/services list/watch held only to grant them to the probes.
    ("create", "serviceaccounts"), ("patch", "serviceaccounts"),
    ("create", "secrets"),
    ("delete", "serviceaccounts"),  # a MesosCluster's load balancer's, when it is turned off
    # ZooKeeper credentials: get only, of a Secret labelled for it (common/zk_credentials.py).
    ("get", "secrets"),
    ("create", "clusterroles.rbac.authorization.k8s.io"),
    ("delete", "clusterrolebindings.rbac.authorization.k8s.io"),
    ("list", "pods"), ("watch", "services"),
]  # fmt: skip
DENIED = [
    ("create", "pods"), ("list", "secrets"), ("watch", "secrets"), ("watch", "nodes"),
    ("delete", "daemonsets.apps"), ("delete", "mesosclusters.orchestrator.dev"),
    ("create", "mesosclusters.orchestrator.dev"), ("patch", "nodes"), ("update", "nodes"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "pods/exec"), ("delete", "secrets"),
    ("delete", "zkmigrations.orchestrator.dev"), ("create", "zkmigrations.orchestrator.dev"),
]  # fmt: skip


def test_rbac_grants_what_the_operator_uses_and_nothing_more(delivery_env: KubeTestEnv) -> None:
    rbac = [d for d in _render("k8s/base", delivery_env)
            if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]  # fmt: skip
    _ok(
        delivery_env.kubectl_run(
            "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(rbac)
        ),
        "applying RBAC",
    )

    def can(verb: str, resource: str) -> bool:
        """A SubjectAccessReview for the ServiceAccount, as `kubectl auth can-i --as` does."""
        plural, _, rest = resource.partition(".")
        plural, _, subresource = plural.partition("/")
        group = rest.split("/")[0]
        if "/" in rest:
            subresource = rest.split("/", 1)[1]
        review = delivery_env.api(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": SERVICE_ACCOUNT,
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}",
                               "system:authenticated"],
                    "resourceAttributes": {
                        "namespace": "some-namespace", "verb": verb, "group": group,
                        "resource": plural, "subresource": subresource,
                    },
                },
            },
        )  # fmt: skip
        return bool(review["status"].get("allowed"))

    assert [x for x in ALLOWED if not can(*x)] == []
    assert [x for x in DENIED if can(*x)] == []
    # The same through kubectl for a few, so the review above is read as kubectl reads it.
    for verb, resource in (ALLOWED[0], ALLOWED[-1], DENIED[0], DENIED[2]):
        answer = delivery_env.kubectl_run(
            "auth", "can-i", verb, resource, f"--as={SERVICE_ACCOUNT}", "-n", "some-namespace"
        ).stdout.strip()
        assert answer == ("yes" if can(verb, resource) else "no"), (verb, resource, answer)
