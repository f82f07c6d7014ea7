"""Atom entries on the wire: parse a client's entry into an EntryDraft, render an Entry.

ProtoXEP 6.3: the server rewrites every entry (example 13), so parsing keeps only what a
client may choose (content, title, thread, target, rating, verb, object type) and copies any
other child element verbatim as an extension. Ids on the wire: `<id>`, `thr:in-reply-to ref`
and `activity:target/id` carry the global `tag:` form (6.3.2), the `<item id>` the local id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import InvalidPayload
from buddycloud.domain.ids import global_item_id
from buddycloud.domain.model import Entry, Item, NodeId, RawPayload
from buddycloud.domain.times import format_datetime
from buddycloud.wire.namespaces import (
    NS_ACTIVITY,
    NS_ATOM,
    NS_ATOM_BUDDYCLOUD,
    NS_MEDIA,
    NS_REVIEW,
    NS_THREAD,
    NS_TOMBSTONES,
    qname,
    split_tag,
)
from buddycloud.wire.xml import UnsafeXml, escape_text, parse_xml, quote_attribute, serialize

NS_RSM = "http://jabber.org/protocol/rsm"

ENTRY = qname(NS_ATOM, "entry")
MAX_EXTENSIONS = 64

# Children the server sets itself (6.3.1): a client's values are dropped.
_SERVER_SET = frozenset(
    {
        qname(NS_ATOM, "id"),
        qname(NS_ATOM, "published"),
        qname(NS_ATOM, "updated"),
        qname(NS_ATOM, "author"),
    }
)
_PARSED = frozenset(
    {
        qname(NS_ATOM, "content"),
        qname(NS_ATOM, "title"),
        qname(NS_THREAD, "in-reply-to"),
        qname(NS_ACTIVITY, "target"),
        qname(NS_ACTIVITY, "verb"),
        qname(NS_ACTIVITY, "object"),
        qname(NS_REVIEW, "rating"),
    }
)


_CONTENT = qname(NS_ATOM, "content")
_TITLE = qname(NS_ATOM, "title")
_IN_REPLY_TO = qname(NS_THREAD, "in-reply-to")
_TARGET = qname(NS_ACTIVITY, "target")
_RATING = qname(NS_REVIEW, "rating")
_VERB = qname(NS_ACTIVITY, "verb")
_OBJECT = qname(NS_ACTIVITY, "object")
_OBJECT_TYPE = qname(NS_ACTIVITY, "object-type")
_ATOM_ID = qname(NS_ATOM, "id")
_ACTIVITY_ID = qname(NS_ACTIVITY, "id")


def parse_entry(entry: Element, *, byte_size: int) -> EntryDraft:
    """Parse a client's Atom `<entry>` into a draft for the engine to validate.

    Raises:
        InvalidPayload: the element is not an Atom entry or holds repeated or malformed parts.
    """
    if entry.tag != ENTRY:
        raise InvalidPayload(
            "the payload must be an Atom entry", condition="entry-element-required"
        )
    # One pass over the children: the parts the server reads (each at most once), and
    # the extensions it keeps verbatim.
    parts: dict[str, Element] = {}
    extensions: list[str] = []
    for child in entry:
        tag = child.tag
        if tag in _PARSED:
            if tag in parts:
                raise InvalidPayload(f"an entry may hold only one {split_tag(tag)[1]} element")
            parts[tag] = child
        elif tag not in _SERVER_SET and isinstance(tag, str):
            if len(extensions) == MAX_EXTENSIONS:
                raise InvalidPayload(
                    f"an entry may hold at most {MAX_EXTENSIONS} extension elements"
                )
            extensions.append(serialize(child))
    content_el = parts.get(_CONTENT)
    content: str | None = None
    content_type = "text"
    if content_el is not None:
        content_type = content_el.get("type", "text")
        content = _xhtml_content(content_el) if content_type == "xhtml" else content_el.text or ""
    title_el = parts.get(_TITLE)
    reply_el = parts.get(_IN_REPLY_TO)
    in_reply_to: str | None = None
    if reply_el is not None:
        in_reply_to = reply_el.get("ref")
        if not in_reply_to:
            raise InvalidPayload("thr:in-reply-to needs a ref", condition="missing-in-reply-to")
    target: str | None = None
    target_el = parts.get(_TARGET)
    if target_el is not None:
        id_el = target_el.find(_ATOM_ID)
        if id_el is None:
            id_el = target_el.find(_ACTIVITY_ID)
        if id_el is None or not (id_el.text or "").strip():
            raise InvalidPayload("activity:target needs an id", condition="missing-target-id")
        target = (id_el.text or "").strip()
    rating_el = parts.get(_RATING)
    verb_el = parts.get(_VERB)
    object_el = parts.get(_OBJECT)
    object_type_el = object_el.find(_OBJECT_TYPE) if object_el is not None else None
    return EntryDraft(
        content=content,
        content_type=content_type,
        title=title_el.text or "" if title_el is not None else None,
        in_reply_to=in_reply_to,
        target=target,
        rating=(rating_el.text or "") if rating_el is not None else None,
        verb=(verb_el.text or "").strip() if verb_el is not None else None,
        object_type=(object_type_el.text or "").strip() if object_type_el is not None else None,
        extensions=tuple(extensions),
        byte_size=byte_size,
    )


def _xhtml_content(content: Element) -> str:
    # RFC 4287 §4.1.3.3: xhtml content is a single xhtml:div; keep the markup verbatim.
    return (content.text or "").strip() + "".join(serialize(child) for child in content)


def render_entry(entry: Entry, *, service: str, node: NodeId) -> Element:
    """Render an entry as ProtoXEP example 13 shows it."""
    root = Element(ENTRY)
    SubElement(root, qname(NS_ATOM, "id")).text = global_item_id(service, node, entry.id)
    SubElement(root, qname(NS_ATOM, "title")).text = entry.title
    SubElement(root, qname(NS_ATOM, "published")).text = format_datetime(entry.published)
    SubElement(root, qname(NS_ATOM, "updated")).text = format_datetime(entry.updated)
    author = SubElement(root, qname(NS_ATOM, "author"))
    SubElement(author, qname(NS_ATOM, "name")).text = str(entry.author)
    SubElement(author, qname(NS_ATOM_BUDDYCLOUD, "jid")).text = str(entry.author)
    SubElement(author, qname(NS_ATOM, "uri")).text = f"acct:{entry.author}"
    root.append(_render_content(entry))
    SubElement(root, qname(NS_ACTIVITY, "verb")).text = entry.verb
    activity_object = SubElement(root, qname(NS_ACTIVITY, "object"))
    SubElement(activity_object, qname(NS_ACTIVITY, "object-type")).text = entry.object_type
    if entry.in_reply_to is not None:
        SubElement(
            root,
            qname(NS_THREAD, "in-reply-to"),
            {"ref": global_item_id(service, node, entry.in_reply_to)},
        )
    if entry.target is not None:
        target = SubElement(root, qname(NS_ACTIVITY, "target"))
        SubElement(target, qname(NS_ATOM, "id")).text = global_item_id(service, node, entry.target)
        target_type = SubElement(target, qname(NS_ACTIVITY, "object-type"))
        target_type.text = "post"
    if entry.rating is not None:
        SubElement(root, qname(NS_REVIEW, "rating")).text = f"{entry.rating}.0"
    for extension in entry.extensions:
        try:
            root.append(parse_xml(extension))
        except UnsafeXml:
            # Stored extensions were serialised by this edge; a broken one is skipped
            # rather than failing the whole reply.
            continue
    return root


def entry_text(entry: Entry, *, service: str, node: NodeId) -> str:
    """`serialize(render_entry(...))`, written straight to text where that is simple.

    Each notification renders one entry; building elements and walking them again to
    serialise cost four times as much as formatting the text. Entries with XHTML content
    or extension elements, whose stored XML must be checked again, take the element path.
    """
    if entry.extensions or entry.content_type == "xhtml":
        return serialize(render_entry(entry, service=service, node=node))
    author = escape_text(str(entry.author))
    parts = [
        f'<entry xmlns="{NS_ATOM}"><id>',
        escape_text(global_item_id(service, node, entry.id)),
        "</id>",
        _text_element("title", entry.title),
        f"<published>{format_datetime(entry.published)}</published>"
        f"<updated>{format_datetime(entry.updated)}</updated>"
        f'<author><name>{author}</name><jid xmlns="{NS_ATOM_BUDDYCLOUD}">{author}</jid>'
        f"<uri>acct:{author}</uri></author>",
        _text_element("content", entry.content, f" type={quote_attribute(entry.content_type)}"),
        _text_element("verb", entry.verb, f' xmlns="{NS_ACTIVITY}"'),
        f'<object xmlns="{NS_ACTIVITY}">',
        _text_element("object-type", entry.object_type),
        "</object>",
    ]
    if entry.in_reply_to is not None:
        reply_ref = quote_attribute(global_item_id(service, node, entry.in_reply_to))
        parts.append(f'<in-reply-to xmlns="{NS_THREAD}" ref={reply_ref}/>')
    if entry.target is not None:
        target_id = escape_text(global_item_id(service, node, entry.target))
        parts.append(
            f'<target xmlns="{NS_ACTIVITY}"><id xmlns="{NS_ATOM}">{target_id}</id>'
            "<object-type>post</object-type></target>"
        )
    if entry.rating is not None:
        parts.append(f'<rating xmlns="{NS_REVIEW}">{entry.rating}.0</rating>')
    parts.append("</entry>")
    return "".join(parts)


def _text_element(name: str, text: str, attributes: str = "") -> str:
    if not text:
        return f"<{name}{attributes}/>"
    return f"<{name}{attributes}>{escape_text(text)}</{name}>"


def _render_content(entry: Entry) -> Element:
    content = Element(qname(NS_ATOM, "content"), {"type": entry.content_type})
    if entry.content_type == "xhtml" and entry.content.lstrip().startswith("<"):
        try:
            wrapper = parse_xml(f'<content xmlns="{NS_ATOM}">{entry.content}</content>')
        except UnsafeXml:
            content.set("type", "text")
            content.text = entry.content
            return content
        content.text = wrapper.text
        content.extend(list(wrapper))
        return content
    content.text = entry.content
    return content


def self_link(service: str, item: Item) -> str:
    return f"xmpp:{service}?pubsub;action=retrieve;node={item.node};item={item.id}"


def render_tombstone(item: Item, *, service: str) -> Element:
    """ProtoXEP example 11: the deleted-entry that replaces a retracted post."""
    link = self_link(service, item)
    when = format_datetime(item.updated)
    root = Element(qname(NS_TOMBSTONES, "deleted-entry"), {"ref": link, "when": when})
    SubElement(root, qname(NS_TOMBSTONES, "updated")).text = when
    SubElement(root, qname(NS_ATOM, "id")).text = global_item_id(service, item.node, item.id)
    SubElement(root, qname(NS_ATOM, "link"), {"href": link, "rel": "self"})
    SubElement(root, qname(NS_ATOM, "published")).text = format_datetime(item.published)
    entry = item.entry
    if item.in_reply_to is not None:
        SubElement(
            root,
            qname(NS_THREAD, "in-reply-to"),
            {"ref": global_item_id(service, item.node, item.in_reply_to)},
        )
    activity_object = SubElement(root, qname(NS_ACTIVITY, "object"))
    object_type = entry.object_type if entry is not None else "note"
    SubElement(activity_object, qname(NS_ACTIVITY, "object-type")).text = object_type
    SubElement(root, qname(NS_ACTIVITY, "verb")).text = entry.verb if entry is not None else "post"
    return root


def render_payload(item: Item, *, service: str) -> Element | None:
    """The payload element of an item: its entry, its raw XML, or its tombstone."""
    if item.deleted:
        return render_tombstone(item, service=service)
    payload = item.payload
    if isinstance(payload, Entry):
        return render_entry(payload, service=service, node=item.node)
    if isinstance(payload, RawPayload):
        try:
            return parse_xml(payload.xml)
        except UnsafeXml:
            return None
    return None


# --- media attached to a post (reference 2.5: `bcm:media/bcm:item id channel`) ------------


@dataclass(frozen=True, slots=True)
class Media:
    """A file of the media server attached to a post: its id and the channel holding it."""

    id: str
    channel: str


_MEDIA = qname(NS_MEDIA, "media")
_MEDIA_ITEM = qname(NS_MEDIA, "item")
_MEDIA_OPENING = f'<media xmlns="{NS_MEDIA}"'


def media_extension(media: Sequence[Media]) -> str:
    """The `bcm:media` element listing `media`, as an entry extension."""
    root = Element(_MEDIA)
    for one in media:
        SubElement(root, _MEDIA_ITEM, {"id": one.id, "channel": one.channel})
    return serialize(root)


def media_of(entry: Entry) -> list[Media] | None:
    """The media an entry lists in its `bcm:media` extension, or None without one."""
    for extension in entry.extensions:
        if not extension.startswith(_MEDIA_OPENING):
            continue
        try:
            element = parse_xml(extension)
        except UnsafeXml:
            return None
        return [
            Media(item.get("id", ""), item.get("channel", "")) for item in element.iter(_MEDIA_ITEM)
        ]
    return None


# --- items as Atom documents and feeds ------------------------------------------------------


def item_entry_text(item: Item, *, service: str) -> str:
    """An item as an Atom `<entry>`: its entry, or for another payload (geolocation, keys)
    an entry holding that payload as `application/xml` content."""
    entry = item.entry
    if entry is not None:
        return entry_text(entry, service=service, node=item.node)
    payload = item.payload.xml if isinstance(item.payload, RawPayload) else ""
    author = escape_text(str(item.author))
    return (
        f'<entry xmlns="{NS_ATOM}"><id>'
        f"{escape_text(global_item_id(service, item.node, item.id))}</id>"
        f"<title>{escape_text(item.node.name)}</title>"
        f"<published>{format_datetime(item.published)}</published>"
        f"<updated>{format_datetime(item.updated)}</updated>"
        f"<author><name>{author}</name><uri>acct:{author}</uri></author>"
        f'<content type="application/xml">{payload}</content></entry>'
    )


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Where a page of a feed sits in its result set (XEP-0059 first, last and count), and
    the links to the pages beside it."""

    first: str | None
    last: str | None
    count: int
    next_href: str | None = None
    previous_href: str | None = None


def feed_text(
    items: Sequence[Item],
    *,
    service: str,
    node: NodeId,
    page: FeedPage,
    self_href: str,
    updated: datetime,
) -> str:
    """A node's items as an Atom feed (reference row 6): title "<channel> <node>", id the
    node's XMPP URI, `updated` that of the newest entry (else `updated`), the paging of
    the page as an XEP-0059 `<set>` and as RFC 5005 `next`/`previous` links."""
    newest = items[0].updated if items else updated
    node_uri = f"xmpp:{service}?pubsub;action=retrieve;node={node}"
    parts = [
        XML_DECLARATION,
        f'<feed xmlns="{NS_ATOM}">',
        f"<title>{escape_text(f'{node.channel} {node.name}')}</title>",
        f"<id>{escape_text(node_uri)}</id>",
        f"<updated>{format_datetime(newest)}</updated>",
        f'<link rel="self" href={quote_attribute(self_href)}/>',
    ]
    if page.next_href is not None:
        parts.append(f'<link rel="next" href={quote_attribute(page.next_href)}/>')
    if page.previous_href is not None:
        parts.append(f'<link rel="previous" href={quote_attribute(page.previous_href)}/>')
    parts.append(f'<set xmlns="{NS_RSM}">')
    if page.first is not None:
        parts.append(f"<first>{escape_text(page.first)}</first>")
    if page.last is not None:
        parts.append(f"<last>{escape_text(page.last)}</last>")
    parts.append(f"<count>{page.count}</count></set>")
    parts.extend(item_entry_text(item, service=service) for item in items)
    parts.append("</feed>")
    return "".join(parts)
