"""`/metrics` and `/health`: for the operator's monitoring and the load balancer.

Both sit outside `/api` and outside sign-in. `/metrics` is for Prometheus, behind
`[http] metrics_token` or, without one, for loopback callers only (`may_read_metrics`).
`/health` answers anyone: it tells whether this server can serve, not what it holds.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from buddycloud.http.errors import ApiError
from buddycloud.http.metrics import CONTENT_TYPE, may_read_metrics
from buddycloud.http.requests import context

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}


async def metrics_get(request: Request) -> Response:
    """`GET /metrics`: every metric in the Prometheus text format."""
    http = context(request)
    allowed = may_read_metrics(
        token=http.metrics_token,
        authorization=request.headers.get("authorization"),
        client_host=request.client.host if request.client is not None else None,
        headers=request.headers,
    )
    if not allowed:
        if http.metrics_token is not None:
            raise ApiError(401, "not-authenticated", "send Authorization: Bearer <metrics token>")
        raise ApiError(
            403,
            "forbidden",
            "metrics are served to loopback callers only; set [http] metrics_token to "
            "read them from elsewhere",
        )
    return Response(http.metrics.render(), headers={"Content-Type": CONTENT_TYPE, **NO_STORE})


async def health_get(request: Request) -> Response:
    """`GET /health`: 200 when the storage answers in time, 503 when not.

    `xmpp` reports the component's stream but does not decide the status: the HTTP API
    serves without XMPP, so a load balancer should keep sending it requests.
    """
    http = context(request)
    storage = "ok"
    try:
        await asyncio.wait_for(http.engine.check_storage(), http.health_timeout)
    except TimeoutError:
        log.warning("health: the storage did not answer within %.1f s", http.health_timeout)
        storage = "timeout"
    except Exception as exc:
        log.warning("health: the storage failed: %s", _describe(exc))
        storage = "unavailable"
    if http.xmpp_connected is None:
        xmpp = "off"
    else:
        xmpp = "connected" if http.xmpp_connected() else "disconnected"
    ok = storage == "ok"
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "storage": storage, "xmpp": xmpp},
        status_code=200 if ok else 503,
        headers=NO_STORE,
    )


def _describe(exc: BaseException) -> str:
    # One line naming the error; a driver's message can span lines.
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
