"""Items: publishing and completion, updates, threads, references, ratings, retraction, reads."""

from __future__ import annotations

import pytest
from engine_support import BENVOLIO, JULIET, NURSE, ROMEO, TYBALT, FakeClock, Recorder, posts, text

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import (
    BadRequest,
    ClosedNode,
    Forbidden,
    InvalidPayload,
    ItemNotFound,
    PayloadTooLarge,
    RatingError,
    RecentItemsError,
    ThreadError,
)
from buddycloud.domain.events import ItemPublished, ItemRetracted
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    NodeId,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
)
from buddycloud.services.config import ConfigUpdate
from buddycloud.services.engine import Engine

ALL = PageRequest()


async def channel_with_followers(engine: Engine) -> None:
    await engine.register(JULIET)
    for user in (ROMEO, NURSE, TYBALT):
        await engine.subscribe(user, posts(JULIET), user)
    await engine.set_role(JULIET, posts(JULIET), NURSE, Role.MODERATOR)
    await engine.set_role(JULIET, posts(JULIET), TYBALT, Role.MEMBER)


async def test_the_server_completes_a_minimal_entry_as_in_example_13(
    engine: Engine, clock: FakeClock, recorder: Recorder
) -> None:
    await channel_with_followers(engine)
    item = await engine.publish(
        Jid.parse("romeo@capulet.lit/phone"),
        posts(JULIET),
        text("O Romeo, Romeo! wherefore art thou Romeo?"),
    )
    entry = item.entry
    assert entry is not None
    assert entry.id == item.id and len(item.id) == 32
    assert entry.author == ROMEO
    assert entry.published == entry.updated == item.updated
    assert entry.title == "Post"
    assert entry.verb == "post" and entry.object_type == "post"
    stored = await engine.get_item(TYBALT, posts(JULIET), item.id)
    assert stored == item
    [published] = recorder.of(ItemPublished)
    assert set(published.audience) == {JULIET, ROMEO, NURSE, TYBALT}  # type: ignore[union-attr]


async def test_clients_cannot_forge_author_or_dates(engine: Engine) -> None:
    await channel_with_followers(engine)
    item = await engine.publish(
        ROMEO, posts(JULIET), text("hi", verb="rated", object_type="person")
    )
    assert item.entry is not None
    assert item.entry.author == ROMEO and item.entry.verb == "post"


async def test_only_posters_publish(engine: Engine) -> None:
    await channel_with_followers(engine)
    with pytest.raises(Forbidden):
        await engine.publish(TYBALT, posts(JULIET), text("a member may not post"))
    with pytest.raises(Forbidden):
        await engine.publish(BENVOLIO, posts(JULIET), text("a stranger may not post"))
    assert (await engine.get_items(JULIET, posts(JULIET), ALL)).count == 0


async def test_an_item_is_updated_only_by_its_author(engine: Engine, clock: FakeClock) -> None:
    await channel_with_followers(engine)
    first = await engine.publish(ROMEO, posts(JULIET), text("draft"))
    clock.advance(seconds=5)
    updated = await engine.publish(ROMEO, posts(JULIET), text("final"), item_id=first.id)
    assert updated.entry is not None and first.entry is not None
    assert updated.entry.content == "final"
    assert updated.entry.published == first.entry.published
    assert updated.updated > first.updated
    with pytest.raises(Forbidden):
        await engine.publish(NURSE, posts(JULIET), text("hijack"), item_id=first.id)
    page = await engine.get_items(JULIET, posts(JULIET), ALL)
    assert [i.entry.content for i in page.items if i.entry] == ["final"]


async def test_bad_payloads_are_refused_and_nothing_is_written(engine: Engine) -> None:
    await channel_with_followers(engine)
    with pytest.raises(InvalidPayload) as no_content:
        await engine.publish(ROMEO, posts(JULIET), EntryDraft(content=None))
    assert no_content.value.condition == "content-element-required"
    with pytest.raises(InvalidPayload):
        await engine.publish(ROMEO, posts(JULIET), text("x", content_type="video"))
    with pytest.raises(PayloadTooLarge):
        await engine.publish(ROMEO, posts(JULIET), EntryDraft(content="x", byte_size=5000))
    with pytest.raises(InvalidPayload):
        await engine.publish(ROMEO, posts(JULIET), RawPayload("<geoloc/>", "urn:x"))
    with pytest.raises(InvalidPayload):
        await engine.publish(JULIET, NodeId(JULIET, "geoloc"), text("not a location"))
    assert (await engine.get_items(JULIET, posts(JULIET), ALL)).count == 0


async def test_threads_are_one_level_deep_and_replies_bump_the_thread(
    engine: Engine, clock: FakeClock
) -> None:
    await channel_with_followers(engine)
    parent = await engine.publish(JULIET, posts(JULIET), text("parent"))
    other = await engine.publish(JULIET, posts(JULIET), text("newer post"))
    clock.advance(seconds=1)
    global_ref = f"tag:channels.capulet.lit,/user/juliet@capulet.lit/posts,{parent.id}"
    reply = await engine.publish(ROMEO, posts(JULIET), text("reply", in_reply_to=global_ref))
    assert reply.in_reply_to == parent.id
    assert reply.entry is not None and reply.entry.object_type == "comment"
    bumped = await engine.get_item(JULIET, posts(JULIET), parent.id)
    assert bumped.updated == reply.updated > other.updated
    parents = await engine.get_items(JULIET, posts(JULIET), ALL, parent_only=True)
    assert [i.id for i in parents.items] == [parent.id, other.id]
    with pytest.raises(ThreadError) as deep:
        await engine.publish(ROMEO, posts(JULIET), text("too deep", in_reply_to=reply.id))
    assert deep.value.condition == "max-thread-depth-exceeded"
    with pytest.raises(ThreadError) as missing:
        await engine.publish(ROMEO, posts(JULIET), text("orphan", in_reply_to="nope"))
    assert missing.value.condition == "parent-item-not-found"


async def test_references_stay_inside_their_thread(engine: Engine) -> None:
    await channel_with_followers(engine)
    parent = await engine.publish(JULIET, posts(JULIET), text("parent"))
    first = await engine.publish(ROMEO, posts(JULIET), text("one", in_reply_to=parent.id))
    elsewhere = await engine.publish(JULIET, posts(JULIET), text("another thread"))
    ref = await engine.publish(
        NURSE, posts(JULIET), text("re: one", in_reply_to=parent.id, target=first.id)
    )
    assert ref.entry is not None and ref.entry.target == first.id
    cases = [
        (text("x", target=first.id), "missing-in-reply-to"),
        (text("x", in_reply_to=parent.id, target="nothing"), "targeted-item-not-found"),
        (text("x", in_reply_to=parent.id, target=elsewhere.id), "target-outside-thread"),
    ]
    for draft, condition in cases:
        with pytest.raises(ThreadError) as caught:
            await engine.publish(NURSE, posts(JULIET), draft)
        assert caught.value.condition == condition


async def test_ratings_and_their_four_error_cases(engine: Engine) -> None:
    await channel_with_followers(engine)
    post = await engine.publish(JULIET, posts(JULIET), text("rate me"))

    def rating(value: str, target: str | None = None) -> EntryDraft:
        return EntryDraft(
            content="ignored", in_reply_to=post.id, target=target or post.id, rating=value
        )

    rated = await engine.publish(ROMEO, posts(JULIET), rating("5.0"))
    assert rated.entry is not None
    assert (rated.entry.verb, rated.entry.content, rated.entry.rating) == ("rated", "rating:5.0", 5)
    for value, condition, target in [
        ("five", "invalid-rating", None),
        ("6", "rating-out-of-range", None),
        ("2.5", "rating-out-of-range", None),
        ("0", "rating-out-of-range", None),
        ("9" * 400, "rating-out-of-range", None),  # parses to infinity
        ("4", "invalid-rating-request", rated.id),
        ("4", "item-already-rated", None),
    ]:
        with pytest.raises(RatingError) as caught:
            await engine.publish(ROMEO, posts(JULIET), rating(value, target))
        assert caught.value.condition == condition
    await engine.publish(NURSE, posts(JULIET), rating("3"))  # one per user and post


async def test_authors_retract_their_own_posts_and_moderators_any(
    engine: Engine, recorder: Recorder
) -> None:
    await channel_with_followers(engine)
    mine = await engine.publish(ROMEO, posts(JULIET), text("mine"))
    theirs = await engine.publish(JULIET, posts(JULIET), text("theirs"))
    with pytest.raises(Forbidden):
        await engine.retract(ROMEO, posts(JULIET), theirs.id)
    with pytest.raises(Forbidden):
        await engine.retract(TYBALT, posts(JULIET), mine.id)
    dead = await engine.retract(ROMEO, posts(JULIET), mine.id)
    assert dead.deleted and dead.entry is not None and dead.entry.content == ""
    await engine.retract(NURSE, posts(JULIET), theirs.id)
    with pytest.raises(ItemNotFound):
        await engine.retract(NURSE, posts(JULIET), theirs.id)
    [first, second] = recorder.of(ItemRetracted)
    assert first.tombstone.id == mine.id  # type: ignore[union-attr]
    stored = await engine.get_item(JULIET, posts(JULIET), mine.id)
    assert stored.deleted and stored.entry is not None and stored.entry.content == ""


async def test_pages_of_items_newest_first_with_rsm(engine: Engine) -> None:
    await channel_with_followers(engine)
    ids = [(await engine.publish(JULIET, posts(JULIET), text(f"p{n}"))).id for n in range(7)]
    newest_first = list(reversed(ids))
    first = await engine.get_items(ROMEO, posts(JULIET), PageRequest(max=3))
    assert [i.id for i in first.items] == newest_first[:3]
    assert (first.count, first.first, first.last) == (7, newest_first[0], newest_first[2])
    second = await engine.get_items(ROMEO, posts(JULIET), PageRequest(max=3, after=first.last))
    assert [i.id for i in second.items] == newest_first[3:6]
    back = await engine.get_items(ROMEO, posts(JULIET), PageRequest(max=3, before=second.first))
    assert [i.id for i in back.items] == newest_first[:3]
    with pytest.raises(ItemNotFound):
        await engine.get_items(ROMEO, posts(JULIET), PageRequest(max=3, after="unknown"))


async def test_replies_thread_and_threads(engine: Engine) -> None:
    await channel_with_followers(engine)
    a = await engine.publish(JULIET, posts(JULIET), text("a"))
    b = await engine.publish(JULIET, posts(JULIET), text("b"))
    r1 = await engine.publish(ROMEO, posts(JULIET), text("r1", in_reply_to=a.id))
    r2 = await engine.publish(NURSE, posts(JULIET), text("r2", in_reply_to=a.id))
    replies = await engine.get_replies(TYBALT, posts(JULIET), a.id, ALL)
    assert [i.id for i in replies.items] == [r2.id, r1.id]
    thread = await engine.get_thread(TYBALT, posts(JULIET), a.id, ALL)
    assert [i.id for i in thread.items] == [a.id, r2.id, r1.id]
    threads = await engine.get_threads(TYBALT, posts(JULIET), ALL)
    assert [t.id for t in threads.items] == [a.id, b.id]
    assert [i.id for i in threads.items[0].items][0] == a.id
    with pytest.raises(ItemNotFound):
        await engine.get_replies(TYBALT, posts(JULIET), "missing", ALL)
    # A page of the thread that ended right after its parent continues with the replies,
    # whichever form of the parent's id names it.
    for cursor in (a.id, f"tag:channels.capulet.lit,{posts(JULIET)},{a.id}"):
        after_parent = await engine.get_thread(
            TYBALT, posts(JULIET), a.id, PageRequest(max=1, after=cursor)
        )
        assert [i.id for i in after_parent.items] == [r2.id]
        assert after_parent.cursor_of is not None


async def test_the_firehose_shows_what_anyone_may_read_without_following(
    engine: Engine, clock: FakeClock
) -> None:
    for user in (JULIET, ROMEO, NURSE):
        await engine.register(user)
    await engine.configure(NURSE, posts(NURSE), ConfigUpdate(access_model=AccessModel.LOCAL))
    await engine.configure(ROMEO, posts(ROMEO), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    await engine.subscribe(JULIET, posts(ROMEO), JULIET)
    await engine.set_subscription(ROMEO, posts(ROMEO), JULIET, SubscriptionState.SUBSCRIBED)
    # The reply below moves its parent up to its own time: ids decide the tie (newest first).
    public = await engine.publish(JULIET, posts(JULIET), text("for everyone"), "p1")
    clock.advance(seconds=1)
    local = await engine.publish(NURSE, posts(NURSE), text("for the household"))
    clock.advance(seconds=1)
    await engine.publish(ROMEO, posts(ROMEO), text("for followers"))
    clock.advance(seconds=1)
    await engine.subscribe(NURSE, posts(JULIET), NURSE)
    reply = await engine.publish(NURSE, posts(JULIET), text("a reply", in_reply_to=public.id), "r1")
    clock.advance(seconds=1)
    retracted = await engine.publish(JULIET, posts(JULIET), text("gone soon"))
    await engine.retract(JULIET, posts(JULIET), retracted.id)

    # A closed channel stays out even for its followers: the firehose is the public stream.
    seen = await engine.firehose(JULIET, ALL)
    assert [i.id for i in seen.items] == [reply.id, public.id, local.id]
    # `local` channels are for users of this domain only.
    remote = await engine.firehose(BENVOLIO, ALL)
    assert [i.id for i in remote.items] == [reply.id, public.id]
    parents = await engine.firehose(JULIET, ALL, parent_only=True)
    assert [i.id for i in parents.items] == [public.id, local.id]
    # Cursors name items by "<node>,<id>" or by their global tag id.
    first = await engine.firehose(JULIET, PageRequest(max=1))
    assert first.last == f"{posts(JULIET)},{reply.id}" and first.count == 3
    tag = f"tag:channels.capulet.lit,{posts(JULIET)},{reply.id}"
    for cursor in (first.last, tag):
        rest = await engine.firehose(JULIET, PageRequest(max=5, after=cursor))
        assert [i.id for i in rest.items] == [public.id, local.id]
    with pytest.raises(ItemNotFound):
        await engine.firehose(JULIET, PageRequest(after=f"{posts(JULIET)},missing"))


async def test_recent_items_across_followed_channels_and_their_errors(
    engine: Engine, clock: FakeClock
) -> None:
    await engine.register(JULIET)
    await engine.register(ROMEO)
    await engine.register(NURSE)
    await engine.subscribe(JULIET, posts(ROMEO), JULIET)
    old = await engine.publish(ROMEO, posts(ROMEO), text("old"))
    since = clock.now().isoformat()
    romeo_posts = [await engine.publish(ROMEO, posts(ROMEO), text(f"r{n}")) for n in range(3)]
    await engine.publish(ROMEO, posts(ROMEO), text("reply", in_reply_to=romeo_posts[0].id))
    mine = await engine.publish(JULIET, posts(JULIET), text("mine"))
    await engine.publish(NURSE, posts(NURSE), text("not followed"))
    page = await engine.recent_items(
        JULIET, since=since, max_per_node="2", parent_only=True, page=ALL
    )
    ids = [i.id for i in page.items]
    assert mine.id in ids and old.id not in ids
    assert len([i for i in page.items if i.node == posts(ROMEO)]) == 2
    assert all(i.in_reply_to is None for i in page.items)
    for since_value, max_value, condition in [
        (since, None, "max-required"),
        (since, "0", "invalid-max-value-provided"),
        (since, "many", "invalid-max-value-provided"),
        (None, "5", "since-required"),
        ("last tuesday", "5", "invalid-since-value-provided"),
    ]:
        with pytest.raises(RecentItemsError) as caught:
            await engine.recent_items(
                JULIET, since=since_value, max_per_node=max_value, parent_only=False, page=ALL
            )
        assert caught.value.condition == condition


async def test_the_user_feed_covers_every_followed_node(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.register(ROMEO)
    await engine.subscribe(JULIET, posts(ROMEO), JULIET)
    status = await engine.publish(ROMEO, NodeId(ROMEO, "status"), text("happy"))
    post = await engine.publish(ROMEO, posts(ROMEO), text("post"))
    feed = await engine.user_items(JULIET, since=None, parent_only=False, page=ALL)
    assert {i.id for i in feed.items} >= {status.id, post.id}


async def test_search_finds_only_what_the_requester_may_read(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.register(ROMEO)
    await engine.configure(ROMEO, posts(ROMEO), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    public = await engine.publish(JULIET, posts(JULIET), text("wherefore art thou"))
    secret = await engine.publish(ROMEO, posts(ROMEO), text("wherefore secretly"))
    found = await engine.search(NURSE, words=["wherefore"], author=None, page=ALL)
    assert [i.id for i in found.items] == [public.id]
    found_by_romeo = await engine.search(ROMEO, words=["wherefore"], author=None, page=ALL)
    assert {i.id for i in found_by_romeo.items} == {public.id, secret.id}
    by_author = await engine.search(ROMEO, words=[], author=JULIET, page=ALL)
    assert [i.id for i in by_author.items] == [public.id]
    with pytest.raises(BadRequest):
        await engine.search(ROMEO, words=[" "], author=None, page=ALL)


async def test_closed_channels_hide_their_items(engine: Engine) -> None:
    await engine.register(JULIET)
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    item = await engine.publish(JULIET, posts(JULIET), text("private"))
    with pytest.raises(ClosedNode):
        await engine.get_item(ROMEO, posts(JULIET), item.id)
    with pytest.raises(ClosedNode):
        await engine.retract(ROMEO, posts(JULIET), "whatever")


async def test_a_retracted_rating_can_be_given_again(engine: Engine) -> None:
    await channel_with_followers(engine)
    post = await engine.publish(JULIET, posts(JULIET), text("rate me"))
    draft = EntryDraft(content="", in_reply_to=post.id, target=post.id, rating="4")
    rating = await engine.publish(ROMEO, posts(JULIET), draft)
    await engine.retract(ROMEO, posts(JULIET), rating.id)
    again = await engine.publish(ROMEO, posts(JULIET), draft)
    assert again.entry is not None and again.entry.rating == 4


async def test_replace_latest_keeps_one_current_item(engine: Engine, recorder: Recorder) -> None:
    """Reference row 10 (`PUT .../content/<node>`): the newest item goes, the new one comes;
    a node that keeps one item (status) replaces it in one write."""
    await channel_with_followers(engine)
    first = await engine.publish(JULIET, posts(JULIET), text("first"))
    recorder.clear()
    second = await engine.replace_latest(JULIET, posts(JULIET), text("second"))

    live = [i for i in (await engine.get_items(ROMEO, posts(JULIET), ALL)).items if not i.deleted]
    assert [i.id for i in live] == [second.id]
    retracted, published = recorder.events
    assert isinstance(retracted, ItemRetracted) and retracted.tombstone.id == first.id
    assert isinstance(published, ItemPublished) and published.item.id == second.id
    assert retracted.tombstone.updated < published.item.updated

    status = NodeId(JULIET, "status")
    await engine.replace_latest(JULIET, status, text("away"))
    now = await engine.replace_latest(JULIET, status, text("back"))
    assert [i.id for i in (await engine.get_items(ROMEO, status, ALL)).items] == [now.id]


async def test_replace_latest_changes_nothing_when_the_new_item_is_refused(
    engine: Engine,
) -> None:
    await channel_with_followers(engine)
    owners = await engine.publish(JULIET, posts(JULIET), text("the owner's"))
    with pytest.raises(ThreadError):
        await engine.replace_latest(JULIET, posts(JULIET), text("x", in_reply_to="missing"))
    with pytest.raises(InvalidPayload):
        await engine.replace_latest(JULIET, posts(JULIET), RawPayload("<geoloc xmlns='g'/>", "g"))
    # Romeo may post, but not delete the owner's post.
    with pytest.raises(Forbidden):
        await engine.replace_latest(ROMEO, posts(JULIET), text("mine now"))
    with pytest.raises(Forbidden):
        await engine.replace_latest(TYBALT, posts(JULIET), text("a follower's"))
    live = [i for i in (await engine.get_items(ROMEO, posts(JULIET), ALL)).items if not i.deleted]
    assert [i.id for i in live] == [owners.id]
