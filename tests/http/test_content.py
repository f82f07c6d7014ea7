"""A node's posts over HTTP (reference 9.2 rows 6, 7, 9-13): reading pages and single posts
as JSON or Atom, posting JSON or Atom, replacing, deleting, replies and threads."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from http_support import Server

from buddycloud.client import Forbidden, Unauthorized
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId
from buddycloud.services.config import ConfigUpdate

POSTS = "/api/juliet@capulet.lit/content/posts"
ATOM = "application/atom+xml"
A = {"atom": "http://www.w3.org/2005/Atom"}
RSM = "{http://jabber.org/protocol/rsm}"


@pytest.fixture
async def juliet(server: Server) -> Server:
    await server.add_user("juliet")
    await server.add_user("romeo")
    return server


async def test_refusals_are_401_for_anonymous_and_403_for_signed_in(server: Server) -> None:
    await server.add_user("juliet")
    await server.add_user("romeo")
    juliet = Jid.parse("juliet@capulet.lit")
    await server.app.engine.configure(
        juliet, NodeId(juliet, "posts"), ConfigUpdate(access_model=AccessModel.AUTHORIZE)
    )

    async with server.client() as anonymous, server.client("romeo") as romeo:
        as_guest = await anonymous.get(POSTS)
        as_romeo = await romeo.get(POSTS)
    async with server.client("juliet") as owner:
        as_owner = await owner.get(POSTS)

    assert as_guest.status_code == 401
    assert as_guest.headers["www-authenticate"].startswith("Basic")
    assert as_romeo.status_code == 403
    assert as_guest.json()["error"] == as_romeo.json()["error"]
    assert as_owner.status_code == 200


async def test_bad_names_and_paging_are_400(server: Server) -> None:
    async with server.client() as anonymous:
        bad_channel = await anonymous.get("/api/not a jid/content/posts")
        bad_max = await anonymous.get(f"{POSTS}?max=lots")
        missing = await anonymous.get("/api/nobody@capulet.lit/content/posts")
        nowhere = await anonymous.get("/api/nothing/here/at/all")

    assert bad_channel.status_code == 400
    assert bad_max.status_code == 400 and "max" in bad_max.json()["message"]
    assert missing.status_code == 404
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "no-such-endpoint"


async def test_a_json_post_is_201_with_its_location_and_echoed(juliet: Server) -> None:
    async with juliet.client("juliet") as client:
        answer = await client.post(POSTS, json={"content": "O Romeo", "author": "forged@x.y"})
        assert answer.status_code == 201, answer.text
        posted = answer.json()
        location = answer.headers["location"]
        read = await client.get(location)

    assert location == f"{POSTS}/{posted['id']}"
    assert posted["author"] == "juliet@capulet.lit"
    assert posted["content"] == "O Romeo" and posted["media"] is None
    assert "replyTo" not in posted
    assert posted["published"] == posted["updated"]
    assert answer.headers["content-type"] == "application/json"
    assert read.status_code == 200 and read.json() == posted


async def test_an_atom_post_is_echoed_as_atom_unless_json_is_asked_for(juliet: Server) -> None:
    entry = (
        '<entry xmlns="http://www.w3.org/2005/Atom"><title>On the balcony</title>'
        "<content>Wherefore art thou</content><id>forged</id></entry>"
    )
    async with juliet.client("juliet") as client:
        as_atom = await client.post(POSTS, content=entry, headers={"Content-Type": ATOM})
        as_json = await client.post(
            POSTS,
            content=entry,
            headers={"Content-Type": ATOM, "Accept": "application/json"},
        )
        json_as_atom = await client.post(POSTS, json={"content": "hi"}, headers={"Accept": ATOM})

    assert as_atom.status_code == 201
    assert as_atom.headers["content-type"].startswith(ATOM)
    root = ET.fromstring(as_atom.content)
    item_id = as_atom.headers["location"].rsplit("/", 1)[1]
    assert root.findtext("atom:content", namespaces=A) == "Wherefore art thou"
    assert root.findtext("atom:title", namespaces=A) == "On the balcony"
    assert root.findtext("atom:id", namespaces=A).endswith(f",{item_id}")
    assert root.findtext("atom:author/atom:name", namespaces=A) == "juliet@capulet.lit"
    assert as_json.json()["content"] == "Wherefore art thou"
    assert ET.fromstring(json_as_atom.content).findtext("atom:content", namespaces=A) == "hi"


async def test_media_is_kept_and_null_or_empty_media_is_none(juliet: Server) -> None:
    """The original's JSON -> Atom conversion choked on `media: null` (reference 9.1)."""
    media = [{"id": "photo-1", "channel": "juliet@capulet.lit"}]
    async with juliet.client("juliet") as client:
        with_media = await client.post(POSTS, json={"content": "look", "media": media})
        null = await client.post(POSTS, json={"content": "plain", "media": None})
        empty = await client.post(POSTS, json={"content": "plain", "media": []})
        page = await client.get(POSTS)
        feed = await client.get(POSTS, headers={"Accept": ATOM})

    assert with_media.status_code == null.status_code == empty.status_code == 201
    assert with_media.json()["media"] == media
    assert null.json()["media"] is None and empty.json()["media"] is None
    assert [entry["media"] for entry in page.json()] == [None, None, media]
    bcm = "{http://buddycloud.org/v1/media}"
    items = ET.fromstring(feed.content).findall(f".//{bcm}media/{bcm}item")
    assert [item.attrib for item in items] == media


async def test_pages_are_cut_with_max_after_and_before_and_say_where_they_are(
    juliet: Server,
) -> None:
    async with juliet.client("juliet") as client:
        ids = [
            (await client.post(POSTS, json={"content": f"post {n}"})).json()["id"] for n in range(5)
        ]
        newest_first = list(reversed(ids))
        first = await client.get(POSTS, params={"max": "2"})
        second = await client.get(POSTS, params={"max": "2", "after": first.headers["x-last"]})
        back = await client.get(POSTS, params={"max": "2", "before": second.headers["x-first"]})
        last = await client.get(POSTS, params={"max": "2", "before": ""})
        counted = await client.get(POSTS, params={"max": "0"})

    assert [e["id"] for e in first.json()] == newest_first[:2]
    assert first.headers["x-count"] == "5"
    assert (first.headers["x-first"], first.headers["x-last"]) == tuple(newest_first[:2])
    assert [e["id"] for e in second.json()] == newest_first[2:4]
    assert [e["id"] for e in back.json()] == newest_first[:2]
    assert [e["id"] for e in last.json()] == newest_first[3:]
    assert counted.json() == [] and counted.headers["x-count"] == "5"
    assert "x-first" not in counted.headers


async def test_an_atom_feed_carries_its_paging(juliet: Server) -> None:
    async with juliet.client("juliet") as client:
        ids = [(await client.post(POSTS, json={"content": f"p{n}"})).json()["id"] for n in range(3)]
        answer = await client.get(POSTS, params={"max": "2"}, headers={"Accept": ATOM})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(ATOM)
    feed = ET.fromstring(answer.content)
    assert feed.findtext("atom:title", namespaces=A) == "juliet@capulet.lit posts"
    assert feed.findtext("atom:id", namespaces=A).endswith(
        "?pubsub;action=retrieve;node=/user/juliet@capulet.lit/posts"
    )
    entries = feed.findall("atom:entry", A)
    assert [e.findtext("atom:content", namespaces=A) for e in entries] == ["p2", "p1"]
    assert feed.findtext("atom:updated", namespaces=A) == entries[0].findtext(
        "atom:updated", namespaces=A
    )
    assert feed.findtext(f"{RSM}set/{RSM}count") == "3"
    assert feed.findtext(f"{RSM}set/{RSM}last") == ids[1]
    links = {link.get("rel"): link.get("href") for link in feed.findall("atom:link", A)}
    assert links["next"] == f"{POSTS}?max=2&after={ids[1]}"
    assert links["previous"] == f"{POSTS}?max=2&before={ids[2]}"


async def test_content_negotiation(juliet: Server) -> None:
    """Reference 9.1: Atom or JSON by Accept, otherwise 406. This server answers JSON to
    `*/*` and to no Accept at all (docs/http.md says why)."""
    async with juliet.client() as client:
        cases = {
            accept: await client.get(POSTS, headers={"Accept": accept} if accept else {})
            for accept in [
                "",
                "*/*",
                "application/json",
                ATOM,
                "application/*",
                f"application/json;q=0.5, {ATOM}",
                f"text/html, {ATOM};q=0.9, */*;q=0.8",
                "text/html",
                "application/json;q=0",
                "garbage",
            ]
        }
        threads = await client.get(f"{POSTS}/threads", headers={"Accept": ATOM})

    kinds = {
        accept: answer.headers["content-type"].split(";")[0] for accept, answer in cases.items()
    }
    assert kinds == {
        "": "application/json",
        "*/*": "application/json",
        "application/json": "application/json",
        ATOM: ATOM,
        "application/*": "application/json",
        f"application/json;q=0.5, {ATOM}": ATOM,
        f"text/html, {ATOM};q=0.9, */*;q=0.8": ATOM,
        "text/html": "application/json",
        "application/json;q=0": "application/json",
        "garbage": "application/json",
    }
    for refused in ("text/html", "application/json;q=0", "garbage"):
        assert cases[refused].status_code == 406
        assert cases[refused].json()["error"] == "not-acceptable"
    assert threads.status_code == 406


async def test_one_post_a_retracted_one_and_deletion(juliet: Server) -> None:
    async with juliet.client("juliet") as owner, juliet.client("romeo") as romeo:
        await romeo.post("/api/subscribed", json={"juliet@capulet.lit/posts": "publisher"})
        mine = (await romeo.post(POSTS, json={"content": "Romeo's"})).json()["id"]
        hers = (await owner.post(POSTS, json={"content": "Juliet's"})).json()["id"]
        as_atom = await romeo.get(f"{POSTS}/{hers}", headers={"Accept": ATOM})
        not_his = await romeo.delete(f"{POSTS}/{hers}")
        own = await romeo.delete(f"{POSTS}/{mine}")
        gone = await romeo.get(f"{POSTS}/{mine}")
        again = await romeo.delete(f"{POSTS}/{mine}")
        moderated = await owner.delete(f"{POSTS}/{hers}")
        unknown = await owner.get(f"{POSTS}/no-such-post")
        page = await owner.get(POSTS)

    assert ET.fromstring(as_atom.content).findtext("atom:content", namespaces=A) == "Juliet's"
    assert not_his.status_code == 403
    assert own.status_code == 204 and own.content == b""
    assert gone.status_code == 404 and gone.json()["error"] == "item-not-found"
    assert again.status_code == 404
    assert moderated.status_code == 204
    assert unknown.status_code == 404
    # Retracted posts leave tombstones for XMPP readers; the JSON page shows live posts.
    assert page.json() == [] and page.headers["x-count"] == "2"


async def test_replies_and_threads(juliet: Server) -> None:
    async with juliet.client("juliet") as owner, juliet.client() as anonymous:
        parent = (await owner.post(POSTS, json={"content": "parent"})).json()["id"]
        other = (await owner.post(POSTS, json={"content": "other"})).json()["id"]
        reply = await owner.post(POSTS, json={"content": "reply", "replyTo": parent})
        deeper = await owner.post(
            POSTS, json={"content": "too deep", "replyTo": reply.json()["id"]}
        )
        orphan = await owner.post(POSTS, json={"content": "x", "replyTo": "missing"})
        spellings = [
            await anonymous.get(f"{POSTS}/{parent}/{word}")
            for word in ("replyto", "replyTo", "REPLYTO")
        ]
        threads = await anonymous.get(f"{POSTS}/threads")
        none = await anonymous.get(f"{POSTS}/{other}/replyto")

    assert reply.status_code == 201 and reply.json()["replyTo"] == parent
    assert deeper.status_code == 400 and orphan.status_code == 400
    for answer in spellings:
        assert answer.status_code == 200
        assert [e["content"] for e in answer.json()] == ["reply"]
        assert answer.headers["x-count"] == "1"
    assert none.json() == []
    listed = threads.json()
    assert [t["id"] for t in listed] == [parent, other]
    assert [e["content"] for e in listed[0]["items"]] == ["parent", "reply"]
    assert listed[0]["updated"] == reply.json()["updated"]
    assert threads.headers["x-count"] == "2"


async def test_put_replaces_the_current_status_and_geolocation(juliet: Server) -> None:
    """Reference row 10: PUT replaces the node's newest item (status, geolocation)."""
    status = "/api/juliet@capulet.lit/content/status"
    geoloc = "/api/juliet@capulet.lit/content/geoloc"
    place = '<geoloc xmlns="http://jabber.org/protocol/geoloc"><locality>Verona</locality></geoloc>'
    async with juliet.client("juliet") as client:
        await client.put(status, json={"content": "at the ball"})
        replaced = await client.put(status, json={"content": "on the balcony"})
        current = await client.get(status)
        here = await client.put(geoloc, content=place, headers={"Content-Type": "application/xml"})
        there = await client.get(geoloc)
        wrong = await client.put(geoloc, json={"content": "not a place"})
        posts = [await client.put(POSTS, json={"content": text}) for text in ("first", "second")]
        page = await client.get(POSTS)

    assert replaced.status_code == 201 and "location" in replaced.headers
    assert [e["content"] for e in current.json()] == ["on the balcony"]
    assert here.status_code == 201
    [location] = there.json()
    assert location["content"] is None and "<locality>Verona</locality>" in location["payload"]
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid-payload"
    assert [answer.status_code for answer in posts] == [201, 201]
    assert [e["content"] for e in page.json()] == ["second"]


async def test_posting_needs_a_sign_in_and_a_role(juliet: Server) -> None:
    channel, topic = "juliet@capulet.lit", "balcony@topics.capulet.lit"
    async with juliet.sdk() as anonymous, juliet.sdk("romeo") as romeo:
        with pytest.raises(Unauthorized):
            await anonymous.publish(channel, "hi")
        with pytest.raises(Unauthorized):
            await anonymous.replace(channel, "hi")
        with pytest.raises(Unauthorized):
            await anonymous.retract(channel, "anything")
        # Personal channels let followers post by default; a topic channel does not.
        await romeo.follow(channel)
        await romeo.publish(channel, "a follower posts here")
        async with juliet.sdk("juliet") as owner:
            await owner.create_channel(topic)
        await romeo.follow(topic)
        with pytest.raises(Forbidden) as refused:
            await romeo.publish(topic, "may I?")
        assert refused.value.status == 403
