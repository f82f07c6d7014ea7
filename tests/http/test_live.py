"""The live hub on its own: one rendering per event, delivery to the audience's sinks only,
cursors, and the ring of recent events that resuming clients read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from buddycloud.domain.events import (
    AuthorizationRequested,
    ItemPublished,
    ItemRetracted,
    NodeDeleted,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    NS_ATOM,
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Entry,
    Item,
    Node,
    NodeId,
    Role,
)
from buddycloud.http import live as live_module
from buddycloud.http.live import LiveEvent, LiveHub, PostWaiter

JULIET = Jid.parse("juliet@capulet.lit")
ROMEO = Jid.parse("romeo@capulet.lit")
NURSE = Jid.parse("nurse@capulet.lit")
WHEN = datetime(2024, 1, 1, tzinfo=UTC)
POSTS = NodeId(JULIET, "posts")


class Collect:
    def __init__(self) -> None:
        self.events: list[LiveEvent] = []

    def deliver(self, event: LiveEvent) -> None:
        self.events.append(event)


def published(text: str, audience: tuple[Jid, ...]) -> ItemPublished:
    entry = Entry(f"id-{text}", "", text, "text", JULIET, WHEN, WHEN)
    item = Item(POSTS, f"id-{text}", JULIET, WHEN, WHEN, entry)
    return ItemPublished(Node(POSTS, NS_ATOM, None, WHEN), item, audience)


def test_an_event_is_rendered_once_and_reaches_only_its_audience(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    renders = 0
    real = live_module.dumps

    def counting(message: dict[str, object]) -> str:
        nonlocal renders
        renders += 1
        return real(message)

    monkeypatch.setattr(live_module, "dumps", counting)
    hub = LiveHub(first_cursor=100)
    juliet, juliet_phone, romeo, nurse = Collect(), Collect(), Collect(), Collect()
    hub.connect(JULIET, juliet)
    hub.connect(JULIET, juliet_phone)
    hub.connect(ROMEO, romeo)
    hub.connect(NURSE, nurse)

    hub.publish(published("hello", (JULIET, ROMEO, Jid.parse("offline@capulet.lit"))))

    assert renders == 1
    assert [len(sink.events) for sink in (juliet, juliet_phone, romeo, nurse)] == [1, 1, 1, 0]
    event = juliet.events[0]
    assert event is romeo.events[0]  # the same rendering for everyone
    message = json.loads(event.text)
    assert message["type"] == "post" and message["cursor"] == 101 == event.cursor
    assert message["entry"]["source"] == "juliet@capulet.lit/posts"
    assert event.entry is not None and event.entry["content"] == "hello"
    assert hub.deliveries == 3


def test_fan_out_is_the_same_whether_the_audience_or_the_connected_are_fewer() -> None:
    hub = LiveHub()
    sinks = {f"u{n}": Collect() for n in range(10)}
    for name, sink in sinks.items():
        hub.connect(Jid.parse(f"{name}@capulet.lit"), sink)
    few = tuple(Jid.parse(f"u{n}@capulet.lit") for n in (1, 3))
    many = tuple(Jid.parse(f"u{n}@capulet.lit") for n in range(0, 200, 2))

    hub.publish(published("few", few))
    hub.publish(published("many", many))

    got = {
        name: [e.entry["content"] for e in sink.events if e.entry] for name, sink in sinks.items()
    }
    assert got["u1"] == ["few"] and got["u3"] == ["few"]
    assert got["u2"] == ["many"] and got["u0"] == ["many"]
    assert got["u5"] == []


def test_a_large_audience_handed_over_again_is_not_set_up_again() -> None:
    hub = LiveHub()
    followers = tuple(Jid.parse(f"u{n}@capulet.lit") for n in range(500))
    newcomer = Jid.parse("newcomer@capulet.lit")
    arrived = Collect()
    hub.connect(newcomer, arrived)

    first = hub.publish(published("one", followers))
    again = hub.publish(published("two", followers))
    # Storage answers a changed membership with a new tuple, equal but for the newcomer.
    joined = hub.publish(published("three", (*followers, newcomer)))

    assert first is not None and again is not None and joined is not None
    assert again.audience is first.audience and len(first.audience) == 500
    assert newcomer in joined.audience and newcomer not in first.audience
    assert [e.entry["content"] for e in arrived.events if e.entry] == ["three"]
    replay = hub.missed(newcomer, first.cursor - 1)
    assert replay is not None and [e.cursor for e in replay] == [joined.cursor]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_a_frame_is_one_final_text_frame_of_the_messages_bytes(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # two bytes a character but the last

    frame = live_module.text_frame(text)

    parsed = _parse_frame(frame)
    assert parsed.fin and parsed.opcode is Opcode.TEXT and bytes(parsed.data) == text.encode()
    assert live_module.frame_text(frame) == text


def _parse_frame(frame: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(frame)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        assert reader.at_eof() or not reader.buffer
        parsed: Frame = done.value
        return parsed
    raise AssertionError("the frame is incomplete")


def test_a_disconnected_sink_gets_nothing_more() -> None:
    hub = LiveHub()
    juliet = Collect()
    hub.connect(JULIET, juliet)
    hub.publish(published("one", (JULIET,)))
    hub.disconnect(JULIET, juliet)
    hub.disconnect(JULIET, juliet)  # twice is harmless
    hub.publish(published("two", (JULIET,)))
    assert [e.entry["content"] for e in juliet.events if e.entry] == ["one"]
    assert hub.connected == 0


def test_events_without_news_for_http_clients_are_not_numbered() -> None:
    hub = LiveHub(first_cursor=7)
    tombstone = Item(POSTS, "gone", JULIET, WHEN, WHEN, None, deleted=True)
    node = Node(POSTS, NS_ATOM, None, WHEN)
    assert hub.publish(ItemRetracted(node, tombstone, (JULIET,), notify=False)) is None
    assert hub.cursor == 7
    assert hub.publish(ItemRetracted(node, tombstone, (JULIET,))) is not None
    assert hub.cursor == 8


def test_missed_events_are_those_of_the_user_after_the_cursor_in_order() -> None:
    hub = LiveHub(first_cursor=0)
    for number in range(6):
        hub.publish(published(str(number), (JULIET,) if number % 2 else (ROMEO,)))

    missed = hub.missed(JULIET, 2)
    assert missed is not None
    assert [e.entry["content"] for e in missed if e.entry] == ["3", "5"]
    bounded = hub.missed(JULIET, 0, until=4)
    assert bounded is not None
    assert [e.cursor for e in bounded] == [2, 4]
    assert hub.missed(JULIET, hub.cursor) == []


def test_a_cursor_older_than_the_ring_or_unknown_cannot_be_resumed() -> None:
    hub = LiveHub(replay_events=3, first_cursor=0)
    for number in range(5):
        hub.publish(published(str(number), (JULIET,)))
    assert hub.missed(JULIET, 1) is None  # event 2 is no longer kept
    kept = hub.missed(JULIET, 2)
    assert kept is not None and [e.cursor for e in kept] == [3, 4, 5]
    assert hub.missed(JULIET, 6) is None  # from the future: another server's
    assert LiveHub(first_cursor=100).missed(JULIET, 50) is None  # from before a restart


def test_the_ring_also_stops_at_a_number_of_recipients() -> None:
    hub = LiveHub(replay_events=100, max_replay_recipients=5, first_cursor=0)
    crowd = tuple(Jid.parse(f"u{n}@capulet.lit") for n in range(3))
    hub.publish(published("a", crowd))
    hub.publish(published("b", crowd))
    assert hub.missed(crowd[0], 0) is None
    kept = hub.missed(crowd[0], 1)
    assert kept is not None and [e.cursor for e in kept] == [2]


def test_cursors_of_a_new_hub_follow_those_of_an_earlier_one() -> None:
    before = LiveHub()
    before.publish(published("x", (JULIET,)))
    after = LiveHub()
    assert after.cursor > before.cursor


def test_other_events_render_for_their_audience() -> None:
    config = ChannelConfig(
        "Juliet", "", AccessModel.AUTHORIZE, Role.MEMBER, JULIET, ChannelType.PERSONAL, WHEN, WHEN
    )
    hub = LiveHub()
    juliet = Collect()
    hub.connect(JULIET, juliet)
    hub.publish(AuthorizationRequested(Channel(JULIET, config), POSTS, ROMEO, (JULIET,)))
    hub.publish(NodeDeleted(NodeId(JULIET, "status"), (JULIET,)))

    request, deleted = (json.loads(event.text) for event in juliet.events)
    assert (request["type"], request["jid"], request["node"]) == (
        "follow-request",
        str(ROMEO),
        "posts",
    )
    assert (deleted["type"], deleted["node"]) == ("node-deleted", "status")
    assert all(event.entry is None for event in juliet.events)


async def test_a_waiting_long_poll_takes_posts_only() -> None:
    hub = LiveHub()
    waiter = PostWaiter()
    hub.connect(JULIET, waiter)
    hub.publish(NodeDeleted(NodeId(JULIET, "status"), (JULIET,)))
    assert await waiter.wait(0.01) == []
    hub.publish(published("news", (JULIET,)))
    arrived = await waiter.wait(5)
    assert [e.entry["content"] for e in arrived if e.entry] == ["news"]
