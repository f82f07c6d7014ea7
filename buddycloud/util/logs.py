"""The server's log: what each line is about, its two formats, and its set-up.

The HTTP edge sets `current` for the time it handles a request (to an object whose `str`
names the request and its user); `ContextFilter`, on a handler, copies it into every record
written meanwhile as `record.context`, so that any line, the engine's too, names the
request it belongs to. `FORMAT` is the server's text format, context included; `[log]
format = "json"` writes one JSON object per line instead (`JsonFormatter`).

`configure` installs the one handler, on standard error, once per process: every line is
written once.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
LogFormat = Literal["text", "json"]

# What is being done now, when it is a request: `str()` of it names it. asyncio copies
# context variables into the tasks a request starts, so their lines name it too.
current: ContextVar[object | None] = ContextVar("buddycloud_log_context", default=None)


class ContextFilter(logging.Filter):
    """Sets `record.context` to ` [<what is being done>]`, or to "" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        about = current.get()
        record.context = f" [{about}]" if about is not None else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time` (UTC, ISO 8601), `level`, `logger`, `message`, and
    `context` (the request) and `exception` (its traceback, as one string) when present."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        about = current.get()
        if about is not None:
            entry["context"] = str(about)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _MigrationSteps(logging.Filter):
    """Alembic's lines, kept to the migration steps it runs, each on one line.

    Alembic announces its dialect ("Context impl ...", "Will assume ...") every time it
    looks at the schema, twice on a start that migrates; only the steps say something.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(("Running upgrade", "Running downgrade", "Running stamp")):
            return False
        record.msg, record.args = " ".join(message.split()), None
        return True


def context_handler(handler: logging.Handler, fmt: LogFormat = "text") -> logging.Handler:
    """`handler`, writing the server's format (`text` or `json`) with each line's request."""
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(FORMAT))
    return handler


def level_number(name: str) -> int:
    """`debug`, `info`, `warning` or `error` as a `logging` level."""
    numbers = {
        "debug": logging.DEBUG,
        "info": logging.INFO,
        "warning": logging.WARNING,
        "error": logging.ERROR,
    }
    return numbers[name]


def configure(level: int = logging.INFO, fmt: LogFormat = "text") -> None:
    """Send the log to standard error at `level`, in `fmt`. A process that has a handler
    already (a test runner's) keeps it: the server never writes a line twice."""
    root = logging.getLogger()
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _MigrationSteps) for f in migration.filters):
        migration.addFilter(_MigrationSteps())
    # Alembic announces each of its plugins at INFO on every migration run.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if root.handlers:
        return
    root.addHandler(context_handler(logging.StreamHandler(), fmt))
    root.setLevel(level)
