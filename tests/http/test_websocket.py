"""The live websocket at /api/ws, through a real uvicorn on a real socket: sign-in, events
for the users allowed to see them, REST requests over the socket, bad frames, slow clients,
heartbeats and resuming after a reconnect (docs/websocket.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time

import pytest
from http_support import DOMAIN, Live, MakeServer, Server, SilentSocket, basic, live
from prometheus_client.parser import text_string_to_metric_families
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import NotAuthenticated
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, NodeId, Role, SubscriptionState
from buddycloud.http.auth import Authenticator, Requester
from buddycloud.http.server import LiveWebSocketProtocol
from buddycloud.http.websocket import (
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_TOO_MANY_ERRORS,
    CLOSE_TOO_SLOW,
    ERROR_BURST,
)
from buddycloud.services.config import ConfigUpdate

TEXT, CLOSE, PING = 0x1, 0x8, 0x9

JULIET = Jid.parse(f"juliet@{DOMAIN}")
ROMEO = Jid.parse(f"romeo@{DOMAIN}")
BENVOLIO = Jid.parse(f"benvolio@{DOMAIN}")


def posts(owner: Jid) -> NodeId:
    return NodeId(owner, "posts")


async def post(server: Server, author: Jid, text: str, channel: Jid | None = None) -> str:
    item = await server.app.engine.publish(
        author, posts(channel or author), EntryDraft(content=text)
    )
    return item.id


async def close_code(client: Live, timeout: float = 15.0) -> int | None:
    """Read until the server closes the socket; the close code it sent."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await client.next(timeout)
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


# --- sign-in ---------------------------------------------------------------------------------


async def test_a_socket_signs_in_with_basic_and_is_welcomed(server: Server) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet", welcome=False) as juliet:
        welcome = await juliet.next()

    assert welcome["type"] == "welcome"
    assert welcome["jid"] == str(JULIET)
    assert isinstance(welcome["cursor"], int)
    assert welcome["heartbeat"] == {"interval": 20, "timeout": 20}
    assert welcome["limits"]["queue"] == 256


@pytest.mark.parametrize(
    ("user", "password"), [(None, ""), ("juliet", "wrong password"), ("nobody", "whatever!")]
)
async def test_a_socket_without_good_credentials_is_told_and_closed(
    server: Server, user: str | None, password: str
) -> None:
    await server.add_user("juliet")
    async with live(server, user, password=password, welcome=False) as client:
        error = await client.next()
        code = await close_code(client)

    assert error["type"] == "error"
    # Without credentials: sign in; with wrong ones: they are wrong, whatever the reason.
    assert error["error"] == ("not-authenticated" if user is None else "not-authorized")
    assert error["message"]
    assert code == CLOSE_NOT_AUTHENTICATED


class TokenAuthenticator(Authenticator):
    """Accepts `Bearer letmein` as Juliet, besides what the real one accepts."""

    async def authenticate(self, header: str | None, *, client: str | None = None) -> Requester:
        if header == "Bearer letmein":
            return Requester(JULIET, anonymous=False)
        if header is not None and header.startswith("Bearer "):
            raise NotAuthenticated("unknown token")
        return await super().authenticate(header, client=client)


async def test_a_browser_signs_in_with_a_token_in_the_url(server: Server) -> None:
    state = server.app.http.app.state  # type: ignore[attr-defined]
    state.http = dataclasses.replace(
        state.http, authenticator=TokenAuthenticator(server.app.engine)
    )
    async with live(server, None, query="token=letmein") as juliet:
        await juliet.nothing_pending()
    async with live(server, None, query="token=guess", welcome=False) as stranger:
        refused = await stranger.next()
        code = await close_code(stranger)

    assert refused["error"] == "not-authorized"
    assert code == CLOSE_NOT_AUTHENTICATED


# --- events for whom may see them ------------------------------------------------------------


async def test_a_post_reaches_the_followers_signed_in_and_no_one_else(server: Server) -> None:
    for name in ("juliet", "romeo", "benvolio"):
        await server.add_user(name)
    engine = server.app.engine
    await engine.subscribe(BENVOLIO, posts(JULIET), BENVOLIO)

    async with (
        live(server, "juliet") as juliet,
        live(server, "romeo") as romeo,
        live(server, "benvolio") as benvolio,
    ):
        item_id = await post(server, JULIET, "Wherefore art thou?")
        for client in (juliet, benvolio):
            event = await client.next_of("post")
            assert event["channel"] == str(JULIET)
            assert event["node"] == "posts"
            assert event["entry"]["id"] == item_id
            assert event["entry"]["content"] == "Wherefore art thou?"
            assert event["entry"]["author"] == str(JULIET)
            assert event["entry"]["source"] == f"{JULIET}/posts"
            assert event["update"] is False
            assert isinstance(event["cursor"], int)
        await romeo.nothing_pending()


async def test_a_closed_channels_post_never_reaches_a_strangers_socket(server: Server) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    engine = server.app.engine
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    # Romeo asks to follow; the request waits for Juliet's approval.
    await engine.subscribe(ROMEO, posts(JULIET), ROMEO)

    async with live(server, "juliet") as juliet, live(server, "romeo") as romeo:
        await post(server, JULIET, "for my eyes only")
        assert (await juliet.next_of("post"))["entry"]["content"] == "for my eyes only"
        await romeo.nothing_pending()


async def test_follow_requests_approvals_roles_and_configuration_reach_who_may_see_them(
    server: Server,
) -> None:
    for name in ("juliet", "romeo", "benvolio"):
        await server.add_user(name)
    engine = server.app.engine
    await engine.configure(JULIET, posts(JULIET), ConfigUpdate(access_model=AccessModel.AUTHORIZE))
    await engine.set_subscription(JULIET, posts(JULIET), BENVOLIO, SubscriptionState.INVITED)
    await engine.subscribe(BENVOLIO, posts(JULIET), BENVOLIO)  # invited: approved at once

    async with (
        live(server, "juliet") as juliet,
        live(server, "romeo") as romeo,
        live(server, "benvolio") as benvolio,
    ):
        await engine.subscribe(ROMEO, posts(JULIET), ROMEO)
        pending = {"channel": str(JULIET), "jid": str(ROMEO), "subscription": "pending"}
        assert _without_cursor(await juliet.next_of("subscription")) == {
            "type": "subscription",
            **pending,
        }
        request = await juliet.next_of("follow-request")
        assert (request["channel"], request["node"], request["jid"]) == (
            str(JULIET),
            "posts",
            str(ROMEO),
        )
        assert (await romeo.next_of("subscription"))["subscription"] == "pending"
        # A pending request is for the owner, moderators and the user concerned only.
        await benvolio.nothing_pending()

        await engine.set_subscription(JULIET, posts(JULIET), ROMEO, SubscriptionState.SUBSCRIBED)
        for client in (juliet, romeo, benvolio):
            approved = await client.next_of("subscription")
            assert (approved["jid"], approved["subscription"]) == (str(ROMEO), "subscribed")

        await engine.set_role(JULIET, posts(JULIET), ROMEO, Role.MODERATOR)
        for client in (juliet, romeo, benvolio):
            role = await client.next_of("affiliation")
            assert (role["jid"], role["affiliation"]) == (str(ROMEO), "moderator")

        await engine.configure(JULIET, posts(JULIET), ConfigUpdate(title="Balcony"))
        for client in (juliet, romeo, benvolio):
            changed = await client.next_of("configuration")
            assert changed["channel"] == str(JULIET)
            assert changed["metadata"]["title"] == "Balcony"
            assert changed["metadata"]["access_model"] == "authorize"
            assert "posts" in changed["nodes"]


async def test_a_retraction_reaches_the_followers(server: Server) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet") as juliet:
        item_id = await post(server, JULIET, "a mistake")
        await juliet.next_of("post")
        await server.app.engine.retract(JULIET, posts(JULIET), item_id)
        retracted = await juliet.next_of("retract")

    assert (retracted["channel"], retracted["node"], retracted["id"]) == (
        str(JULIET),
        "posts",
        item_id,
    )


def _without_cursor(message: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in message.items() if key != "cursor"}


# --- requests over the socket ------------------------------------------------------------------


async def test_rest_requests_run_over_the_socket_as_its_user(server: Server) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    engine = server.app.engine
    await post(server, JULIET, "first")
    await post(server, JULIET, "second")
    await engine.configure(ROMEO, posts(ROMEO), ConfigUpdate(access_model=AccessModel.AUTHORIZE))

    async with live(server, "juliet") as juliet:
        page = await juliet.request("GET", f"/api/{JULIET}/content/posts", query={"max": "1"})
        closed = await juliet.request("GET", f"/api/{ROMEO}/content/posts")
        missing = await juliet.request("GET", "/api/nowhere/at/all/here")
        checked = await juliet.request("GET", "/api")

    assert page["status"] == 200
    assert [entry["content"] for entry in page["body"]] == ["second"]
    assert page["headers"]["x-count"] == "2"
    assert page["headers"]["x-first"] == page["body"][0]["id"]
    # Refusals are those of a signed-in user (403), not of a guest (401).
    assert closed["status"] == 403
    assert closed["body"]["error"] == "closed-node"
    assert missing["status"] == 404
    assert missing["body"]["error"] == "no-such-endpoint"
    assert checked["status"] == 204 and checked["body"] is None


async def test_a_request_body_is_sent_as_json(server: Server) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet") as juliet:
        changed = await juliet.request(
            "POST", "/api/account/pw/change", body={"password": "a new password"}
        )
        malformed = await juliet.request(
            "POST",
            "/api/account/pw/change",
            body="{not json",
            headers={"Content-Type": "application/json"},
        )
    async with server.client("juliet", "a new password") as client:
        assert (await client.get("/api")).status_code == 204

    assert changed["status"] == 200
    assert malformed["status"] == 400
    assert malformed["body"]["error"] == "malformed-json"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"type": "request", "method": "GET", "path": "/api"}, "bad-message"),
        ({"type": "request", "id": 1, "method": "PATCH", "path": "/api"}, "bad-request"),
        ({"type": "request", "id": 1, "method": "GET", "path": "/elsewhere"}, "bad-request"),
        (
            {"type": "request", "id": 1, "method": "GET", "path": "/api", "query": [1]},
            "bad-request",
        ),
        (
            {"type": "request", "id": 1, "method": "GET", "path": "/api", "query": {"max": 5}},
            "bad-request",
        ),
        (
            {
                "type": "request",
                "id": 1,
                "method": "GET",
                "path": "/api",
                "headers": {"Authorization": "Basic eDp5"},
            },
            "bad-request",
        ),
        ({"type": "request", "id": [1], "method": "GET", "path": "/api"}, "bad-message"),
        ({"type": "resume", "cursor": "yesterday"}, "bad-cursor"),
        ({"type": "resume", "cursor": -1}, "bad-cursor"),
        ({"type": "subscribe"}, "unknown-type"),
        ({"kind": "request"}, "bad-message"),
        ([1, 2, 3], "bad-message"),
    ],
)
async def test_bad_messages_get_an_error_naming_the_problem_and_the_socket_stays(
    server: Server, message: object, error: str
) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet") as juliet:
        await juliet.connection.send(json.dumps(message))
        answer = await juliet.next()
        await juliet.nothing_pending()

    assert answer["type"] == "error"
    assert answer["error"] == error
    assert answer["message"]
    if isinstance(message, dict) and "id" in message and error == "bad-request":
        assert answer["id"] == message["id"]


async def test_malformed_binary_and_oversized_frames_are_errors_and_the_socket_stays(
    server: Server,
) -> None:
    await server.add_user("juliet")
    limit = server.app.http.app.state.http.sockets.max_frame  # type: ignore[attr-defined]
    async with live(server, "juliet") as juliet:
        await juliet.connection.send("{this is not json")
        malformed = await juliet.next()
        await juliet.connection.send(b"\x00\x01")
        binary = await juliet.next()
        await juliet.connection.send(json.dumps({"type": "ping", "pad": "x" * limit}))
        oversized = await juliet.next()
        await juliet.nothing_pending()

    assert malformed["error"] == "malformed-json"
    assert binary["error"] == "binary-frame"
    assert oversized["error"] == "frame-too-large"
    assert str(limit) in oversized["message"]


async def test_a_client_sending_only_bad_messages_is_closed_and_others_are_served(
    server: Server,
) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    async with live(server, "romeo") as romeo, live(server, "juliet") as juliet:
        for _ in range(ERROR_BURST + 5):
            await romeo.connection.send("garbage")
        code = await close_code(romeo)
        await post(server, JULIET, "still here")
        assert (await juliet.next_of("post"))["entry"]["content"] == "still here"

    assert code == CLOSE_TOO_MANY_ERRORS


# --- slow clients and heartbeats ---------------------------------------------------------------


def _small_receive_buffer(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


async def wait_until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


async def _stall(server: Server, juliet: Live) -> int:
    """Post to Juliet's channel until the server gives up on the stalled follower's socket;
    each post reaches Juliet's own socket within a second all the same. The posts sent."""
    text = "a long letter " * 1500
    sent = 0
    while server.hub.connected == 2:
        assert sent < 200, "the stalled client was never closed"
        started = time.monotonic()
        await post(server, JULIET, f"{sent} {text}")
        event = await juliet.next_of("post")
        assert event["entry"]["content"].startswith(f"{sent} ")
        assert time.monotonic() - started < 1.0
        sent += 1
    return sent


def _stalled(server: Server) -> connect:
    """Romeo's client, which reads nothing once it holds one message: the server's buffers
    for his connection fill up."""
    return connect(
        server.url.replace("http://", "ws://") + "/api/ws",
        additional_headers={"Authorization": basic("romeo")},
        sock=_small_receive_buffer(server.app.http.port),
        max_queue=1,
        ping_interval=None,
    )


async def test_a_client_that_does_not_read_is_closed_and_others_get_posts_at_once(
    make_server: MakeServer,
) -> None:
    async with make_server(BUDDYCLOUD_HTTP_WS_SEND_QUEUE="4") as server:
        for name in ("juliet", "romeo"):
            await server.add_user(name)
        await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
        async with _stalled(server) as stalled, live(server, "juliet") as juliet:
            await wait_until(lambda: server.hub.connected == 2)
            sent = await _stall(server, juliet)
            # Reading again, Romeo's client finds the posts sent before the close, then the
            # close and its code.
            received = 0
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    message = json.loads(await asyncio.wait_for(stalled.recv(), 10))
                    received += message["type"] == "post"
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CLOSE_TOO_SLOW
        assert 0 < received < sent


async def test_a_client_that_never_reads_again_is_dropped(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("buddycloud.http.server.CLOSE_SECONDS", 0.5)
    async with make_server(BUDDYCLOUD_HTTP_WS_SEND_QUEUE="4") as server:
        for name in ("juliet", "romeo"):
            await server.add_user(name)
        await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
        connections = server.app.http._server.server_state.connections
        async with _stalled(server) as stalled, live(server, "juliet") as juliet:
            await wait_until(lambda: server.hub.connected == 2)
            await _stall(server, juliet)
            # The close cannot get past what Romeo's client has not read: the server drops
            # the connection, and what it held for it, once the close is overdue.
            await wait_until(lambda: len(connections) == 1, timeout=5)
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(stalled.recv(), 10)
            await juliet.nothing_pending()
        assert closed.value.rcvd is None  # reset, no close frame


async def test_a_client_that_answers_no_ping_is_closed(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_HTTP_WS_PING_SECONDS="1") as server:
        await server.add_user("juliet")
        silent = await SilentSocket.open(server, basic("juliet"))
        try:
            started = time.monotonic()
            frames = await silent.frames(timeout=10)
            waited = time.monotonic() - started
        finally:
            silent.close()

    opcodes = [opcode for opcode, _ in frames]
    assert opcodes[0] == TEXT and json.loads(frames[0][1])["type"] == "welcome"
    assert PING in opcodes
    # One interval, then one timeout, then the close: 1011, "keepalive ping timeout".
    assert opcodes[-1] == CLOSE
    assert int.from_bytes(frames[-1][1][:2], "big") == 1011
    assert 1.5 < waited < 6


async def test_a_client_ping_is_answered_with_its_id(server: Server) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet") as juliet:
        await juliet.send({"type": "ping"})
        bare = await juliet.next()
        await juliet.send({"type": "ping", "id": 42})
        numbered = await juliet.next()
    assert bare == {"type": "pong"}
    assert numbered == {"type": "pong", "id": 42}


# --- resuming ----------------------------------------------------------------------------------


async def test_a_reconnecting_client_gets_what_it_missed_once_and_in_order(
    server: Server,
) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    seen: list[str] = []
    async with live(server, "romeo") as romeo:
        await post(server, JULIET, "before 1")
        await post(server, JULIET, "before 2")
        for _ in range(2):
            event = await romeo.next_of("post")
            seen.append(event["entry"]["content"])
            cursor = event["cursor"]
    # Romeo is away: posts go on, among other events that are not his.
    await post(server, JULIET, "missed 1")
    await post(server, ROMEO, "his own, on his channel")
    await post(server, JULIET, "missed 2")

    async with live(server, "romeo", query=f"cursor={cursor}") as romeo:
        replayed: list[dict[str, object]] = []
        while (message := await romeo.next())["type"] != "resumed":
            replayed.append(message)
        await post(server, JULIET, "live again")
        after = await romeo.next_of("post")
        await romeo.nothing_pending()

    contents = [event["entry"]["content"] for event in replayed]  # type: ignore[index]
    assert contents == ["missed 1", "his own, on his channel", "missed 2"]
    cursors = [event["cursor"] for event in replayed]
    assert cursors == sorted(cursors) and len(set(cursors)) == 3
    assert message == {"type": "resumed", "cursor": cursor, "replayed": 3}
    assert after["entry"]["content"] == "live again"
    assert after["cursor"] > cursors[-1]  # type: ignore[operator]


async def test_a_long_replay_arrives_whole_and_in_order(
    server: Server,
) -> None:
    for name in ("juliet", "romeo"):
        await server.add_user(name)
    await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
    async with live(server, "romeo") as romeo:
        await post(server, JULIET, "seen")
        cursor = (await romeo.next_of("post"))["cursor"]
    # ~600 KB while Romeo is away, sent as one replay when he is back.
    letter = "a long letter " * 1500
    for number in range(30):
        await post(server, JULIET, f"{number} {letter}")

    async with live(server, "romeo", query=f"cursor={cursor}") as romeo:
        replayed = [await romeo.next() for _ in range(30)]
        resumed = await romeo.next()
        await post(server, JULIET, "live again")
        after = await romeo.next_of("post")

    assert [event["entry"]["content"] for event in replayed] == [
        f"{number} {letter}" for number in range(30)
    ]
    assert resumed == {"type": "resumed", "cursor": cursor, "replayed": 30}
    assert after["entry"]["content"] == "live again"


async def test_messages_of_every_frame_length_arrive_whole(make_server: MakeServer) -> None:
    async with make_server(BUDDYCLOUD_SERVER_MAX_PAYLOAD_BYTES="262144") as server:
        await server.add_user("juliet")
        # Two bytes a character: the longest is past 65,535 bytes, not characters.
        contents = ["short", "é" * 20_000, "é" * 40_000]
        async with live(server, "juliet") as juliet:
            await juliet.send({"type": "ping", "id": 1})
            pong = await juliet.next()
            for content in contents:
                await post(server, JULIET, content)
            arrived = [(await juliet.next_of("post"))["entry"]["content"] for _ in contents]

    assert pong == {"type": "pong", "id": 1}
    assert arrived == contents


async def test_a_resume_message_after_connecting_repeats_nothing_already_sent(
    server: Server,
) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet") as juliet:
        await post(server, JULIET, "one")
        first = await juliet.next_of("post")
    await post(server, JULIET, "two")
    async with live(server, "juliet") as juliet:
        # Connected without a cursor: "three" comes live before Juliet asks to resume.
        await post(server, JULIET, "three")
        live_one = await juliet.next_of("post")
        await juliet.send({"type": "resume", "cursor": first["cursor"]})
        replayed = await juliet.next_of("post")
        resumed = await juliet.next()
        await juliet.nothing_pending()

    assert live_one["entry"]["content"] == "three"
    assert replayed["entry"]["content"] == "two"
    assert resumed == {"type": "resumed", "cursor": first["cursor"], "replayed": 1}


async def test_a_cursor_older_than_what_is_kept_asks_for_a_resync(
    make_server: MakeServer,
) -> None:
    async with make_server(BUDDYCLOUD_HTTP_REPLAY_EVENTS="2") as server:
        await server.add_user("juliet")
        async with live(server, "juliet") as juliet:
            await post(server, JULIET, "seen")
            cursor = (await juliet.next_of("post"))["cursor"]
        for number in range(3):
            await post(server, JULIET, f"while away {number}")
        async with live(server, "juliet", welcome=False, query=f"cursor={cursor}") as juliet:
            welcome = await juliet.next()
            resync = await juliet.next()
            await post(server, JULIET, "after the resync")
            after = await juliet.next_of("post")
        async with live(server, "juliet", query=f"cursor={welcome['cursor'] + 1000}") as juliet:
            unknown = await juliet.next()

    assert resync["type"] == "resync"
    assert resync["cursor"] == welcome["cursor"]
    assert "no longer kept" in resync["reason"]
    assert after["cursor"] > resync["cursor"]
    assert unknown["type"] == "resync"


async def test_a_bad_cursor_in_the_url_is_an_error_and_the_socket_serves_on(
    server: Server,
) -> None:
    await server.add_user("juliet")
    async with live(server, "juliet", query="cursor=soon") as juliet:
        error = await juliet.next()
        await juliet.nothing_pending()
    assert error["error"] == "bad-cursor"


async def test_under_an_asgi_server_without_the_frame_writer_the_socket_serves_alike(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # uvicorn's own protocol offers no frame writer, as another ASGI server would not.
    monkeypatch.setattr(
        LiveWebSocketProtocol, "handle_connect", WebSocketsSansIOProtocol.handle_connect
    )
    async with make_server() as server:
        for name in ("juliet", "romeo"):
            await server.add_user(name)
        await server.app.engine.subscribe(ROMEO, posts(JULIET), ROMEO)
        async with live(server, "romeo") as romeo:
            await post(server, JULIET, "live")
            event = await romeo.next_of("post")
            page = await romeo.request("GET", f"/api/{JULIET}/content/posts")
        await post(server, JULIET, "missed " * 3000)
        async with live(server, "romeo", query=f"cursor={event['cursor']}") as romeo:
            replayed = await romeo.next_of("post")
            resumed = await romeo.next()

    assert event["entry"]["content"] == "live"
    assert page["status"] == 200 and page["body"][0]["content"] == "live"
    assert replayed["entry"]["content"] == "missed " * 3000
    assert resumed == {"type": "resumed", "cursor": event["cursor"], "replayed": 1}


async def test_open_sockets_are_counted_in_the_metrics(server: Server) -> None:
    await server.add_user("juliet")

    async def open_sockets() -> float:
        async with server.client() as http:
            text = (await http.get("/metrics")).text
        [family] = [f for f in text_string_to_metric_families(text) if f.name.endswith("open")]
        [gauge] = [s for s in family.samples if s.name == "buddycloud_websockets_open"]
        return gauge.value

    async with live(server, "juliet"), live(server, "juliet"):
        during = await open_sockets()
    await wait_until(lambda: server.hub.connected == 0)
    after = await open_sockets()

    assert (during, after) == (2, 0)
