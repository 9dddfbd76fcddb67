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

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

REPORT_VERSION = 1


class Limits(msgspec.Struct, frozen=True):
    """Upper bounds a probe keeps to and the app enforces."""

    processes: int = 5000
    connections: int = 20000
    containers: int = 1000
    pods: int = 1000
    services: int = 2000
    addresses: int = 256  # a host's addresses, a container's IPs, a pod's container ids
    ports: int = 4096  # a container's published ports, a service's ports
    labels: int = 128  # entries of one labels or selector map
    string: int = 4096  # any string (labels' keys and values included)
    name: int = 253  # ids and names: probe id, hostname, container id, pod and service uid


LIMITS = Limits()

# Every field of a report is bounded by its type, and msgspec checks these bounds while it
# decodes, before anything is merged: a string over ``LIMITS.string`` characters, a map over
# ``LIMITS.labels`` entries, an integer outside its range or a float that is not finite is a
# ``msgspec.ValidationError`` (422) naming the field. Numbers stay within what the app turns
# into float32 series and JSON without overflow.
Text = Annotated[str, msgspec.Meta(max_length=LIMITS.string)]
Name = Annotated[str, msgspec.Meta(max_length=LIMITS.name)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**53)]  # bytes, fds, sequence numbers
Inode = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # network namespace inodes
Pid = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
PortNumber = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Number = Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]  # finite: no inf, no NaN
Labels = Annotated[dict[Text, Text], msgspec.Meta(max_length=LIMITS.labels)]
Addresses = Annotated[tuple[Text, ...], msgspec.Meta(max_length=LIMITS.addresses)]
# The container controls a user may ask of a probe (the app checks them; the probe runs them).
CONTROLS = ("start", "stop", "pause", "unpause", "restart", "remove", "logs")


class Host(msgspec.Struct, omit_defaults=True, gc=False):
    hostname: Name
    addresses: Addresses = ()
    os: Text = ""
    kernel: Text = ""
    cpus: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    memory_total: Count = 0
    memory_used: Count = 0
    cpu_percent: Number = 0.0
    load: Annotated[tuple[Number, ...], msgspec.Meta(max_length=16)] = ()
    uptime: Number = 0.0


class Process(msgspec.Struct, omit_defaults=True, array_like=True, gc=False):
    """array_like: encoded as a JSON array, which keeps hot report data small."""

    pid: Pid
    ppid: Pid = 0
    name: Text = ""
    cmdline: Text = ""
    user: Text = ""
    cpu_percent: Number = 0.0
    rss: Count = 0
    open_files: Count = 0
    container_id: Name = ""


class Connection(msgspec.Struct, omit_defaults=True, array_like=True, gc=False):
    """One socket. ``netns`` names the network namespace (inode); ``pid`` owns the socket."""

    proto: Name  # tcp | udp
    local_ip: Name
    local_port: PortNumber
    remote_ip: Name = ""
    remote_port: PortNumber = 0
    state: Name = ""  # LISTEN, ESTABLISHED, ... ("" for udp)
    pid: Pid = 0
    netns: Inode = 0


class Port(msgspec.Struct, omit_defaults=True, gc=False):
    container_port: PortNumber
    proto: Name = "tcp"
    host_ip: Name = ""
    host_port: PortNumber = 0


class Container(msgspec.Struct, omit_defaults=True, gc=False):
    id: Name
    name: Text
    image: Text = ""
    state: Name = ""  # running | exited | paused | created | restarting | dead
    status: Text = ""
    labels: Labels = {}
    ports: Annotated[tuple[Port, ...], msgspec.Meta(max_length=LIMITS.ports)] = ()
    ips: Addresses = ()
    pid: Pid = 0
    created: Number = 0.0
    memory_limit: Count = 0
    cpu_quota: Number = 0.0  # cores; 0 = unlimited
    cpu_percent: Number = 0.0
    memory_usage: Count = 0
    netns: Inode = 0


class Pod(msgspec.Struct, omit_defaults=True, gc=False):
    uid: Name
    name: Name
    namespace: Name
    node: Name = ""
    phase: Name = ""
    ip: Name = ""
    labels: Labels = {}
    containers: Annotated[tuple[Name, ...], msgspec.Meta(max_length=LIMITS.addresses)] = ()
    # container ids (docker://… stripped)


class Service(msgspec.Struct, omit_defaults=True, gc=False):
    uid: Name
    name: Name
    namespace: Name
    cluster_ip: Name = ""
    selector: Labels = {}
    ports: Annotated[tuple[PortNumber, ...], msgspec.Meta(max_length=LIMITS.ports)] = ()


class Report(msgspec.Struct, omit_defaults=True, gc=False):
    probe_id: Name
    host: Host
    timestamp: Number
    interval: Number = 3.0
    version: Annotated[int, msgspec.Meta(ge=0, le=2**31)] = REPORT_VERSION
    seq: Count = 0
    host_netns: Inode = 0
    processes: Annotated[tuple[Process, ...], msgspec.Meta(max_length=LIMITS.processes)] = ()
    connections: Annotated[tuple[Connection, ...], msgspec.Meta(max_length=LIMITS.connections)] = ()
    containers: Annotated[tuple[Container, ...], msgspec.Meta(max_length=LIMITS.containers)] = ()
    pods: Annotated[tuple[Pod, ...], msgspec.Meta(max_length=LIMITS.pods)] = ()
    services: Annotated[tuple[Service, ...], msgspec.Meta(max_length=LIMITS.services)] = ()


def bounded_labels(labels: Mapping[Any, Any] | None, limits: Limits = LIMITS) -> dict[str, str]:
    """A labels or selector map cut to what a report may carry: the first ``limits.labels``
    entries in key order, keys and values at most ``limits.string`` characters (the probe
    sends this, so that one container with many or long labels does not get its whole report
    refused)."""
    items = sorted(
        (str(k)[: limits.string], str(v)[: limits.string]) for k, v in (labels or {}).items()
    )
    return dict(items[: limits.labels])


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
