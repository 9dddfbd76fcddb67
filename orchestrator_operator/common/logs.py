"""Logging of the long-running programs: plain lines or one JSON object per line, and
quiet about what repeats (issue 18, point 3).

- `configure_logging` installs one stderr handler on the root logger with the chosen
  format and two filters: routine successes of Kopf timers go to DEBUG, and a warning
  repeated word for word is let through once, then only when it changes (`RepeatFilter`).
- `OnChange` is the same rule for the programs' own messages about a state that persists
  (an unreachable app, a name that does not resolve): said once, again when it changes,
  and once more when it clears.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("plain", "json")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Kopf logs every handler's success at INFO; for a timer that is one line per object per
# tick ("Timer 'observe' succeeded."), and for the event handlers that wake a MesosCluster's
# status refresh (operator/mesoscluster/watches.py, named `*_changed`) one per watch event.
# Their failures stay at their level.
_ROUTINE_SUCCESS = re.compile(r"^(Timer '[^']*'|Handler '[^']*_changed') succeeded\.$")
# Libraries whose every line is about a connection being retried (kazoo tries each
# server of a connect string, and names one that does not resolve, on every attempt).
_RETRYING_LIBRARIES = ("kazoo",)


def _object_ref(record: logging.LogRecord) -> dict[str, str]:
    """The Kubernetes object a Kopf record is about (Kopf's loggers set `k8s_ref`)."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, Mapping):
        return {}
    return {key: str(ref[key]) for key in ("kind", "namespace", "name") if ref.get(key)}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message; `object`
    (kind, namespace, name) for a record about a custom resource; `exception` with the
    traceback when there is one (newlines escaped: still one line)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = _object_ref(record)
        if ref:
            entry["object"] = ref
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """`PLAIN_FORMAT`, the message prefixed with [namespace/name] when it is about an object."""

    def __init__(self) -> None:
        super().__init__(PLAIN_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = _object_ref(record)
        if ref.get("name"):
            where = "/".join(ref[key] for key in ("namespace", "name") if key in ref)
            record.message = f"[{where}] {record.message}"
        return super().formatMessage(record)


class RoutineSuccessFilter(logging.Filter):
    """Kopf's "Timer '…' succeeded." lines become DEBUG (shown only with --verbose)."""

    def __init__(self, show_debug: bool) -> None:
        super().__init__()
        self.show_debug = show_debug

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno == logging.INFO
            and record.name.startswith("kopf")
            and _ROUTINE_SUCCESS.match(str(record.msg))
        ):
            record.levelno = logging.DEBUG
            record.levelname = logging.getLevelName(logging.DEBUG)
            return self.show_debug
        return True


class RepeatFilter(logging.Filter):
    """Lets a line through once, then holds back its word-for-word repeats; a different
    line (another host, another error) goes through at once. A line still repeating after
    `remind_after` seconds goes through again, saying how many were held back, so a problem
    that lasts is not forgotten. Applies to warnings and worse, and to every line of the
    retrying libraries (kazoo). Remembers at most `max_lines` lines (the oldest go first)."""

    def __init__(
        self,
        remind_after: float = 600.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_lines: int = 1024,
    ) -> None:
        super().__init__()
        self.remind_after = remind_after
        self._clock = clock
        self._max_lines = max_lines
        self._seen: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()  # shown at, held

    def _applies(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.startswith(_RETRYING_LIBRARIES)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._applies(record):
            return True
        ref = _object_ref(record)
        message = record.getMessage()
        key = (record.name, record.levelno, ref.get("namespace"), ref.get("name"), message)
        now = self._clock()
        seen = self._seen.get(key)
        if seen is None:
            self._remember(key, now, 0)
            return True
        shown_at, held = seen
        if now - shown_at < self.remind_after:
            self._seen[key] = (shown_at, held + 1)
            return False
        self._remember(key, now, 0)
        if held:
            record.msg = f"{message} (repeated {held} more times since it was logged)"
            record.args = None
        return True

    def _remember(self, key: Hashable, now: float, held: int) -> None:
        self._seen[key] = (now, held)
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_lines:
            self._seen.popitem(last=False)


class OnChange:
    """A persisting state logged once, again only when its message changes, and once when
    it clears: for a program's own messages about what it retries (an app it cannot reach,
    a name that does not resolve). One instance per kind of trouble; `key` tells apart the
    things it is about (a host, an object). Remembers at most `max_keys` keys."""

    def __init__(self, logger: logging.Logger, level: int = logging.WARNING, max_keys: int = 1024):
        self.logger = logger
        self.level = level
        self._max_keys = max_keys
        self._last: OrderedDict[Hashable, str] = OrderedDict()

    def report(self, message: str, *args: object, key: Hashable = None) -> bool:
        """Log `message % args` unless it is what was last logged for `key`; True if logged."""
        text = message % args if args else message
        if self._last.get(key) == text:
            return False
        self._last[key] = text
        self._last.move_to_end(key)
        while len(self._last) > self._max_keys:
            self._last.popitem(last=False)
        self.logger.log(self.level, "%s", text)
        return True

    def clear(self, message: str, *args: object, key: Hashable = None) -> bool:
        """Log `message % args` at INFO if a trouble was reported for `key`, and forget it."""
        if self._last.pop(key, None) is None:
            return False
        self.logger.info(message, *args)
        return True

    def active(self, key: Hashable = None) -> bool:
        return key in self._last


class _ProgramHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs (recognised to be replaced)."""


def configure_logging(verbose: bool = False, log_format: str = "plain") -> logging.Handler:
    """One stderr handler on the root logger, in `log_format` ("plain" or "json"); INFO, or
    DEBUG with `verbose`. Replaces the root's handlers (a second call replaces the first)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = _ProgramHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else PlainFormatter())
    handler.addFilter(RoutineSuccessFilter(show_debug=verbose))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    # Ours (from an earlier call) go, as does what basicConfig installed; others stay.
    root.handlers[:] = [
        h
        for h in root.handlers
        if type(h) is not logging.StreamHandler and not isinstance(h, _ProgramHandler)
    ]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.captureWarnings(True)  # Python's warnings as log lines too (JSON stays JSON)
    return handler


def add_log_format_argument(parser: Any) -> None:
    """`--log-format plain|json` on a program's argparse parser."""
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="plain",
        help="plain lines, or one JSON object per line (time, level, logger, message)",
    )
