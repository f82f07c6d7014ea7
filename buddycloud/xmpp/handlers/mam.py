"""Message archives: XEP-0313 on a node or the requester's feed, and the inbox sync of
the original servers (`urn:xmpp:mam:tmp`, reference row 32).

Each archived item or event is sent as a `<message><result><forwarded>` before the IQ
result, which carries the RSM set (in `<fin complete>` for XEP-0313 §4.2-4.3). Each
message fits the stanza size limit: an item too large for one is sent without its payload.
"""

from __future__ import annotations

from dataclasses import replace
from xml.etree.ElementTree import Element

from buddycloud.domain.events import ArchivedEvent, ItemPublished, ItemRetracted
from buddycloud.domain.model import Item
from buddycloud.xmpp.fitting import fits, too_large
from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.stanzas import (
    InboxSyncRequest,
    MamQuery,
    parse_inbox_sync,
    parse_mam_query,
    render_inbox_done,
    render_inbox_result,
    render_mam_fin,
    render_mam_form,
    render_mam_result,
)
from buddycloud.xmpp.xml import serialize, utf8_size


def _result_message(
    request: IqRequest, query: MamQuery, item: Item, result_id: str | None, *, stub: bool
) -> str:
    message = Element("message", {"to": str(request.requester), "from": request.service})
    message.append(
        render_mam_result(query, item, service=request.service, stub=stub, result_id=result_id)
    )
    return serialize(message)


def _send_result(request: IqRequest, query: MamQuery, item: Item, result_id: str | None) -> None:
    limit = request.edge.max_stanza_bytes
    text = _result_message(request, query, item, result_id, stub=False)
    if not fits(text, limit):
        # Like a notification: the item's id without its payload (docs/xmpp.md,
        # "Stanza size"); a client reads such an item by id.
        text = _result_message(request, query, item, result_id, stub=True)
        if not fits(text, limit):
            raise too_large(f"the archived item {item.id}", utf8_size(text), limit)
    request.edge.sink.send_text(text)


async def handle_mam_form(request: IqRequest) -> Element:
    return render_mam_form()


async def handle_mam_query(request: IqRequest) -> Element:
    query = parse_mam_query(request.payload)
    author = query.with_.bare if query.with_ is not None else None
    if query.node is not None:
        page = await request.engine.archive_items(
            request.requester,
            query.node,
            query.page,
            start=query.start,
            end=query.end,
            author=author,
        )
        for item in page.items:
            _send_result(request, query, item, None)
        return render_mam_fin(page, complete=page.complete is not False)
    feed = await request.engine.archive_feed(
        request.requester, query.page, start=query.start, end=query.end, author=author
    )
    for archived in feed.items:
        event = archived.event
        assert isinstance(event, ItemPublished | ItemRetracted)
        item = event.item if isinstance(event, ItemPublished) else event.tombstone
        _send_result(request, query, item, archived.id)
    return render_mam_fin(feed, complete=feed.complete is not False)


async def handle_inbox_sync(request: IqRequest) -> Element:
    """Replay every change since `start` of what the requester follows, oldest first, one
    message per event, exactly as the live notification looked; then the IQ result."""
    query = parse_inbox_sync(request.payload)
    page = await request.engine.inbox(
        request.requester, query.page, start=query.start, end=query.end
    )
    request.edge.sink.send_many([_replayed(request, query, archived) for archived in page.items])
    return render_inbox_done(page)


def _replayed(request: IqRequest, query: InboxSyncRequest, archived: ArchivedEvent) -> str:
    """One replayed event in a stanza that fits the size limit: as the notifier does, a
    published item too large for one goes without its payload (docs/xmpp.md, "Stanza
    size"); a client reads such an item by id."""
    service, to = request.service, str(request.requester)
    limit = request.edge.max_stanza_bytes
    event = archived.event
    (body,) = request.edge.render_event(event)
    text = render_inbox_result(query, archived, body, service=service, to=to)
    if fits(text, limit):
        return text
    if isinstance(event, ItemPublished):
        (stub,) = request.edge.render_event(replace(event, item=replace(event.item, payload=None)))
        text = render_inbox_result(query, archived, stub, service=service, to=to)
        if fits(text, limit):
            return text
    raise too_large(f"the archived event {archived.id}", utf8_size(text), limit)
