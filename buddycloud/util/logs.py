"""What a log line is about: the request being handled when it was written.

The HTTP edge sets `current` for the time it handles a request (to an object whose `str`
names the request and its user); `ContextFilter`, on a handler, copies it into every record
written meanwhile as `record.context`, so that any line, the engine's too, names the
request it belongs to. `FORMAT` is the server's log format, context included.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"

# What is being done now, when it is a request: `str()` of it names it. asyncio copies
# context variables into the tasks a request starts, so their lines name it too.
current: ContextVar[object | None] = ContextVar("buddycloud_log_context", default=None)


class ContextFilter(logging.Filter):
    """Sets `record.context` to ` [<what is being done>]`, or to "" outside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        about = current.get()
        record.context = f" [{about}]" if about is not None else ""
        return True


def context_handler(handler: logging.Handler) -> logging.Handler:
    """`handler`, writing the server's format with each line's request."""
    handler.addFilter(ContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler
