"""Notifications through the XMPP server's XEP-0033 multicast service.

Prosody loads the project's module (buddycloud/prosody_modules), ejabberd its own
mod_multicast (tests/e2e/ejabberd.py). Every other end-to-end notification test goes
through the same path; these check what multicast could get wrong: a copy per resource,
none twice, none to anyone else, and no follower learning who else follows.
"""

from __future__ import annotations

from e2e.conftest import Connect, XmppServer
from e2e.harness import (
    Client,
    ServerProcess,
    create,
    entry,
    has_item,
    local_id,
    publish,
    published_id,
    subscribe,
    topic,
)

NS_ADDRESS = "http://jabber.org/protocol/address"


async def test_a_notification_reaches_each_online_follower_resource_once(
    server: ServerProcess,
    xmpp_server: XmppServer,
    connect: Connect,
    juliet: Client,
    romeo: Client,
    benvolio: Client,
    unique: str,
) -> None:
    service = "capulet.lit" if xmpp_server.name == "prosody" else "multicast.capulet.lit"
    await server.wait_for_log(
        f"notifications go through the multicast service {service},", timeout=15.0
    )
    node = topic(f"multicast-{unique}")  # a new channel: juliet and romeo, no one else
    await juliet.ok("set", create(node))
    await romeo.ok("set", subscribe(node, romeo.bare))
    romeo_phone = await connect("romeo", resource="phone")
    await romeo_phone.sync()

    reply = await juliet.ok("set", publish(node, entry(f"To all of you {unique}")))
    item_id = local_id(published_id(reply))

    for follower in (juliet, romeo, romeo_phone):
        message = await follower.wait_for(has_item(node, item_id))
        assert message.get("to") == follower.full
        assert message.get("from") == "channels.capulet.lit"
        assert message.get("type") == "headline"
        # bcc addresses are removed: no follower learns who else follows
        assert message.find(f"{{{NS_ADDRESS}}}addresses") is None
    for client in (juliet, romeo, romeo_phone, benvolio):
        await client.sync()
        assert client.received(has_item(node, item_id)) == [], client.full
