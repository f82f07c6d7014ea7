"""`/api/ws`: the live websocket (docs/websocket.md)."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from buddycloud.domain.errors import ChannelError, NotAuthenticated
from buddycloud.http.auth import Requester
from buddycloud.http.errors import lookup
from buddycloud.http.requests import context
from buddycloud.http.websocket import (
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_SERVER_ERROR,
    LiveSocket,
    error_message,
)

log = logging.getLogger(__name__)


async def ws_get(websocket: WebSocket) -> None:
    """Accept, sign in (the `Authorization` header, or `?token=` as a bearer token), then
    serve the socket; `?cursor=` resumes after that event at once."""
    http = context(websocket)
    await websocket.accept()
    requester = await _sign_in(websocket)
    if requester is None:
        return
    socket = LiveSocket(websocket, requester, http.hub, websocket.scope["app"], http.sockets)
    with http.metrics.websockets_open.track_inprogress():
        await socket.run(websocket.query_params.get("cursor"))


async def _sign_in(websocket: WebSocket) -> Requester | None:
    """The socket's user; None when the socket was closed because sign-in failed."""
    header = websocket.headers.get("authorization")
    token = websocket.query_params.get("token")
    if header is None and token is not None:
        header = f"Bearer {token}"
    try:
        if header is None:
            raise NotAuthenticated(
                "sign in with an Authorization header, or a token parameter in the URL"
            )
        requester = await context(websocket).authenticator.authenticate(header)
    except ChannelError as exc:
        found = lookup(exc)
        name = found.name if found is not None else "not-authenticated"
        code = CLOSE_NOT_AUTHENTICATED if isinstance(exc, NotAuthenticated) else CLOSE_SERVER_ERROR
        await websocket.send_text(error_message(name, exc.message))
        await websocket.close(code, "sign-in failed")
        return None
    except Exception:
        log.exception("signing in a websocket failed")
        await websocket.send_text(
            error_message("internal-server-error", "the server failed to sign you in")
        )
        await websocket.close(CLOSE_SERVER_ERROR, "sign-in failed")
        return None
    if requester.anonymous:
        await websocket.send_text(error_message("not-authenticated", "sign in to use the socket"))
        await websocket.close(CLOSE_NOT_AUTHENTICATED, "sign-in failed")
        return None
    return requester
