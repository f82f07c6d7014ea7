"""The stanza error table: docs/errors.md and STANZA_ERRORS say the same thing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import buddycloud.domain.errors as domain_errors
import buddycloud.domain.ids as domain_ids
import buddycloud.xmpp.errors as xmpp_errors
from buddycloud.domain.errors import (
    ChannelError,
    InvalidPayload,
    NodeNotFound,
    OwnAffiliation,
    RatingError,
    RecentItemsError,
    Unsupported,
)
from buddycloud.xmpp.errors import (
    INTERNAL_ERROR,
    NS_BUDDYCLOUD_ERRORS,
    NS_PUBSUB_ERRORS,
    STANZA_ERRORS,
    error_element,
    lookup_class,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def _doc_rows() -> dict[str, tuple[str, str, str | None]]:
    """Error name -> (condition, type, app condition) from every table of docs/errors.md."""
    rows: dict[str, tuple[str, str, str | None]] = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not (cells[0].startswith("`") or cells[0] == "*anything else*"):
            continue
        xmpp = cells[2]
        parts = [part.strip() for part in xmpp.split(" / ")]
        condition = parts[0].strip("`")
        type_ = parts[1].split()[0].rstrip(",")
        app = None
        if len(parts) > 2 and parts[2].startswith("`"):
            app = parts[2].split("`")[1]
        rows[cells[0].strip("`")] = (condition, type_, app)
    return rows


def _error_class(name: str) -> type[BaseException]:
    for module in (domain_errors, domain_ids, xmpp_errors):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls
    raise AssertionError(f"docs/errors.md names {name}, which no module defines")


def test_every_row_of_the_doc_matches_the_code() -> None:
    rows = _doc_rows()
    assert len(rows) >= len(STANZA_ERRORS)
    for name, documented in rows.items():
        if name == "*anything else*":
            spec = INTERNAL_ERROR
        else:
            found = lookup_class(_error_class(name))
            assert found is not None, name
            spec = found
        assert (spec.condition, spec.type, spec.app_condition) == documented, name


def test_every_mapped_error_is_documented() -> None:
    rows = _doc_rows()
    assert {cls.__name__ for cls in STANZA_ERRORS} <= set(rows)


def _parts(exc: BaseException) -> tuple[str, str, list[tuple[str, str]], str | None]:
    element = error_element(exc)
    children = [(child.tag[1:].partition("}")[0], child.tag.partition("}")[2]) for child in element]
    conditions = [name for ns, name in children if ns == STANZAS and name != "text"]
    text = element.findtext(f"{{{STANZAS}}}text")
    apps = [(ns, name) for ns, name in children if ns != STANZAS]
    return conditions[0], element.get("type", ""), apps, text


def test_a_subclass_without_a_row_gets_its_parents_row() -> None:
    class ChannelGone(NodeNotFound):
        pass

    condition, type_, apps, text = _parts(ChannelGone("/user/a@b/posts"))
    assert (condition, type_, apps) == ("item-not-found", "cancel", [])
    assert text == "node /user/a@b/posts does not exist"


def test_dynamic_conditions_pick_their_namespace() -> None:
    """XEP-0060 conditions in pubsub#errors, Buddycloud's own in buddycloud.org/v1/errors."""
    assert _parts(RecentItemsError("max-required", "m"))[2] == [
        (NS_BUDDYCLOUD_ERRORS, "max-required")
    ]
    assert _parts(RatingError("rating-out-of-range", "r"))[2] == [
        (NS_BUDDYCLOUD_ERRORS, "rating-out-of-range")
    ]
    assert _parts(InvalidPayload("x"))[2] == [(NS_PUBSUB_ERRORS, "invalid-payload")]
    assert _parts(InvalidPayload("x", condition="content-element-required"))[2] == [
        (NS_BUDDYCLOUD_ERRORS, "content-element-required")
    ]
    assert _parts(OwnAffiliation())[:3] == (
        "not-allowed",
        "cancel",
        [(NS_BUDDYCLOUD_ERRORS, "can-not-modify-own-affiliation")],
    )


def test_unsupported_names_the_feature() -> None:
    element = error_element(Unsupported("purge-nodes"))
    app = element.find(f"{{{NS_PUBSUB_ERRORS}}}unsupported")
    assert app is not None and app.get("feature") == "purge-nodes"


def test_unknown_exceptions_are_internal_errors_without_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        condition, type_, apps, text = _parts(RuntimeError("password=hunter2 at db.internal"))
    assert (condition, type_, apps, text) == ("internal-server-error", "cancel", [], None)
    assert any(record.exc_info for record in caplog.records)


def test_the_base_error_is_mapped() -> None:
    assert lookup_class(ChannelError) is not None
