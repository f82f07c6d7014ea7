"""jabber:iq:search over posts (reference rows 33-34)."""

from __future__ import annotations

from dataclasses import replace
from xml.etree.ElementTree import Element

from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import parse_search, render_search_form, render_search_results


async def handle_search_get(request: IqRequest) -> Element:
    return render_search_form()


async def handle_search_set(request: IqRequest) -> Element:
    query = parse_search(request.payload)
    page = await request.engine.search(
        request.requester,
        words=query.words,
        author=query.author,
        page=query.page,
        offset=query.offset,
    )
    if not query.has_cursor:
        # Numbered pages: the RSM <set/> tells where in the whole result set it starts.
        page = replace(page, extra={**page.extra, "index": str(query.offset)})
    return render_search_results(
        page,
        service=request.service,
        room=request.room,
        with_rsm=query.rsm is not None,
        from_end=query.page.backwards,
    )
