"""The `xmpp` sign-in method: users of the XMPP server sign in over HTTP with their XMPP
password, checked by signing in to the XMPP server over c2s (docs/auth.md, "xmpp")."""

from __future__ import annotations

import httpx
from e2e.harness import ServerProcess, password_of
from e2e.test_http import api


async def test_an_xmpp_user_signs_in_over_http_with_the_xmpp_password(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=await api(server), timeout=15) as http:
        check = await http.get("/api", auth=("nurse", password_of("nurse")))
        token = await http.post(
            "/api/auth/token",
            json={"username": "nurse@capulet.lit", "password": password_of("nurse")},
        )
        bearer = {"Authorization": f"Bearer {token.json()['token']}"}
        posted = await http.post(
            "/api/nurse@capulet.lit/content/posts", json={"content": "hi"}, headers=bearer
        )
    assert check.status_code == 204
    assert token.status_code == 200 and token.json()["jid"] == "nurse@capulet.lit"
    assert posted.status_code == 201, posted.text  # her channel was made at first sign-in


async def test_a_wrong_xmpp_password_is_refused_like_any_other(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=await api(server), timeout=15) as http:
        wrong = await http.get("/api", auth=("laurence", "not-his-password"))
        absent = await http.get("/api", auth=("nobody-at-all", "not-his-password"))
    assert wrong.status_code == absent.status_code == 401
    assert wrong.json() == absent.json()
    assert wrong.json()["error"] == "not-authorized"
