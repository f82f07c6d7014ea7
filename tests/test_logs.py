"""Log lines name the request they were written for (buddycloud.util.logs)."""

from __future__ import annotations

import asyncio
import io
import logging

from buddycloud.util import logs


def test_lines_written_during_a_request_carry_its_context() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("buddycloud.test.logs")
    handler = logs.context_handler(logging.StreamHandler(stream))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("before")
        token = logs.current.set("request 1f2e GET /api user=juliet@capulet.lit")
        try:
            logger.info("during %s", "it")
        finally:
            logs.current.reset(token)
        logger.info("after")
    finally:
        logger.removeHandler(handler)
    lines = [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()]
    assert lines == [
        "before",
        "during it [request 1f2e GET /api user=juliet@capulet.lit]",
        "after",
    ]


async def test_tasks_started_by_a_request_name_it_too() -> None:
    seen: list[str] = []
    record_filter = logs.ContextFilter()

    async def child() -> None:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
        record_filter.filter(record)
        seen.append(record.context)  # type: ignore[attr-defined]

    token = logs.current.set("request abc")
    try:
        task = asyncio.create_task(child())
    finally:
        logs.current.reset(token)
    await task
    await asyncio.create_task(child())
    assert seen == [" [request abc]", ""]
