"""Mesos maintenance primitives as pure state: schedule, machine modes UP/DRAINING/DOWN.

Follows the documented rules: a machine appears at most once in a schedule; machines in the
schedule are DRAINING; `machine/down` takes only scheduled (DRAINING) machines to DOWN; a
DOWN machine cannot be removed from the schedule; `machine/up` takes only DOWN machines
back to UP and removes them from the schedule.

A MachineID is compared as Mesos compares it (`include/mesos/type_utils.hpp`
`operator==(MachineID, MachineID)`: hostname case-insensitively and ip, each also by whether
it is set; `src/master/master.cpp` builds an agent's MachineID from its hostname and IP): an
agent is on a machine only when both its hostname and its IP match, so a MachineID with only
a hostname or only an IP is accepted in a schedule but matches no agent (docs/maintenance.md:
"both the `hostname` and `ip` fields must match"). A given IP must be a well-formed IPv4
address (`src/master/maintenance.cpp` `validation::machine`).
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

UP = "UP"
DRAINING = "DRAINING"
DOWN = "DOWN"

Machine = tuple[str, str]  # (hostname, ip); either may be empty


class MaintenanceError(ValueError):
    """An invalid maintenance request (answered with 400 Bad Request)."""


def machine_key(machine_id: Any) -> Machine:
    if not isinstance(machine_id, dict):
        raise MaintenanceError(f"a MachineID must be an object, got {machine_id!r}")
    hostname = str(machine_id.get("hostname") or "").lower()[:255]
    ip = str(machine_id.get("ip") or "")
    if not hostname and not ip:
        raise MaintenanceError("Both 'hostname' and 'ip' for a machine are empty")
    if ip:
        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise MaintenanceError(f"Failed to parse IP {ip[:64]!r} of a machine") from None
    return hostname, ip


def machine_json(machine: Machine) -> dict[str, str]:
    hostname, ip = machine
    out: dict[str, str] = {}
    if hostname:
        out["hostname"] = hostname
    if ip:
        out["ip"] = ip
    return out


def matches(machine: Machine, hostname: str, ip: str) -> bool:
    """Whether an agent at (hostname, ip) is on `machine`: the agent's MachineID (both fields
    set) equals it, so both fields must be given and equal (hostname case-insensitively)."""
    return machine == (hostname.lower(), ip) and bool(hostname) and bool(ip)


def parse_machine_ids(body: Any) -> list[Machine]:
    if isinstance(body, dict) and "values" in body:
        body = body["values"]
    if not isinstance(body, list) or not body:
        raise MaintenanceError("expected a non-empty JSON array of MachineIDs")
    return [machine_key(m) for m in body]


class Maintenance:
    def __init__(self) -> None:
        self.schedule: dict[str, Any] = {"windows": []}
        self.modes: dict[Machine, str] = {}
        self.unavailability: dict[Machine, dict[str, Any]] = {}

    def update_schedule(self, schedule: Any) -> None:
        if not isinstance(schedule, dict) or not isinstance(schedule.get("windows", []), list):
            raise MaintenanceError('expected a Schedule object: {"windows": [...]}')
        seen: dict[Machine, dict[str, Any]] = {}
        for window in schedule.get("windows", []):
            if not isinstance(window, dict):
                raise MaintenanceError("a window must be an object")
            ids = window.get("machine_ids")
            if not isinstance(ids, list) or not ids:
                raise MaintenanceError("a window needs a non-empty machine_ids list")
            unavailability = window.get("unavailability")
            if not isinstance(unavailability, dict) or "start" not in unavailability:
                raise MaintenanceError("a window needs unavailability.start")
            for machine_id in ids:
                key = machine_key(machine_id)
                if key in seen:
                    raise MaintenanceError(f"machine {machine_json(key)} appears more than once")
                seen[key] = unavailability
        for machine, mode in self.modes.items():
            if mode == DOWN and machine not in seen:
                raise MaintenanceError(
                    f"machine {machine_json(machine)} is DOWN and cannot leave the schedule; "
                    "bring it up first"
                )
        self.schedule = copy.deepcopy({"windows": schedule.get("windows", [])})
        self.modes = {m: self.modes.get(m, DRAINING) for m in seen}
        self.unavailability = seen

    def down(self, machines: list[Machine]) -> None:
        for machine in machines:
            if self.modes.get(machine) != DRAINING:
                raise MaintenanceError(
                    f"machine {machine_json(machine)} is not in DRAINING mode "
                    "(it must be scheduled for maintenance first)"
                )
        for machine in machines:
            self.modes[machine] = DOWN

    def up(self, machines: list[Machine]) -> None:
        for machine in machines:
            if self.modes.get(machine) != DOWN:
                raise MaintenanceError(f"machine {machine_json(machine)} is not in DOWN mode")
        for machine in machines:
            del self.modes[machine]
            self.unavailability.pop(machine, None)
        windows = []
        for window in self.schedule["windows"]:
            ids = [m for m in window["machine_ids"] if machine_key(m) not in machines]
            if ids:
                windows.append({**window, "machine_ids": ids})
        self.schedule = {"windows": windows}

    def machine_of(self, hostname: str, ip: str) -> Machine | None:
        for machine in self.modes:
            if matches(machine, hostname, ip):
                return machine
        return None

    def mode_of(self, hostname: str, ip: str) -> str:
        machine = self.machine_of(hostname, ip)
        return self.modes[machine] if machine is not None else UP

    def machines(self, mode: str) -> list[Machine]:
        return sorted(m for m, md in self.modes.items() if md == mode)

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": copy.deepcopy(self.schedule),
            "down": [machine_json(m) for m in self.machines(DOWN)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Maintenance:
        state = cls()
        down = [machine_key(m) for m in data.get("down", [])]
        state.modes = {m: DOWN for m in down}
        state.update_schedule(data.get("schedule") or {"windows": []})
        for machine in down:
            state.modes[machine] = DOWN
        return state
