"""Carrying out a maintenance plan against the leading master (the I/O around the plan)."""

from __future__ import annotations

import logging
import time
from typing import Any

from orchestrator_operator.mesos.maintenance import (
    machines_in,
    plan_maintenance,
    with_window,
    without_hosts,
)
from orchestrator_operator.mesos.master_api import MasterApiError, MasterClient

log = logging.getLogger(__name__)


def run_maintenance(leader_address: str, cordoned: set[str]) -> list[dict[str, Any]] | None:
    """Advance maintenance one step; the report for status, or None if the master failed."""
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
        return plan.report
    except MasterApiError as error:
        log.warning("maintenance step failed: %s", error)
        return None
    finally:
        client.close()
