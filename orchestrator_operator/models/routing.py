"""Where each part of a MesosCluster points while a ZkMigration moves it (and after).

The ZkMigration handlers write it as JSON into the MesosCluster's annotation
`migration.orchestrator.dev/zk-routing`; the MesosCluster builders read it. An annotation
rather than a spec field, so that a GitOps tool syncing the cluster's spec from git does not
revert it. Not under `orchestrator.dev/`: Kopf keeps its own state there and leaves every
annotation with that prefix out of the diffs that trigger handlers.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

ROUTING_ANNOTATION = "migration.orchestrator.dev/zk-routing"
MastersComponent = Literal["master", "master-b"]


class ZkRouting(BaseModel):
    """With the defaults, the cluster runs as its spec says."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    migration: str | None = Field(default=None, description="The ZkMigration driving this.")
    target: str | None = Field(default=None, description="Ensemble B's connect string.")
    masters_component: MastersComponent = Field(
        default="master", description="The masters StatefulSet on the spec's ensemble."
    )
    source_masters: Annotated[int, Field(ge=0, le=7)] | None = Field(
        default=None, description="Masters left on the spec's ensemble; None: spec replicas."
    )
    target_masters: Annotated[int, Field(ge=0, le=7)] = 0
    agents_on_target: bool = False
    marathon_on_target: bool = False

    @property
    def target_masters_component(self) -> MastersComponent:
        return "master-b" if self.masters_component == "master" else "master"

    @property
    def migrating(self) -> bool:
        return self.target is not None

    def to_annotation(self) -> str:
        return json.dumps(self.model_dump(by_alias=True, exclude_defaults=True), sort_keys=True)


def parse_routing(annotations: dict[str, str] | None) -> ZkRouting:
    """The routing in the annotations; a malformed one reads as the default and says so."""
    raw = (annotations or {}).get(ROUTING_ANNOTATION)
    if not raw:
        return ZkRouting()
    try:
        return ZkRouting.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as error:
        raise ValueError(f"annotation {ROUTING_ANNOTATION} is not valid: {error}") from error
