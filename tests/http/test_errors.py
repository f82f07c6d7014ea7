"""The HTTP error table: docs/errors.md and HTTP_ERRORS say the same thing, and nothing
unexpected leaks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from buddycloud.domain import errors as domain_errors
from buddycloud.domain import ids as domain_ids
from buddycloud.domain.errors import Banned, ChannelError, Forbidden, NodeNotFound
from buddycloud.http.errors import HTTP_ERRORS, lookup, render_error

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"


def _documented() -> dict[str, str]:
    """Error name -> HTTP cell, from the domain error table of docs/errors.md."""
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[3]
    return rows


def test_every_row_of_the_doc_matches_the_table() -> None:
    rows = _documented()
    for name, cell in rows.items():
        cls = getattr(domain_errors, name, None) or getattr(domain_ids, name)
        found = lookup(cls.__new__(cls))
        expected = (
            "500 `internal-server-error`" if found is None else f"{found.status} `{found.name}`"
        )
        assert cell == expected, name
    assert {cls.__name__ for cls in HTTP_ERRORS} <= set(rows)


def _body(error: BaseException, *, anonymous: bool) -> tuple[int, dict[str, str]]:
    response = render_error(error, anonymous=anonymous)
    return response.status_code, json.loads(bytes(response.body))


def test_a_refusal_is_401_for_anonymous_callers_and_403_for_signed_in_ones() -> None:
    assert _body(Banned(), anonymous=True)[0] == 401
    assert _body(Banned(), anonymous=False) == (
        403,
        {"error": "banned", "message": Banned().message},
    )
    assert _body(Forbidden(), anonymous=False)[0] == 403


def test_a_subclass_without_a_row_gets_its_parents_row() -> None:
    class ChannelGone(NodeNotFound):
        pass

    assert _body(ChannelGone("/user/a@b/posts"), anonymous=False) == (
        404,
        {"error": "node-not-found", "message": "node /user/a@b/posts does not exist"},
    )


def test_unknown_exceptions_are_500_without_detail(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        status, body = _body(RuntimeError("password=hunter2 at db.internal"), anonymous=False)
    assert status == 500
    assert "hunter2" not in json.dumps(body) and body["error"] == "internal-server-error"
    assert any(record.exc_info for record in caplog.records)
    assert _body(ChannelError("never raised directly"), anonymous=False)[0] == 500
