"""Following over HTTP (reference 9.2 rows 16-21): /api/subscribed, a channel's followers and
their roles, and follow requests to approve."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from http_support import Server

from buddycloud import client
from buddycloud.domain.model import WELL_KNOWN_NODES, AccessModel, Role
from buddycloud.domain.permissions import Operation, may

SUBSCRIBERS = "/api/juliet@capulet.lit/subscribers/posts"
APPROVE = f"{SUBSCRIBERS}/approve"
KEY = "juliet@capulet.lit/posts"
JULIET = "juliet@capulet.lit"
ROMEO = "romeo@capulet.lit"


def in_juliets(state: client.Role | client.Subscription) -> client.Following:
    """What /api/subscribed shows for Juliet's posts node."""
    return client.Following(JULIET, "posts", state)


@pytest.fixture
async def cast(server: Server) -> Server:
    for user in ("juliet", "romeo", "nurse"):
        await server.add_user(user)
    return server


def every_node(channel: str, value: str) -> dict[str, str]:
    """What /api/subscribed shows for a channel: each of its nodes (ProtoXEP 5.4)."""
    return {f"{channel}/{node}": value for node in WELL_KNOWN_NODES}


async def test_following_and_unfollowing_through_subscribed(cast: Server) -> None:
    async with cast.client("romeo") as romeo:
        before = await romeo.get("/api/subscribed")
        followed = await romeo.post("/api/subscribed", json={KEY: "publisher"})
        after = await romeo.get("/api/subscribed")
        left = await romeo.post("/api/subscribed", json={KEY: "none"})
        again = await romeo.post("/api/subscribed", json={KEY: "none"})
        finally_ = await romeo.get("/api/subscribed")

    own = every_node("romeo@capulet.lit", "owner")
    assert before.json() == own
    assert followed.status_code == 200 and followed.json() == {KEY: "publisher"}
    assert after.json() == {**own, **every_node("juliet@capulet.lit", "publisher")}
    assert after.headers["x-count"] == str(2 * len(WELL_KNOWN_NODES))
    assert left.json() == {KEY: "none"}
    assert again.status_code == 409 and again.json()["error"] == "not-subscribed"
    assert finally_.json() == own


async def test_subscribed_is_paged_by_node(cast: Server) -> None:
    async with cast.client("romeo") as romeo:
        await romeo.post("/api/subscribed", json={KEY: "member"})
        first = await romeo.get("/api/subscribed", params={"max": "4"})
        rest = await romeo.get(
            "/api/subscribed", params={"max": "100", "after": first.headers["x-last"]}
        )
    assert len(first.json()) == 4 and first.headers["x-last"] == "/user/juliet@capulet.lit/posts"
    assert set(first.json()) | set(rest.json()) == set(
        every_node("juliet@capulet.lit", "member") | every_node("romeo@capulet.lit", "owner")
    )
    assert not set(first.json()) & set(rest.json())


async def test_a_closed_channel_leaves_the_request_pending_until_approved(cast: Server) -> None:
    async with cast.sdk("juliet") as juliet, cast.sdk("romeo") as romeo:
        closed = await juliet.configure(JULIET, access_model=client.AccessModel.AUTHORIZE)
        assert closed.access_model == client.AccessModel.AUTHORIZE
        assert await romeo.follow(JULIET) == client.Subscription.PENDING
        assert in_juliets(client.Subscription.PENDING) in (await romeo.following()).items
        with pytest.raises(client.Forbidden) as refused:
            await romeo.posts(JULIET)
        assert refused.value.error == "pending-subscription"
        waiting = await juliet.follows(JULIET)
        assert client.Follow(ROMEO, client.Subscription.PENDING) in waiting.items

        approved = await juliet.approve(JULIET, ROMEO)
        assert approved == client.Follow(ROMEO, client.Subscription.SUBSCRIBED)
        assert in_juliets(client.Role.PUBLISHER) in (await romeo.following()).items
        await romeo.posts(JULIET)


async def test_refusing_a_request(cast: Server) -> None:
    async with cast.sdk("juliet") as juliet, cast.sdk("romeo") as romeo:
        await juliet.configure(JULIET, access_model=client.AccessModel.AUTHORIZE)
        await romeo.follow(JULIET)
        assert await juliet.refuse(JULIET, ROMEO) == client.Follow(ROMEO, client.Subscription.NONE)
        assert all(shown.channel != JULIET for shown in (await romeo.following()).items)
        with pytest.raises(client.Forbidden):
            await romeo.approve(JULIET, "nurse@capulet.lit")


async def test_an_invitation_through_approve(cast: Server) -> None:
    async with cast.sdk("juliet") as juliet, cast.sdk("nurse") as nurse:
        await juliet.configure(JULIET, access_model=client.AccessModel.AUTHORIZE)
        invited = await juliet.set_subscriptions(
            JULIET, {"nurse@capulet.lit": client.Subscription.INVITED}
        )
        assert invited == [client.Follow("nurse@capulet.lit", client.Subscription.INVITED)]
        shown = await nurse.following()
        assert client.Following(JULIET, "posts", client.Subscription.INVITED) in shown.items
        # An invitation from the owner is an approval in advance.
        assert await nurse.follow(JULIET) == client.Role.PUBLISHER


async def test_roles_bans_and_who_sees_the_banned(cast: Server) -> None:
    async with (
        cast.client("juliet") as juliet,
        cast.client("romeo") as romeo,
        cast.client("nurse") as nurse,
        cast.client() as anonymous,
    ):
        await romeo.post("/api/subscribed", json={KEY: "member"})
        await nurse.post("/api/subscribed", json={KEY: "member"})
        changed = await juliet.post(
            SUBSCRIBERS, json={"nurse@capulet.lit": "moderator", "romeo@capulet.lit": "banned"}
        )
        by_owner = await juliet.get(SUBSCRIBERS)
        by_moderator = await nurse.get(SUBSCRIBERS)
        by_guest = await anonymous.get(SUBSCRIBERS)
        by_banned = await romeo.get(SUBSCRIBERS)
        own_role = await nurse.post(SUBSCRIBERS, json={"nurse@capulet.lit": "owner"})
        moderator_makes_moderator = await nurse.post(
            SUBSCRIBERS, json={"romeo@capulet.lit": "moderator"}
        )
        unknown_role = await juliet.post(SUBSCRIBERS, json={"romeo@capulet.lit": "king"})
        bad_jid = await juliet.post(SUBSCRIBERS, json={"not a jid": "member"})

    assert changed.status_code == 200
    assert changed.json() == {"nurse@capulet.lit": "moderator", "romeo@capulet.lit": "outcast"}
    everyone = {
        "juliet@capulet.lit": "owner",
        "nurse@capulet.lit": "moderator",
        "romeo@capulet.lit": "outcast",
    }
    assert by_owner.json() == everyone and by_moderator.json() == everyone
    assert by_owner.headers["x-count"] == "3"
    assert by_guest.json() == {k: v for k, v in everyone.items() if v != "outcast"}
    # A banned user reads what the engine's permission table lets banned users read.
    if may(Operation.READ_FOLLOWERS, Role.OUTCAST, AccessModel.OPEN, requester_is_local=True):
        assert by_banned.json() == by_guest.json()
    else:
        assert by_banned.status_code == 403 and by_banned.json()["error"] == "banned"
    assert own_role.status_code == 403
    assert moderator_makes_moderator.status_code == 403
    assert unknown_role.status_code == 400 and unknown_role.json()["error"] == "invalid-value"
    assert bad_jid.status_code == 400 and bad_jid.json()["error"] == "invalid-jid"


async def test_followers_are_paged_and_cursors_outside_ascii_percent_encoded(
    cast: Server,
) -> None:
    await cast.add_user("nérissa")
    async with cast.client("romeo") as romeo, cast.client("nurse") as nurse:
        await romeo.post("/api/subscribed", json={KEY: "member"})
        await nurse.post("/api/subscribed", json={KEY: "member"})
    async with cast.client("nérissa") as nerissa:
        await nerissa.post("/api/subscribed", json={KEY: "member"})
    async with cast.client() as anonymous:
        first = await anonymous.get(SUBSCRIBERS, params={"max": "2"})
        second = await anonymous.get(
            SUBSCRIBERS, params={"max": "2", "after": first.headers["x-last"]}
        )
        rest = await anonymous.get(
            SUBSCRIBERS, params={"max": "2", "after": unquote(second.headers["x-last"])}
        )
    assert list(first.json()) == ["juliet@capulet.lit", "nurse@capulet.lit"]
    assert list(second.json()) == ["nérissa@capulet.lit", "romeo@capulet.lit"]
    assert second.headers["x-first"] == "n%C3%A9rissa@capulet.lit"
    assert rest.json() == {}
    assert first.headers["x-count"] == second.headers["x-count"] == "4"


async def test_subscribed_takes_one_key_and_needs_a_sign_in(cast: Server) -> None:
    async with cast.client("romeo") as romeo, cast.client() as anonymous:
        two = await romeo.post(
            "/api/subscribed", json={KEY: "member", "nurse@capulet.lit/posts": "x"}
        )
        empty = await romeo.post("/api/subscribed", json={})
        not_a_node = await romeo.post("/api/subscribed", json={"juliet": "member"})
        number = await romeo.post("/api/subscribed", json={KEY: 3})
        missing = await romeo.post("/api/subscribed", json={"nobody@capulet.lit/posts": "member"})
        guest_read = await anonymous.get("/api/subscribed")
        guest_follow = await anonymous.post("/api/subscribed", json={KEY: "member"})
        guest_approve = await anonymous.get(APPROVE)
    assert two.status_code == empty.status_code == 400
    assert not_a_node.status_code == 400 and not_a_node.json()["error"] == "invalid-node"
    assert number.status_code == 400
    assert missing.status_code == 404
    assert guest_read.status_code == guest_follow.status_code == guest_approve.status_code == 401
