"""Token sign-in through the client against the real server (`POST`/`DELETE
/api/auth/token`): signing in, using the token for REST and the live websocket,
refreshing, signing out."""

from __future__ import annotations

import pytest
from http_support import DOMAIN, PASSWORD, Server

from buddycloud.client import Client, PostEvent, Unauthorized

JULIET = f"juliet@{DOMAIN}"


async def test_a_token_signs_in_for_rest_and_live_events_until_signing_out(
    server: Server, romeo: Client
) -> None:
    async with Client(server.url) as juliet:
        token = await juliet.sign_in("juliet", PASSWORD)
        assert (token.jid, token.token_type) == (JULIET, "Bearer") and token.expires_in > 0
        await juliet.check()
        await romeo.follow(JULIET)
        async with juliet.events() as events:
            assert events.jid == JULIET
            post = await juliet.publish(JULIET, "signed in with a token")
            arrived = await events.next(10)
            assert isinstance(arrived, PostEvent) and arrived.post.id == post.id
        fresh = await juliet.refresh_token()
        assert fresh.jid == JULIET and juliet.token == fresh
        await juliet.publish(JULIET, "with the refreshed token")
        await juliet.sign_out()
        assert juliet.token is None
    for kept in (token.token, fresh.token):
        async with Client(server.url, token=kept) as stale:
            with pytest.raises(Unauthorized):
                await stale.check()


async def test_a_bare_or_full_user_name_signs_in_and_a_wrong_password_is_refused(
    server: Server,
) -> None:
    async with Client(server.url) as client:
        assert (await client.sign_in(JULIET, PASSWORD)).jid == JULIET
    async with Client(server.url) as client:
        with pytest.raises(Unauthorized) as refused:
            await client.sign_in("juliet", "not-her-password")
        assert (refused.value.status, refused.value.error) == (401, "not-authorized")
        with pytest.raises(Unauthorized) as unknown:
            await client.sign_in("nobody", "not-her-password")
        assert unknown.value.error == refused.value.error
