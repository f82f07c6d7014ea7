"""The `xmpp` sign-in method: a password is checked by signing in to the XMPP server.

For users who registered with an XMPP client, the XMPP server holds the password; the HTTP
edge asks it the way the original HTTP API did, by opening a client (c2s) stream to
`[xmpp] c2s_host`:`c2s_port` as the user and seeing whether SASL succeeds. The stream is
closed as soon as the answer is known; no resource is bound, no presence is sent, so the
user's contacts see nothing. STARTTLS is used when the server offers it; without TLS only
SCRAM is used, except on a loopback address, where PLAIN is allowed too.

A success, a SASL failure and "could not tell" are three different answers: no answer
within the timeout, no connection, or a stream that ends before SASL is done raise
`SignInUnavailable` (503 unless another method said yes). The authenticator remembers
successes for `[auth] cache_seconds`, and never a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
from typing import Any

from slixmpp import ClientXMPP

from buddycloud.domain.errors import SignInUnavailable
from buddycloud.domain.jid import Jid

log = logging.getLogger(__name__)

CLOSE_SECONDS = 2.0  # how long closing a stream may take


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_stream(user: Jid, password: str, host: str) -> ClientXMPP:
    """A client stream for `user` (a random resource) to the XMPP server at `host`:
    STARTTLS when offered, SCRAM without TLS, PLAIN without TLS only on loopback."""
    stream = ClientXMPP(
        f"{user.bare}/buddycloud-{secrets.token_hex(4)}",
        password,
        plugin_config={
            "feature_mechanisms": {
                "unencrypted_plain": _is_loopback(host),
                "unencrypted_scram": True,
            }
        },
    )
    # The client port speaks plain XMPP first (RFC 6120), then STARTTLS when offered;
    # direct TLS (XEP-0368) is another port.
    stream.enable_direct_tls = False
    stream.enable_plaintext = True
    return stream


async def close_stream(stream: ClientXMPP, *, graceful: bool) -> None:
    """End a client stream for good: closed with `</stream:stream>` when `graceful` and the
    server still listens (within CLOSE_SECONDS), else cut; never reconnected."""
    stream.cancel_connection_attempt()
    if graceful and stream.transport is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_SECONDS):
                await stream.disconnect(wait=0)
    if stream.transport is not None:
        stream.abort()
    # slixmpp's send loop is cancelled by then; let it finish now, rather than be collected
    # unfinished (which asyncio logs as an error).
    sending = stream._run_out_filters
    if sending is not None:
        sending.cancel()
        await asyncio.wait([sending], timeout=CLOSE_SECONDS)


class C2sPasswordCheck:
    """Checks passwords by signing in at `host`:`port`, within `timeout` seconds."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    async def __call__(self, user: Jid, password: str) -> bool:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[bool] = loop.create_future()
        stream = client_stream(user, password, self.host)

        def settle(result: bool | BaseException) -> None:
            if answer.done():
                return
            if isinstance(result, BaseException):
                answer.set_exception(result)
            else:
                answer.set_result(result)

        def unavailable(reason: str) -> SignInUnavailable:
            return SignInUnavailable(f"the XMPP server at {self.host}:{self.port} {reason}")

        def on_failure(_: Any) -> None:
            settle(unavailable("could not be reached"))

        def on_end(_: Any) -> None:
            settle(unavailable("ended the stream before signing in was done"))

        stream.add_event_handler("auth_success", lambda _: settle(True))
        stream.add_event_handler("failed_all_auth", lambda _: settle(False))
        stream.add_event_handler("connection_failed", on_failure)
        stream.add_event_handler("disconnected", on_end)
        try:
            stream.connect(self.host, self.port)
            async with asyncio.timeout(self.timeout):
                return await answer
        except TimeoutError:
            raise unavailable(f"did not answer within {self.timeout:g} s") from None
        finally:
            # Only SASL was wanted: the stream goes before a resource is bound, and is
            # never reconnected.
            await close_stream(stream, graceful=False)
