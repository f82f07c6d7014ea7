"""A ban holds on the wire: every read of an open channel answers `forbidden` to a banned
user, and the firehose leaves the channel out for them (docs/permissions.md)."""

from __future__ import annotations

import pytest
from xmpp.support import NS, Client
from xmpp.test_pubsub import JULIET_POSTS, OWNER, PUBSUB, mam_query, publish_xml, register

BC = f"xmlns='{NS['bc']}'"
JULIET_STATUS = "/user/juliet@capulet.lit/status"

READS = {
    "items": f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>",
    "status items": f"{PUBSUB}<items node='{JULIET_STATUS}'/></pubsub>",
    "one item": f"{PUBSUB}<items node='{JULIET_POSTS}'><item id='{{post}}'/></items></pubsub>",
    "replies": f"{PUBSUB}<replies {BC} node='{JULIET_POSTS}' item_id='{{post}}'/></pubsub>",
    "thread": f"{PUBSUB}<thread {BC} node='{JULIET_POSTS}' item_id='{{post}}'/></pubsub>",
    "threads": f"{PUBSUB}<threads node='{JULIET_POSTS}'/></pubsub>",
    "followers": f"{PUBSUB}<subscriptions node='{JULIET_POSTS}'/></pubsub>",
    "roles": f"{OWNER}<affiliations node='{JULIET_POSTS}'/></pubsub>",
    "node items (disco)": f"<query xmlns='{NS['items']}' node='{JULIET_POSTS}'/>",
}
MAM = mam_query("", node=JULIET_POSTS)


async def banned(juliet: Client, romeo: Client) -> str:
    """Juliet's open channel with a post; Romeo followed it and is now banned."""
    await register(juliet)
    reply = await juliet.ok("set", publish_xml(JULIET_POSTS, "Wherefore art thou"))
    item = reply.find("pubsub:pubsub/pubsub:publish/pubsub:item", NS)
    assert item is not None
    await romeo.ok(
        "set", f"{PUBSUB}<subscribe node='{JULIET_POSTS}' jid='romeo@capulet.lit'/></pubsub>"
    )
    await romeo.ok("get", f"{PUBSUB}<items node='{JULIET_POSTS}'/></pubsub>")
    await juliet.ok(
        "set",
        f"{OWNER}<affiliations node='{JULIET_POSTS}'>"
        "<affiliation jid='romeo@capulet.lit' affiliation='outcast'/></affiliations></pubsub>",
    )
    return item.get("id", "").rpartition(",")[2]


@pytest.mark.parametrize("name", list(READS))
async def test_a_banned_user_is_refused_every_read_of_an_open_channel(
    juliet: Client, romeo: Client, nurse: Client, name: str
) -> None:
    post = await banned(juliet, romeo)
    request = READS[name].format(post=post)
    await nurse.ok("get", request)  # anyone else may read it: the channel is open
    condition, error_type, app = await romeo.error("get", request)
    assert (condition, error_type, app) == ("forbidden", "auth", None)


async def test_a_banned_user_gets_no_archive_of_an_open_channel(
    juliet: Client, romeo: Client, nurse: Client
) -> None:
    await banned(juliet, romeo)
    await nurse.ok("set", MAM)
    assert (await romeo.error("set", MAM))[:2] == ("forbidden", "auth")


async def test_the_firehose_leaves_out_the_channel_a_user_is_banned_from(
    juliet: Client, romeo: Client, nurse: Client
) -> None:
    await banned(juliet, romeo)
    request = f"{PUBSUB}<items node='/firehose'/></pubsub>"
    seen = await nurse.ok("get", request)
    assert [i.get("node") for i in seen.findall("pubsub:pubsub/pubsub:items", NS)] == [JULIET_POSTS]
    hidden = await romeo.ok("get", request)
    assert hidden.findall("pubsub:pubsub/pubsub:items", NS) == []
    assert hidden.findtext("pubsub:pubsub/rsm:set/rsm:count", namespaces=NS) == "0"
