"""The original Java server's test fixtures, replayed through a real XMPP server.

The Java server's packet-processor tests read stanzas from `src/test/resources/stanzas/`
(reference section 8.1). tests/fixtures/java/ holds the same stanzas with this test bed's
JIDs: the Nurse's personal channel stands for Pamela's, Balthasar for Francisco who
follows it, and the Nurse, its owner, hears the notifications (Juliet in the Java tests).

Each fixture here and the Java one it copies (under `stanzas/`):

- subscribe-request.xml, subscribe-reply.xml: iq/pubsub/subscribe/request.stanza and
  reply.stanza;
- subscribe-affiliation-notification.xml:
  iq/pubsub/subscribe/affiliationNotificationMessage.stanza;
- affiliations-request-no-node.xml, affiliations-reply-no-node.xml:
  iq/pubsub/affiliations/request-no-node.stanza and reply-no-node.stanza;
- affiliation-change.xml: iq/pubsub/affiliation/affiliationChange.stanza (its tests ban
  by replacing `member` with another affiliation; this one replaces it with `outcast`);
- affiliation-change-reply.xml, affiliation-change-notification.xml: what
  AffiliationEventTest checks, an empty result and
  `<event><affiliations node><affiliation jid affiliation/>` to the listeners;
- affiliations-request-with-node.xml, affiliations-reply-with-node.xml:
  iq/pubsub/affiliations/request-with-node.stanza and reply-with-node.stanza;
- chat-subscribe-request.xml, chat-subscribe-reply.xml: message/subscribe/request.stanza
  and reply.stanza, a chat command this server does not serve (SILENT);
- inbox-request.xml: iq/mam/request.stanza; inbox-subscription-message.xml,
  inbox-affiliation-message.xml, inbox-reply.xml: what MessageArchiveManagement sends for
  a follow, as MessageArchiveManagementTest checks it (a subscription change and an
  affiliation change, each in its own message, then an empty result).

Every answer is compared with its fixture element by element (`normal`): element names,
namespaces, attributes and children, ignoring stanza ids, timestamps, attribute order,
whitespace and the resource of `from` and `to`. Where this server answers differently on
purpose, the difference is a row of DEVIATIONS, named in docs/xmpp.md ("Replaying the Java
server's fixtures"): each row turns the fixture into this server's answer, and must change
it, so that nothing is skipped silently and no row outlives its reason.

The Nurse's channel takes `member` as the default role first, the Java server's default
that its fixtures were written with (this server's personal channels default to
`publisher`).
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from e2e.conftest import Connect
from e2e.harness import (
    NS,
    NS_EVENT,
    NS_OWNER,
    NS_PUBSUB,
    NS_RSM,
    REGISTER,
    SERVICE,
    Client,
    configure_set,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "java"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "xmpp.md"
NURSE_POSTS = "/user/nurse@capulet.lit/posts"
BALTHASAR = "balthasar@capulet.lit"

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
IGNORED_ATTRIBUTES = frozenset({"id", XML_LANG})
TIMESTAMP_ATTRIBUTES = frozenset({"stamp", "when", "updated"})
TIMESTAMP_ELEMENTS = frozenset({"published", "updated"})


def load(name: str) -> ET.Element:
    return ET.parse(FIXTURES / name).getroot()


# --- the comparator ----------------------------------------------------------------------

Normal = tuple[str, str, tuple[tuple[str, str], ...], str, tuple["Normal", ...]]


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def normal(element: ET.Element) -> Normal:
    """What is compared of an element: (namespace, name, attributes, text, children).

    Stanzas without a namespace are the stream's (`jabber:client`); ids and `xml:lang`
    are left out, `from` and `to` compared as bare JIDs, timestamps as present or not,
    text without surrounding whitespace; attributes in any order, children in order.
    """
    namespace, name = _split(element.tag)
    attributes = []
    for key, value in element.attrib.items():
        if key in IGNORED_ATTRIBUTES:
            continue
        if key in ("from", "to"):
            value = value.partition("/")[0]
        elif key in TIMESTAMP_ATTRIBUTES:
            value = "(a time)"
        attributes.append((key, value))
    text = (element.text or "").strip()
    if name in TIMESTAMP_ELEMENTS and text:
        text = "(a time)"
    return (
        namespace or "jabber:client",
        name,
        tuple(sorted(attributes)),
        text,
        tuple(normal(child) for child in element),
    )


def differences(expected: Normal, actual: Normal, path: str = "") -> list[str]:
    """Where two normalised elements differ, as readable lines (`path` leads to `expected`)."""
    here = f"{path}{{{expected[0]}}}{expected[1]}"
    if expected[:2] != actual[:2]:
        return [f"{here}: expected this element, got {{{actual[0]}}}{actual[1]}"]
    found = []
    if expected[2] != actual[2]:
        found.append(f"{here}: attributes {dict(expected[2])} != {dict(actual[2])}")
    if expected[3] != actual[3]:
        found.append(f"{here}: text {expected[3]!r} != {actual[3]!r}")
    if len(expected[4]) != len(actual[4]):
        names = [f"{{{c[0]}}}{c[1]}" for c in actual[4]]
        found.append(f"{here}: {len(expected[4])} children expected, got {names}")
    for index, (want, got) in enumerate(zip(expected[4], actual[4], strict=False)):
        found.extend(differences(want, got, f"{here}/[{index}]"))
    return found


def assert_same(expected: ET.Element, actual: ET.Element) -> None:
    found = differences(normal(expected), normal(actual))
    assert found == [], "\n".join(
        [*found, "expected:", ET.tostring(expected, encoding="unicode"), "got:"]
        + [ET.tostring(actual, encoding="unicode")]
    )


# --- documented differences ----------------------------------------------------------------


PATHS = NS | {"mamtmp": "urn:xmpp:mam:tmp", "forward": "urn:xmpp:forward:0", "": ""}
NS_MAM_TMP = PATHS["mamtmp"]
NS_FORWARD = PATHS["forward"]
NS_CLIENT = "jabber:client"


def _find(root: ET.Element, path: str) -> ET.Element:
    found = root.find(path, {k: v for k, v in PATHS.items() if k})
    assert found is not None, f"no {path} in the fixture"
    return found


def subscribed_not_unconfigured(reply: ET.Element) -> None:
    _find(reply, "pubsub:pubsub/pubsub:subscription").set("subscription", "subscribed")


def affiliation_in_affiliations(message: ET.Element) -> None:
    event = _find(message, "event:event")
    row = _find(event, "event:affiliation")
    index = list(event).index(row)
    event.remove(row)
    wrapper = ET.Element(f"{{{NS_EVENT}}}affiliations", {"node": row.attrib.pop("node")})
    wrapper.append(row)
    event.insert(index, wrapper)


def _subscription_first(message: ET.Element, state: str) -> None:
    event = _find(message, "event:event")
    affiliation = next(event.iter(f"{{{NS_EVENT}}}affiliation"))
    node = affiliation.get("node") or _find(event, "event:affiliations").get("node", "")
    subscription = ET.Element(
        f"{{{NS_EVENT}}}subscription",
        {"node": node, "jid": affiliation.get("jid", ""), "subscription": state},
    )
    event.insert(0, subscription)


def subscription_with_the_role(message: ET.Element) -> None:
    _subscription_first(message, "subscribed")


def a_ban_ends_the_follow(message: ET.Element) -> None:
    _subscription_first(message, "none")


def lists_end_with_rsm(reply: ET.Element) -> None:
    pubsub = reply[0]
    namespace = _split(pubsub.tag)[0]
    rows = list(_find(pubsub, f"{{{namespace}}}affiliations"))
    cursor = "node" if _find(pubsub, f"{{{namespace}}}affiliations").get("node") is None else "jid"
    rsm = ET.SubElement(pubsub, f"{{{NS_RSM}}}set")
    if rows:
        ET.SubElement(rsm, f"{{{NS_RSM}}}first").text = rows[0].get(cursor)
        ET.SubElement(rsm, f"{{{NS_RSM}}}last").text = rows[-1].get(cursor)
    ET.SubElement(rsm, f"{{{NS_RSM}}}count").text = str(len(rows))


def own_affiliations_in_pubsub_namespace(reply: ET.Element) -> None:
    for element in reply.iter():
        if element.tag.startswith(f"{{{NS_OWNER}}}"):
            element.tag = f"{{{NS_PUBSUB}}}" + _split(element.tag)[1]


def result_holds_the_forwarded_message(message: ET.Element) -> None:
    result = _find(message, "mamtmp:result")
    forwarded = _find(message, "forward:forwarded")
    message.remove(forwarded)
    result.append(forwarded)


def a_message_holds_the_event(message: ET.Element) -> None:
    forwarded = next(message.iter(f"{{{NS_FORWARD}}}forwarded"))
    msg = _find(forwarded, "forward:msg")
    event = _find(forwarded, "event:event")
    index = list(forwarded).index(msg)
    forwarded.remove(msg)
    forwarded.remove(event)
    inner = ET.Element(f"{{{NS_CLIENT}}}message", msg.attrib)
    inner.append(event)
    forwarded.insert(index, inner)


def role_with_the_subscription(message: ET.Element) -> None:
    """The Java server's separate affiliation message, in the subscription's event."""
    event = next(message.iter(f"{{{NS_EVENT}}}event"))
    other = load("inbox-affiliation-message.xml")
    event.append(_find(other, "forward:forwarded/event:event/event:affiliations"))


def the_answer_ends_with_an_rsm_set(reply: ET.Element) -> None:
    query = ET.SubElement(reply, f"{{{NS_MAM_TMP}}}query")
    rsm = ET.SubElement(query, f"{{{NS_RSM}}}set")
    for name in ("first", "last"):
        ET.SubElement(rsm, f"{{{NS_RSM}}}{name}").text = "(a position)"
    ET.SubElement(rsm, f"{{{NS_RSM}}}count").text = "1"


@dataclass(frozen=True)
class Deviation:
    """A documented way this server's answer differs from a Java fixture."""

    name: str  # as docs/xmpp.md names it
    fixture: str
    change: Callable[[ET.Element], None]  # turns the fixture into this server's answer


DEVIATIONS = (
    Deviation("subscribed, not unconfigured", "subscribe-reply.xml", subscribed_not_unconfigured),
    Deviation(
        "the affiliation inside <affiliations node>",
        "subscribe-affiliation-notification.xml",
        affiliation_in_affiliations,
    ),
    Deviation(
        "subscription and role in one event",
        "subscribe-affiliation-notification.xml",
        subscription_with_the_role,
    ),
    Deviation(
        "the user's affiliations in the pubsub namespace",
        "affiliations-reply-no-node.xml",
        own_affiliations_in_pubsub_namespace,
    ),
    Deviation("lists end with an RSM set", "affiliations-reply-no-node.xml", lists_end_with_rsm),
    Deviation(
        "a ban ends the follow in the same event",
        "affiliation-change-notification.xml",
        a_ban_ends_the_follow,
    ),
    Deviation("lists end with an RSM set", "affiliations-reply-with-node.xml", lists_end_with_rsm),
    Deviation(
        "the result holds the forwarded message",
        "inbox-subscription-message.xml",
        result_holds_the_forwarded_message,
    ),
    Deviation(
        "a message, not msg, holds the event",
        "inbox-subscription-message.xml",
        a_message_holds_the_event,
    ),
    Deviation(
        "subscription and role in one event",
        "inbox-subscription-message.xml",
        role_with_the_subscription,
    ),
    Deviation(
        "the inbox sync result holds an RSM set",
        "inbox-reply.xml",
        the_answer_ends_with_an_rsm_set,
    ),
)
# Differences in what is answered rather than in its shape, by fixture: each is a row of
# docs/xmpp.md, and the test shows it (see where it is named).
BEHAVIOUR = {"inbox-request.xml": "changes from start to end"}


# Fixtures this server does not answer at all, by the name of their row in docs/xmpp.md.
SILENT = {"chat-subscribe-reply.xml": "chat commands are not served"}


def answer(name: str) -> ET.Element:
    """The fixture `name` with this server's documented deviations applied."""
    expected = load(name)
    for deviation in DEVIATIONS:
        if deviation.fixture == name:
            before = normal(expected)
            deviation.change(expected)
            assert normal(expected) != before, f"{deviation.name!r} changes nothing in {name}"
    return expected


def payload_of(request: ET.Element) -> tuple[str, str]:
    """The IQ type and the child of a request fixture, as text to send."""
    (child,) = list(request)
    return request.get("type", ""), ET.tostring(child, encoding="unicode")


async def replay(client: Client, request: ET.Element) -> ET.Element:
    type_, payload = payload_of(request)
    return (await client.raw_iq(type_, payload)).element


def about(
    jid: str, *, subscription: str | None = None, affiliation: str | None = None
) -> Callable[[ET.Element], bool]:
    """A notification about `jid` with that subscription state or role."""

    def predicate(message: ET.Element) -> bool:
        for element in message.iter():
            if element.get("jid") != jid:
                continue
            if subscription is not None and element.get("subscription") == subscription:
                return True
            if affiliation is not None and element.get("affiliation") == affiliation:
                return True
        return False

    return predicate


def is_replayed(message: ET.Element) -> bool:
    return message.find("mamtmp:result", {"mamtmp": NS_MAM_TMP}) is not None


async def catch_up(client: Client, since: datetime) -> list[ET.Element]:
    """The inbox sync of inbox-request.xml, from `since` to a time to come (the fixture's
    own dates, 2010 to 2002, hold nothing to replay); the messages it brought, after the
    answer compared with inbox-reply.xml."""
    request = load("inbox-request.xml")
    query = request[0]
    _find(query, "mamtmp:start").text = since.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    _find(query, "mamtmp:end").text = "2100-01-01T00:00:00Z"
    reply = await replay(client, request)
    for rsm in reply.iter(f"{{{NS_RSM}}}set"):
        for name in ("first", "last"):
            cursor = rsm.find(f"{{{NS_RSM}}}{name}")
            if cursor is not None:
                cursor.text = "(a position)"  # an id: compared as present
    assert_same(answer("inbox-reply.xml"), reply)
    # The replayed messages travel the same path as the answer, before it.
    return [m for m in client.messages if is_replayed(m)]


# --- the tests -----------------------------------------------------------------------------


def test_every_deviation_is_documented_and_the_comparator_sees_differences() -> None:
    documented = DOCS.read_text()
    rows = [(d.name, d.fixture) for d in DEVIATIONS]
    rows += [(name, fixture) for fixture, name in (SILENT | BEHAVIOUR).items()]
    for name, fixture in rows:
        assert f"| {name} |" in documented, f"docs/xmpp.md lacks {name!r}"
        assert (FIXTURES / fixture).exists(), fixture
    reply = load("subscribe-reply.xml")
    assert differences(normal(reply), normal(answer("subscribe-reply.xml"))) == [
        "{jabber:client}iq/[0]{http://jabber.org/protocol/pubsub}pubsub"
        "/[0]{http://jabber.org/protocol/pubsub}subscription: attributes "
        f"{{'jid': '{BALTHASAR}', 'node': '{NURSE_POSTS}', 'subscription': 'unconfigured'}} != "
        f"{{'jid': '{BALTHASAR}', 'node': '{NURSE_POSTS}', 'subscription': 'subscribed'}}"
    ]
    moved = copy.deepcopy(reply)
    moved[0].append(moved[0][0])
    assert differences(normal(reply), normal(moved)) != []
    assert normal(load("affiliation-change.xml")) == normal(load("affiliation-change.xml"))


async def test_a_subscribe_and_a_ban_as_the_java_fixtures_show_them(connect: Connect) -> None:
    nurse = await connect("nurse", resource="barracks")
    balthasar = await connect("balthasar", resource="barracks")
    for client in (nurse, balthasar):
        await client.ok("set", REGISTER)
    await nurse.ok("set", configure_set(NURSE_POSTS, {"buddycloud#default_affiliation": "member"}))

    # The chat command to follow a channel goes unanswered (SILENT).
    command = load("chat-subscribe-request.xml")
    body = command.findtext("body") or ""
    await balthasar.send_raw(
        f"<message type='chat' to='{SERVICE}' id='ab24a'><body>{escape(body)}</body></message>"
    )
    await balthasar.sync()
    chat = [m for m in balthasar.messages if m.get("type") == "chat"]
    assert chat == [], f"{SILENT['chat-subscribe-reply.xml']}: {chat}"

    # Subscribe: the reply, and the notification the owner hears.
    since = datetime.now(UTC)
    reply = await replay(balthasar, load("subscribe-request.xml"))
    assert_same(answer("subscribe-reply.xml"), reply)
    heard = await nurse.wait_for(about(BALTHASAR, affiliation="member"))
    assert_same(answer("subscribe-affiliation-notification.xml"), heard)

    # Catch-up: the owner, back, asks what happened since just before the subscribe: the
    # follow comes, which the Java server, reading follows at `end` only, would have missed
    # (BEHAVIOUR).
    heard = await catch_up(nurse, since)
    assert len(heard) == 1, f"{BEHAVIOUR['inbox-request.xml']}: {heard}"
    assert_same(answer("inbox-subscription-message.xml"), heard[0])

    # The follower's own affiliations.
    reply = await replay(balthasar, load("affiliations-request-no-node.xml"))
    assert_same(answer("affiliations-reply-no-node.xml"), reply)

    # Ban: the owner changes the follower's affiliation to outcast.
    ban = ET.fromstring(
        (FIXTURES / "affiliation-change.xml")
        .read_text()
        .replace("affiliation='member'", "affiliation='outcast'")
    )
    reply = await replay(nurse, ban)
    assert_same(answer("affiliation-change-reply.xml"), reply)
    heard = await nurse.wait_for(about(BALTHASAR, affiliation="outcast"))
    assert_same(answer("affiliation-change-notification.xml"), heard)

    # The node's affiliations, as the owner sees them.
    reply = await replay(nurse, load("affiliations-request-with-node.xml"))
    assert_same(answer("affiliations-reply-with-node.xml"), reply)
