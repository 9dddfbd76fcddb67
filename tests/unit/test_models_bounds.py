"""Issue 17, point 10: the custom resources' quantities, sizes and maps have upper bounds,
and images may be pinned by digest (the container then runs image:version@digest)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.models.base import quantity_value
from orchestrator_operator.models.mesoscluster import MesosClusterSpec
from orchestrator_operator.models.probefleet import ProbeFleetSpec
from orchestrator_operator.models.zkmigration import ManagedEnsemble
from orchestrator_operator.operator.builders import zookeeper
from orchestrator_operator.operator.builders.cluster import build_children
from orchestrator_operator.operator.builders.probefleet import build_children as fleet_children
from orchestrator_operator.operator.builders.probefleet import fleet_owner

DIGEST = "sha256:" + "ab" * 32
OWNER = Owner(name="demo", namespace="ns", uid="00000000-0000-0000-0000-000000000001")


@pytest.mark.parametrize(
    ("quantity", "value"),
    [("500m", Decimal("0.5")), ("2", 2), ("1.5Gi", 3 * 2**29), ("1e3", 1000), ("16Ti", 2**44),
     ("5E", 5 * 10**18)],
)  # fmt: skip
def test_quantity_value(quantity: str, value: Decimal | int) -> None:
    assert quantity_value(quantity) == value


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"masters": {"resources": {"limits": {"cpu": "1025"}}}}, "limits.cpu",
         "cpu 1025 is more than the most allowed, 1024"),
        ({"masters": {"resources": {"requests": {"cpu": "1e18"}}}}, "requests.cpu",
         "more than the most allowed"),
        ({"agents": {"resources": {"limits": {"memory": "17Ti"}}}}, "limits.memory",
         "memory 17Ti is more than the most allowed, 16Ti"),
        ({"zookeeper": {"storage": {"size": "9Ei"}}}, "storage",
         "size 9Ei is more than the most allowed, 64Ti"),
        ({"agents": {"offered": {"memMb": 2**40}}}, "offered.memMb", "less than or equal"),
        ({"agents": {"offered": {"diskMb": 2**31}}}, "offered.diskMb", "less than or equal"),
        ({"agents": {"maxUnavailable": 10**6}}, "maxUnavailable", "less than or equal"),
        ({"agents": {"nodeSelector": {f"k{i}": "v" for i in range(65)}}}, "nodeSelector",
         "at most 64"),
        ({"marathon": {"digest": "sha256:abc"}}, "marathon.digest", "pattern"),
        ({"marathon": {"digest": "latest"}}, "marathon.digest", "pattern"),
    ],
)  # fmt: skip
def test_out_of_bounds_values_are_refused_naming_the_field(
    spec: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        MesosClusterSpec.model_validate(spec)
    message = str(caught.value)
    assert field in message.replace("\n", " ") or field.split(".")[-1] in message, message
    assert words in message, message


def test_the_largest_allowed_values_are_accepted() -> None:
    MesosClusterSpec.model_validate(
        {
            "masters": {"resources": {"limits": {"cpu": "1024", "memory": "16Ti"}}},
            "zookeeper": {"storage": {"size": "64Ti"}},
            "agents": {"offered": {"memMb": 16 * 2**20, "diskMb": 2**30}},
        }
    )


def _images(manifests: list[dict[str, Any]]) -> dict[str, str]:
    images = {}
    for manifest in manifests:
        if manifest["kind"] in ("StatefulSet", "Deployment", "DaemonSet"):
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                images[f"{manifest['metadata']['name']}/{container['name']}"] = container["image"]
    return images


def test_a_digest_pins_each_image_it_is_given_to() -> None:
    spec = MesosClusterSpec.model_validate(
        {
            "zookeeper": {"digest": DIGEST},
            "masters": {"digest": DIGEST},
            "agents": {"digest": DIGEST},
            "marathon": {"digest": DIGEST},
        }
    )
    images = _images(build_children(OWNER, spec))
    assert images and all(image.endswith(f"@{DIGEST}") for image in images.values()), images
    # the tag stays, for people and labels; the runtime pulls by the digest
    assert images["demo-zookeeper/zookeeper"] == f"zookeeper:{spec.zookeeper.version}@{DIGEST}"
    unpinned = _images(build_children(OWNER, MesosClusterSpec()))
    assert not any("@" in image for image in unpinned.values()), unpinned


def test_a_probefleet_and_a_migration_ensemble_take_digests_too() -> None:
    fleet = ProbeFleetSpec.model_validate(
        {"probe": {"digest": DIGEST}, "app": {"digest": "sha256:" + "cd" * 32}}
    )
    images = _images(fleet_children(fleet_owner("f", "ns", "u"), fleet))
    assert sorted(i.rpartition("@")[2] for i in images.values()) == [DIGEST, "sha256:" + "cd" * 32]
    ensemble = ManagedEnsemble.model_validate({"digest": DIGEST})
    b = zookeeper.build_migration_target(OWNER, ensemble, MesosClusterSpec())
    assert all(image.endswith(f"@{DIGEST}") for image in _images(b).values())


def test_the_crd_rules_say_the_same_as_the_model() -> None:
    """The CRD's CEL rules (Kubernetes' quantity library), as `orchestrator render` evaluates
    them, refuse what the model refuses, naming the field."""
    from orchestrator_operator.models import MESOS_CLUSTER
    from orchestrator_operator.operator.render import _spec_schema, cel_problems

    schema = _spec_schema(MESOS_CLUSTER)
    spec = {"masters": {"resources": {"limits": {"cpu": "1025", "memory": "1Gi"}}},
            "zookeeper": {"storage": {"size": "65Ti"}}}  # fmt: skip
    assert sorted(cel_problems(schema, spec)) == [
        "spec.masters.resources.limits.cpu: cpu is more than the most allowed, 1024",
        "spec.zookeeper.storage.size: size is more than the most allowed, 64Ti",
    ]
    fine = {"masters": {"resources": {"limits": {"cpu": "1024", "memory": "16Ti"}}}}
    assert cel_problems(schema, fine) == []
