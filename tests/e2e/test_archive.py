"""Archives through the XMPP server: XEP-0313 pages in chronological order."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from e2e.harness import (
    NS,
    NS_DATA,
    NS_MAM,
    NS_RSM,
    Client,
    Reply,
    create,
    entry,
    local_id,
    publish,
    published_id,
    topic,
)


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
