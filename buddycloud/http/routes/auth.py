"""`/api/auth/token`: exchanging credentials for a bearer token, refreshing it, signing out.

The contract (docs/http.md, "Signing in"; docs/auth.md): credentials come as HTTP Basic or
as a JSON body `{"username", "password"}`, never both; a Bearer token and no body refreshes
it within its session. A web page then keeps a short-lived token instead of a password.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.errors import NotAuthenticated
from buddycloud.http.auth import IssuedToken, Requester
from buddycloud.http.errors import ApiError
from buddycloud.http.requests import (
    client_address,
    context,
    optional_json_object,
    signed_in,
    string_field,
)

log = logging.getLogger(__name__)

# Tokens are credentials: no cache may keep the answer (RFC 6749 5.1).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def token_post(request: Request) -> Response:
    """`POST /api/auth/token`: a token for the credentials, or a fresh one for a token."""
    http = context(request)
    body = await optional_json_object(request)
    header = request.headers.get("authorization")
    if body:
        if header is not None:
            raise ApiError(
                400,
                "bad-request",
                "send the credentials either in the Authorization header or in the body, not both",
            )
        username = string_field(body, "username")
        password = string_field(body, "password")
        assert username is not None and password is not None
        try:
            user = await http.authenticator.sign_in(
                username, password, client=client_address(request)
            )
        except NotAuthenticated:
            # Basic sign-ins are logged by buddycloud.http.observe; these carry no header.
            log.info("sign-in refused: POST /api/auth/token (claimed user %r)", username[:64])
            raise
        request.state.requester = user
    elif header is None:
        raise ApiError(
            401,
            "not-authenticated",
            "send a username and password (HTTP Basic, or JSON {username, password}), "
            "or a token to refresh",
        )
    else:
        user = await signed_in(request)
    return _token(await http.authenticator.issue(user))


def _token(issued: IssuedToken) -> Response:
    return JSONResponse(
        {
            "token": issued.token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "jid": str(issued.jid),
        },
        headers=NO_STORE,
    )


async def token_delete(request: Request) -> Response:
    """`DELETE /api/auth/token`: sign out: every token of the user stops working."""
    user: Requester = await signed_in(request)
    await context(request).authenticator.sign_out(user)
    return Response(status_code=204)
