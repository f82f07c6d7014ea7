"""XEP-0077 in-band registration: creating a user's personal channel (ProtoXEP 3), and
`<remove/>`: unregistering (reference op 9)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import parse_register, render_register_form


async def handle_register_get(request: IqRequest) -> Element:
    parse_register(request.payload)
    return render_register_form()


async def handle_register_set(request: IqRequest) -> None:
    """Create the personal channel, or add nodes it misses; with `<remove/>`, delete the
    user's channels, retract their posts and end their follows. Both harmless when
    repeated."""
    registration = parse_register(request.payload)
    if registration.remove:
        await request.engine.unregister(request.requester)
        # Like any local user without a channel, their next available presence makes one.
        request.edge.channel_checked.discard(request.requester.bare)
    else:
        await request.engine.register(request.requester)
