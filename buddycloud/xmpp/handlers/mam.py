"""XEP-0313 message archive queries on a node (reference row 32): inbox sync.

Each archived item is sent as a `<message><result><forwarded>` before the IQ result, which
carries `<fin complete>` and the RSM set (XEP-0313 §4.2-4.3). Each message fits the stanza
size limit: an item too large for one is sent without its payload.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element

from buddycloud.domain.model import Item
from buddycloud.xmpp.fitting import fits, too_large
from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    MamQuery,
    parse_mam_query,
    render_mam_fin,
    render_mam_form,
    render_mam_result,
)
from buddycloud.xmpp.xml import serialize, utf8_size


def _result_message(request: IqRequest, query: MamQuery, item: Item, *, stub: bool) -> str:
    message = Element("message", {"to": str(request.requester), "from": request.service})
    message.append(render_mam_result(query, item, service=request.service, stub=stub))
    return serialize(message)


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
    limit = request.edge.max_stanza_bytes
    for item in page.items:
        text = _result_message(request, query, item, stub=False)
        if not fits(text, limit):
            # Like a notification: the item's id without its payload (docs/xmpp.md,
            # "Stanza size"); a client reads such an item by id.
            text = _result_message(request, query, item, stub=True)
            if not fits(text, limit):
                raise too_large(f"the archived item {item.id}", utf8_size(text), limit)
        request.edge.sink.send_text(text)
    complete = page.last is None or len(page.items) < query.page.max
    return render_mam_fin(page, complete=complete)
