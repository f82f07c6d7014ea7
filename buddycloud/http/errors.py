"""HTTP_ERRORS: every domain error's HTTP status and error name, and the edge's own errors.

Looked up by MRO, like the XMPP edge's `STANZA_ERRORS`, so a subclass without a row of its
own answers as its nearest mapped ancestor. Every error body is JSON:
`{"error": "<name>", "message": "<what was wrong>"}`. A refusal answers 401 to an anonymous
caller (signing in might help) and 403 to a signed-in one (reference 9.1). Anything
unmapped is logged with its traceback and answers 500 `internal-server-error` without
detail. The table is mirrored in docs/errors.md and checked by tests/http/test_errors.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.responses import JSONResponse

from buddycloud.domain.errors import (
    AccountDirectoryUnavailable,
    AccountExists,
    AnonymousReadOnly,
    BadRequest,
    Banned,
    ChannelError,
    ClosedNode,
    Forbidden,
    InvalidConfiguration,
    InvalidDate,
    InvalidJid,
    InvalidNodeId,
    InvalidPaging,
    InvalidPayload,
    InvalidResetToken,
    ItemNotFound,
    ItemRequired,
    JidMismatch,
    NodeExists,
    NodeNotFound,
    NotAuthenticated,
    NotFound,
    NotLocalUser,
    NotSubscribed,
    OwnAffiliation,
    OwnerRequired,
    OwnSubscription,
    PayloadTooLarge,
    RemoteError,
    RemoteServerNotFound,
    RemoteTimeout,
    SignInUnavailable,
    SubscriptionPending,
    Unsupported,
    UntrustedServer,
)
from buddycloud.http.limits import TooManyFailures

log = logging.getLogger(__name__)

# Sent with every 401, so that browsers and HTTP clients know how to sign in.
WWW_AUTHENTICATE = 'Basic realm="buddycloud", charset="UTF-8", Bearer realm="buddycloud"'


@dataclass(frozen=True, slots=True)
class HttpError:
    status: int
    name: str


HTTP_ERRORS: dict[type[Exception], HttpError] = {
    BadRequest: HttpError(400, "bad-request"),
    InvalidJid: HttpError(400, "invalid-jid"),
    JidMismatch: HttpError(400, "invalid-jid"),
    InvalidNodeId: HttpError(400, "invalid-node"),
    InvalidDate: HttpError(400, "invalid-date"),
    InvalidPayload: HttpError(400, "invalid-payload"),
    PayloadTooLarge: HttpError(413, "payload-too-large"),
    ItemRequired: HttpError(400, "item-required"),
    InvalidConfiguration: HttpError(400, "invalid-value"),
    InvalidResetToken: HttpError(400, "invalid-reset-token"),
    InvalidPaging: HttpError(400, "invalid-paging"),
    NotFound: HttpError(404, "not-found"),
    NodeNotFound: HttpError(404, "node-not-found"),
    ItemNotFound: HttpError(404, "item-not-found"),
    NodeExists: HttpError(409, "conflict"),
    AccountExists: HttpError(409, "account-exists"),
    Forbidden: HttpError(403, "forbidden"),
    ClosedNode: HttpError(403, "closed-node"),
    Banned: HttpError(403, "banned"),
    SubscriptionPending: HttpError(403, "pending-subscription"),
    NotLocalUser: HttpError(403, "not-local-user"),
    AnonymousReadOnly: HttpError(403, "sign-in-required"),
    OwnAffiliation: HttpError(403, "can-not-modify-own-affiliation"),
    OwnSubscription: HttpError(403, "can-not-modify-own-subscription"),
    OwnerRequired: HttpError(409, "node-must-have-owner"),
    NotSubscribed: HttpError(409, "not-subscribed"),
    Unsupported: HttpError(400, "unsupported"),
    RemoteError: HttpError(502, "remote-server-error"),
    RemoteServerNotFound: HttpError(502, "remote-server-not-found"),
    RemoteTimeout: HttpError(504, "remote-server-timeout"),
    UntrustedServer: HttpError(403, "untrusted-server"),
    NotAuthenticated: HttpError(401, "not-authorized"),
    SignInUnavailable: HttpError(503, "sign-in-unavailable"),
    AccountDirectoryUnavailable: HttpError(503, "xmpp-server-unavailable"),
}

INTERNAL = HttpError(500, "internal-server-error")
TOO_MANY_FAILURES = "too-many-failures"


class ApiError(Exception):
    """An error of the HTTP edge itself (malformed body, wrong content type, ...)."""

    def __init__(self, status: int, name: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message


def lookup(error: BaseException) -> HttpError | None:
    for cls in type(error).__mro__:
        found = HTTP_ERRORS.get(cls)
        if found is not None:
            return found
    return None


def error_response(
    status: int, name: str, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return JSONResponse({"error": name, "message": message}, status, headers=headers or None)


def render_error(error: BaseException, *, anonymous: bool) -> JSONResponse:
    """The response for an exception raised while serving a request.

    Args:
        error: what was raised.
        anonymous: the caller did not sign in; a refusal then answers 401, not 403.
    """
    if isinstance(error, ApiError):
        return error_response(error.status, error.name, error.message)
    if isinstance(error, TooManyFailures):
        # One answer for either limit, and for names with or without an account.
        return error_response(
            429,
            TOO_MANY_FAILURES,
            str(error),
            headers={"Retry-After": str(error.retry_after)},
        )
    found = lookup(error)
    if found is None or not isinstance(error, ChannelError):
        log.error("unexpected error serving a request", exc_info=error)
        return error_response(INTERNAL.status, INTERNAL.name, "the server failed to answer")
    status = found.status
    if status == 403 and anonymous:
        status = 401
    return error_response(status, found.name, error.message)
