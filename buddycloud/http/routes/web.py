"""The web client (docs/web.md): `/` is its page, `/static/` its scripts and styles, `/sdk/`
the JavaScript SDK it imports. The files ship inside the package (`buddycloud/web/`): no
build step, nothing fetched from elsewhere.

The page carries a content security policy allowing scripts, styles and connections of
this origin only, so that even a post that slipped past the client's text-only rendering
could run nothing.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

WEB = Path(str(files("buddycloud") / "web"))

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; manifest-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def index_get(request: Request) -> Response:
    """`GET /`: the web client's page; it routes by the URL's fragment (`#/channel/...`)."""
    return FileResponse(WEB / "static" / "index.html", headers=SECURITY_HEADERS)


class _Files(StaticFiles):
    """Static files answered with the page's security headers and revalidated on each use,
    so that a new version of the server is never mixed with cached scripts."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers.update(SECURITY_HEADERS)
        return response


def web_routes() -> list[BaseRoute]:
    """The routes of the web client, served beside the API (outside /api and sign-in)."""
    return [
        Route("/", index_get, methods=["GET"]),
        Mount("/static", _Files(directory=WEB / "static"), name="static"),
        Mount("/sdk", _Files(directory=WEB / "sdk"), name="sdk"),
    ]
