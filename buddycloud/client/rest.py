"""`Client`: the REST API of a Buddycloud server (docs/http.md), with typed answers.

One `httpx.AsyncClient` per `Client`; sign-in by HTTP Basic (every request carries the
credentials) or by a bearer token from `POST /api/auth/token`, refreshed before it
expires. `events()` opens the live websocket (`buddycloud.client.live`).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape, quoteattr

import httpx

from buddycloud.client.errors import UnexpectedAnswer, api_error
from buddycloud.client.live import LiveEvents
from buddycloud.client.models import (
    AccessModel,
    ChannelMetadata,
    Follow,
    Follower,
    Following,
    FoundChannel,
    FoundPost,
    Page,
    Post,
    Role,
    SearchResults,
    Subscription,
    SyncSummary,
    Thread,
    Token,
    read_follow_list,
    read_followers,
    read_following,
    read_found_channel,
    read_found_post,
    read_metadata,
    read_post,
    read_posts,
    read_search,
    read_state,
    read_sync,
    read_sync_summary,
    read_thread,
    read_token,
)

JSON = "application/json"
ATOM = "application/atom+xml"
NS_ATOM = "http://www.w3.org/2005/Atom"
NS_THREAD = "http://purl.org/syndication/thread/1.0"
NS_ACTIVITY = "http://activitystrea.ms/spec/1.0/"
NS_REVIEW = "http://activitystrea.ms/schema/1.0/review"
# A token is refreshed when less than this share of its lifetime is left.
REFRESH_WHEN_LEFT = 0.25


class _TokenSession:
    """A bearer token and when to refresh it; one refresh at a time."""

    def __init__(self, token: Token, now: float) -> None:
        self.token = token
        self.refresh_at = now + token.expires_in * (1 - REFRESH_WHEN_LEFT)
        self.lock = asyncio.Lock()

    def replace(self, token: Token, now: float) -> None:
        self.token = token
        self.refresh_at = now + token.expires_in * (1 - REFRESH_WHEN_LEFT)


class Client:
    """A client of one server's REST API and live websocket.

    Args:
        url: the server's base URL, e.g. `http://127.0.0.1:8080` (the API is under `/api`).
        username: with `password`, sign in by HTTP Basic on every request (`user` or
            `user@domain`). Without credentials the client is an anonymous guest.
        token: a bearer token kept from an earlier `sign_in` (used as it is, not refreshed).
        timeout: seconds for each request.
        transport: an httpx transport instead of the network (for tests of an application).

    Use as `async with Client(...) as client:`, or call `aclose()`.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.url = url.rstrip("/")
        self._basic: str | None = None
        if username is not None and password is not None:
            self._basic = _basic(username, password)
        self._bearer = token
        self._session: _TokenSession | None = None
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- requests ------------------------------------------------------------------------------

    async def authorization(self) -> str | None:
        """The `Authorization` header the next request carries (a token about to expire
        is refreshed first); None for a guest."""
        session = self._session
        if session is not None:
            loop = asyncio.get_running_loop()
            if loop.time() >= session.refresh_at:
                async with session.lock:
                    if loop.time() >= session.refresh_at:
                        await self._refresh(session)
            return f"Bearer {session.token.token}"
        if self._bearer is not None:
            return f"Bearer {self._bearer}"
        return self._basic

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        body: Any = None,
        content: str | None = None,
        content_type: str | None = None,
        authorization: str | None = None,
    ) -> httpx.Response:
        headers = {"Accept": JSON}
        header = authorization or await self.authorization()
        if header is not None:
            headers["Authorization"] = header
        payload: bytes | None = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = JSON
        elif content is not None:
            payload = content.encode()
            headers["Content-Type"] = content_type or ATOM
        query = {name: str(value) for name, value in (params or {}).items() if value is not None}
        answer = await self._http.request(
            method, path, params=query, content=payload, headers=headers
        )
        if answer.status_code >= 400:
            raise _error(answer)
        return answer

    async def _json(self, method: str, path: str, **options: Any) -> Any:
        answer = await self._request(method, path, **options)
        try:
            return answer.json()
        except ValueError:
            raise UnexpectedAnswer(
                f"{method} {path} answered {answer.status_code} without JSON"
            ) from None

    async def _page(
        self, path: str, params: Mapping[str, str | int | None]
    ) -> tuple[Any, Page[None]]:
        answer = await self._request("GET", path, params=params)
        try:
            body = answer.json()
        except ValueError:
            raise UnexpectedAnswer(f"GET {path} answered without JSON") from None
        return body, _position(answer)

    # --- signing in ------------------------------------------------------------------------------

    async def check(self) -> None:
        """`GET /api`: returns when the credentials are good (or there are none).

        Raises:
            Unauthorized: they are not.
        """
        await self._request("GET", "/api")

    async def sign_in(self, username: str, password: str) -> Token:
        """Sign in for a bearer token (`POST /api/auth/token`); the client then uses it and
        refreshes it before it expires, until the server's session lifetime ends.

        Raises:
            Unauthorized: wrong credentials (whatever the reason).
            TooManyRequests: too many failures; see `retry_after`.
        """
        # The credentials go as HTTP Basic only: the server refuses them in two places.
        value = await self._json(
            "POST", "/api/auth/token", authorization=_basic(username, password)
        )
        token = read_token(value)
        self._session = _TokenSession(token, asyncio.get_running_loop().time())
        self._basic = None
        self._bearer = None
        return token

    @property
    def token(self) -> Token | None:
        """The current bearer token after `sign_in`, to keep for a later `Client(token=)`."""
        return self._session.token if self._session is not None else None

    async def refresh_token(self) -> Token:
        """A fresh token now (the client refreshes by itself when needed)."""
        session = self._session
        if session is None:
            raise ValueError("refresh_token needs a sign_in first")
        async with session.lock:
            await self._refresh(session)
        return session.token

    async def _refresh(self, session: _TokenSession) -> None:
        value = await self._json(
            "POST", "/api/auth/token", authorization=f"Bearer {session.token.token}"
        )
        session.replace(read_token(value), asyncio.get_running_loop().time())

    async def sign_out(self) -> None:
        """`DELETE /api/auth/token`: the token (and every one of its sign-in) stops working;
        the client is a guest afterwards."""
        header = await self.authorization()
        if header is None or not header.startswith("Bearer "):
            raise ValueError("sign_out ends a token sign-in; this client has none")
        await self._request("DELETE", "/api/auth/token", authorization=header)
        self._session = None
        self._bearer = None

    # --- accounts ------------------------------------------------------------------------------

    async def register(self, username: str, password: str, email: str) -> str:
        """`POST /api/account`: a new account (and its personal channel); its JID.

        Raises:
            Conflict: `account-exists`.
            BadRequest: a field was refused (the message names it).
        """
        value = await self._json(
            "POST",
            "/api/account",
            body={"username": username, "password": password, "email": email},
        )
        if not isinstance(value, dict) or not isinstance(value.get("username"), str):
            raise UnexpectedAnswer("the new account's answer names no username")
        jid: str = value["username"]
        return jid

    async def change_password(self, password: str) -> None:
        """`POST /api/account/pw/change`. A Basic client switches to the new password."""
        await self._request("POST", "/api/account/pw/change", body={"password": password})
        if self._basic is not None:
            username = base64.b64decode(self._basic[6:]).decode().partition(":")[0]
            self._basic = _basic(username, password)

    async def delete_account(self) -> None:
        """`DELETE /api/account`: the account with its channels, posts and follows."""
        await self._request("DELETE", "/api/account")

    # --- channels and nodes ----------------------------------------------------------------------

    async def create_channel(
        self,
        channel: str,
        *,
        title: str | None = None,
        description: str | None = None,
        access_model: AccessModel | None = None,
        default_affiliation: Role | None = None,
    ) -> ChannelMetadata:
        """`POST /api/<channel>`: a topic channel (`name@topics.<domain>`) you own."""
        settings = _settings(title, description, access_model, default_affiliation)
        value = await self._json("POST", _channel(channel), body=settings or None)
        return read_metadata(value)

    async def delete_channel(self, channel: str) -> None:
        """`DELETE /api/<channel>`: the channel with all its nodes and posts (owner only)."""
        await self._request("DELETE", _channel(channel))

    async def create_node(self, channel: str, node: str) -> ChannelMetadata:
        """`POST /api/<channel>/<node>`: an application node (owner only)."""
        return read_metadata(await self._json("POST", f"{_channel(channel)}/{_part(node)}"))

    async def delete_node(self, channel: str, node: str) -> None:
        await self._request("DELETE", f"{_channel(channel)}/{_part(node)}")

    async def metadata(self, channel: str, *, node: str = "posts") -> ChannelMetadata:
        """`GET /api/<channel>/metadata/<node>`."""
        return read_metadata(await self._json("GET", _metadata(channel, node)))

    async def configure(
        self,
        channel: str,
        *,
        title: str | None = None,
        description: str | None = None,
        access_model: AccessModel | None = None,
        default_affiliation: Role | None = None,
        node: str = "posts",
    ) -> ChannelMetadata:
        """`POST /api/<channel>/metadata/<node>`: change the settings given (the owner; a
        moderator title and description); the metadata as it now is."""
        settings = _settings(title, description, access_model, default_affiliation)
        return read_metadata(await self._json("POST", _metadata(channel, node), body=settings))

    # --- posts -------------------------------------------------------------------------------

    async def posts(
        self,
        channel: str,
        *,
        node: str = "posts",
        max: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Page[Post]:
        """`GET /api/<channel>/content/<node>`: a page of posts, newest activity first.

        Args:
            max: posts per page (server default 50, at most 1,000; 0 only counts).
            after: the `last` of a page, for the (older) page after it.
            before: the `first` of a page, for the page before it; `""` for the last page.
        """
        params = {"max": max, "before": before, "after": after}
        body, position = await self._page(_content(channel, node), params)
        return _with_items(position, read_posts(body))

    async def post(self, channel: str, post_id: str, *, node: str = "posts") -> Post:
        """`GET .../content/<node>/<id>`: one post.

        Raises:
            NotFound: `item-not-found`, also for a retracted post.
        """
        return read_post(await self._json("GET", f"{_content(channel, node)}/{_part(post_id)}"))

    async def publish(
        self,
        channel: str,
        content: str,
        *,
        node: str = "posts",
        reply_to: str | None = None,
        title: str | None = None,
        media: Sequence[tuple[str, str]] = (),
    ) -> Post:
        """`POST .../content/<node>`: a new post, or with `reply_to` a reply; the post as
        stored. `media` names (id, channel) pairs."""
        body = _entry(content, reply_to, title, media)
        return read_post(await self._json("POST", _content(channel, node), body=body))

    async def replace(
        self,
        channel: str,
        content: str,
        *,
        node: str = "posts",
        title: str | None = None,
        media: Sequence[tuple[str, str]] = (),
    ) -> Post:
        """`PUT .../content/<node>`: the post replaces the node's newest one (a status)."""
        body = _entry(content, None, title, media)
        return read_post(await self._json("PUT", _content(channel, node), body=body))

    async def publish_xml(self, channel: str, xml: str, *, node: str = "posts") -> Post:
        """`POST .../content/<node>` with an Atom `<entry>` (or a node's own payload XML)."""
        answer = await self._json("POST", _content(channel, node), content=xml)
        return read_post(answer)

    async def rate(self, channel: str, post_id: str, rating: int, *, node: str = "posts") -> Post:
        """Rate a post from 1 to 5 (ProtoXEP 6.3.4): a reply carrying the rating; once per
        user and post.

        Raises:
            BadRequest: a rating out of range, a second rating, or rating a rating.
        """
        target = quoteattr(post_id)
        entry = (
            f'<entry xmlns="{NS_ATOM}"><content>rating</content>'
            f'<in-reply-to xmlns="{NS_THREAD}" ref={target}/>'
            f'<target xmlns="{NS_ACTIVITY}"><id xmlns="{NS_ATOM}">{escape(post_id)}</id></target>'
            f'<rating xmlns="{NS_REVIEW}">{int(rating)}</rating></entry>'
        )
        return await self.publish_xml(channel, entry, node=node)

    async def retract(self, channel: str, post_id: str, *, node: str = "posts") -> None:
        """`DELETE .../content/<node>/<id>` (the author, the owner, a moderator)."""
        await self._request("DELETE", f"{_content(channel, node)}/{_part(post_id)}")

    async def replies(
        self,
        channel: str,
        post_id: str,
        *,
        node: str = "posts",
        max: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Page[Post]:
        """`GET .../content/<node>/<id>/replyto`: a post's replies, newest first."""
        path = f"{_content(channel, node)}/{_part(post_id)}/replyto"
        body, position = await self._page(path, {"max": max, "before": before, "after": after})
        return _with_items(position, read_posts(body))

    async def threads(
        self,
        channel: str,
        *,
        node: str = "posts",
        max: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Page[Thread]:
        """`GET .../content/<node>/threads`: posts with their replies, by latest activity;
        paged by thread."""
        path = f"{_content(channel, node)}/threads"
        body, position = await self._page(path, {"max": max, "before": before, "after": after})
        if not isinstance(body, list):
            raise UnexpectedAnswer("the threads are not a JSON array")
        return _with_items(position, [read_thread(raw) for raw in body])

    # --- following ---------------------------------------------------------------------------

    async def follow(self, channel: str, *, node: str = "posts") -> Role | Subscription:
        """`POST /api/subscribed`: follow the channel; your role, or `Subscription.PENDING`
        while the owner of a closed channel decides."""
        key = f"{channel}/{node}"
        value = await self._json("POST", "/api/subscribed", body={key: "member"})
        if not isinstance(value, dict) or key not in value:
            raise UnexpectedAnswer(f"the follow's answer does not name {key}")
        return read_state(value[key])

    async def unfollow(self, channel: str, *, node: str = "posts") -> None:
        """Stop following the channel.

        Raises:
            Conflict: `not-subscribed`, or `node-must-have-owner` for its owner.
        """
        await self._request("POST", "/api/subscribed", body={f"{channel}/{node}": "none"})

    async def following(
        self, *, max: int | None = None, before: str | None = None, after: str | None = None
    ) -> Page[Following]:
        """`GET /api/subscribed`: every node you follow, asked to follow or hold a role in."""
        params = {"max": max, "before": before, "after": after}
        body, position = await self._page("/api/subscribed", params)
        return _with_items(position, read_following(body))

    async def followers(
        self,
        channel: str,
        *,
        node: str = "posts",
        max: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Page[Follower]:
        """`GET .../subscribers/<node>`: who has which role (banned users for the owner and
        moderators only)."""
        params = {"max": max, "before": before, "after": after}
        body, position = await self._page(_subscribers(channel, node), params)
        return _with_items(position, read_followers(body))

    async def set_roles(
        self, channel: str, roles: Mapping[str, Role], *, node: str = "posts"
    ) -> list[Follower]:
        """`POST .../subscribers/<node>`: change roles (`Role.OUTCAST` bans, `Role.NONE`
        removes); all are checked before any is made. The new roles."""
        body = {jid: Role(role).value for jid, role in roles.items()}
        return read_followers(await self._json("POST", _subscribers(channel, node), body=body))

    async def set_role(
        self, channel: str, jid: str, role: Role, *, node: str = "posts"
    ) -> Follower:
        [changed] = await self.set_roles(channel, {jid: role}, node=node)
        return changed

    async def ban(self, channel: str, jid: str, *, node: str = "posts") -> Follower:
        """Ban `jid`: their follow ends and they cannot follow again."""
        return await self.set_role(channel, jid, Role.OUTCAST, node=node)

    async def follows(
        self,
        channel: str,
        *,
        node: str = "posts",
        max: int | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Page[Follow]:
        """`GET .../subscribers/<node>/approve`: the follows, with pending requests and
        invitations for the owner and moderators."""
        params = {"max": max, "before": before, "after": after}
        body, position = await self._page(f"{_subscribers(channel, node)}/approve", params)
        return _with_items(position, read_follow_list(body))

    async def set_subscriptions(
        self, channel: str, changes: Mapping[str, Subscription], *, node: str = "posts"
    ) -> list[Follow]:
        """`POST .../subscribers/<node>/approve`: `SUBSCRIBED` approves a request, `NONE`
        refuses it or removes a follower, `INVITED` invites."""
        body = [{"jid": jid, "subscription": Subscription(s).value} for jid, s in changes.items()]
        path = f"{_subscribers(channel, node)}/approve"
        return read_follow_list(await self._json("POST", path, body=body))

    async def approve(self, channel: str, jid: str, *, node: str = "posts") -> Follow:
        [done] = await self.set_subscriptions(channel, {jid: Subscription.SUBSCRIBED}, node=node)
        return done

    async def refuse(self, channel: str, jid: str, *, node: str = "posts") -> Follow:
        [done] = await self.set_subscriptions(channel, {jid: Subscription.NONE}, node=node)
        return done

    # --- search and sync -----------------------------------------------------------------------

    async def search_posts(
        self, words: str, *, max: int | None = None, index: int | None = None
    ) -> SearchResults[FoundPost]:
        """`GET /api/search?type=content`: posts you may read holding every word."""
        params = {"type": "content", "q": words, "max": max, "index": index}
        items, at, count = read_search(await self._json("GET", "/api/search", params=params))
        return SearchResults([read_found_post(raw) for raw in items], at, count)

    async def search_channels(
        self, words: str, *, max: int | None = None, index: int | None = None
    ) -> SearchResults[FoundChannel]:
        """`GET /api/search?type=metadata`: channels by title and description."""
        params = {"type": "metadata", "q": words, "max": max, "index": index}
        items, at, count = read_search(await self._json("GET", "/api/search", params=params))
        return SearchResults([read_found_channel(raw) for raw in items], at, count)

    async def sync(self, since: datetime, *, max: int = 50) -> dict[str, list[Post]]:
        """`GET /api/sync`: per followed node (`/user/<channel>/posts`), its posts updated
        after `since`, newest first, at most `max` per node."""
        params = {"since": _iso(since), "max": max}
        return read_sync(await self._json("GET", "/api/sync", params=params))

    async def sync_summary(self, since: datetime, *, max: int = 50) -> dict[str, SyncSummary]:
        """`GET /api/sync?summary=true`: counters of what is new per followed node."""
        params = {"since": _iso(since), "max": max, "summary": "true"}
        return read_sync_summary(await self._json("GET", "/api/sync", params=params))

    # --- live ---------------------------------------------------------------------------------

    def events(
        self,
        *,
        cursor: int | None = None,
        reconnect_delay: float = 0.5,
        max_reconnect_delay: float = 30.0,
    ) -> LiveEvents:
        """The live events of `/api/ws` (docs/websocket.md), reconnecting by itself and
        resuming after the last event received: `async with client.events() as events:
        async for event in events: ...`.

        Args:
            cursor: resume after this event (`events.cursor` of an earlier connection).
            reconnect_delay: the first wait before reconnecting; doubled after each failed
                attempt up to `max_reconnect_delay`.
        """
        url = self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return LiveEvents(
            f"{url}/api/ws",
            self.authorization,
            cursor=cursor,
            reconnect_delay=reconnect_delay,
            max_reconnect_delay=max_reconnect_delay,
        )


# --- helpers ---------------------------------------------------------------------------------


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _part(text: str) -> str:
    return quote(text, safe="")


def _channel(channel: str) -> str:
    return f"/api/{quote(channel, safe='@')}"


def _content(channel: str, node: str) -> str:
    return f"{_channel(channel)}/content/{_part(node)}"


def _metadata(channel: str, node: str) -> str:
    return f"{_channel(channel)}/metadata/{_part(node)}"


def _subscribers(channel: str, node: str) -> str:
    return f"{_channel(channel)}/subscribers/{_part(node)}"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("give an aware datetime (with a time zone)")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _settings(
    title: str | None,
    description: str | None,
    access_model: AccessModel | None,
    default_affiliation: Role | None,
) -> dict[str, str]:
    settings = {"title": title, "description": description}
    if access_model is not None:
        settings["access_model"] = AccessModel(access_model).value
    if default_affiliation is not None:
        settings["default_affiliation"] = Role(default_affiliation).value
    return {name: value for name, value in settings.items() if value is not None}


def _entry(
    content: str, reply_to: str | None, title: str | None, media: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    entry: dict[str, Any] = {"content": content}
    if reply_to is not None:
        entry["replyTo"] = reply_to
    if title is not None:
        entry["title"] = title
    if media:
        entry["media"] = [{"id": id_, "channel": channel} for id_, channel in media]
    return entry


def _position(answer: httpx.Response) -> Page[None]:
    """The paging headers of an answer (docs/http.md, "Paging")."""
    count = answer.headers.get("x-count")
    first = answer.headers.get("x-first")
    last = answer.headers.get("x-last")
    if count is None or not count.isdigit():
        raise UnexpectedAnswer("a page came without a count (X-Count)")
    return Page(
        [],
        unquote(first) if first is not None else None,
        unquote(last) if last is not None else None,
        int(count),
    )


def _with_items(position: Page[None], items: list[Any]) -> Page[Any]:
    return Page(items, position.first, position.last, position.count)


def _error(answer: httpx.Response) -> Exception:
    """The typed error for an error answer: its status and the server's error name."""
    error, message = "unknown", answer.reason_phrase or f"HTTP {answer.status_code}"
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            error = body["error"]
        if isinstance(body.get("message"), str):
            message = body["message"]
    retry_after: float | None = None
    raw = answer.headers.get("retry-after")
    if raw is not None:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = None
    return api_error(answer.status_code, error, message, retry_after=retry_after)
