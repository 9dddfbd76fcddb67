"""The probe report: what one probe sends the app every interval (msgspec structs).

A report is a full snapshot of one host, never a delta: the app replaces the probe's previous
report with it. Field names are short-ish but readable; every list is bounded by the probe
(see ``LIMITS``) and checked again by the app when it decodes.

Arrays are tuples, not lists: the app holds every probe's newest report, and tuples of
untracked values (str, numbers, ``gc=False`` structs) leave the cyclic garbage collector,
whereas lists stay tracked (about 70 per report, which made full collections walk hundreds of
thousands of objects at 1,000 probes). On the wire they are JSON arrays either way.
"""

from __future__ import annotations

import msgspec

REPORT_VERSION = 1


class Limits(msgspec.Struct, frozen=True):
    """Upper bounds a probe keeps to and the app enforces."""

    processes: int = 5000
    connections: int = 20000
    containers: int = 1000
    pods: int = 1000
    services: int = 2000
    addresses: int = 256
    string: int = 4096


LIMITS = Limits()
# The container controls a user may ask of a probe (the app checks them; the probe runs them).
CONTROLS = ("start", "stop", "pause", "unpause", "restart", "remove", "logs")


class Host(msgspec.Struct, omit_defaults=True, gc=False):
    hostname: str
    addresses: tuple[str, ...] = ()
    os: str = ""
    kernel: str = ""
    cpus: int = 0
    memory_total: int = 0
    memory_used: int = 0
    cpu_percent: float = 0.0
    load: tuple[float, ...] = ()
    uptime: float = 0.0


class Process(msgspec.Struct, omit_defaults=True, array_like=True, gc=False):
    """array_like: encoded as a JSON array, which keeps hot report data small."""

    pid: int
    ppid: int = 0
    name: str = ""
    cmdline: str = ""
    user: str = ""
    cpu_percent: float = 0.0
    rss: int = 0
    open_files: int = 0
    container_id: str = ""


class Connection(msgspec.Struct, omit_defaults=True, array_like=True, gc=False):
    """One socket. ``netns`` names the network namespace (inode); ``pid`` owns the socket."""

    proto: str  # tcp | udp
    local_ip: str
    local_port: int
    remote_ip: str = ""
    remote_port: int = 0
    state: str = ""  # LISTEN, ESTABLISHED, ... ("" for udp)
    pid: int = 0
    netns: int = 0


class Port(msgspec.Struct, omit_defaults=True, gc=False):
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""
    host_port: int = 0


class Container(msgspec.Struct, omit_defaults=True, gc=False):
    id: str
    name: str
    image: str = ""
    state: str = ""  # running | exited | paused | created | restarting | dead
    status: str = ""
    labels: dict[str, str] = {}
    ports: tuple[Port, ...] = ()
    ips: tuple[str, ...] = ()
    pid: int = 0
    created: float = 0.0
    memory_limit: int = 0
    cpu_quota: float = 0.0  # cores; 0 = unlimited
    cpu_percent: float = 0.0
    memory_usage: int = 0
    netns: int = 0


class Pod(msgspec.Struct, omit_defaults=True, gc=False):
    uid: str
    name: str
    namespace: str
    node: str = ""
    phase: str = ""
    ip: str = ""
    labels: dict[str, str] = {}
    containers: tuple[str, ...] = ()  # container ids (docker://… stripped)


class Service(msgspec.Struct, omit_defaults=True, gc=False):
    uid: str
    name: str
    namespace: str
    cluster_ip: str = ""
    selector: dict[str, str] = {}
    ports: tuple[int, ...] = ()


class Report(msgspec.Struct, omit_defaults=True, gc=False):
    probe_id: str
    host: Host
    timestamp: float
    interval: float = 3.0
    version: int = REPORT_VERSION
    seq: int = 0
    host_netns: int = 0
    processes: tuple[Process, ...] = ()
    connections: tuple[Connection, ...] = ()
    containers: tuple[Container, ...] = ()
    pods: tuple[Pod, ...] = ()
    services: tuple[Service, ...] = ()


class ReportInvalid(ValueError):
    """A report that decodes but breaks a rule (limits, empty ids)."""


_decoder = msgspec.json.Decoder(Report)
_encoder = msgspec.json.Encoder()


def encode_report(report: Report) -> bytes:
    return _encoder.encode(report)


def decode_report(data: bytes, limits: Limits = LIMITS) -> Report:
    """Decode and validate; raises ``msgspec.ValidationError``/``DecodeError``/``ReportInvalid``."""
    report = _decoder.decode(data)
    validate_report(report, limits)
    return report


def validate_report(report: Report, limits: Limits = LIMITS) -> None:
    if not report.probe_id or len(report.probe_id) > 253:
        raise ReportInvalid("probe_id must be 1-253 characters")
    if not report.host.hostname or len(report.host.hostname) > 253:
        raise ReportInvalid("host.hostname must be 1-253 characters")
    if report.version != REPORT_VERSION:
        raise ReportInvalid(f"unsupported report version {report.version}")
    checks = (
        ("processes", len(report.processes), limits.processes),
        ("connections", len(report.connections), limits.connections),
        ("containers", len(report.containers), limits.containers),
        ("pods", len(report.pods), limits.pods),
        ("services", len(report.services), limits.services),
        ("host.addresses", len(report.host.addresses), limits.addresses),
    )
    for name, count, limit in checks:
        if count > limit:
            raise ReportInvalid(f"{name}: {count} entries is over the limit of {limit}")
    for c in report.containers:
        if not c.id:
            raise ReportInvalid("a container has an empty id")
    if report.interval <= 0 or report.interval > 3600:
        raise ReportInvalid("interval must be in (0, 3600] seconds")
