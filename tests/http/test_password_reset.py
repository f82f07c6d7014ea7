"""Password reset by email, against a local SMTP sink (aiosmtpd): a one-time token, kept
hashed, that expires; the same answer whether or not the account exists."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from http_support import DOMAIN, PASSWORD, MakeServer, Server

from buddycloud.domain.jid import Jid

NEW_PASSWORD = "a brand new password"


class Sink:
    """An SMTP server on loopback that keeps every mail it is given."""

    def __init__(self) -> None:
        self.mails: list[Message] = []
        self.arrived = asyncio.Condition()
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        async with self.arrived:
            self.mails.append(message_from_bytes(envelope.content))
            self.arrived.notify_all()
        return "250 OK"

    async def mail(self, count: int = 1, timeout: float = 10.0) -> Message:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.mails) >= count), timeout)
        return self.mails[count - 1]


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    found = Sink()
    listener = await asyncio.get_running_loop().create_server(
        lambda: SMTP(found, hostname="sink.test"), "127.0.0.1", 0
    )
    found.port = listener.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.fixture
async def server(make_server: MakeServer, sink: Sink) -> AsyncIterator[Server]:
    async with make_server(
        BUDDYCLOUD_MAIL_HOST="127.0.0.1",
        BUDDYCLOUD_MAIL_PORT=str(sink.port),
        BUDDYCLOUD_MAIL_FROM="channels@capulet.lit",
        BUDDYCLOUD_MAIL_STARTTLS="false",
        BUDDYCLOUD_MAIL_RESET_URL="https://app.example/reset?token={token}",
    ) as running:
        yield running


def token_in(mail: Message) -> str:
    body = mail.get_payload(decode=True)
    assert isinstance(body, bytes)
    found = re.search(r"https://app\.example/reset\?token=(\S+)", body.decode())
    assert found is not None, body
    return found.group(1)


async def test_a_mailed_token_sets_a_new_password_once(server: Server, sink: Sink) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        asked = await anonymous.post("/api/account/pw/reset", json={"username": "juliet"})
        mail = await sink.mail()
        token = token_in(mail)
        confirmed = await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        again = await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": token, "password": "yet another one"}
        )
    async with server.client("juliet") as old, server.client("juliet", NEW_PASSWORD) as new:
        old_answer, new_answer = await old.get("/api"), await new.get("/api")

    assert asked.status_code == 202
    assert mail["To"] == "juliet@example.org"
    assert mail["From"] == "channels@capulet.lit"
    assert "juliet@capulet.lit" in mail["Subject"]
    assert confirmed.status_code == 200
    assert confirmed.json() == {"username": "juliet@capulet.lit"}
    assert again.status_code == 400 and again.json()["error"] == "invalid-reset-token"
    assert old_answer.status_code == 401 and new_answer.status_code == 204


async def test_the_answer_is_the_same_without_an_account_and_no_mail_goes(
    server: Server, sink: Sink
) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        nobody = await anonymous.post("/api/account/pw/reset", json={"username": "nobody"})
        elsewhere = await anonymous.post(
            "/api/account/pw/reset", json={"username": "r@montague.lit"}
        )
        juliet = await anonymous.post("/api/account/pw/reset", json={"username": "juliet"})
    await sink.mail()

    assert nobody.status_code == elsewhere.status_code == juliet.status_code == 202
    assert nobody.json() == elsewhere.json() == juliet.json()
    assert [mail["To"] for mail in sink.mails] == ["juliet@example.org"]


async def test_a_reset_ends_every_sign_in(server: Server, sink: Sink) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        signed_in = await anonymous.post(
            "/api/auth/token", json={"username": "juliet", "password": PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {signed_in.json()['token']}"}
        await anonymous.post("/api/account/pw/reset", json={"username": "juliet"})
        token = token_in(await sink.mail())
        await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        after = await anonymous.get("/api", headers=bearer)
    assert after.status_code == 401


async def test_a_refused_password_leaves_the_token_usable(server: Server, sink: Sink) -> None:
    await server.add_user("juliet")
    async with server.client() as anonymous:
        await anonymous.post("/api/account/pw/reset", json={"username": "juliet"})
        token = token_in(await sink.mail())
        short = await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": token, "password": "short"}
        )
        good = await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
    assert short.status_code == 400 and short.json()["error"] == "invalid-value"
    assert good.status_code == 200


async def test_an_expired_or_unknown_token_is_refused(server: Server) -> None:
    await server.add_user("juliet")
    token = "a-token-that-expired-an-hour-ago"
    past = datetime.now(UTC) - timedelta(hours=1)
    digest = hashlib.sha256(token.encode()).hexdigest()
    await server.app.storage.insert_password_reset(digest, Jid("juliet", DOMAIN), past)
    async with server.client() as anonymous:
        expired = await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        unknown = await anonymous.post(
            "/api/account/pw/reset/confirm", json={"token": "guess", "password": NEW_PASSWORD}
        )
    assert expired.status_code == unknown.status_code == 400
    assert expired.json() == unknown.json()
    assert expired.json()["error"] == "invalid-reset-token"


async def test_without_mail_no_reset_is_offered(make_server: MakeServer) -> None:
    async with make_server() as server, server.client() as anonymous:
        answer = await anonymous.post("/api/account/pw/reset", json={"username": "juliet"})
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported"
