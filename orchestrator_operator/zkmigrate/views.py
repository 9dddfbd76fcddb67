"""What `orchestrator zk-migrate` shows: the status view (`status`, `--watch`), the
validation verdict (`validate`), the report document and text (`report`) and the summary of
a `restore`. Pure."""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator_operator.common.manifest import Manifest
from orchestrator_operator.models.vocabulary import ConditionType, ZkMigrationPhase
from orchestrator_operator.models.vocabulary import ZkMigrationPhaseState as State
from orchestrator_operator.models.zkmigration import PHASES
from orchestrator_operator.operator.zkmigration.archive import RestorePlan
from orchestrator_operator.zkmigrate.manifest import TERMINAL_PHASES


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _phase_rows(status: Manifest) -> list[Manifest]:
    known = {p.get("number"): p for p in status.get("phases") or []}
    return [
        known.get(n) or {"number": n, "name": name, "state": State.PENDING}
        for n, name in enumerate(PHASES, start=1)
    ]


def _hanging_list() -> Table:
    """Two columns: a label, then text wrapped between words and indented under itself
    (only a word longer than the line is folded)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold", ratio=1)
    return grid


def shorten(text: str, limit: int = 160) -> str:
    """`text` cut at a word boundary to at most `limit` characters, marked with `…`."""
    if len(text) <= limit:
        return text
    return textwrap.shorten(text, limit, placeholder=" …")


STATE_STYLES: dict[str, str] = {
    State.RUNNING: "bold yellow",
    State.SUCCEEDED: "green",
    State.FAILED: "bold red",
    State.ROLLED_BACK: "magenta",
    State.PENDING: "dim",
}


def status_view(name: str, status: Manifest, now: datetime) -> RenderableType:
    """The live display: phases as rows, what holds the current phase, sync, leader."""
    phase = status.get("phase") or f"{ZkMigrationPhase.PENDING} (not yet seen by the operator)"
    current = status.get("currentPhase")
    header = Text(f"ZkMigration {name}: {phase}", style="bold")
    if current:
        header.append(
            f"  phase {current}/6" + (" (rolling back)" if status.get("rollingBack") else "")
        )
    parts: list[RenderableType] = [header]
    if status.get("sourceConnectString"):
        parts.append(
            Text(f"A {status['sourceConnectString']}  ->  B {status.get('targetConnectString')}")
        )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("#", "phase", "state", "started", "duration"):
        table.add_column(column, no_wrap=True)
    # The phases' messages go under the table, each wrapped between words over the whole
    # width: in a column of their own they were folded mid-word (a host name is long).
    messages = _hanging_list()
    for row in _phase_rows(status):
        started = parse_time(row.get("startedAt"))
        finished = parse_time(row.get("finishedAt"))
        state = str(row.get("state") or State.PENDING)
        took = _seconds(started, finished or (now if state == State.RUNNING and started else None))
        table.add_row(
            str(row.get("number")),
            str(row.get("name")),
            Text(state, style=STATE_STYLES.get(state, "")),
            started.strftime("%H:%M:%S") if started else "",
            _duration(took),
            style="bold" if row.get("number") == current else "",
        )
        message = str(row.get("message") or "")
        checks_say_it = row.get("number") == current and status.get("checks")
        if message and not checks_say_it:
            messages.add_row(f"  phase {row.get('number')}:", shorten(message))
    parts.append(table)
    if messages.row_count:
        parts.append(messages)
    checks = status.get("checks") or []
    if checks:
        # Pre-migration checks hold the migration before its first phase has a number.
        held = f"phase {current}" if current else "the start"
        parts.append(Text(f"holding {held}:", style="bold"))
        listed = _hanging_list()
        for check in checks:
            listed.add_row("  -", str(check))
        parts.append(listed)
    elif current and phase not in TERMINAL_PHASES:
        parts.append(Text(f"phase {current}: every check passes"))
    parts.append(Text(sync_line(status.get("sync"))))
    leader = status.get("leader") or {}
    if leader.get("id"):
        parts.append(
            Text(
                f"leader {leader['id']} at {leader.get('address') or '?'} since"
                f" {leader.get('since') or '?'}; {leader.get('changes', 0)} leader changes"
            )
        )
    else:
        parts.append(Text("leader: none known"))
    return Group(*parts)


def sync_line(sync: Manifest | None) -> str:
    if not sync:
        return "sync: no report from the sync controller"
    lag = sync.get("lagP99Seconds")
    digests = {True: "equal", False: "DIFFER", None: "not compared yet"}[sync.get("digestsEqual")]
    words = [f"sync: {sync.get('state', '?')}"]
    if sync.get("message"):
        words[0] += f" ({sync['message']})"
    words.append(f"lag p99 {lag * 1000:.0f} ms" if lag is not None else "lag p99 -")
    words.append(f"digests {digests}")
    if sync.get("differences") is not None:
        words.append(f"{sync['differences']} differences")
    if sync.get("conflicts") is not None:
        words.append(f"{sync['conflicts']} conflicts")
    return "; ".join(words)


def validation(status: Manifest) -> tuple[bool, list[str]]:
    """Whether the current phase's checks all pass, and the lines saying so."""
    phase = status.get("phase")
    if phase is None:
        return False, ["no status yet: the operator has not seen this migration"]
    if phase == ZkMigrationPhase.INVALID:
        return False, ["the spec is invalid: " + _condition_message(status, ConditionType.ACCEPTED)]
    current = status.get("currentPhase")
    checks = list(status.get("checks") or [])
    sync = status.get("sync") or {}
    lines = [f"phase {current} ({phase})" if current else f"{phase}"]
    lines += [f"FAIL {check}" for check in checks] or ["ok   every check of the phase passes"]
    digests = sync.get("digestsEqual")
    if digests is False:
        lines.append(f"FAIL digests differ ({sync.get('differences')} differences)")
    elif digests is True:
        lines.append("ok   digests of A and B are equal")
    else:
        lines.append("--   digests not compared yet")
    return not checks and digests is not False, lines


def _condition_message(status: Manifest, kind: str) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == kind:
            return str(condition.get("message") or "")
    return "see the Accepted condition"


def report_document(obj: Manifest) -> Manifest:
    """The final report as JSON: phases with timings, cutover, baseline, leader, sync,
    archive."""
    status = obj.get("status") or {}
    phases = []
    for row in _phase_rows(status):
        started, finished = parse_time(row.get("startedAt")), parse_time(row.get("finishedAt"))
        phases.append(
            {
                "number": row.get("number"),
                "name": row.get("name"),
                "state": row.get("state", State.PENDING),
                "startedAt": row.get("startedAt"),
                "finishedAt": row.get("finishedAt"),
                "seconds": _seconds(started, finished),
                "message": row.get("message", ""),
            }
        )
    by_number = {p["number"]: p for p in phases}
    cutover = _seconds(
        parse_time(by_number[2]["startedAt"]), parse_time(by_number[6]["finishedAt"])
    )
    baseline = status.get("baseline") or {}
    leader = status.get("leader") or {}
    sync = status.get("sync") or {}
    sync_keys = (
        "state", "bootstrapped", "bootstrapZnodes", "bootstrapSeconds", "lagP99Seconds",
        "digestsEqual", "differences", "conflicts", "znodesSource", "znodesTarget",
        "lastVerifyTime",
    )  # fmt: skip
    return {
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace"),
        "cluster": (obj.get("spec") or {}).get("clusterRef"),
        "phase": status.get("phase"),
        "succeeded": status.get("phase") == ZkMigrationPhase.SUCCEEDED,
        "source": status.get("sourceConnectString"),
        "target": status.get("targetConnectString"),
        "phases": phases,
        "cutoverSeconds": cutover,
        "baseline": {
            "taskCount": baseline.get("taskCount"),
            "taskDigest": baseline.get("taskDigest"),
            "recordedAt": baseline.get("recordedAt"),
            "frameworks": len(baseline.get("frameworkIds") or []),
        }
        if baseline
        else None,
        "leader": {
            "id": leader.get("id"),
            "address": leader.get("address"),
            "changes": leader.get("changes", 0),
        }
        if leader
        else None,
        "sync": {key: sync.get(key) for key in sync_keys} if sync else None,
        "archive": {
            "configMaps": list(status.get("archive") or []),
            "expiresAt": status.get("archiveExpiresAt"),
        },
    }


def report_text(obj: Manifest) -> str:
    """The human report: the operator's own once Succeeded, else what exists so far."""
    status = obj.get("status") or {}
    if status.get("phase") == ZkMigrationPhase.SUCCEEDED and status.get("report"):
        return str(status["report"])
    doc = report_document(obj)
    lines = [
        f"ZkMigration {doc['name']}: not finished (phase {doc['phase'] or 'none yet'})",
        f"from {doc['source'] or 'A (not known yet)'} to {doc['target'] or 'B (not known yet)'}",
    ]
    for p in doc["phases"]:
        took = f" {p['seconds']:7.1f} s" if p["seconds"] is not None else ""
        lines.append(f"  phase {p['number']} {p['name']:<20} {p['state']:<10}{took}")
    baseline = doc["baseline"]
    if baseline and baseline["taskCount"] is not None:
        digest = f" (digest {baseline['taskDigest']})" if baseline["taskDigest"] else ""
        lines.append(f"tasks: {baseline['taskCount']} running at the start{digest}")
    if doc["leader"]:
        lines.append(
            f"leader changes: {doc['leader']['changes']};"
            f" leader now {doc['leader']['id'] or 'none known'}"
        )
    lines.append(sync_line(status.get("sync")))
    return "\n".join(lines)


def restore_summary(
    name: str, target: str, archived: int, plan: RestorePlan, *, dry_run: bool
) -> str:
    overwrites = len(plan.puts) - plan.creates
    lines = [
        f"archive of {name}: {archived} znodes; on {target}: {plan.unchanged} already equal,"
        f" {plan.creates} to create, {overwrites} to overwrite, {len(plan.kept)} differ and"
        " are kept" + (" (dry run: nothing written)" if dry_run else ""),
    ]
    if plan.kept:
        lines.append("kept as they are (--overwrite replaces them; an ephemeral znode never):")
        lines += [f"  {path}" for path in plan.kept[:20]]
        if len(plan.kept) > 20:
            lines.append(f"  ... and {len(plan.kept) - 20} more")
    return "\n".join(lines)
