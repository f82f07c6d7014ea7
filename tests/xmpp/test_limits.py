"""Parse-time limits on every stanza (docs/xmpp.md): nesting depth, attributes per element,
attribute value and name lengths. A stanza over a limit is answered bad-request naming the
limit (IQ get/set, message) or dropped, and nothing in it reaches a handler."""

from __future__ import annotations

import pytest
from xmpp.support import NS, SERVICE, STREAM_HEADER, Client, Harness, condition_of

from buddycloud.domain.jid import Jid
from buddycloud.xmpp.xml import (
    MAX_ATTRIBUTE_CHARS,
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_NAME_CHARS,
    BoundedPullParser,
    serialize,
)

PUBSUB = f"<pubsub xmlns='{NS['pubsub']}'>"
J = "/user/juliet@capulet.lit/posts"
BAD_REQUEST = ("bad-request", "modify", None)


def nested(levels: int, name: str = "a") -> str:
    return f"<{name}>" * levels + f"</{name}>" * levels


def publish_nesting(levels: int) -> str:
    """A publish whose deepest element is `levels` below the <iq/>: pubsub 1, publish 2,
    item 3, entry 4, an extension element at 5 and the rest nested inside it."""
    return (
        f"{PUBSUB}<publish node='{J}'><item><entry xmlns='{NS['atom']}'><content>deep</content>"
        f"<ext xmlns='urn:example:deep'>{nested(levels - 5)}</ext></entry></item></publish>"
        "</pubsub>"
    )


def text_of(reply: object) -> str:
    from xml.etree.ElementTree import Element

    assert isinstance(reply, Element)
    return reply.findtext("error/stanzas:text", namespaces=NS) or ""


async def items_of(client: Client) -> list[str]:
    reply = await client.ok("get", f"{PUBSUB}<items node='{J}'/></pubsub>")
    return [item.get("id", "") for item in reply.iterfind(".//pubsub:item", NS)]


async def test_a_publish_nesting_a_thousand_levels_is_refused_and_the_service_serves_on(
    juliet: Client,
) -> None:
    """It used to be internal-server-error: a RecursionError while measuring the payload."""
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    reply = await juliet.iq("set", publish_nesting(1000))
    assert condition_of(reply) == BAD_REQUEST
    assert text_of(reply) == f"elements nest deeper than {MAX_DEPTH} levels inside a stanza"
    assert await items_of(juliet) == []
    await juliet.ok(
        "set",
        f"{PUBSUB}<publish node='{J}'><item id='fine'><entry xmlns='{NS['atom']}'>"
        "<content>fine</content></entry></item></publish></pubsub>",
    )
    assert await items_of(juliet) == ["fine"]


async def test_the_depth_limit_is_counted_from_the_stanza(juliet: Client) -> None:
    """An element MAX_DEPTH levels below the <iq/> is fine, and is stored and read back."""
    await juliet.ok("set", f"<query xmlns='{NS['register']}'/>")
    assert condition_of(await juliet.iq("set", publish_nesting(MAX_DEPTH + 1))) == BAD_REQUEST
    await juliet.ok("set", publish_nesting(MAX_DEPTH))
    reply = await juliet.ok("get", f"{PUBSUB}<items node='{J}'/></pubsub>")
    ext = reply.find(".//{urn:example:deep}ext")
    assert ext is not None and len(list(ext.iter())) == MAX_DEPTH - 4


def _query(attributes: str = "", child: str = "") -> str:
    return f"<query xmlns='{NS['disco']}'{attributes}>{child}</query>"


many = " ".join(f"a{n}='{n}'" for n in range(MAX_ATTRIBUTES + 1))
few = " ".join(f"a{n}='{n}'" for n in range(MAX_ATTRIBUTES))
LIMITS = {
    "attributes": (
        _query(child=f"<x {few}/>"),
        _query(child=f"<x {many}/>"),
        f"<x/> carries more than {MAX_ATTRIBUTES} attributes",
    ),
    "attribute value": (
        _query(f" extra='{'v' * MAX_ATTRIBUTE_CHARS}'"),
        _query(f" extra='{'v' * (MAX_ATTRIBUTE_CHARS + 1)}'"),
        f"attribute extra of <query/> is longer than {MAX_ATTRIBUTE_CHARS} characters",
    ),
    "element name": (
        # The name counts its namespace: "{urn:n}" is 7 characters.
        _query(child=f"<{'n' * (MAX_NAME_CHARS - 7)} xmlns='urn:n'/>"),
        _query(child=f"<{'n' * (MAX_NAME_CHARS - 6)} xmlns='urn:n'/>"),
        f"an element name is longer than {MAX_NAME_CHARS} characters",
    ),
    "attribute name": (
        _query(child=f"<x {'n' * MAX_NAME_CHARS}='1'/>"),
        _query(child=f"<x {'n' * (MAX_NAME_CHARS + 1)}='1'/>"),
        f"an attribute name of <x/> is longer than {MAX_NAME_CHARS} characters",
    ),
}


@pytest.mark.parametrize("limit", list(LIMITS))
async def test_attribute_and_name_limits(juliet: Client, limit: str) -> None:
    fits, breaks, reason = LIMITS[limit]
    await juliet.ok("get", fits)
    reply = await juliet.iq("get", breaks)
    assert condition_of(reply) == BAD_REQUEST
    assert text_of(reply) == reason


async def test_a_message_over_a_limit_gets_an_error_message(
    harness: Harness, juliet: Client
) -> None:
    sent = await juliet.message(nested(MAX_DEPTH + 1, "body"))
    assert [(m.tag, m.get("type"), m.get("to")) for m in sent] == [("message", "error", juliet.jid)]
    assert condition_of(sent[0]) == BAD_REQUEST
    assert "deeper than" in text_of(sent[0])
    # Not even a well-formed authorization answer inside it is looked at.
    assert harness.extra == []


async def test_a_presence_over_a_limit_is_dropped(harness: Harness) -> None:
    sent = await harness.feed(
        f"<presence xmlns='jabber:component:accept' from='romeo@capulet.lit/x' to='{SERVICE}'>"
        f"{nested(MAX_DEPTH + 1, 'status')}</presence>"
    )
    assert sent == []
    assert not harness.online.is_online(Jid.parse("romeo@capulet.lit/x"))


@pytest.mark.parametrize("type_", ["result", "error"])
async def test_an_iq_answer_over_a_limit_is_dropped(harness: Harness, type_: str) -> None:
    sent = await harness.feed(
        f"<iq xmlns='jabber:component:accept' type='{type_}' id='z' from='romeo@capulet.lit/x' "
        f"to='{SERVICE}'>{nested(MAX_DEPTH + 1)}</iq>"
    )
    assert sent == []


def test_the_parser_measures_each_stanza_of_a_stream_on_its_own() -> None:
    """A refused stanza does not taint the next one; the stream root is not a stanza."""
    parser = BoundedPullParser()
    parser.feed(STREAM_HEADER)
    refusals = []
    stanzas = [
        f"<iq type='get' id='1'>{nested(MAX_DEPTH + 1)}</iq>",
        f"<iq type='get' id='2'>{nested(MAX_DEPTH)}</iq>",
        f"<message><x {many}/></message>",
        "<presence/>",
    ]
    depth = 0
    for stanza in stanzas:
        # Fed in small pieces, as the network hands them over.
        for start in range(0, len(stanza), 7):
            parser.feed(stanza[start : start + 7])
            for event, element in parser.read_events():
                depth += 1 if event == "start" else -1
                if event == "end" and depth == 1:
                    refusals.append((serialize(element)[:20], parser.refusal))
    assert [refusal for _, refusal in refusals] == [
        f"elements nest deeper than {MAX_DEPTH} levels inside a stanza",
        None,
        f"<x/> carries more than {MAX_ATTRIBUTES} attributes",
        None,
    ]
