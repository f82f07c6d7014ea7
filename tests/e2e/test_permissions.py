"""ProtoXEP tables 5 and 6 through the wire: who may post and who may read, per role.

One topic channel per access model, owned by Juliet, with one follower in every role:
Romeo moderator, Benvolio publisher (follower+post), Tybalt member (follower), Mercutio
not following (none), Paris banned (outcast). Every user then tries to post and to read;
the whole observed table is compared at once so a failure shows every difference.
"""

from __future__ import annotations

import pytest
from e2e.harness import (
    NS_BC,
    NS_OWNER,
    NS_PUBSUB,
    TOPICS_DOMAIN,
    Client,
    create,
    entry,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    set_affiliation,
    set_subscription,
    subscribe,
)

OK = "ok"
FORBIDDEN = "forbidden"

ROLES = ("owner", "moderator", "publisher", "member", "none", "outcast")

# Table 6 "create posts": producer, moderator and follower+post.
EXPECTED_PUBLISH = {
    "owner": OK,
    "moderator": OK,
    "publisher": OK,
    "member": FORBIDDEN,
    "none": FORBIDDEN,
    "outcast": FORBIDDEN,
}
# Table 5 "channel posts" and "followers, moderators and owner": everyone but banned users
# on open channels (table 5 prints "yes" for them; table 7 and the original servers refuse
# them, see docs/permissions.md "Banned users and open channels"); followers only on
# authorize channels; on local channels every user of the home domain (all ours are
# local) except banned ones.
EXPECTED_READ = {
    "open": dict.fromkeys(ROLES, OK) | {"outcast": FORBIDDEN},
    "authorize": dict.fromkeys(ROLES, OK) | {"none": FORBIDDEN, "outcast": FORBIDDEN},
    "local": dict.fromkeys(ROLES, OK) | {"outcast": FORBIDDEN},
}


def outcome(reply_ok: bool, condition: str | None) -> str:
    return OK if reply_ok else (condition or "error")


@pytest.mark.parametrize("access_model", ["open", "authorize", "local"])
async def test_publish_and_read_by_role(
    access_model: str,
    juliet: Client,
    romeo: Client,
    benvolio: Client,
    tybalt: Client,
    mercutio: Client,
    paris: Client,
    unique: str,
) -> None:
    node = posts(f"verona-{access_model}-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node, {"pubsub#access_model": access_model}))
    followers = {"moderator": romeo, "publisher": benvolio, "member": tybalt}
    for follower in followers.values():
        await follower.ok("set", subscribe(node, follower.bare))
        if access_model == "authorize":
            await juliet.ok("set", set_subscription(node, follower.bare, "subscribed"))
    for role in ("moderator", "publisher", "member"):
        await juliet.ok("set", set_affiliation(node, followers[role].bare, role))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))

    listed = await juliet.ok(
        "get", f"<pubsub xmlns='{NS_OWNER}'><affiliations node='{node}'/></pubsub>"
    )
    roles_on_wire = {
        a.get("jid"): a.get("affiliation")
        for a in listed.findall("owner:pubsub/owner:affiliations/owner:affiliation")
    }
    assert roles_on_wire == {
        juliet.bare: "owner",
        romeo.bare: "moderator",
        benvolio.bare: "publisher",
        tybalt.bare: "member",
        paris.bare: "outcast",
    }, listed

    users = {
        "owner": juliet,
        "moderator": romeo,
        "publisher": benvolio,
        "member": tybalt,
        "none": mercutio,
        "outcast": paris,
    }
    published: dict[str, str] = {}
    read: dict[str, str] = {}
    followers_read: dict[str, str] = {}
    for role, user in users.items():
        reply = await user.iq("set", publish(node, entry(f"{role} speaks {unique}")))
        published[role] = outcome(reply.ok, reply.condition)
        reply = await user.iq("get", items_request(node))
        read[role] = outcome(reply.ok, reply.condition)
        reply = await user.iq(
            "get", f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>"
        )
        followers_read[role] = outcome(reply.ok, reply.condition)

    assert published == EXPECTED_PUBLISH
    assert read == EXPECTED_READ[access_model]
    assert followers_read == EXPECTED_READ[access_model]


async def test_a_banned_user_cannot_follow_again(
    juliet: Client, paris: Client, unique: str
) -> None:
    node = posts(f"banned-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))
    reply = await paris.iq("set", subscribe(node, paris.bare))
    assert reply.condition == "forbidden", reply


async def test_the_banned_list_is_shown_to_moderators_only(
    juliet: Client, romeo: Client, paris: Client, tybalt: Client, unique: str
) -> None:
    """Table 5: the banned user list is visible to producer and moderators only."""
    node = posts(f"banlist-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    for follower in (romeo, tybalt):
        await follower.ok("set", subscribe(node, follower.bare))
    await juliet.ok("set", set_affiliation(node, romeo.bare, "moderator"))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))

    request = f"<pubsub xmlns='{NS_OWNER}'><affiliations node='{node}'/></pubsub>"
    as_moderator = await romeo.ok("get", request)
    assert paris.bare in as_moderator.text
    as_follower = await tybalt.iq("get", request)
    assert paris.bare not in as_follower.text


async def test_a_banned_user_reads_nothing_of_an_open_channel(
    juliet: Client, paris: Client, tybalt: Client, unique: str
) -> None:
    """Paris followed an open channel and read it; once banned, every read of its posts,
    replies and followers answers `forbidden`, and the firehose leaves the channel out."""
    node = posts(f"open-ban-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "open"}))
    post = published_id(await juliet.ok("set", publish(node, entry(f"balcony {unique}"))))
    await juliet.ok("set", publish(node, entry(f"reply {unique}", in_reply_to=post)))
    await paris.ok("set", subscribe(node, paris.bare))
    await paris.ok("get", items_request(node))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))

    reads = {
        "items": items_request(node),
        "one item": items_request(node, item_id=local_id(post)),
        "replies": f"<pubsub xmlns='{NS_PUBSUB}'><replies xmlns='{NS_BC}' node='{node}' "
        f"item_id='{local_id(post)}'/></pubsub>",
        "followers": f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>",
    }
    answers = {}
    for name, request in reads.items():
        await tybalt.ok("get", request)  # the channel is open to everyone else
        reply = await paris.iq("get", request)
        answers[name] = (reply.type, reply.condition)
    assert answers == dict.fromkeys(reads, ("error", "forbidden"))

    firehose = f"<pubsub xmlns='{NS_PUBSUB}'><items node='/firehose'/></pubsub>"
    shown = await tybalt.ok("get", firehose)
    assert unique in shown.text
    hidden = await paris.ok("get", firehose)
    assert unique not in hidden.text
