"""`/api` and `/api/account`: checking credentials, registering, changing and deleting.

Rows 1-4 of the reference's endpoint table (section 9.2), over the built-in user database.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.http.errors import ApiError
from buddycloud.http.requests import (
    context,
    json_object,
    requester,
    signed_in,
    string_field,
)


async def root_get(request: Request) -> Response:
    """`GET /api`: 204 when the credentials (if any) are good, 401 when not."""
    await requester(request)
    return Response(status_code=204)


async def account_post(request: Request) -> Response:
    """`POST /api/account` `{username, password, email}`: a new account and its channel."""
    body = await json_object(request)
    username = string_field(body, "username")
    password = string_field(body, "password")
    email = string_field(body, "email")
    assert username is not None and password is not None and email is not None
    account = await context(request).engine.create_account(username, password, email)
    return JSONResponse({"username": str(account.jid)}, status_code=200)


async def account_delete(request: Request) -> Response:
    """`DELETE /api/account`: the signed-in user's account, channels, posts and follows go."""
    user = await signed_in(request)
    http = context(request)
    await http.engine.delete_account(user.jid)
    http.authenticator.forget(user.jid)
    return Response(status_code=200)


async def password_change_post(request: Request) -> Response:
    """`POST /api/account/pw/change` `{password}`: a new password for the signed-in user.

    The reference's body also names `username`; when given it must be the signed-in user.
    """
    user = await signed_in(request)
    body = await json_object(request)
    password = string_field(body, "password")
    assert password is not None
    http = context(request)
    username = string_field(body, "username", required=False)
    if username is not None and http.engine.account_jid(username) != user.jid:
        raise ApiError(403, "forbidden", "you can only change your own password")
    await http.engine.change_password(user.jid, password)
    http.authenticator.forget(user.jid)
    return Response(status_code=200)
