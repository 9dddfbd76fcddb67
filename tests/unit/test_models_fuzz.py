"""Hypothesis over the three custom resources' spec validation (issue 17, point 11): whatever
a user puts in a MesosCluster, ZkMigration or ProbeFleet spec, validation either accepts it or
raises pydantic's ValidationError, whose message (the Accepted condition's, built by
operator.reconcile.validation_message) names spec fields; never another exception, which
would crash the handler instead of telling the user. An accepted spec survives the round trip
the operator relies on (dump by alias, validate again: the same model).

Inputs are the examples/ specs with one or more values replaced (any JSON: wrong types, huge
and negative numbers, non-finite floats, long and odd strings, nesting), keys deleted or
added, and also whole arbitrary documents. The case counts are in docs/security.md.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from orchestrator_operator.models import KINDS, ResourceKind
from orchestrator_operator.operator.reconcile import validation_message

EXAMPLES = Path(__file__).parents[2] / "examples"
CASES = 150  # per kind and strategy: 900 specs in all


def example_spec(kind: ResourceKind) -> dict[str, Any]:
    for path in sorted(EXAMPLES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document["kind"] == kind.kind:
            spec: dict[str, Any] = document["spec"]
            return spec
    raise AssertionError(f"no example of {kind.kind} in {EXAMPLES}")


def field_names(model: type[BaseModel], seen: set[type[BaseModel]] | None = None) -> set[str]:
    """Every field alias (and name) of a model and the models it nests."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        names.add(name)
        stack: list[Any] = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                names |= field_names(t, seen)
            stack.extend(getattr(t, "__args__", ()))
    return names


ODD_STRINGS = [
    "",
    " ",
    "-1",
    "0",
    "1e999",
    "NaN",
    "500m",
    "-500m",
    "1Gi",
    "9" * 40 + "Ei",
    "x" * 5000,
    "\x00",
    "\ud7ff\u202e",
    "../../etc",
    "/",
    "zk-1:2181,zk-2:2181/mesos",
    "docker",
    "registry.example/image@sha256:" + "a" * 64,
    "true",
    "null",
]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-10, max_value=100)
    | st.integers()
    | st.sampled_from([2**31, 2**63, 2**64, 10**100, -(2**63) - 1])
    | st.floats()
    | st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -0.0, 0.5])
    | st.text(max_size=30)
    | st.sampled_from(ODD_STRINGS)
)


def json_values(keys: list[str]) -> st.SearchStrategy[Any]:
    key = st.sampled_from(keys) | st.text(max_size=12)
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=5),
        max_leaves=25,
    )


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a spec (dict keys, list indices)."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated_specs(draw: st.DrawFn, kind: ResourceKind) -> dict[str, Any]:
    spec = copy.deepcopy(example_spec(kind))
    keys = sorted(field_names(kind.spec))
    values = json_values(keys)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = paths(spec)
        path = draw(st.sampled_from(where)) if where else ()
        parent: Any = spec
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if not path:
            spec[draw(st.sampled_from(keys))] = draw(values)
        elif action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(keys) | st.text(max_size=8))] = draw(values)
    return spec


def check(kind: ResourceKind, spec: Any) -> None:
    try:
        parsed = kind.spec.model_validate(copy.deepcopy(spec))
    except ValidationError as error:
        message = validation_message(error)
        assert message.startswith("spec"), message
        return
    # anything else raised above fails the test with that exception
    again = kind.spec.model_validate(parsed.model_dump(by_alias=True, mode="json"))
    assert again == parsed


SETTINGS = settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_a_mutated_spec_is_accepted_or_refused_with_a_validation_error(kind: ResourceKind) -> None:
    @SETTINGS
    @given(spec=mutated_specs(kind))
    def run(spec: dict[str, Any]) -> None:
        check(kind, spec)

    run()


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind)
def test_any_document_is_accepted_or_refused_with_a_validation_error(kind: ResourceKind) -> None:
    keys = sorted(field_names(kind.spec))

    @SETTINGS
    @given(spec=json_values(keys) | st.dictionaries(st.sampled_from(keys), json_values(keys)))
    def run(spec: Any) -> None:
        check(kind, spec)

    run()
