"""JIDs, node ids, item ids, dates: the values every input is parsed into."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buddycloud.domain.entries import mentions
from buddycloud.domain.errors import InvalidDate, InvalidJid, InvalidNodeId, InvalidPaging
from buddycloud.domain.ids import (
    InvalidItemId,
    cross_node_cursor,
    global_item_id,
    local_item_id,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, Page, PageRequest, Role
from buddycloud.domain.times import format_datetime, parse_datetime


def test_a_full_jid_has_a_bare_form() -> None:
    jid = Jid.parse("Juliet@Capulet.LIT/balcony")
    assert str(jid) == "juliet@capulet.lit/balcony"
    assert str(jid.bare) == "juliet@capulet.lit"
    assert Jid.parse("capulet.lit").local == ""


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "@capulet.lit",
        "juliet@",
        "juliet@capulet.lit/",
        "ju liet@capulet.lit",
        "a@b@c",
        "juliet@cap ulet.lit",
        "x" * 1024 + "@capulet.lit",
        "juliet@capulet.lit\x00",
    ],
)
def test_invalid_jids_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidJid) as caught:
        Jid.parse(raw)
    assert "invalid JID" in caught.value.message


@given(st.text(max_size=80))
def test_parsing_any_text_either_gives_a_jid_or_invalid_jid(raw: str) -> None:
    try:
        jid = Jid.parse(raw)
    except InvalidJid:
        return
    assert Jid.parse(str(jid)) == jid


def test_node_ids_name_a_channel_and_a_node() -> None:
    node = NodeId.parse("/user/juliet@capulet.lit/posts")
    assert node.channel == Jid.parse("juliet@capulet.lit")
    assert node.name == "posts"
    assert str(node) == "/user/juliet@capulet.lit/posts"


@pytest.mark.parametrize(
    "raw",
    [
        "posts",
        "/user/juliet@capulet.lit",
        "/user/juliet@capulet.lit/",
        "/user/capulet.lit/posts",
        "/user/juliet@capulet.lit/a/b",
        "/user/juliet@capulet.lit/res/posts/x",
        "/user/juliet@capulet.lit/" + "x" * 200,
        "/user/@x/posts",
        "/user/juliet@capulet.lit/a b",
    ],
)
def test_malformed_node_ids_are_refused(raw: str) -> None:
    with pytest.raises(InvalidNodeId):
        NodeId.parse(raw)


def test_item_ids_accept_the_global_form() -> None:
    node = NodeId.parse("/user/romeo@capulet.lit/posts")
    global_id = global_item_id("channels.capulet.lit", node, "fc36")
    assert global_id == "tag:channels.capulet.lit,/user/romeo@capulet.lit/posts,fc36"
    assert local_item_id(global_id) == "fc36"
    assert local_item_id("fc36") == "fc36"
    for bad in ("", "tag:nothing", "a b", "x" * 300, "<script>"):
        with pytest.raises(InvalidItemId):
            local_item_id(bad)


def test_cross_node_cursors_accept_the_global_form_and_refuse_a_broken_one() -> None:
    node = NodeId.parse("/user/romeo@capulet.lit/posts")
    global_id = global_item_id("channels.capulet.lit", node, "fc36")
    assert cross_node_cursor(global_id) == "/user/romeo@capulet.lit/posts,fc36"
    assert cross_node_cursor("/user/romeo@capulet.lit/posts,fc36") == (
        "/user/romeo@capulet.lit/posts,fc36"
    )
    assert cross_node_cursor("anything else") == "anything else"  # names nothing: not found
    for broken in ("tag:", "tag:foo", "tag:x,", "tag:x,/user/romeo@capulet.lit/posts", "tag:x,,"):
        with pytest.raises(InvalidPaging):
            cross_node_cursor(broken)


@given(st.text())
def test_a_cross_node_cursor_is_never_empty(raw: str) -> None:
    try:
        assert cross_node_cursor(raw) or raw == ""
    except InvalidPaging:
        pass


def test_dates_in_the_protoxep_forms_parse_to_utc() -> None:
    assert parse_datetime("2014-04-18T10:46:00.100Z") == datetime(
        2014, 4, 18, 10, 46, 0, 100000, tzinfo=UTC
    )
    assert parse_datetime("2014-04-18T10:46.100Z") == datetime(
        2014, 4, 18, 10, 46, 0, 100000, tzinfo=UTC
    )
    assert parse_datetime("2011-04-21T20:11:00-05:00") == datetime(2011, 4, 22, 1, 11, tzinfo=UTC)
    assert format_datetime(datetime(2014, 1, 1, tzinfo=UTC)) == "2014-01-01T00:00:00.000Z"
    # Other offsets are moved to UTC; milliseconds are truncated; years keep four digits.
    eastern = timezone(timedelta(hours=-5))
    assert (
        format_datetime(datetime(2011, 4, 21, 20, 11, 5, 123999, tzinfo=eastern))
        == "2011-04-22T01:11:05.123Z"
    )
    assert format_datetime(datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC)) == (
        "0999-12-31T23:59:59.000Z"
    )
    for bad in ("", "yesterday", "2014-13-01T00:00:00Z", "x" * 100):
        with pytest.raises(InvalidDate):
            parse_datetime(bad)


@given(st.datetimes(timezones=st.just(UTC)))
def test_formatted_dates_read_back_to_the_millisecond(value: datetime) -> None:
    text = format_datetime(value)
    assert len(text) == 24 and text.endswith("Z")
    assert parse_datetime(text) == value.replace(microsecond=value.microsecond // 1000 * 1000)


def test_dates_that_leave_the_calendar_in_utc_are_invalid_not_a_crash() -> None:
    for bad in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00+05:00"):
        with pytest.raises(InvalidDate):
            parse_datetime(bad)


def test_whitelist_is_an_alias_of_authorize_and_roles_have_buddycloud_aliases() -> None:
    assert AccessModel.parse("whitelist") is AccessModel.AUTHORIZE
    assert Role.parse("follower+post") is Role.PUBLISHER
    assert Role.OWNER.rank > Role.MODERATOR.rank > Role.PUBLISHER.rank > Role.MEMBER.rank
    assert Role.MEMBER.rank > Role.NONE.rank > Role.OUTCAST.rank


def test_page_requests_are_bounded() -> None:
    assert PageRequest(max=5000).max == 1000
    with pytest.raises(InvalidPaging):
        PageRequest(max=-1)
    with pytest.raises(InvalidPaging):
        PageRequest(after="")
    with pytest.raises(InvalidPaging):
        PageRequest(before="")


def test_a_page_cut_short_names_its_new_ends_and_keeps_the_count() -> None:
    page = Page(["a", "b", "c", "d"], 9, "a", "d", cursor_of=str.upper)
    assert page.keep(4) is page
    head = page.keep(2)
    assert (head.items, head.first, head.last, head.count) == (["a", "b"], "A", "B", 9)
    tail = page.keep(3, from_end=True)  # a page read backwards keeps its last results
    assert (tail.items, tail.first, tail.last, tail.count) == (["b", "c", "d"], "B", "D", 9)
    with pytest.raises(ValueError, match="cursor_of"):
        Page(["a", "b"], 2, "a", "b").keep(1)
    # An archive page cut short no longer reaches the end it was read towards.
    archived = Page(["a", "b"], 2, "a", "b", complete=True, cursor_of=str.upper)
    assert archived.keep(2).complete is True and archived.keep(1).complete is False
    assert head.complete is None


def test_a_request_before_a_cursor_pages_backwards() -> None:
    assert PageRequest(before="x").backwards
    assert PageRequest(last_page=True).backwards
    assert not PageRequest(after="x").backwards
    assert not PageRequest().backwards


@pytest.mark.parametrize(
    ("content", "mentioned"),
    [
        ("romeo@capulet.lit, come!", True),
        ("dear Romeo@Capulet.LIT", True),
        ("(romeo@capulet.lit)", True),
        ("see xromeo@capulet.lit", False),
        ("romeo@capulet.lit.uk is another", False),
        ("romeo@capulet.lite", False),
        ("mail romeo@capulet.lit-x", False),
        ("just romeo", False),
    ],
)
def test_a_mention_is_the_bare_jid_as_a_word_of_its_own(content: str, mentioned: bool) -> None:
    assert mentions(content, Jid.parse("romeo@capulet.lit/phone")) is mentioned
