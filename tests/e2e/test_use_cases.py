"""Use cases through a real XMPP server not covered elsewhere: deletion, paging, lists and
their visibility rules, invitations, threads, feeds, role and configuration notifications,
search paging, and MAM paging."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from e2e.harness import (
    NS,
    NS_BC,
    NS_DATA,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_EVENT,
    NS_MAM,
    NS_OWNER,
    NS_PUBSUB,
    NS_RSM,
    NS_SEARCH,
    TOPICS_DOMAIN,
    Client,
    affiliation_event,
    configure_set,
    create,
    entry,
    form_values,
    item_ids,
    local_id,
    mentions,
    posts,
    publish,
    published_id,
    set_affiliation,
    set_subscription,
    subscribe,
    subscription_event,
    topic,
)

NS_NODE_CONFIG = f"{NS_PUBSUB}#node_config"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rsm(max_: int, *, after: str | None = None, before: str | None = None) -> str:
    cursor = ""
    if after is not None:
        cursor = f"<after>{after}</after>"
    elif before is not None:
        cursor = f"<before>{before}</before>" if before else "<before/>"
    return f"<set xmlns='{NS_RSM}'><max>{max_}</max>{cursor}</set>"


def rsm_result(parent: ET.Element | None) -> tuple[str | None, str | None, int]:
    """(first, last, count) of a result's `<set/>`."""
    assert parent is not None
    set_el = parent.find("rsm:set", NS)
    assert set_el is not None, ET.tostring(parent, encoding="unicode")
    first, last, count = (set_el.find(f"rsm:{name}", NS) for name in ("first", "last", "count"))
    assert count is not None and count.text is not None
    return (
        first.text if first is not None else None,
        last.text if last is not None else None,
        int(count.text),
    )


async def post(client: Client, node: str, text: str, *, in_reply_to: str | None = None) -> str:
    reply = await client.ok("set", publish(node, entry(text, in_reply_to=in_reply_to)))
    return local_id(published_id(reply))


def event_of(kind: str, node: str) -> Callable[[ET.Element], bool]:
    def predicate(message: ET.Element) -> bool:
        return any(
            element.get("node") == node
            for element in message.findall(f"{{{NS_EVENT}}}event/{{{NS_EVENT}}}{kind}")
        )

    return predicate


# --- delete ------------------------------------------------------------------------------


async def test_only_the_owner_deletes_and_followers_are_told(
    juliet: Client, romeo: Client, mercutio: Client, unique: str
) -> None:
    node = topic(f"doomed-{unique}")
    extra = f"/user/doomed-{unique}@{TOPICS_DOMAIN}/extra"
    await juliet.ok("set", create(node))
    await juliet.ok("set", create(extra))
    await romeo.ok("set", subscribe(node, romeo.bare))
    await mercutio.ok("set", subscribe(node, mercutio.bare))
    await juliet.ok("set", set_affiliation(node, mercutio.bare, "moderator"))

    delete = f"<pubsub xmlns='{NS_OWNER}'><delete node='{{}}'/></pubsub>"
    for refused_by in (romeo, mercutio):  # a follower, a moderator
        refused = await refused_by.iq("set", delete.format(node))
        assert refused.condition == "forbidden", refused

    # Deleting one node leaves the channel.
    await juliet.ok("set", delete.format(extra))
    await romeo.wait_for(event_of("delete", extra))
    await romeo.ok("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")

    # Deleting posts deletes the channel; every follower is told.
    await juliet.ok("set", delete.format(node))
    await romeo.wait_for(event_of("delete", node))
    await mercutio.wait_for(event_of("delete", node))
    gone = await romeo.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
    assert gone.condition == "item-not-found", gone
    listed = await romeo.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions/></pubsub>")
    assert node not in listed.text
    again = await juliet.iq("set", delete.format(node))
    assert again.condition == "item-not-found", again


# --- disco#items of the service, RSM ----------------------------------------------------


async def test_disco_items_of_the_service_pages_with_rsm(juliet: Client, unique: str) -> None:
    for n in range(3):
        await juliet.ok("set", create(topic(f"listed{n}-{unique}")))

    seen: list[str] = []
    after: str | None = None
    counts = set()
    while True:
        reply = await juliet.ok(
            "get", f"<query xmlns='{NS_DISCO_ITEMS}'>{rsm(4, after=after)}</query>"
        )
        query = reply.find("items:query")
        nodes = [item.get("node", "") for item in reply.findall("items:query/items:item")]
        first, last, count = rsm_result(query)
        counts.add(count)
        if not nodes:
            assert first is None and last is None, reply
            break
        assert len(nodes) <= 4
        assert first is not None and last is not None and first in nodes[0] and last in nodes[-1]
        seen.extend(nodes)
        after = last
    assert len(counts) == 1, counts  # the same total on every page
    assert len(seen) == len(set(seen)) == counts.pop()
    assert {topic(f"listed{n}-{unique}") for n in range(3)} <= set(seen)

    # Back from the second page's first item gives the first page again.
    first_page = await juliet.ok("get", f"<query xmlns='{NS_DISCO_ITEMS}'>{rsm(4)}</query>")
    second = await juliet.ok(
        "get",
        f"<query xmlns='{NS_DISCO_ITEMS}'>"
        f"{rsm(4, after=rsm_result(first_page.find('items:query'))[1])}</query>",
    )
    back = await juliet.ok(
        "get",
        f"<query xmlns='{NS_DISCO_ITEMS}'>"
        f"{rsm(4, before=rsm_result(second.find('items:query'))[0])}</query>",
    )
    assert [i.get("node") for i in back.findall("items:query/items:item")] == [
        i.get("node") for i in first_page.findall("items:query/items:item")
    ]


# --- items: max_items, ids, RSM, parent-only --------------------------------------------


def items_query(node: str, *, inner: str = "", attributes: str = "", rsm_set: str = "") -> str:
    return (
        f"<pubsub xmlns='{NS_PUBSUB}'><items node='{node}'{attributes}>{inner}</items>"
        f"{rsm_set}</pubsub>"
    )


async def test_items_by_max_items_ids_rsm_and_parent_only(juliet: Client, unique: str) -> None:
    node = topic(f"paged-{unique}")
    await juliet.ok("set", create(node))
    published = [await post(juliet, node, f"post {n} {unique}") for n in range(5)]
    newest_first = list(reversed(published))

    newest = await juliet.ok("get", items_query(node, attributes=" max_items='2'"))
    assert item_ids(newest) == newest_first[:2], newest

    by_id = await juliet.ok(
        "get",
        items_query(node, inner=f"<item id='{published[1]}'/><item id='{published[3]}'/>"),
    )
    assert item_ids(by_id) == [published[1], published[3]], by_id

    # RSM forward: 2 + 2 + 1, the same count on every page, first/last naming the ends.
    pages: list[list[str]] = []
    firsts: list[str | None] = []
    after: str | None = None
    for _ in range(3):
        reply = await juliet.ok("get", items_query(node, rsm_set=rsm(2, after=after)))
        ids = item_ids(reply)
        first, last, count = rsm_result(reply.find("pubsub:pubsub"))
        assert count == 5, reply
        assert first is not None and last is not None
        assert (local_id(first), local_id(last)) == (ids[0], ids[-1]), reply
        pages.append(ids)
        firsts.append(first)
        after = last
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    past_the_end = await juliet.ok("get", items_query(node, rsm_set=rsm(2, after=after)))
    assert item_ids(past_the_end) == []

    # RSM backward: before the second page's first item is the first page; an empty
    # <before/> asks for the last page (XEP-0059 §2.5).
    back = await juliet.ok("get", items_query(node, rsm_set=rsm(2, before=firsts[1])))
    assert item_ids(back) == pages[0], back
    last_page = await juliet.ok("get", items_query(node, rsm_set=rsm(2, before="")))
    assert item_ids(last_page) == newest_first[3:5], last_page

    reply_id = await post(juliet, node, f"a reply {unique}", in_reply_to=published[0])
    everything = await juliet.ok("get", items_query(node))
    assert reply_id in item_ids(everything)
    parents = await juliet.ok("get", items_query(node, attributes=" parent-only='true'"))
    assert set(item_ids(parents)) == set(published), parents


# --- subscriptions and affiliations lists ------------------------------------------------


async def test_user_level_subscriptions_and_affiliations(
    juliet: Client, romeo: Client, unique: str
) -> None:
    open_node = topic(f"mine-open-{unique}")
    closed_node = topic(f"mine-closed-{unique}")
    await juliet.ok("set", create(open_node))
    await juliet.ok("set", create(closed_node, {"pubsub#access_model": "authorize"}))
    await romeo.ok("set", subscribe(open_node, romeo.bare))
    await romeo.ok("set", subscribe(closed_node, romeo.bare))

    subscriptions = await romeo.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions/></pubsub>")
    states = {
        s.get("node"): (s.get("subscription"), s.get("jid"))
        for s in subscriptions.findall("pubsub:pubsub/pubsub:subscriptions/pubsub:subscription")
    }
    assert states[open_node] == ("subscribed", romeo.bare)
    assert states[closed_node] == ("pending", romeo.bare)
    assert states[posts(romeo.bare)] == ("subscribed", romeo.bare)  # his own channel

    affiliations = await romeo.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><affiliations/></pubsub>")
    roles = {
        a.get("node"): a.get("affiliation")
        for a in affiliations.findall("pubsub:pubsub/pubsub:affiliations/pubsub:affiliation")
    }
    assert roles[open_node] in ("publisher", "member")
    assert roles[posts(romeo.bare)] == "owner"


async def test_own_lists_of_ephemeral_channels(juliet: Client, romeo: Client, unique: str) -> None:
    """Reference rows 23 and 26: `bc:ephemeral='true'` lists only ephemeral channels, the
    plain lists leave them out."""
    lasting = topic(f"lasting-{unique}")
    room = topic(f"room-{unique}")
    await juliet.ok("set", create(lasting))
    await juliet.ok("set", create(room, {"buddycloud#ephemeral": "true"}))
    await romeo.ok("set", subscribe(lasting, romeo.bare))
    await romeo.ok("set", subscribe(room, romeo.bare))
    bc = f"xmlns:bc='{NS_BC}' bc:ephemeral='true'"
    for name in ("subscription", "affiliation"):
        plain = await romeo.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><{name}s/></pubsub>")
        nodes = {e.get("node") for e in plain.findall(f"pubsub:pubsub/pubsub:{name}s/*")}
        assert lasting in nodes and room not in nodes, plain
        rooms = await romeo.raw_iq("get", f"<pubsub xmlns='{NS_PUBSUB}'><{name}s {bc}/></pubsub>")
        assert rooms.ok, rooms
        assert [e.get("node") for e in rooms.findall(f"pubsub:pubsub/pubsub:{name}s/*")] == [
            room
        ], rooms


def subscribers(reply_element: ET.Element, namespace: str) -> dict[str, str]:
    prefix = "owner" if namespace == NS_OWNER else "pubsub"
    return {
        s.get("jid", ""): s.get("subscription", "")
        for s in reply_element.findall(
            f"{prefix}:pubsub/{prefix}:subscriptions/{prefix}:subscription", NS
        )
    }


def affiliated(reply_element: ET.Element, namespace: str) -> dict[str, str]:
    prefix = "owner" if namespace == NS_OWNER else "pubsub"
    return {
        a.get("jid", ""): a.get("affiliation", "")
        for a in reply_element.findall(
            f"{prefix}:pubsub/{prefix}:affiliations/{prefix}:affiliation", NS
        )
    }


async def test_node_lists_show_pending_and_banned_only_to_owner_and_moderators(
    juliet: Client,
    romeo: Client,
    benvolio: Client,
    mercutio: Client,
    tybalt: Client,
    unique: str,
) -> None:
    """ProtoXEP table 5: banned and pending lists are for the producer and moderators."""
    node = topic(f"lists-{unique}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))
    for follower in (benvolio, mercutio):
        await follower.ok("set", subscribe(node, follower.bare))
        await juliet.ok("set", set_subscription(node, follower.bare, "subscribed"))
    await juliet.ok("set", set_affiliation(node, mercutio.bare, "moderator"))
    await romeo.ok("set", subscribe(node, romeo.bare))  # pending
    await juliet.ok("set", set_affiliation(node, tybalt.bare, "outcast"))

    for viewer in (juliet, mercutio):
        for namespace in (NS_OWNER, NS_PUBSUB):
            subs = await viewer.ok(
                "get", f"<pubsub xmlns='{namespace}'><subscriptions node='{node}'/></pubsub>"
            )
            seen = subscribers(subs.element, namespace)
            assert seen.get(romeo.bare) == "pending", subs
            assert seen.get(benvolio.bare) == "subscribed", subs
            affs = await viewer.ok(
                "get", f"<pubsub xmlns='{namespace}'><affiliations node='{node}'/></pubsub>"
            )
            roles = affiliated(affs.element, namespace)
            assert roles.get(tybalt.bare) == "outcast", affs
            assert roles.get(mercutio.bare) == "moderator"
            assert roles.get(juliet.bare) == "owner"

    subs = await benvolio.ok(
        "get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>"
    )
    seen = subscribers(subs.element, NS_PUBSUB)
    assert romeo.bare not in seen, subs
    assert set(seen.values()) == {"subscribed"}
    assert {juliet.bare, benvolio.bare, mercutio.bare} <= set(seen)
    affs = await benvolio.ok(
        "get", f"<pubsub xmlns='{NS_PUBSUB}'><affiliations node='{node}'/></pubsub>"
    )
    roles = affiliated(affs.element, NS_PUBSUB)
    assert tybalt.bare not in roles, affs
    assert roles.get(mercutio.bare) == "moderator"

    # Outsiders of a closed channel see no list; the banned user neither.
    for outsider in (romeo, tybalt):
        refused = await outsider.iq(
            "get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>"
        )
        assert refused.condition in ("forbidden", "not-authorized"), refused


# --- invite and deny ----------------------------------------------------------------------


async def test_an_invitation_reaches_the_invitee_and_lets_them_in(
    juliet: Client, paris: Client, unique: str
) -> None:
    node = topic(f"invite-{unique}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))
    await juliet.ok("set", set_subscription(node, paris.bare, "invited"))

    invitation = await paris.wait_for(subscription_event(node, paris.bare, "invited"))
    (element,) = invitation.findall("event:event/event:subscription", NS)
    assert element.get("invited-by") == juliet.bare
    listed = await paris.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions/></pubsub>")
    mine = [
        s
        for s in listed.findall("pubsub:pubsub/pubsub:subscriptions/pubsub:subscription")
        if s.get("node") == node
    ]
    assert [(s.get("subscription"), s.get("invited-by")) for s in mine] == [
        ("invited", juliet.bare)
    ]

    # Accepting the invitation: following is approved at once.
    reply = await paris.ok("set", subscribe(node, paris.bare))
    subscription = reply.find("pubsub:pubsub/pubsub:subscription")
    assert subscription is not None and subscription.get("subscription") == "subscribed", reply
    await paris.ok("get", items_query(node))


async def test_a_denied_follower_is_told_and_stays_out(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"deny-{unique}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))
    await post(juliet, node, f"private {unique}")
    await romeo.ok("set", subscribe(node, romeo.bare))
    await juliet.ok("set", set_subscription(node, romeo.bare, "none"))

    await romeo.wait_for(subscription_event(node, romeo.bare, "none"))
    refused = await romeo.iq("get", items_query(node))
    assert refused.condition == "forbidden", refused
    assert f"private {unique}" not in refused.text
    pending = await juliet.ok(
        "get", f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{node}'/></pubsub>"
    )
    assert romeo.bare not in subscribers(pending.element, NS_OWNER)


# --- threads and user-items --------------------------------------------------------------


async def test_threads_list_the_most_recently_active_first(juliet: Client, unique: str) -> None:
    node = topic(f"threads-{unique}")
    await juliet.ok("set", create(node))
    older = await post(juliet, node, f"older {unique}")
    newer = await post(juliet, node, f"newer {unique}")
    reply_id = await post(juliet, node, f"revives the older {unique}", in_reply_to=older)

    reply = await juliet.ok("get", f"<pubsub xmlns='{NS_PUBSUB}'><threads node='{node}'/></pubsub>")
    threads = reply.findall("pubsub:pubsub/pubsub:thread")
    assert [t.get("id") for t in threads] == [older, newer], reply
    assert all(t.get("node") == node and t.get("updated") for t in threads)
    first_items = [local_id(i.get("id", "")) for i in threads[0].findall("pubsub:item", NS)]
    assert set(first_items) == {older, reply_id}
    assert [local_id(i.get("id", "")) for i in threads[1].findall("pubsub:item", NS)] == [newer]
    assert rsm_result(reply.find("pubsub:pubsub"))[2] == 2


async def test_user_items_gathers_every_node_of_followed_channels(
    juliet: Client, romeo: Client, unique: str
) -> None:
    since = iso(datetime.now(UTC) - timedelta(seconds=1))
    channel = f"feed-{unique}@{TOPICS_DOMAIN}"
    node, status = posts(channel), f"/user/{channel}/status"
    await juliet.ok("set", create(node))
    await juliet.ok("set", create(status))
    await romeo.ok("set", subscribe(node, romeo.bare))
    in_posts = await post(juliet, node, f"in posts {unique}")
    in_status = await post(juliet, status, f"in status {unique}")

    reply = await romeo.ok(
        "get", f"<pubsub xmlns='{NS_PUBSUB}'><user-items xmlns='{NS_BC}' since='{since}'/></pubsub>"
    )
    assert in_posts in item_ids(reply, node), reply
    assert in_status in item_ids(reply, status), reply


# --- notifications of role and configuration changes ------------------------------------


async def test_role_changes_are_announced_and_bans_only_to_staff(
    juliet: Client, romeo: Client, benvolio: Client, tybalt: Client, unique: str
) -> None:
    node = topic(f"roles-{unique}")
    await juliet.ok("set", create(node))
    for follower in (romeo, benvolio, tybalt):
        await follower.ok("set", subscribe(node, follower.bare))

    await juliet.ok("set", set_affiliation(node, romeo.bare, "moderator"))

    await romeo.wait_for(affiliation_event(node, romeo.bare, "moderator"))
    await benvolio.wait_for(affiliation_event(node, romeo.bare, "moderator"))

    await juliet.ok("set", set_affiliation(node, tybalt.bare, "outcast"))
    await romeo.wait_for(affiliation_event(node, tybalt.bare, "outcast"))  # a moderator sees bans
    # The banned user is told.
    await tybalt.wait_for(affiliation_event(node, tybalt.bare, "outcast"))
    await benvolio.sync()
    assert benvolio.received(affiliation_event(node, tybalt.bare, "outcast")) == []


async def test_configuration_changes_reach_followers_with_the_new_form(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"reconfigured-{unique}")
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))
    description = f"Now about the orchard {unique}"
    await juliet.ok("set", configure_set(node, {"pubsub#description": description}))

    message = await romeo.wait_for(event_of("configuration", node))
    (configuration,) = message.findall("event:event/event:configuration", NS)
    form = configuration.find("data:x", NS)
    assert form is not None, ET.tostring(message, encoding="unicode")
    values = form_values(form)
    assert values["FORM_TYPE"] == [NS_NODE_CONFIG]
    assert values["pubsub#description"] == [description]
    assert values["buddycloud#channel_type"] == ["topic"]


# --- search ------------------------------------------------------------------------------


def search_form(fields: dict[str, str]) -> str:
    rendered = "".join(f"<field var='{k}'><value>{v}</value></field>" for k, v in fields.items())
    return (
        f"<query xmlns='{NS_SEARCH}'><x xmlns='{NS_DATA}' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_SEARCH}</value></field>"
        f"{rendered}</x></query>"
    )


async def test_search_form_and_pages(juliet: Client, romeo: Client, unique: str) -> None:
    form = await romeo.ok("get", f"<query xmlns='{NS_SEARCH}'/>")
    x = form.find("search:query/data:x")
    assert x is not None and x.get("type") == "form", form
    assert {"content", "author", "rpp", "page"} <= set(form_values(x))

    word = f"lark{unique}"
    node = posts(juliet.bare)
    published = {await post(juliet, node, f"the {word} number {n}") for n in range(5)}

    pages = []
    for page in (1, 2, 3):
        reply = await romeo.ok("set", search_form({"content": word, "rpp": "2", "page": str(page)}))
        rows = [form_values(row) for row in reply.findall("search:query/data:x/data:item")]
        pages.append([local_id(row["id"][0]) for row in rows])
        assert all(row["node"] == [node] for row in rows)
    assert [len(p) for p in pages] == [2, 2, 1], pages
    assert {i for p in pages for i in p} == published


# --- XEP-0313 with RSM ---------------------------------------------------------------------


async def test_mam_pages_a_node_with_rsm_and_says_when_complete(
    juliet: Client, romeo: Client, unique: str
) -> None:
    node = topic(f"archive-{unique}")
    await juliet.ok("set", create(node))
    published = [await post(juliet, node, f"archived {n} {unique}") for n in range(5)]

    seen: list[str] = []
    flags: list[str | None] = []
    after: str | None = None
    for page in range(3):
        query_id = f"q{page}-{unique}"
        fin = await romeo.ok(
            "set",
            f"<query xmlns='{NS_MAM}' queryid='{query_id}' node='{node}'>"
            f"{rsm(2, after=after)}</query>",
        )
        fin_el = fin.find("mam:fin")
        assert fin_el is not None, fin
        flags.append(fin_el.get("complete"))
        results = [
            result
            for message in romeo.received(mentions(query_id))
            for result in message.findall("mam:result", NS)
            if result.get("queryid") == query_id
        ]
        ids = [local_id(result.get("id", "")) for result in results]
        assert len(ids) <= 2
        for result in results:
            assert result.find("forward:forwarded/*/event:event", NS) is not None
        seen.extend(ids)
        first, last, count = rsm_result(fin_el)
        assert count == 5, fin
        after = last
    assert flags == ["false", "false", "true"], flags
    assert sorted(seen) == sorted(published) and len(seen) == 5
