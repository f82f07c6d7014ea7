"""Unregistering through the wire (`jabber:iq:register` with `<remove/>`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from e2e.conftest import Connect
from e2e.harness import (
    NS,
    NS_REGISTER,
    NS_TOMBSTONES,
    REGISTER,
    Client,
    entry,
    has_retract,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    subscribe,
)

UNREGISTER = f"<query xmlns='{NS_REGISTER}'><remove/></query>"


def deletes(node: str) -> Callable[[ET.Element], bool]:
    def predicate(message: ET.Element) -> bool:
        return any(
            delete.get("node") == node for delete in message.findall("event:event/event:delete", NS)
        )

    return predicate


async def test_unregistering_deletes_the_channel_retracts_posts_and_tells_followers(
    connect: Connect, romeo: Client, unique: str
) -> None:
    rosaline = await connect("rosaline")
    await rosaline.ok("set", REGISTER)
    own = posts(rosaline.bare)
    romeos = posts(romeo.bare)
    await romeo.ok("set", subscribe(own, romeo.bare))
    await rosaline.ok("set", subscribe(romeos, rosaline.bare))
    reply = await rosaline.ok("set", publish(romeos, entry(f"farewell {unique}")))
    item_id = local_id(published_id(reply))

    await rosaline.ok("set", UNREGISTER)

    # Romeo, online and following her, hears that her channel went and her post with it.
    await romeo.wait_for(deletes(own))
    await romeo.wait_for(has_retract(romeos, item_id))
    gone = await romeo.iq("get", items_request(own))
    assert gone.condition == "item-not-found", gone
    kept = await romeo.ok("get", items_request(romeos, item_id=item_id))
    assert kept.find(f"pubsub:pubsub/pubsub:items/pubsub:item/{{{NS_TOMBSTONES}}}deleted-entry")
    assert f"farewell {unique}" not in ET.tostring(kept.element, encoding="unicode")
    # She no longer follows him.
    followers = await romeo.ok(
        "get",
        f"<pubsub xmlns='{NS['pubsub']}'><subscriptions node='{romeos}'/></pubsub>",
    )
    jids = {s.get("jid") for s in followers.findall("pubsub:pubsub/pubsub:subscriptions/*")}
    assert rosaline.bare not in jids

    # Again is harmless; registering again starts with an empty channel.
    await rosaline.ok("set", UNREGISTER)
    await rosaline.ok("set", REGISTER)
    fresh = await rosaline.ok("get", items_request(own))
    assert fresh.findall("pubsub:pubsub/pubsub:items/pubsub:item") == []
