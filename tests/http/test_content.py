"""Reading a channel's posts over HTTP: anonymous against signed in (reference 9.1)."""

from __future__ import annotations

from http_support import Server

from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId
from buddycloud.services.config import ConfigUpdate


async def test_refusals_are_401_for_anonymous_and_403_for_signed_in(server: Server) -> None:
    await server.add_user("juliet")
    await server.add_user("romeo")
    juliet = Jid.parse("juliet@capulet.lit")
    await server.app.engine.configure(
        juliet, NodeId(juliet, "posts"), ConfigUpdate(access_model=AccessModel.AUTHORIZE)
    )

    async with server.client() as anonymous, server.client("romeo") as romeo:
        as_guest = await anonymous.get("/api/juliet@capulet.lit/content/posts")
        as_romeo = await romeo.get("/api/juliet@capulet.lit/content/posts")
    async with server.client("juliet") as owner:
        as_owner = await owner.get("/api/juliet@capulet.lit/content/posts")

    assert as_guest.status_code == 401
    assert as_romeo.status_code == 403
    assert as_guest.json()["error"] == as_romeo.json()["error"]
    assert as_owner.status_code == 200


async def test_bad_names_and_paging_are_400(server: Server) -> None:
    async with server.client() as anonymous:
        bad_channel = await anonymous.get("/api/not a jid/content/posts")
        bad_max = await anonymous.get("/api/juliet@capulet.lit/content/posts?max=lots")
        missing = await anonymous.get("/api/nobody@capulet.lit/content/posts")
        nowhere = await anonymous.get("/api/nothing/here/at/all")

    assert bad_channel.status_code == 400
    assert bad_max.status_code == 400 and "max" in bad_max.json()["message"]
    assert missing.status_code == 404
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "no-such-endpoint"
