"""`/api` and `/api/account`: checking credentials, registering, changing and deleting.

Rows 1-4 of the reference's endpoint table (section 9.2), over the built-in user database.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.domain.jid import Jid
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


log = logging.getLogger(__name__)
# Reset mails being sent: kept so that they are not collected before they finish.
_MAILING: set[asyncio.Task[None]] = set()


async def password_reset_post(request: Request) -> Response:
    """`POST /api/account/pw/reset` `{username}`: mail the account a one-time reset token.

    The answer is the same, and as quick, whether or not the account exists: the mail is
    sent after the answer.
    """
    body = await json_object(request)
    username = string_field(body, "username")
    assert username is not None
    engine = context(request).engine
    engine.require_mail()
    task = asyncio.create_task(_mail_reset(request, username))
    _MAILING.add(task)
    task.add_done_callback(_MAILING.discard)
    return JSONResponse(
        {"message": "if an account has that name, a mail is on its way to its address"},
        status_code=202,
    )


async def _mail_reset(request: Request, username: str) -> None:
    try:
        await context(request).engine.request_password_reset(username)
    except Exception:
        log.exception("a password reset mail could not be sent")


async def password_reset_confirm_post(request: Request) -> Response:
    """`POST /api/account/pw/reset/confirm` `{token, password}`: the new password."""
    body = await json_object(request)
    token = string_field(body, "token")
    password = string_field(body, "password")
    assert token is not None and password is not None
    http = context(request)
    user: Jid = await http.engine.confirm_password_reset(token, password)
    http.authenticator.forget(user)
    return JSONResponse({"username": str(user)})
