"""XEP-0077 in-band registration: creating a user's personal channel (ProtoXEP 3)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.domain.errors import Unsupported
from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.namespaces import NS_REGISTER
from buddycloud.xmpp.stanzas import parse_register, render_register_form


async def handle_register_get(request: IqRequest) -> Element:
    parse_register(request.payload)
    return render_register_form()


async def handle_register_set(request: IqRequest) -> None:
    """Create the personal channel, or add nodes it misses; harmless when repeated."""
    registration = parse_register(request.payload)
    if registration.remove:
        raise Unsupported(f"{NS_REGISTER}#remove", "unregistering is not supported")
    await request.engine.register(request.requester)
