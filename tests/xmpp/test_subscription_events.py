"""Subscription notifications on the wire, as the original servers sent them (reference
section 4): one `<event>` holding `<subscription>` and, when the role goes with it,
`<affiliations>`; on the node the request named; heard by whom it concerns."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from xmpp.support import NS, Client, Harness
from xmpp.test_pubsub import JULIET_POSTS, OWNER, PUBSUB, register

from buddycloud.xmpp.xml import serialize

JULIET_STATUS = "/user/juliet@capulet.lit/status"
JULIET_GEOLOC = "/user/juliet@capulet.lit/geoloc"
CLOSED = (
    f"{OWNER}<configure node='{JULIET_POSTS}'><x xmlns='{NS['x']}' type='submit'>"
    "<field var='pubsub#access_model'><value>authorize</value></field></x></configure></pubsub>"
)


def subscribe(node: str, jid: str) -> str:
    return f"{PUBSUB}<subscribe node='{node}' jid='{jid}'/></pubsub>"


def events(harness: Harness) -> dict[str, list[Element]]:
    """The `<event>` of each notification sent during the last request, by recipient."""
    found: dict[str, list[Element]] = {}
    for message in harness.extra:
        event = message.find("event:event", NS)
        if message.tag == "message" and event is not None:
            found.setdefault(message.get("to", ""), []).append(event)
    return found


def shape(event: Element) -> list[tuple[str, dict[str, str]]]:
    """Each child of an event, and the child's children, as (name, attributes)."""
    rows = []
    for child in event:
        rows.append((child.tag.partition("}")[2], dict(child.attrib)))
        rows.extend(
            (grandchild.tag.partition("}")[2], dict(grandchild.attrib)) for grandchild in child
        )
    return rows


async def online(harness: Harness, *clients: Client) -> None:
    for client in clients:
        await client.presence()


async def test_following_through_the_status_node_is_one_event_with_both_children(
    harness: Harness, juliet: Client, romeo: Client, nurse: Client
) -> None:
    await register(juliet)
    await nurse.ok("set", subscribe(JULIET_POSTS, "nurse@capulet.lit"))
    await online(harness, juliet, romeo, nurse)
    await romeo.ok("set", subscribe(JULIET_STATUS, "romeo@capulet.lit"))
    sent = events(harness)
    assert set(sent) == {
        "juliet@capulet.lit/balcony",
        "romeo@capulet.lit/orchard",
        "nurse@capulet.lit/kitchen",  # a follower: a `subscribed` state is for everyone
    }
    for recipient, [event] in sent.items():
        assert shape(event) == [
            (
                "subscription",
                {"node": JULIET_STATUS, "jid": "romeo@capulet.lit", "subscription": "subscribed"},
            ),
            ("affiliations", {"node": JULIET_STATUS}),
            ("affiliation", {"jid": "romeo@capulet.lit", "affiliation": "publisher"}),
        ], recipient
    # Rendered once: every copy carries the same text.
    assert len({serialize(event) for [event] in sent.values()}) == 1


async def test_a_plain_follower_hears_no_request_and_no_ban(
    harness: Harness, juliet: Client, romeo: Client, nurse: Client
) -> None:
    """The Nurse follows Juliet's closed channel. Romeo's request, and then his ban, reach
    Juliet and Romeo only."""
    await register(juliet)
    await juliet.ok("set", CLOSED)
    await nurse.ok("set", subscribe(JULIET_POSTS, "nurse@capulet.lit"))
    await juliet.ok(
        "set",
        f"{OWNER}<subscriptions node='{JULIET_POSTS}'>"
        "<subscription jid='nurse@capulet.lit' subscription='subscribed'/>"
        "</subscriptions></pubsub>",
    )
    await online(harness, juliet, romeo, nurse)

    await romeo.ok("set", subscribe(JULIET_GEOLOC, "romeo@capulet.lit"))
    sent = events(harness)
    assert set(sent) == {"juliet@capulet.lit/balcony", "romeo@capulet.lit/orchard"}
    for [event] in sent.values():
        assert shape(event) == [
            (
                "subscription",
                {"node": JULIET_GEOLOC, "jid": "romeo@capulet.lit", "subscription": "pending"},
            )
        ]

    await juliet.ok(
        "set",
        f"{OWNER}<affiliations node='{JULIET_STATUS}'>"
        "<affiliation jid='romeo@capulet.lit' affiliation='outcast'/></affiliations></pubsub>",
    )
    sent = events(harness)
    assert set(sent) == {"juliet@capulet.lit/balcony", "romeo@capulet.lit/orchard"}
    for [event] in sent.values():
        assert shape(event) == [
            (
                "subscription",
                {"node": JULIET_STATUS, "jid": "romeo@capulet.lit", "subscription": "none"},
            ),
            ("affiliations", {"node": JULIET_STATUS}),
            ("affiliation", {"jid": "romeo@capulet.lit", "affiliation": "outcast"}),
        ]


async def test_unsubscribing_tells_none_and_the_new_role_in_one_event(
    harness: Harness, juliet: Client, romeo: Client, nurse: Client
) -> None:
    await register(juliet)
    for user in ("romeo", "nurse"):
        await harness.client(f"{user}@capulet.lit/x").ok(
            "set", subscribe(JULIET_POSTS, f"{user}@capulet.lit")
        )
    await online(harness, juliet, romeo, nurse)
    await romeo.ok("set", f"{PUBSUB}<unsubscribe node='{JULIET_STATUS}'/></pubsub>")
    sent = events(harness)
    # The Nurse, a plain follower, is not told: only `subscribed` states reach followers.
    assert set(sent) == {"juliet@capulet.lit/balcony", "romeo@capulet.lit/orchard"}
    for [event] in sent.values():
        assert shape(event) == [
            (
                "subscription",
                {"node": JULIET_STATUS, "jid": "romeo@capulet.lit", "subscription": "none"},
            ),
            ("affiliations", {"node": JULIET_STATUS}),
            ("affiliation", {"jid": "romeo@capulet.lit", "affiliation": "none"}),
        ]


async def test_an_approval_names_the_node_and_gives_the_default_role(
    harness: Harness, juliet: Client, romeo: Client, nurse: Client
) -> None:
    await register(juliet)
    await juliet.ok("set", CLOSED)
    await romeo.ok("set", subscribe(JULIET_POSTS, "romeo@capulet.lit"))
    await online(harness, juliet, romeo)
    await juliet.ok(
        "set",
        f"{OWNER}<subscriptions node='{JULIET_STATUS}'>"
        "<subscription jid='romeo@capulet.lit' subscription='subscribed'/>"
        "</subscriptions></pubsub>",
    )
    sent = events(harness)
    assert set(sent) == {"juliet@capulet.lit/balcony", "romeo@capulet.lit/orchard"}
    for [event] in sent.values():
        assert shape(event) == [
            (
                "subscription",
                {"node": JULIET_STATUS, "jid": "romeo@capulet.lit", "subscription": "subscribed"},
            ),
            ("affiliations", {"node": JULIET_STATUS}),
            ("affiliation", {"jid": "romeo@capulet.lit", "affiliation": "publisher"}),
        ]
