"""`/api/ws`: the live websocket (docs/websocket.md)."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from buddycloud.domain.errors import ChannelError, NotAuthenticated, SignInUnavailable
from buddycloud.http.auth import Requester
from buddycloud.http.errors import TOO_MANY_FAILURES, lookup
from buddycloud.http.limits import TooManyFailures
from buddycloud.http.requests import client_address, context
from buddycloud.http.websocket import (
    CLOSE_NOT_AUTHENTICATED,
    CLOSE_SERVER_ERROR,
    CLOSE_TRY_LATER,
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
    who = "a guest" if requester.anonymous else str(requester.jid)
    log.info("websocket of %s opened", who)
    try:
        with http.metrics.websockets_open.track_inprogress():
            await socket.run(websocket.query_params.get("cursor"))
    finally:
        log.info("websocket of %s closed", who)


async def _sign_in(websocket: WebSocket) -> Requester | None:
    """The socket's user; None when the socket was closed because sign-in failed."""
    header = websocket.headers.get("authorization")
    token = websocket.query_params.get("token")
    if header is None and token is not None:
        header = f"Bearer {token}"
    if header is None:
        await websocket.send_text(
            error_message(
                "not-authenticated",
                "sign in with an Authorization header, or a token parameter in the URL",
            )
        )
        await websocket.close(CLOSE_NOT_AUTHENTICATED, "sign-in failed")
        return None
    try:
        requester = await context(websocket).authenticator.authenticate(
            header, client=client_address(websocket)
        )
    except TooManyFailures as exc:
        await websocket.send_text(error_message(TOO_MANY_FAILURES, str(exc)))
        await websocket.close(CLOSE_NOT_AUTHENTICATED, "sign-in failed")
        return None
    except ChannelError as exc:
        found = lookup(exc)
        name = found.name if found is not None else "not-authorized"
        if isinstance(exc, NotAuthenticated):
            code = CLOSE_NOT_AUTHENTICATED
        elif isinstance(exc, SignInUnavailable):
            code = CLOSE_TRY_LATER
        else:
            code = CLOSE_SERVER_ERROR
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
