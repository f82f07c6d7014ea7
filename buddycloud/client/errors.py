"""The client's errors: what the server refused (with its HTTP status and error name), and
what went wrong on the way."""

from __future__ import annotations


class BuddycloudError(Exception):
    """Every error the client raises."""


class ApiError(BuddycloudError):
    """The server answered with an error (docs/errors.md, the HTTP column).

    Attributes:
        status: the HTTP status, 400 to 599.
        error: the server's error name, e.g. `item-not-found`, `forbidden`.
        message: the server's explanation, for people.
        retry_after: seconds to wait before trying again, when the server said so.
    """

    def __init__(
        self, status: int, error: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: the request was wrong (the message names what)."""


class Unauthorized(ApiError):
    """401: not signed in, or wrong credentials, or an expired sign-in."""


class Forbidden(ApiError):
    """403: signed in, but not allowed."""


class NotFound(ApiError):
    """404: no such channel, node, post or endpoint."""


class Conflict(ApiError):
    """409: it exists already, or the state does not allow it (`not-subscribed`, ...)."""


class TooManyRequests(ApiError):
    """429: too many attempts; `retry_after` says when to try again."""


class ServerError(ApiError):
    """5xx: the server (or a remote one behind it) failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    429: TooManyRequests,
}


def api_error(
    status: int, error: str, message: str, *, retry_after: float | None = None
) -> ApiError:
    """The error class for `status`: one of the subclasses above, else `ApiError`."""
    kind = _BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if status >= 500 else ApiError
    return kind(status, error, message, retry_after=retry_after)


class UnexpectedAnswer(BuddycloudError):
    """The server's answer was not what the API describes (a proxy's page, another
    server, a newer version): the client cannot read it."""


class LiveClosed(BuddycloudError):
    """The live connection was closed for good by the server (`code`, docs/websocket.md):
    the client does not reconnect after these."""

    def __init__(self, code: int, error: str | None, message: str) -> None:
        super().__init__(f"live connection closed ({code}): {message}")
        self.code = code
        self.error = error
        self.message = message
