"""ProtoXEP 5.4 on the wire: following a channel follows every node of it, and the
follower's own lists say so, node by node (reference rows 23, 24, 26, 27, 31)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from xmpp.support import NS, Client
from xmpp.test_pubsub import JULIET_POSTS, OWNER, PUBSUB, register

from buddycloud.domain.model import NODE_PAYLOAD_TYPES, WELL_KNOWN_NODES

JULIET_NODES = [f"/user/juliet@capulet.lit/{name}" for name in sorted(WELL_KNOWN_NODES)]
NURSE_NODES = [f"/user/nurse@capulet.lit/{name}" for name in sorted(WELL_KNOWN_NODES)]
JULIET_STATUS = "/user/juliet@capulet.lit/status"
CLOSED = (
    f"{OWNER}<configure node='{{node}}'><x xmlns='{NS['x']}' type='submit'>"
    f"<field var='FORM_TYPE' type='hidden'><value>{NS['pubsub']}#node_config</value></field>"
    "<field var='pubsub#access_model'><value>authorize</value></field></x></configure></pubsub>"
)


def subscribe(node: str, jid: str) -> str:
    return f"{PUBSUB}<subscribe node='{node}' jid='{jid}'/></pubsub>"


def rows(reply: Element, name: str) -> list[dict[str, str]]:
    return [
        dict(e.attrib) for e in reply.findall(f"pubsub:pubsub/pubsub:{name}s/pubsub:{name}", NS)
    ]


async def test_the_subscriptions_list_names_every_node_of_a_followed_channel(
    juliet: Client, nurse: Client, romeo: Client
) -> None:
    """Romeo follows Juliet's open channel through its status node and asks to follow the
    Nurse's closed one: each node of both shows, with the channel's state."""
    await register(juliet)
    await register(nurse)
    await nurse.ok("set", CLOSED.format(node="/user/nurse@capulet.lit/posts"))
    await romeo.ok("set", subscribe(JULIET_STATUS, "romeo@capulet.lit"))
    await romeo.ok("set", subscribe("/user/nurse@capulet.lit/posts", "romeo@capulet.lit"))

    mine = await romeo.ok("get", f"{PUBSUB}<subscriptions/></pubsub>")
    assert rows(mine, "subscription") == [
        {"node": node, "jid": "romeo@capulet.lit", "subscription": "subscribed"}
        for node in JULIET_NODES
    ] + [
        {"node": node, "jid": "romeo@capulet.lit", "subscription": "pending"}
        for node in NURSE_NODES
    ]
    assert mine.findtext("pubsub:pubsub/rsm:set/rsm:count", namespaces=NS) == str(
        len(JULIET_NODES) + len(NURSE_NODES)
    )
    roles = await romeo.ok("get", f"{PUBSUB}<affiliations/></pubsub>")
    # Each row names the user too, as the Java server's did (reference row 26).
    assert rows(roles, "affiliation") == [
        {"node": node, "jid": "romeo@capulet.lit", "affiliation": "publisher"}
        for node in JULIET_NODES
    ] + [{"node": node, "jid": "romeo@capulet.lit", "affiliation": "none"} for node in NURSE_NODES]


async def test_rsm_pages_the_lists_node_by_node(
    juliet: Client, nurse: Client, romeo: Client
) -> None:
    await register(juliet)
    await register(nurse)
    for node in (JULIET_POSTS, "/user/nurse@capulet.lit/posts"):
        await romeo.ok("set", subscribe(node, "romeo@capulet.lit"))
    everything = JULIET_NODES + NURSE_NODES
    for name in ("subscription", "affiliation"):
        seen: list[str] = []
        after = ""
        while True:
            cursor = f"<after>{after}</after>" if after else ""
            page = await romeo.ok(
                "get",
                f"{PUBSUB}<{name}s/><set xmlns='{NS['rsm']}'><max>4</max>{cursor}</set></pubsub>",
            )
            nodes = [row["node"] for row in rows(page, name)]
            seen.extend(nodes)
            assert page.findtext("pubsub:pubsub/rsm:set/rsm:count", namespaces=NS) == str(
                len(everything)
            )
            if nodes:
                assert page.findtext("pubsub:pubsub/rsm:set/rsm:last", namespaces=NS) == nodes[-1]
            if len(nodes) < 4:
                break
            after = nodes[-1]
        assert seen == everything, name
    bad = await romeo.error(
        "get",
        f"{PUBSUB}<subscriptions/><set xmlns='{NS['rsm']}'><after>nurse</after></set></pubsub>",
    )
    assert bad[:2] == ("bad-request", "modify")


async def test_subscriptions_with_configuration_give_each_node_its_own_configuration(
    juliet: Client, romeo: Client
) -> None:
    await register(juliet)
    await romeo.ok("set", subscribe(JULIET_POSTS, "romeo@capulet.lit"))
    reply = await romeo.ok(
        "get", f"{PUBSUB}<subscriptions-with-configuration xmlns='{NS['bc']}'/></pubsub>"
    )
    found = {}
    for row in reply.findall(".//bc:subscription-with-configuration", NS):
        assert row.get("subscription") == "subscribed" and row.get("jid") == "romeo@capulet.lit"
        configure = row.find("bc:configure", NS)
        assert configure is not None and configure.get("node") == row.get("node")
        fields = {
            f.get("var"): f.findtext("x:value", namespaces=NS)
            for f in configure.findall("x:x/x:field", NS)
        }
        found[row.get("node")] = fields["pubsub#type"]
    assert found == {
        f"/user/juliet@capulet.lit/{name}": NODE_PAYLOAD_TYPES[name] for name in WELL_KNOWN_NODES
    }


async def test_the_followers_of_the_status_node_are_the_channels_followers(
    juliet: Client, nurse: Client, romeo: Client
) -> None:
    await register(juliet)
    await romeo.ok("set", subscribe(JULIET_POSTS, "romeo@capulet.lit"))
    for namespace in (PUBSUB, OWNER):
        listed = await nurse.ok(
            "get", f"{namespace}<subscriptions node='{JULIET_STATUS}'/></pubsub>"
        )
        block = listed[0][0]
        assert block.get("node") == JULIET_STATUS
        assert {(s.get("jid"), s.get("subscription")) for s in block} == {
            ("juliet@capulet.lit", "subscribed"),
            ("romeo@capulet.lit", "subscribed"),
        }
        roles = await nurse.ok("get", f"{namespace}<affiliations node='{JULIET_STATUS}'/></pubsub>")
        assert {(a.get("jid"), a.get("affiliation")) for a in roles[0][0]} == {
            ("juliet@capulet.lit", "owner"),
            ("romeo@capulet.lit", "publisher"),
        }


async def test_a_nodes_lists_name_the_node_on_every_row(juliet: Client, romeo: Client) -> None:
    """As the Java server's lists did (reference rows 24 and 27): a client that reads the
    node from each row, in either namespace, finds the node it asked about."""
    await register(juliet)
    await romeo.ok("set", subscribe(JULIET_STATUS, "romeo@capulet.lit"))
    for pubsub in (PUBSUB, OWNER):
        followers = await juliet.ok(
            "get", f"{pubsub}<subscriptions node='{JULIET_STATUS}'/></pubsub>"
        )
        namespace = "owner" if pubsub == OWNER else "pubsub"
        found = [
            dict(e.attrib)
            for e in followers.findall(
                f"{namespace}:pubsub/{namespace}:subscriptions/{namespace}:subscription", NS
            )
        ]
        assert found == [
            {"node": JULIET_STATUS, "jid": "juliet@capulet.lit", "subscription": "subscribed"},
            {"node": JULIET_STATUS, "jid": "romeo@capulet.lit", "subscription": "subscribed"},
        ], followers
        roles = await juliet.ok("get", f"{pubsub}<affiliations node='{JULIET_STATUS}'/></pubsub>")
        found = [
            dict(e.attrib)
            for e in roles.findall(
                f"{namespace}:pubsub/{namespace}:affiliations/{namespace}:affiliation", NS
            )
        ]
        assert found == [
            {"node": JULIET_STATUS, "jid": "juliet@capulet.lit", "affiliation": "owner"},
            {"node": JULIET_STATUS, "jid": "romeo@capulet.lit", "affiliation": "publisher"},
        ], roles
