"""Mesos resource strings (`cpus:4;mem:8192;ports:[31000-32000]`), scalar parts only."""

from __future__ import annotations

Resources = dict[str, float]

DEFAULT_AGENT_RESOURCES = "cpus:4;mem:8192;disk:10240"


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
