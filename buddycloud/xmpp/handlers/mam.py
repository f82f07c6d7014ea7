"""XEP-0313 message archive queries on a node (reference row 32): inbox sync.

Each archived item is sent as a `<message><result><forwarded>` before the IQ result, which
carries `<fin complete>` and the RSM set (XEP-0313 §4.2-4.3).
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    parse_mam_query,
    render_mam_fin,
    render_mam_form,
    render_mam_result,
)


async def handle_mam_form(request: IqRequest) -> Element:
    return render_mam_form()


async def handle_mam_query(request: IqRequest) -> Element:
    query = parse_mam_query(request.payload)
    author = query.with_.bare if query.with_ is not None else None
    if query.node is not None:
        page = await request.engine.get_items(
            request.requester,
            query.node,
            query.page,
            since=query.start,
            until=query.end,
            author=author,
        )
    else:
        page = await request.engine.user_items(
            request.requester,
            since=query.start,
            parent_only=False,
            page=query.page,
            until=query.end,
            author=author,
        )
    for item in page.items:
        message = Element("message", {"to": str(request.requester), "from": request.service})
        message.append(render_mam_result(query, item, service=request.service))
        request.edge.sink.send(message)
    complete = page.last is None or len(page.items) < query.page.max
    return render_mam_fin(page, complete=complete)
