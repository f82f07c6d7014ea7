"""The ASGI application of the HTTP edge: its routes, CORS and the one error funnel.

The middleware run outermost first: `ObserveRequests` (request ids, log context, metrics,
access lines, and the 500 of an unexpected exception), then CORS. Domain and API errors
are rendered by the funnel where the route raised them.
"""

from __future__ import annotations

import functools

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, WebSocketRoute

from buddycloud.domain.errors import ChannelError
from buddycloud.http.errors import ApiError, error_response, render_error
from buddycloud.http.observe import ObserveRequests
from buddycloud.http.openapi import query_parameters
from buddycloud.http.requests import HttpContext
from buddycloud.http.routes import (
    account,
    auth,
    channels,
    content,
    docs,
    metadata,
    notifications,
    operations,
    search,
    subscribed,
    subscribers,
    sync,
    web,
    ws,
)


class _PathText(Convertor[str]):
    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class _ChannelSegment(_PathText):
    """A path segment holding an `@`: a channel JID, never a fixed word like `account`."""

    regex = "[^/@]+@[^/]+"


class _Item(_PathText):
    """An item id; `threads` is the name of the threads of a node, not an item."""

    regex = "(?!threads(?:/|$))[^/]+"


class _ReplyTo(_PathText):
    """`replyto` in any case: the original API's docs spell it `replyTo` (reference 9.2)."""

    regex = "(?i:replyto)"


register_url_convertor("channel", _ChannelSegment())
register_url_convertor("item", _Item())
register_url_convertor("replyto", _ReplyTo())

CONTENT = "/api/{channel}/content/{node}"
SUBSCRIBERS = "/api/{channel}/subscribers/{node}"

# The REST API of the original HTTP API, under /api (reference 9.2). Fixed paths come
# first; `threads` before the item it would otherwise name.
ROUTES: list[BaseRoute] = [
    Route("/api", account.root_get, methods=["GET"]),
    Route("/api/", account.root_get, methods=["GET"]),
    Route("/api/account", account.account_post, methods=["POST"]),
    Route("/api/account", account.account_delete, methods=["DELETE"]),
    Route("/api/account/pw/change", account.password_change_post, methods=["POST"]),
    Route("/api/account/pw/reset", account.password_reset_post, methods=["POST"]),
    Route("/api/account/pw/reset/confirm", account.password_reset_confirm_post, methods=["POST"]),
    Route("/api/auth/token", auth.token_post, methods=["POST"]),
    Route("/api/auth/token", auth.token_delete, methods=["DELETE"]),
    Route("/api/openapi.json", docs.openapi_get, methods=["GET"]),
    Route("/api/docs", docs.docs_get, methods=["GET"]),
    Route("/api/search", search.search_get, methods=["GET"]),
    Route("/api/sync", sync.sync_get, methods=["GET"]),
    Route("/api/notifications/posts", notifications.notifications_posts_get, methods=["GET"]),
    Route("/api/subscribed", subscribed.subscribed_get, methods=["GET"]),
    Route("/api/subscribed", subscribed.subscribed_post, methods=["POST"]),
    Route(CONTENT, content.content_get, methods=["GET"]),
    Route(CONTENT, content.content_post, methods=["POST"]),
    Route(CONTENT, content.content_put, methods=["PUT"]),
    Route(CONTENT + "/threads", content.threads_get, methods=["GET"]),
    Route(CONTENT + "/{item:item}", content.item_get, methods=["GET"]),
    Route(CONTENT + "/{item:item}", content.item_delete, methods=["DELETE"]),
    Route(CONTENT + "/{item}/{replyto:replyto}", content.replyto_get, methods=["GET"]),
    Route("/api/{channel}/metadata/{node}", metadata.metadata_get, methods=["GET"]),
    Route("/api/{channel}/metadata/{node}", metadata.metadata_post, methods=["POST"]),
    Route(SUBSCRIBERS, subscribers.subscribers_get, methods=["GET"]),
    Route(SUBSCRIBERS, subscribers.subscribers_post, methods=["POST"]),
    Route(SUBSCRIBERS + "/approve", subscribers.approve_get, methods=["GET"]),
    Route(SUBSCRIBERS + "/approve", subscribers.approve_post, methods=["POST"]),
    Route("/api/{channel:channel}", channels.channel_post, methods=["POST"]),
    Route("/api/{channel:channel}", channels.channel_delete, methods=["DELETE"]),
    Route("/api/{channel:channel}/{node}", channels.node_post, methods=["POST"]),
    Route("/api/{channel:channel}/{node}", channels.node_delete, methods=["DELETE"]),
    # Operations (docs/http.md, "Operations"): outside /api and outside sign-in.
    Route("/metrics", operations.metrics_get, methods=["GET"]),
    Route("/health", operations.health_get, methods=["GET"]),
    # The live websocket: events and every REST operation over one connection.
    WebSocketRoute("/api/ws", ws.ws_get),
]

# Reference 9.1: any origin, with credentials; the headers clients send and read.
CORS = Middleware(
    CORSMiddleware,
    allow_origin_regex=".*",
    allow_credentials=True,
    allow_methods=["GET", "POST", "PUT", "DELETE"],
    allow_headers=["Authorization", "Content-Type", "X-Requested-With", "X-Session-Id"],
    expose_headers=["Location", "X-Session-Id", "X-First", "X-Last", "X-Count"],
    max_age=86400,
)


def create_app(http: HttpContext) -> Starlette:
    """The HTTP edge over an engine: every route, CORS and the error funnel; the page
    cache and the live hub become engine listeners."""
    http.engine.add_listener(http.pages)
    http.engine.add_listener(http.hub)
    observe = Middleware(ObserveRequests, metrics=http.metrics, access_log_info=http.access_log)
    app = Starlette(
        routes=[_query_checked(route) for route in ROUTES] + web.web_routes(),
        middleware=[observe, CORS],
        exception_handlers={
            HTTPException: _http_exception,
            # Handled where raised, so that they are answers, not crashes: an `Exception`
            # handler would run outside every middleware, after the server logged a
            # traceback for each 404.
            ChannelError: _any_exception,
            ApiError: _any_exception,
            Exception: _any_exception,
        },
    )
    app.state.http = http
    return app


_QUERY_PARAMETERS = query_parameters()


def _query_checked(route: BaseRoute) -> BaseRoute:
    """`route`, refusing query parameters its OpenAPI operation does not name (a typo such as
    `maxx` would otherwise be ignored without a word)."""
    if not isinstance(route, Route):
        return route
    endpoint = route.endpoint
    known = _QUERY_PARAMETERS.get(endpoint.__name__)
    if known is None:
        return route

    @functools.wraps(endpoint)
    async def checked(request: Request) -> Response:
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            takes = ", ".join(sorted(known)) if known else "no query parameters"
            raise ApiError(
                400,
                "unknown-parameter",
                f"unknown query parameter {unknown[0][:40]!r}; this endpoint takes {takes}",
            )
        response: Response = await endpoint(request)
        return response

    return Route(route.path, checked, methods=route.methods, name=route.name)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "no-such-endpoint", f"nothing is served at {request.url.path}")
    if exc.status_code == 405:
        response = error_response(
            405, "method-not-allowed", f"{request.method} is not served at {request.url.path}"
        )
        response.headers["Allow"] = ", ".join(sorted(_methods_at(request)))
        return response
    return error_response(exc.status_code, "bad-request", str(exc.detail))


def _methods_at(request: Request) -> set[str]:
    """Every method some route serves at the request's path (each route has its own)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE and isinstance(route, Route) and route.methods:
            methods |= route.methods
    return methods


async def _any_exception(request: Request, exc: Exception) -> Response:
    requester = getattr(request.state, "requester", None)
    anonymous = requester is None or requester.anonymous
    return render_error(exc, anonymous=anonymous)
