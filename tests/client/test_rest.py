"""The client's REST calls against a real server: typed answers, paging, typed errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from http_support import DOMAIN, PASSWORD, Server

from buddycloud.client import (
    AccessModel,
    BadRequest,
    Client,
    Conflict,
    Follow,
    Follower,
    Following,
    Forbidden,
    NotFound,
    Role,
    Subscription,
    Unauthorized,
)

JULIET = f"juliet@{DOMAIN}"
ROMEO = f"romeo@{DOMAIN}"
PARIS = f"paris@{DOMAIN}"


async def test_registering_then_signing_in_with_the_new_password(guest: Client) -> None:
    jid = await guest.register("nurse", "a-nurse-password", "nurse@example.org")
    assert jid == f"nurse@{DOMAIN}"
    async with Client(guest.url, username="nurse", password="a-nurse-password") as nurse:
        await nurse.check()
        await nurse.change_password("another-password")
        await nurse.check()  # the client switched to the new password
    with pytest.raises(Conflict) as exists:
        await guest.register("nurse", "a-nurse-password", "nurse@example.org")
    assert (exists.value.status, exists.value.error) == (409, "account-exists")


async def test_wrong_credentials_raise_unauthorized_with_the_servers_error_name(
    server: Server,
) -> None:
    async with Client(server.url, username="juliet", password="not-her-password") as wrong:
        with pytest.raises(Unauthorized) as refused:
            await wrong.check()
    assert refused.value.status == 401
    assert refused.value.error == "not-authorized"
    assert refused.value.message


async def test_paging_through_posts_with_first_last_and_count(juliet: Client) -> None:
    made = [await juliet.publish(JULIET, f"line {n}") for n in range(5)]
    newest_first = [post.id for post in reversed(made)]

    first = await juliet.posts(JULIET, max=2)
    assert [post.id for post in first.items] == newest_first[:2]
    assert first.count == 5
    assert (first.first, first.last) == (newest_first[0], newest_first[1])

    second = await juliet.posts(JULIET, max=2, after=first.last)
    assert [post.id for post in second.items] == newest_first[2:4]
    back = await juliet.posts(JULIET, max=2, before=second.first)
    assert [post.id for post in back.items] == newest_first[:2]
    last = await juliet.posts(JULIET, max=2, before="")
    assert [post.id for post in last.items] == newest_first[3:]
    counted = await juliet.posts(JULIET, max=0)
    assert (counted.items, counted.count) == ([], 5)


async def test_a_post_is_read_replaced_and_retracted(juliet: Client, guest: Client) -> None:
    post = await juliet.publish(JULIET, "O Romeo, Romeo!", title="balcony")
    assert post.author == JULIET and post.content == "O Romeo, Romeo!"
    assert post.published.tzinfo is not None and post.media is None

    read = await guest.post(JULIET, post.id)
    assert (read.id, read.content) == (post.id, "O Romeo, Romeo!")

    status = await juliet.replace(JULIET, "at the window", node="status")
    again = await juliet.replace(JULIET, "asleep", node="status")
    statuses = await juliet.posts(JULIET, node="status")
    assert [one.id for one in statuses.items] == [again.id]
    assert status.id != again.id

    await juliet.retract(JULIET, post.id)
    with pytest.raises(NotFound) as gone:
        await guest.post(JULIET, post.id)
    assert (gone.value.status, gone.value.error) == (404, "item-not-found")


async def test_replies_threads_and_ratings(juliet: Client, romeo: Client) -> None:
    await romeo.follow(JULIET)
    parent = await juliet.publish(JULIET, "wherefore art thou")
    reply = await romeo.publish(JULIET, "here", reply_to=parent.id)
    assert reply.reply_to == parent.id
    rating = await romeo.rate(JULIET, parent.id, 5)
    assert rating.reply_to == parent.id

    replies = await juliet.replies(JULIET, parent.id)
    assert {one.id for one in replies.items} == {reply.id, rating.id}
    assert replies.count == 2
    [thread] = (await juliet.threads(JULIET)).items
    assert thread.id == parent.id
    assert {one.id for one in thread.posts} == {parent.id, reply.id, rating.id}

    with pytest.raises(BadRequest) as twice:
        await romeo.rate(JULIET, parent.id, 4)
    assert twice.value.status == 400
    with pytest.raises(BadRequest):
        await juliet.rate(JULIET, parent.id, 6)
    with pytest.raises(BadRequest):
        await romeo.publish(JULIET, "a reply to a reply", reply_to=reply.id)


async def test_a_topic_channel_is_created_configured_and_deleted(
    juliet: Client, romeo: Client, guest: Client
) -> None:
    topic = "balcony@topics.capulet.lit"
    made = await juliet.create_channel(topic, title="The balcony", access_model=AccessModel.OPEN)
    assert (made.title, made.access_model, made.channel_type) == (
        "The balcony",
        AccessModel.OPEN,
        "topic",
    )
    with pytest.raises(Conflict) as exists:
        await romeo.create_channel(topic)
    assert exists.value.error == "conflict"

    changed = await juliet.configure(
        topic,
        description="Where the lovers meet",
        default_affiliation=Role.PUBLISHER,
    )
    assert (changed.title, changed.description) == ("The balcony", "Where the lovers meet")
    assert changed.default_affiliation == Role.PUBLISHER
    assert await guest.metadata(topic) == changed
    with pytest.raises(Forbidden):
        await romeo.configure(topic, title="Mine now")

    await juliet.delete_channel(topic)
    with pytest.raises(NotFound):
        await guest.metadata(topic)


async def test_following_approving_roles_and_bans(
    juliet: Client, romeo: Client, paris: Client
) -> None:
    await juliet.configure(JULIET, access_model=AccessModel.AUTHORIZE)
    assert await romeo.follow(JULIET) == Subscription.PENDING
    assert await paris.follow(JULIET) == Subscription.PENDING
    asked = await juliet.follows(JULIET)
    assert Follow(ROMEO, Subscription.PENDING) in asked.items
    assert Following(JULIET, "posts", Subscription.PENDING) in (await romeo.following()).items

    assert await juliet.approve(JULIET, ROMEO) == Follow(ROMEO, Subscription.SUBSCRIBED)
    assert await juliet.refuse(JULIET, PARIS) == Follow(PARIS, Subscription.NONE)
    assert Following(JULIET, "posts", Role.PUBLISHER) in (await romeo.following()).items

    assert await juliet.set_role(JULIET, ROMEO, Role.MODERATOR) == Follower(ROMEO, Role.MODERATOR)
    followers = await juliet.followers(JULIET)
    assert set(followers.items) == {Follower(JULIET, Role.OWNER), Follower(ROMEO, Role.MODERATOR)}
    assert followers.count == 2

    await juliet.ban(JULIET, PARIS)
    with pytest.raises(Forbidden) as banned:
        await paris.follow(JULIET)
    assert banned.value.error == "banned"

    await romeo.unfollow(JULIET)
    with pytest.raises(Conflict) as again:
        await romeo.unfollow(JULIET)
    assert again.value.error == "not-subscribed"


async def test_search_and_sync(juliet: Client, romeo: Client, guest: Client) -> None:
    await juliet.configure(JULIET, title="Juliet's thoughts", description="roses and names")
    await romeo.follow(JULIET)
    before = datetime.now(UTC) - timedelta(seconds=1)
    post = await juliet.publish(JULIET, f"a rose by any other name, {ROMEO}")

    found = await guest.search_posts("rose name")
    assert [(one.id, one.channel, one.node) for one in found.items] == [(post.id, JULIET, "posts")]
    assert (found.index, found.count) == (0, 1)
    channels = await guest.search_channels("roses")
    assert [one.jid for one in channels.items] == [JULIET]
    assert channels.items[0].title == "Juliet's thoughts"

    news = await romeo.sync(before)
    assert [one.id for one in news[f"/user/{JULIET}/posts"]] == [post.id]
    summary = (await romeo.sync_summary(before))[f"/user/{JULIET}/posts"]
    assert (summary.total_count, summary.mentions_count) == (1, 1)
    assert summary.last_mention is not None


async def test_a_guest_is_refused_with_401_and_a_signed_in_user_with_403(
    juliet: Client, romeo: Client, guest: Client
) -> None:
    post = await juliet.publish(JULIET, "mine")
    with pytest.raises(Unauthorized):
        await guest.publish(JULIET, "anonymous")
    with pytest.raises(Forbidden) as refused:
        await romeo.retract(JULIET, post.id)
    assert (refused.value.status, refused.value.error) == (403, "forbidden")
    async with Client(guest.url, username="juliet", password=PASSWORD) as again:
        assert (await again.post(JULIET, post.id)).id == post.id
