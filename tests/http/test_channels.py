"""Channels over HTTP (reference 9.2 rows 14-15, 22-25, 28): metadata, topic channels,
application nodes, and search."""

from __future__ import annotations

import pytest
from http_support import Server

METADATA = "/api/juliet@capulet.lit/metadata/posts"
TOPIC = "/api/balcony@topics.capulet.lit"


@pytest.fixture
async def cast(server: Server) -> Server:
    for user in ("juliet", "romeo"):
        await server.add_user(user)
    return server


async def test_metadata_is_read_by_anyone_and_changed_by_the_owner(cast: Server) -> None:
    async with cast.client() as anonymous, cast.client("juliet") as juliet:
        before = await anonymous.get(METADATA)
        changed = await juliet.post(
            METADATA,
            json={
                "title": "Juliet's balcony",
                "description": "nightly thoughts",
                "access_model": "whitelist",
                "default_affiliation": "follower",
                "ignored": "as in the original",
            },
        )
        after = await anonymous.get(METADATA)
        partial = await juliet.post(METADATA, json={"title": "Balcony", "description": None})
        bad_model = await juliet.post(METADATA, json={"access_model": "everyone"})
        bad_type = await juliet.post(METADATA, json={"title": 7})
        too_long = await juliet.post(METADATA, json={"title": "x" * 129})
        not_object = await juliet.post(METADATA, json=["title"])
        no_node = await anonymous.get("/api/juliet@capulet.lit/metadata/nothing")

    assert before.status_code == 200
    assert set(before.json()) == {
        "title",
        "description",
        "access_model",
        "creation_date",
        "channel_type",
        "default_affiliation",
    }
    assert before.json()["channel_type"] == "personal"
    assert changed.status_code == 200 and changed.json() == after.json()
    assert after.json()["title"] == "Juliet's balcony"
    assert after.json()["description"] == "nightly thoughts"
    assert after.json()["access_model"] == "authorize"
    assert after.json()["default_affiliation"] == "member"
    assert after.json()["creation_date"] == before.json()["creation_date"]
    assert partial.json()["title"] == "Balcony"
    assert partial.json()["description"] == "nightly thoughts"
    for bad in (bad_model, bad_type, too_long, not_object):
        assert bad.status_code == 400, bad.text
    assert bad_model.json()["error"] == "invalid-value"
    assert no_node.status_code == 404


async def test_only_the_owner_and_moderators_change_metadata(cast: Server) -> None:
    async with cast.client() as anonymous, cast.client("romeo") as romeo:
        guest = await anonymous.post(METADATA, json={"title": "mine"})
        await romeo.post("/api/subscribed", json={"juliet@capulet.lit/posts": "member"})
        follower = await romeo.post(METADATA, json={"title": "mine"})
    assert guest.status_code == 401
    assert follower.status_code == 403


async def test_topic_channels_are_created_and_deleted(cast: Server) -> None:
    async with cast.client("juliet") as juliet, cast.client("romeo") as romeo:
        created = await juliet.post(TOPIC, json={"title": "The balcony"})
        again = await juliet.post(TOPIC)
        bare = await juliet.post("/api/orchard@topics.capulet.lit")
        someone_elses = await juliet.post("/api/romeo@capulet.lit")
        elsewhere = await juliet.post("/api/garden@verona.lit")
        subscribed = await juliet.get("/api/subscribed")
        posted = await juliet.post(f"{TOPIC}/content/posts", json={"content": "hello"})
        not_owner = await romeo.delete(TOPIC)
        deleted = await juliet.delete(TOPIC)
        gone = await romeo.get(f"{TOPIC}/metadata/posts")
        gone_again = await juliet.delete(TOPIC)

    assert created.status_code == 200
    assert created.json()["channel_type"] == "topic" and created.json()["title"] == "The balcony"
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert bare.status_code == 200
    assert someone_elses.status_code == 409
    assert elsewhere.status_code == 403
    assert subscribed.json()["balcony@topics.capulet.lit/posts"] == "owner"
    assert posted.status_code == 201
    assert not_owner.status_code == 403
    assert deleted.status_code == 200
    assert gone.status_code == 404
    assert gone_again.status_code == 404


async def test_application_nodes_are_created_and_deleted(cast: Server) -> None:
    node = "/api/juliet@capulet.lit/bookmarks"
    async with (
        cast.client("juliet") as juliet,
        cast.client("romeo") as romeo,
        cast.client() as anonymous,
    ):
        created = await juliet.post(node)
        again = await juliet.post(node)
        by_romeo = await romeo.post("/api/juliet@capulet.lit/photos")
        posted = await juliet.post(
            "/api/juliet@capulet.lit/content/bookmarks", json={"content": "x"}
        )
        not_owner = await romeo.delete(node)
        deleted = await juliet.delete(node)
        gone = await juliet.get("/api/juliet@capulet.lit/content/bookmarks")
        bad_name = await juliet.post("/api/juliet@capulet.lit/bad%20name")
        guest = await anonymous.post(node)

    assert created.status_code == 200 and created.json()["channel_type"] == "personal"
    assert again.status_code == 409
    assert by_romeo.status_code == 403
    assert posted.status_code == 201
    assert not_owner.status_code == 403
    assert deleted.status_code == 200
    assert gone.status_code == 404
    assert bad_name.status_code == 400 and bad_name.json()["error"] == "invalid-node"
    assert guest.status_code == 401


async def test_deleting_the_posts_node_deletes_the_channel(cast: Server) -> None:
    async with cast.client("juliet") as juliet:
        await juliet.post(TOPIC)
        await juliet.post(f"{TOPIC}/notes")
        deleted = await juliet.delete(f"{TOPIC}/posts")
        notes = await juliet.get(f"{TOPIC}/content/notes")
    assert deleted.status_code == 200 and notes.status_code == 404


async def test_search_posts_and_channels(cast: Server) -> None:
    async with cast.client("juliet") as juliet, cast.client("romeo") as romeo:
        await juliet.post(TOPIC, json={"title": "Balcony", "description": "a rose garden"})
        await juliet.post(
            "/api/orchard@topics.capulet.lit",
            json={"description": "rose trees", "access_model": "authorize"},
        )
        await juliet.post("/api/juliet@capulet.lit/content/posts", json={"content": "a rose"})
        await romeo.post("/api/romeo@capulet.lit/content/posts", json={"content": "rose petals"})
        await juliet.post("/api/orchard@topics.capulet.lit/content/posts", json={"content": "rose"})
        for n in range(3):
            await juliet.post(f"{TOPIC}/content/posts", json={"content": f"rose {n}"})
    async with cast.client() as anonymous, cast.client("juliet") as juliet:
        posts = await anonymous.get("/api/search", params={"type": "content", "q": "rose"})
        page = await anonymous.get(
            "/api/search", params={"type": "content", "q": "rose", "max": "2", "index": "1"}
        )
        hers = await juliet.get("/api/search", params={"type": "content", "q": "rose"})
        channels = await anonymous.get("/api/search", params={"type": "metadata", "q": "ROSE"})
        both = await anonymous.get("/api/search", params={"type": "metadata", "q": "rose trees"})
        no_type = await anonymous.get("/api/search", params={"q": "rose"})
        no_words = await anonymous.get("/api/search", params={"type": "content", "q": " "})
        bad_index = await anonymous.get(
            "/api/search", params={"type": "content", "q": "x", "index": "-1"}
        )

    found = posts.json()
    # The orchard is closed: a guest does not see its posts, its owner does.
    assert found["rsm"] == {"index": 0, "count": 5}
    assert {item["parent_simpleid"] for item in found["items"]} == {
        "juliet@capulet.lit",
        "romeo@capulet.lit",
        "balcony@topics.capulet.lit",
    }
    first = found["items"][0]
    assert first["content"] == "rose 2"
    assert first["parent_fullid"] == "/user/balcony@topics.capulet.lit/posts"
    assert first["author"] == "juliet@capulet.lit" and first["in_reply_to"] is None
    assert [i["id"] for i in page.json()["items"]] == [i["id"] for i in found["items"][1:3]]
    assert page.json()["rsm"] == {"index": 1, "count": 5}
    assert hers.json()["rsm"]["count"] == 6
    # Channel titles and descriptions are public, whatever the access model.
    assert [c["jid"] for c in channels.json()["items"]] == [
        "balcony@topics.capulet.lit",
        "orchard@topics.capulet.lit",
    ]
    assert channels.json()["items"][0] == {
        "jid": "balcony@topics.capulet.lit",
        "title": "Balcony",
        "description": "a rose garden",
        "creationDate": channels.json()["items"][0]["creationDate"],
        "channelType": "topic",
        "defaultAffiliation": "member",
    }
    assert [c["jid"] for c in both.json()["items"]] == ["orchard@topics.capulet.lit"]
    assert no_type.status_code == no_words.status_code == bad_index.status_code == 400
