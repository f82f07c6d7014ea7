"""Archives through the XMPP server: XEP-0313 pages in chronological order, and the inbox
sync a returning client of the original servers asks for (`urn:xmpp:mam:tmp`, row 32)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from e2e.conftest import Connect
from e2e.harness import (
    NS,
    NS_DATA,
    NS_MAM,
    NS_OWNER,
    NS_RSM,
    SERVICE,
    Client,
    Reply,
    config_form,
    create,
    entry,
    items_request,
    local_id,
    publish,
    published_id,
    subscribe,
    topic,
)

NS_MAM_TMP = "urn:xmpp:mam:tmp"
MAM_TMP = {**NS, "tmp": NS_MAM_TMP, "delay": "urn:xmpp:delay"}


async def post(client: Client, node: str, text: str) -> str:
    return local_id(published_id(await client.ok("set", publish(node, entry(text)))))


def node_archive(node: str, query_id: str, rsm: str) -> str:
    return (
        f"<query xmlns='{NS_MAM}' queryid='{query_id}' node='{node}'>"
        f"<x xmlns='{NS_DATA}' type='submit'><field var='FORM_TYPE' type='hidden'>"
        f"<value>{NS_MAM}</value></field></x>"
        f"<set xmlns='{NS_RSM}'><max>2</max>{rsm}</set></query>"
    )


def results_of(client: Client, namespace: str, query_id: str) -> list[ET.Element]:
    """The archive results for `query_id` received so far, in arrival order (consumed)."""
    found = []
    for message in list(client.messages):
        result = message.find(f"{{{namespace}}}result")
        if result is not None and result.get("queryid") == query_id:
            found.append(result)
            client.messages.remove(message)
    return found


async def test_mam_pages_five_posts_oldest_first_in_both_directions(
    juliet: Client, romeo: Client, unique: str
) -> None:
    """XEP-0313 §4.2 and XEP-0059: max 2 gives [0, 1], [2, 3], [4] paging forward with
    `after`, and [3, 4], [1, 2], [0] back from `<before/>`; `complete` on the last."""
    node = topic(f"archive-{unique}")
    await juliet.ok("set", create(node))
    ids = [await post(juliet, node, f"post {k} {unique}") for k in range(5)]
    calls = 0

    async def page(rsm: str) -> tuple[list[str], Reply]:
        nonlocal calls
        calls += 1
        query_id = f"p{calls}-{unique}"
        reply = await romeo.ok("set", node_archive(node, query_id, rsm))
        results = results_of(romeo, NS_MAM, query_id)
        return [r.get("id", "") for r in results], reply

    def fin(reply: Reply) -> ET.Element:
        element = reply.find("mam:fin")
        assert element is not None, reply
        return element

    forward = []
    found, reply = await page("")
    forward.append(found)
    while fin(reply).get("complete") != "true":
        found, reply = await page(
            f"<after>{fin(reply).findtext('rsm:set/rsm:last', namespaces=NS)}</after>"
        )
        forward.append(found)
    assert forward == [ids[0:2], ids[2:4], ids[4:]]
    assert fin(reply).findtext("rsm:set/rsm:count", namespaces=NS) == "5"

    backward = []
    found, reply = await page("<before/>")
    backward.append(found)
    while fin(reply).get("complete") != "true":
        found, reply = await page(
            f"<before>{fin(reply).findtext('rsm:set/rsm:first', namespaces=NS)}</before>"
        )
        backward.append(found)
    assert backward == [ids[3:5], ids[1:3], ids[0:1]]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def inbox_sync(start: str, query_id: str, rsm: str = "") -> str:
    set_element = f"<set xmlns='{NS_RSM}'>{rsm}</set>" if rsm else ""
    return (
        f"<query xmlns='{NS_MAM_TMP}' queryid='{query_id}'><start>{start}</start>"
        f"{set_element}</query>"
    )


def what(result: ET.Element) -> tuple[str, ...]:
    """A replayed event as a client reads it: what kind, and about whom or what."""
    forwarded = result.find("forward:forwarded", MAM_TMP)
    assert forwarded is not None, ET.tostring(result)
    assert forwarded.find("delay:delay", MAM_TMP) is not None
    message = forwarded.find("client:message", MAM_TMP)
    assert message is not None and message.get("from") == SERVICE, ET.tostring(result)
    event = message.find("event:event", MAM_TMP)
    assert event is not None, ET.tostring(result)
    child = event[0]
    name = child.tag.partition("}")[2]
    if name != "subscription":
        assert len(event) == 1, ET.tostring(result)
    if name == "items":
        content = child.findtext("event:item/atom:entry/atom:content", namespaces=MAM_TMP)
        return ("item", content or "")
    if name == "subscription":
        # With the follower's role in the same event, as live (reference section 4).
        roles = [
            affiliation.get("affiliation", "")
            for affiliation in event.iterfind("event:affiliations/event:affiliation", MAM_TMP)
        ]
        return ("subscription", child.get("jid", ""), child.get("subscription", ""), *roles)
    if name == "affiliations":
        (affiliation,) = list(child)
        return ("affiliation", affiliation.get("jid", ""), affiliation.get("affiliation", ""))
    if name == "configuration":
        title = [
            field.findtext("data:value", namespaces=MAM_TMP)
            for field in child.iterfind("data:x/data:field", MAM_TMP)
            if field.get("var") == "pubsub#title"
        ]
        return ("configuration", child.get("node", ""), *(t or "" for t in title))
    return (name,)


async def test_a_returning_client_catches_up_with_the_inbox_sync(
    connect: Connect, juliet: Client, romeo: Client, unique: str
) -> None:
    """Romeo follows a channel and goes offline; meanwhile Juliet posts, the nurse follows
    and Juliet renames the channel. Back, Romeo asks once (reference row 32) and gets each
    as the notification it would have had, in order, then the result; `max` is honoured
    and the RSM set in the result lets him ask for the rest."""
    node = topic(f"inbox-{unique}")
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))
    # The last thing Romeo saw; the server's own time of it (to the millisecond) marks
    # when he left.
    marker = await post(juliet, node, f"last seen {unique}")
    fetched = await romeo.ok("get", items_request(node, item_id=marker))
    seen = fetched.element.findtext(
        "pubsub:pubsub/pubsub:items/pubsub:item/atom:entry/atom:updated", namespaces=NS
    )
    assert seen, fetched
    left = iso(datetime.fromisoformat(seen) + timedelta(milliseconds=1))
    await romeo.disconnect()

    await post(juliet, node, f"while away {unique}")
    nurse = await connect("nurse")
    await nurse.ok("set", subscribe(node, nurse.bare))
    await juliet.ok(
        "set",
        f"<pubsub xmlns='{NS_OWNER}'><configure node='{node}'>"
        f"{config_form({'pubsub#title': f'Renamed {unique}'})}</configure></pubsub>",
    )
    await post(juliet, node, f"still away {unique}")

    back = await connect("romeo", resource="back")
    reply = await back.ok("get", inbox_sync(left, f"all-{unique}"))
    replayed = [what(result) for result in results_of(back, NS_MAM_TMP, f"all-{unique}")]
    expected = [
        ("item", f"while away {unique}"),
        ("subscription", nurse.bare, "subscribed", "member"),
        ("configuration", node, f"Renamed {unique}"),
        ("item", f"still away {unique}"),
    ]
    assert replayed == expected
    result_set = reply.element.find(f"{{{NS_MAM_TMP}}}query/rsm:set", NS)
    assert result_set is not None, reply
    assert result_set.findtext("rsm:count", namespaces=NS) == str(len(expected))

    # At most `max` per answer; `after` the last one asks for the rest.
    first = await back.ok("get", inbox_sync(left, f"first-{unique}", "<max>2</max>"))
    head = [what(r) for r in results_of(back, NS_MAM_TMP, f"first-{unique}")]
    last = first.element.findtext(f"{{{NS_MAM_TMP}}}query/rsm:set/rsm:last", namespaces=NS)
    assert head == expected[:2] and last
    await back.ok("get", inbox_sync(left, f"rest-{unique}", f"<max>2</max><after>{last}</after>"))
    tail = [what(r) for r in results_of(back, NS_MAM_TMP, f"rest-{unique}")]
    assert tail == expected[2:]


async def test_the_inbox_sync_is_advertised(romeo: Client) -> None:
    reply = await romeo.ok("get", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
    features = {f.get("var") for f in reply.findall("info:query/info:feature")}
    assert NS_MAM_TMP in features
