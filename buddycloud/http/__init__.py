"""The HTTP edge: the REST API, the live websocket and sign-in, over the channel engine.

Like the XMPP edge it parses each request once, calls the engine in-process and renders the
answer; errors reach clients through one table (`errors.HTTP_ERRORS`). It knows no SQL and
no XMPP.
"""
