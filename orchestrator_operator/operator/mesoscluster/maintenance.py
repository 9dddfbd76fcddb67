"""Carrying out a maintenance plan against the leading master (the I/O around the plan)."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from orchestrator_operator.common.kube_api import ApiError, KubeApi
from orchestrator_operator.common.manifest import Owner
from orchestrator_operator.mesos.maintenance import (
    machines_in,
    plan_maintenance,
    with_window,
    without_hosts,
)
from orchestrator_operator.mesos.master_api import MasterApiError, MasterClient
from orchestrator_operator.operator.builders import agents
from orchestrator_operator.operator.builders.meta import selector_labels

log = logging.getLogger(__name__)


def restart_agents(owner: Owner, nodes: set[str]) -> None:
    """Delete the cluster's agent pods on `nodes` so the DaemonSet starts them afresh.

    For machines just brought UP: their agents exited on the master's shutdown message
    each time they registered while the machine was DOWN, so the kubelet holds their
    container in a crash-loop back-off (up to 5 minutes) before it would try again. No task
    runs on a machine that was DOWN, so nothing is lost by restarting them now.
    """
    selector = ",".join(f"{k}={v}" for k, v in selector_labels(owner, agents.COMPONENT).items())
    api = KubeApi.shared()
    for node in sorted(nodes):
        try:
            pods = api.list(
                "v1", "Pod", owner.namespace,
                label_selector=selector, field_selector=f"spec.nodeName={node}",
            )  # fmt: skip
            for pod in pods:
                log.info("maintenance: %s is up; restarting its agent pod at once", node)
                api.delete("v1", "Pod", owner.namespace, pod["metadata"]["name"])
        except (ApiError, httpx.HTTPError) as error:  # the back-off will get there, later
            log.warning("maintenance: cannot restart the agent on %s: %s", node, error)


def run_maintenance(
    leader_address: str, cordoned: set[str], owner: Owner | None = None
) -> list[dict[str, Any]] | None:
    """Advance maintenance one step; the report for status, or None if the master failed.
    With `owner`, the agent pods of machines brought UP are restarted (restart_agents)."""
    client = MasterClient(leader_address)
    try:
        state = client.state()
        schedule = client.schedule()
        status = client.maintenance_status()
        plan = plan_maintenance(
            cordoned,
            state,
            schedule,
            draining=machines_in(status.get("draining_machines", [])),
            down=machines_in(status.get("down_machines", [])),
        )
        if plan.up:
            client.machines_up(plan.up)  # Mesos also drops them from the schedule
            if owner is not None:
                restart_agents(owner, {machine["hostname"] for machine in plan.up})
            schedule = client.schedule()
        new_schedule = schedule
        if plan.unschedule:
            new_schedule = without_hosts(new_schedule, plan.unschedule)
        if plan.schedule:
            new_schedule = with_window(new_schedule, plan.schedule, time.time_ns())
        if new_schedule != schedule:
            client.set_schedule(new_schedule)
        if plan.down:
            client.machines_down(plan.down)
        for machine in plan.schedule:
            log.info("maintenance: draining the agent on %s", machine["hostname"])
        for machine in plan.down:
            log.info("maintenance: %s drained, machine marked down", machine["hostname"])
        for entry in plan.report:
            if "tasks" not in entry:
                log.debug(
                    "maintenance: %s waits for its agent to re-register with the leader",
                    entry["node"],
                )
        return plan.report
    except MasterApiError as error:
        log.warning("maintenance step failed: %s", error)
        return None
    finally:
        client.close()
