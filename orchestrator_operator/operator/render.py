"""`orchestrator render -f CR.yaml`: the children the operator would create for custom
resources, without a cluster, as multi-document YAML (for a GitOps pull request's diff).

`render_resources` is pure: documents in, YAML text out, through the same builders the
handlers call (`cluster.build_children`, `probefleet.build_children`,
`zookeeper.build_migration_target`) with the same settings. `run_render` reads the files
and prints.

What is not rendered, because the operator does not apply it from the spec: the Secrets it
creates once with a random or derived value (a ProbeFleet's token, a managed ensemble's
ZooKeeper super digest), named in a comment instead; and what a running ZkMigration changes
over time (the routing annotation it writes on the MesosCluster): a MesosCluster document
that carries that annotation (as `kubectl get -o yaml` shows it) is rendered with it.
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

import celpy
import yaml
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType, IntType
from celpy.evaluation import CELEvalError
from pydantic import ValidationError

from orchestrator_operator.common.manifest import Manifest, Owner
from orchestrator_operator.models import (
    MESOS_CLUSTER,
    PROBE_FLEET,
    ZK_MIGRATION,
    ResourceKind,
)
from orchestrator_operator.models.base import quantity_value
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.models.routing import ROUTING_ANNOTATION, parse_routing
from orchestrator_operator.models.zkmigration import ZkMigrationSpec
from orchestrator_operator.operator.builders import probefleet, zookeeper
from orchestrator_operator.operator.builders.cluster import build_children
from orchestrator_operator.operator.builders.crd import build_crd

KINDS = {kind.kind: kind for kind in (MESOS_CLUSTER, PROBE_FLEET, ZK_MIGRATION)}
MAX_INPUT_BYTES = 4 * 1024 * 1024  # far above any custom resource; bounds what is read
STDIN = "-"


class RenderError(ValueError):
    """Input the operator would refuse: one line naming the document and the field."""


@dataclass(frozen=True)
class Resource:
    """One custom resource from the input, validated."""

    where: str  # "file.yaml, document 2"
    kind: ResourceKind
    name: str
    namespace: str
    uid: str
    annotations: dict[str, str]
    spec: Any

    @property
    def label(self) -> str:
        return f"{self.kind.kind} {self.namespace}/{self.name}"


def _spec_error(where: str, kind: str, name: str, error: ValidationError) -> RenderError:
    """One line per problem, with the field's path as the user wrote it (camelCase)."""
    problems = [
        f"spec.{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()
    ]
    return RenderError(f"{where}: {kind} {name}: invalid spec: " + "; ".join(problems))


@cache
def _spec_schema(kind: ResourceKind) -> dict[str, Any]:
    """The CRD's schema of `spec`, as the API server validates it."""
    version = build_crd(kind)["spec"]["versions"][0]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def _cel_quantity(text: object) -> Decimal:
    """Kubernetes' CEL `quantity()` (the quantity library), as far as the CRDs use it."""
    return quantity_value(str(text))


def _cel_compare_to(left: Decimal, right: Decimal) -> IntType:
    """`quantity(a).compareTo(quantity(b))`: -1, 0 or 1."""
    return IntType((left > right) - (left < right))


# The Kubernetes CEL functions the CRDs' rules call that cel-python lacks.
KUBERNETES_CEL_FUNCTIONS: dict[str, Any] = {"quantity": _cel_quantity, "compareTo": _cel_compare_to}


@cache
def _cel_program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule), functions=KUBERNETES_CEL_FUNCTIONS)


def _defaulted(schema: Mapping[str, Any], value: Any) -> Any:
    """`value` with the schema's defaults filled in, as the API server does before it
    evaluates the CEL rules."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, sub in properties.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, item in value.items():
            sub = properties.get(name) or schema.get("additionalProperties")
            if isinstance(sub, Mapping):
                value[name] = _defaulted(sub, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_defaulted(schema["items"], item) for item in value]
    return value


def cel_problems(schema: Mapping[str, Any], value: Any, path: str = "spec") -> list[str]:
    """The CRD's `x-kubernetes-validations` rules that `value` breaks, as the API server
    names them (the field path, then the rule's message)."""
    problems = []
    for entry in schema.get("x-kubernetes-validations") or []:
        try:
            result: object = _cel_program(entry["rule"]).evaluate({"self": json_to_cel(value)})
        except CELEvalError as error:
            result = error
        if not (isinstance(result, BoolType) and bool(result)):
            where = path + entry.get("fieldPath", "")
            problems.append(f"{where}: {entry.get('message') or 'failed rule: ' + entry['rule']}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name, item in value.items():
            sub = properties.get(name) or schema.get("additionalProperties")
            if isinstance(sub, Mapping):
                problems += cel_problems(sub, item, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problems += cel_problems(schema["items"], item, f"{path}[{index}]")
    return problems


def _resource(where: str, document: object, default_namespace: str) -> Resource:
    if not isinstance(document, Mapping):
        raise RenderError(f"{where}: not a Kubernetes object (a YAML mapping)")
    api_version, kind_name = document.get("apiVersion"), document.get("kind")
    kind = KINDS.get(str(kind_name))
    if kind is None or api_version != kind.api_version:
        known = ", ".join(f"{k.api_version} {k.kind}" for k in KINDS.values())
        raise RenderError(
            f"{where}: apiVersion {api_version!r} kind {kind_name!r} is not one of the"
            f" operator's custom resources ({known})"
        )
    meta = document.get("metadata")
    if not isinstance(meta, Mapping):
        raise RenderError(f"{where}: {kind.kind}: metadata: a mapping with a name is required")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise RenderError(f"{where}: {kind.kind}: metadata.name: a non-empty string is required")
    namespace = meta.get("namespace") or default_namespace
    if not isinstance(namespace, str):
        raise RenderError(f"{where}: {kind.kind} {name}: metadata.namespace: must be a string")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, Mapping) or not all(
        isinstance(value, str) for value in annotations.values()
    ):
        raise RenderError(
            f"{where}: {kind.kind} {name}: metadata.annotations: must map names to strings"
        )
    raw_spec = document.get("spec") or {}
    if not isinstance(raw_spec, Mapping):
        raise RenderError(f"{where}: {kind.kind} {name}: spec: must be a mapping")
    try:
        spec = kind.spec.model_validate(copy.deepcopy(dict(raw_spec)))
    except ValidationError as error:
        raise _spec_error(where, kind.kind, name, error) from None
    # The CRD's CEL rules, which the API server checks and the models do not all repeat.
    schema = _spec_schema(kind)
    broken = cel_problems(schema, _defaulted(schema, copy.deepcopy(dict(raw_spec))))
    if broken:
        raise RenderError(f"{where}: {kind.kind} {name}: invalid spec: " + "; ".join(broken))
    return Resource(
        where=where,
        kind=kind,
        name=name,
        namespace=namespace,
        uid=str(meta.get("uid") or ""),
        annotations=dict(annotations),
        spec=spec,
    )


class _Loader(yaml.SafeLoader):
    """Refuses a key given twice in one mapping (PyYAML keeps the last silently; kubectl
    refuses it), e.g. two files concatenated without `---` between them."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=True))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _yaml_words(error: yaml.YAMLError) -> str:
    """PyYAML's problem and where, on one line."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"{error.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return str(error).replace("\n", " ")


def parse_documents(
    sources: Iterable[tuple[str, str]], default_namespace: str = "default"
) -> list[Resource]:
    """The custom resources in (name, YAML text) sources, in order; empty documents are
    skipped, a `kind: List` (as `kubectl get -o yaml` prints) is unpacked."""
    resources: list[Resource] = []
    for source, text in sources:
        try:
            documents = list(yaml.load_all(text, Loader=_Loader))
        except yaml.YAMLError as error:
            raise RenderError(f"{source}: not valid YAML: {_yaml_words(error)}") from None
        for number, document in enumerate(documents, start=1):
            if document is None:
                continue
            where = f"{source}, document {number}"
            if isinstance(document, Mapping) and document.get("kind") == "List":
                items = document.get("items") or []
                if not isinstance(items, list):
                    raise RenderError(f"{where}: List: items must be a list")
                for index, item in enumerate(items):
                    resources.append(_resource(f"{where}, items[{index}]", item, default_namespace))
            else:
                resources.append(_resource(where, document, default_namespace))
    if not resources:
        raise RenderError("no custom resource in the input")
    return resources


def _mesos_cluster(resource: Resource, scale_by_reconfig: bool) -> tuple[list[Manifest], str]:
    spec: MesosClusterSpec = resource.spec
    owner = Owner(name=resource.name, namespace=resource.namespace, uid=resource.uid)
    routing = None
    if ROUTING_ANNOTATION in resource.annotations:
        try:
            routing = parse_routing(resource.annotations)
        except ValueError as error:
            raise RenderError(f"{resource.where}: {resource.label}: {error}") from None
    note = ""
    if scale_by_reconfig and not spec.zookeeper.external:
        secret = zookeeper.super_secret_name(owner)
        note = f"Secret {secret} (the ensemble's super digest) is created once, not rendered"
    children = build_children(owner, spec, routing, scale_by_reconfig=scale_by_reconfig)
    return children, note


def _probe_fleet(resource: Resource) -> tuple[list[Manifest], str]:
    spec: ProbeFleetSpec = resource.spec
    owner = probefleet.fleet_owner(resource.name, resource.namespace, resource.uid)
    return probefleet.build_children(owner, spec), ""


def _zk_migration(
    resource: Resource, clusters: Mapping[tuple[str, str], Resource], scale_by_reconfig: bool
) -> tuple[list[Manifest], str]:
    """Ensemble B when the target is managed (built from the MesosCluster's ZooKeeper spec,
    so that cluster must be in the input too); an external target has no children."""
    spec: ZkMigrationSpec = resource.spec
    if spec.target.managed is None:
        return [], "no children: the target ensemble is external"
    cluster = clusters.get((resource.namespace, spec.cluster_ref))
    if cluster is None:
        raise RenderError(
            f"{resource.where}: {resource.label}: its managed ensemble is built from MesosCluster"
            f" {resource.namespace}/{spec.cluster_ref}'s ZooKeeper spec, which is not in the"
            " input: give its file too (-f cluster.yaml -f migration.yaml)"
        )
    owner = Owner(
        name=resource.name,
        namespace=resource.namespace,
        uid=resource.uid,
        kind=ZK_MIGRATION.kind,
        api_version=ZK_MIGRATION.api_version,
    )
    children = zookeeper.build_migration_target(
        owner, spec.target.managed, cluster.spec, scale_by_reconfig=scale_by_reconfig
    )
    return children, "ensemble B; the routing the migration writes on the cluster is not rendered"


def render_children(
    resources: list[Resource], *, scale_by_reconfig: bool = False
) -> list[tuple[Resource, list[Manifest], str]]:
    """Each resource with its children in the order the operator applies them, and a note
    on what is not rendered."""
    clusters = {(r.namespace, r.name): r for r in resources if r.kind is MESOS_CLUSTER}
    rendered = []
    for resource in resources:
        if resource.kind is MESOS_CLUSTER:
            children, note = _mesos_cluster(resource, scale_by_reconfig)
        elif resource.kind is PROBE_FLEET:
            children, note = _probe_fleet(resource)
        else:
            children, note = _zk_migration(resource, clusters, scale_by_reconfig)
        rendered.append((resource, children, note))
    return rendered


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (zoo.cfg, start scripts) as literal blocks: line-by-line diffs."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_yaml(resources: list[Resource], *, scale_by_reconfig: bool = False) -> str:
    """Multi-document YAML in a stable order: the resources in input order, each one's
    children in apply order, keys sorted; a comment names the owner of each document."""
    out: list[str] = []
    for resource, children, note in render_children(resources, scale_by_reconfig=scale_by_reconfig):
        header = f"# {resource.label}"
        if note:
            out.append(f"{header}: {note}\n")
        for child in children:
            body = yaml.dump(
                child, Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=100
            )
            out.append(f"---\n{header}\n{body}")
    return "".join(out)


def _read(path: str) -> str:
    if path == STDIN:
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        with open(path, "rb") as file:
            data = file.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise RenderError(f"{path}: larger than {MAX_INPUT_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise RenderError(f"{path}: not UTF-8 text") from None


def run_render(args: argparse.Namespace) -> int:
    try:
        sources = []
        for path in args.filename:
            try:
                sources.append(("<stdin>" if path == STDIN else path, _read(path)))
            except OSError as error:
                raise RenderError(f"{path}: {error.strerror or error}") from None
        resources = parse_documents(sources, args.namespace)
        text = render_yaml(resources, scale_by_reconfig=args.zk_reconfig)
    except RenderError as error:
        print(f"orchestrator render: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def add_render_parser(sub: Any) -> None:
    render = sub.add_parser(
        "render",
        help="print the children the operator would create for custom resources (no cluster)",
        description="Print, as multi-document YAML, the Kubernetes objects the operator"
        " would apply for each MesosCluster, ProbeFleet and ZkMigration in the files: the"
        " same builders, no cluster needed (docs/delivery.md, GitOps diff).",
    )
    render.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        help="a YAML file of custom resources, several documents allowed; '-' reads stdin;"
        " repeatable (a ZkMigration with a managed target needs its MesosCluster's file too)",
    )
    render.add_argument(
        "--namespace",
        default="default",
        help="namespace of resources whose metadata names none (default: default)",
    )
    render.add_argument(
        "--zk-reconfig",
        action="store_true",
        help="render as an operator started with a ZooKeeper super key does"
        " (--zk-super-key-file: managed ensembles scaled by dynamic reconfiguration)",
    )
    render.set_defaults(func=run_render)
