"""Mesos resource strings (`cpus:4;mem:8192;ports:[31000-32000]`): scalars and port ranges.

Mesos 1.11 `src/slave/containerizer/containerizer.cpp` (`Containerizer::resources`): an agent
whose `--resources` names no `ports` offers the default `[31000-32000]`
(`src/slave/constants.hpp` DEFAULT_PORTS)."""

from __future__ import annotations

import contextlib
import random
import socket

Resources = dict[str, float]
PortRanges = list[tuple[int, int]]

DEFAULT_AGENT_RESOURCES = "cpus:4;mem:8192;disk:10240"
DEFAULT_PORTS: PortRanges = [(31000, 32000)]


def parse_resources(text: str) -> Resources:
    """Scalar resources of a `--resources` string; ranges and sets are ignored."""
    result: Resources = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"bad resource {part!r}: expected name:value")
        name = name.split("(")[0].strip()  # drop a role, e.g. cpus(*):4
        if value.strip().startswith(("[", "{")):
            continue
        result[name] = float(value)
    return result


def fits(need: Resources, free: Resources) -> bool:
    return all(free.get(k, 0.0) + 1e-9 >= v for k, v in need.items() if v > 0)


def add(a: Resources, b: Resources, sign: float = 1.0) -> Resources:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0.0) + sign * v
    return out


def render(res: Resources) -> dict[str, float]:
    """Resources as Mesos renders them in state JSON (always cpus, mem, disk, gpus)."""
    out = {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
    out.update({k: round(v, 6) for k, v in res.items()})
    return out


def parse_ports(text: str) -> PortRanges:
    """The `ports:[a-b,c-d]` ranges of a `--resources` string (DEFAULT_PORTS when absent)."""
    ranges: PortRanges = []
    found = False
    for part in text.split(";"):
        name, _, value = part.strip().partition(":")
        if name.split("(")[0].strip() != "ports":
            continue
        found = True
        body = value.strip()
        if not (body.startswith("[") and body.endswith("]")):
            raise ValueError(f"bad ports resource {value!r}: expected [begin-end,...]")
        for item in body[1:-1].split(","):
            if not item.strip():
                continue
            low, sep, high = item.strip().partition("-")
            try:
                begin, end = int(low), int(high if sep else low)
            except ValueError:
                raise ValueError(f"bad port range {item.strip()!r}") from None
            if not 0 < begin <= end <= 65535:
                raise ValueError(f"bad port range {item.strip()!r}: expected 1..65535, low-high")
            ranges.append((begin, end))
    return ranges if found else list(DEFAULT_PORTS)


def render_ports(ranges: PortRanges) -> str:
    """Ranges as Mesos renders them in state JSON: `[31000-32000, 33000-33010]`."""
    return "[" + ", ".join(f"{b}-{e}" for b, e in ranges) + "]"


def in_ranges(port: int, ranges: PortRanges) -> bool:
    return any(b <= port <= e for b, e in ranges)


def host_port_free(port: int) -> bool:
    """Nothing on this host listens on the port (any address). A sim-only guard: tests of
    several sessions share one host and one default range, which separate Mesos hosts don't."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with contextlib.suppress(OSError):
            sock.bind(("0.0.0.0", port))
            return True
    return False


def pick_ports(
    ranges: PortRanges, used: set[int], fixed: list[int], dynamic: int
) -> list[int] | None:
    """Host ports for one task: the `fixed` ones (each in the ranges and unused) and `dynamic`
    more picked at random among the free ones (Marathon's PortsMatcher takes ports from the
    offer's ranges in a shuffled order). None when the agent cannot give them."""
    if any(p in used or not in_ranges(p, ranges) for p in fixed) or len(set(fixed)) < len(fixed):
        return None
    taken = used | set(fixed)
    chosen: list[int] = []
    order = [(b, e) for b, e in ranges]
    random.shuffle(order)
    for begin, end in order:
        if len(chosen) >= dynamic:
            break
        span = list(range(begin, end + 1))
        random.shuffle(span)
        for port in span:
            if len(chosen) >= dynamic:
                break
            if port not in taken and host_port_free(port):
                chosen.append(port)
                taken.add(port)
    return chosen if len(chosen) == dynamic else None
