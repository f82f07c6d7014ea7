"""What this server sends to, and reads from, other domains' channel servers.

Requests are ordinary XEP-0060 requests with `<actor xmlns="http://buddycloud.org/v1">`
naming the user they are made for (reference 5.2). Answers are read into domain values
here, once; a remote error is mapped to a domain error and its text dropped (STYLE 4).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.entries import EntryDraft, parse_rating
from buddycloud.domain.errors import (
    BadRequest,
    ChannelError,
    ClosedNode,
    Forbidden,
    InvalidDate,
    InvalidJid,
    InvalidPayload,
    ItemNotFound,
    NodeExists,
    NodeNotFound,
    NotSubscribed,
    OwnerRequired,
    RemoteError,
    SubscriptionPending,
)
from buddycloud.domain.ids import local_item_id
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    ChannelConfig,
    ChannelType,
    Entry,
    Item,
    Membership,
    NodeId,
    Page,
    RawPayload,
    Role,
    SubscriptionState,
)
from buddycloud.domain.times import parse_datetime
from buddycloud.services.channels import MAX_DESCRIPTION, MAX_TITLE
from buddycloud.wire.atom import parse_entry
from buddycloud.xmpp.forms import (
    ACCESS_MODEL,
    CHANNEL_TYPE,
    CREATION_DATE,
    CREATOR,
    DEFAULT_AFFILIATION,
    DESCRIPTION,
    EPHEMERAL,
    TITLE,
    UPDATED_DATE,
    DataForm,
    find_form,
    parse_bool,
)
from buddycloud.xmpp.namespaces import (
    NS_ACTIVITY,
    NS_ATOM,
    NS_BUDDYCLOUD,
    NS_PUBSUB,
    NS_PUBSUB_NODE_CONFIG,
    NS_PUBSUB_OWNER,
    NS_REVIEW,
    NS_RSM,
    NS_STANZAS,
    NS_THREAD,
    qname,
    split_tag,
)
from buddycloud.xmpp.xml import UnsafeXml, parse_xml, serialize

# Never more items read from one remote answer than a local page may hold.
MAX_REMOTE_ITEMS = 100
MAX_ITEM_ID = 1024

T = TypeVar("T")


def pubsub_request(actor: Jid, *operations: Element, owner: bool = False) -> Element:
    """`<pubsub>operations…<actor>actor</actor></pubsub>` (pubsub#owner with `owner`)."""
    pubsub = Element(qname(NS_PUBSUB_OWNER if owner else NS_PUBSUB, "pubsub"))
    pubsub.extend(operations)
    SubElement(pubsub, qname(NS_BUDDYCLOUD, "actor")).text = str(actor)
    return pubsub


def render_draft(draft: EntryDraft) -> Element:
    """An entry draft as the Atom entry a client would have sent (ProtoXEP 6.3)."""
    entry = Element(qname(NS_ATOM, "entry"))
    if draft.title is not None:
        SubElement(entry, qname(NS_ATOM, "title")).text = draft.title
    if draft.content is not None:
        if draft.content_type == "xhtml":
            try:
                entry.append(
                    parse_xml(f"<content xmlns='{NS_ATOM}' type='xhtml'>{draft.content}</content>")
                )
            except UnsafeXml:
                raise InvalidPayload("the xhtml content is not well-formed") from None
        else:
            content = SubElement(entry, qname(NS_ATOM, "content"), {"type": draft.content_type})
            content.text = draft.content
    if draft.in_reply_to is not None:
        SubElement(entry, qname(NS_THREAD, "in-reply-to"), {"ref": draft.in_reply_to})
    if draft.target is not None:
        target = SubElement(entry, qname(NS_ACTIVITY, "target"))
        SubElement(target, qname(NS_ATOM, "id")).text = draft.target
    if draft.rating is not None:
        SubElement(entry, qname(NS_REVIEW, "rating")).text = draft.rating
    if draft.verb is not None:
        SubElement(entry, qname(NS_ACTIVITY, "verb")).text = draft.verb
    if draft.object_type is not None:
        activity_object = SubElement(entry, qname(NS_ACTIVITY, "object"))
        SubElement(activity_object, qname(NS_ACTIVITY, "object-type")).text = draft.object_type
    for extension in draft.extensions:
        entry.append(parse_xml(extension))
    return entry


def render_payload(payload: EntryDraft | RawPayload) -> Element:
    if isinstance(payload, EntryDraft):
        return render_draft(payload)
    return parse_xml(payload.xml)


# --- answers ------------------------------------------------------------------------------


def _children(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]


def result_payload(answer: Element) -> Element | None:
    """The one payload of an IQ result, None for an empty result."""
    children = _children(answer)
    return children[0] if children else None


def _garbage(what: str) -> RemoteError:
    return RemoteError(f"the channel's server answered with {what}")


def read_items(node: NodeId, payload: Element | None, *, now: datetime) -> Page[Item]:
    """`<pubsub><items node><item id>payload</item>*</items>[<set/>]</pubsub>`."""
    if payload is None or payload.tag != qname(NS_PUBSUB, "pubsub"):
        raise _garbage("something other than items")
    block = payload.find(qname(NS_PUBSUB, "items"))
    if block is None:
        raise _garbage("no items")
    items = [
        read_item(node, element, now=now)
        for element in block.findall(qname(NS_PUBSUB, "item"))[:MAX_REMOTE_ITEMS]
    ]
    rsm = payload.find(qname(NS_RSM, "set"))
    count, first, last = len(items), None, None
    if rsm is not None:
        count_text = (rsm.findtext(qname(NS_RSM, "count")) or "").strip()
        if count_text.isascii() and count_text.isdigit() and len(count_text) < 10:
            count = int(count_text)
        first = rsm.findtext(qname(NS_RSM, "first")) or None
        last = rsm.findtext(qname(NS_RSM, "last")) or None
    return Page(items, count, first, last)


def read_item(node: NodeId, element: Element, *, now: datetime) -> Item:
    """One remote item, its author, dates and parent read from the Atom entry. An Atom
    entry becomes the entry it holds, so that this server shows, searches and serves it
    as it does its own (its `<id>` and links then name this server, the item's id stays
    the channel's); any other payload, or an entry this server cannot read as one, is kept
    as the remote server rendered it (it is the channel's authority)."""
    item_id = element.get("id", "")
    if not item_id or len(item_id) > MAX_ITEM_ID:
        raise _garbage("an item without a usable id")
    children = _children(element)
    if len(children) > 1:
        raise _garbage("an item with several payloads")
    if not children:
        return Item(node, item_id, node.channel, now, now, None)
    entry = children[0]
    namespace, _ = split_tag(entry.tag)
    author = _author(entry) or node.channel
    published = _date(entry, "published") or now
    updated = _date(entry, "updated") or published
    reply = entry.find(qname(NS_THREAD, "in-reply-to"))
    in_reply_to = reply.get("ref") if reply is not None else None
    text = serialize(entry)
    if namespace == NS_ATOM:
        read = _entry(entry, item_id, author, published, updated, byte_size=len(text.encode()))
        if read is not None:
            return Item(node, item_id, author, published, updated, read, read.in_reply_to)
    payload = RawPayload(text, namespace)
    return Item(node, item_id, author, published, updated, payload, in_reply_to)


def _entry(
    element: Element,
    item_id: str,
    author: Jid,
    published: datetime,
    updated: datetime,
    *,
    byte_size: int,
) -> Entry | None:
    """The entry an Atom `<entry>` of another domain's server holds; None when it is not
    one this server could have written (a reference that is no item id, a bad rating)."""
    try:
        draft = parse_entry(element, byte_size=byte_size)
        return Entry(
            id=item_id,
            title=draft.title or "",
            content=draft.content or "",
            content_type=draft.content_type,
            author=author,
            published=published,
            updated=updated,
            verb=draft.verb or "post",
            object_type=draft.object_type or "note",
            in_reply_to=local_item_id(draft.in_reply_to) if draft.in_reply_to else None,
            target=local_item_id(draft.target) if draft.target else None,
            rating=parse_rating(draft.rating) if draft.rating is not None else None,
            extensions=draft.extensions,
        )
    except ChannelError:
        return None


def _author(entry: Element) -> Jid | None:
    author = entry.find(qname(NS_ATOM, "author"))
    if author is None:
        return None
    for field in ("uri", "name"):
        text = (author.findtext(qname(NS_ATOM, field)) or "").strip()
        text = text.removeprefix("acct:")
        try:
            jid = Jid.parse(text)
        except InvalidJid:
            continue
        if jid.local:
            return jid.bare
    return None


def _date(entry: Element, name: str) -> datetime | None:
    text = (entry.findtext(qname(NS_ATOM, name)) or "").strip()
    try:
        return parse_datetime(text) if text else None
    except InvalidDate:
        return None


def read_published_id(payload: Element | None, requested: str | None) -> str:
    """The id a publish result names; the requested one when the result names none."""
    if payload is not None:
        item = payload.find(f"{qname(NS_PUBSUB, 'publish')}/{qname(NS_PUBSUB, 'item')}")
        if item is not None and item.get("id"):
            item_id = item.get("id", "")
            if len(item_id) <= MAX_ITEM_ID:
                return item_id
    if requested:
        return requested
    raise _garbage("a publish result without an item id")


def read_membership(
    node: NodeId, actor: Jid, payload: Element | None, *, now: datetime
) -> Membership:
    """`<pubsub><subscription subscription/>[<affiliation affiliation/>]</pubsub>`."""
    subscription = payload.find(qname(NS_PUBSUB, "subscription")) if payload is not None else None
    if subscription is None:
        raise _garbage("a subscribe result without a subscription")
    try:
        state = SubscriptionState.parse(subscription.get("subscription", ""))
    except ChannelError:
        raise _garbage("an unknown subscription state") from None
    role = Role.NONE
    assert payload is not None
    affiliation = payload.find(qname(NS_PUBSUB, "affiliation"))
    if affiliation is not None:
        try:
            role = Role.parse(affiliation.get("affiliation", ""))
        except ChannelError:
            raise _garbage("an unknown affiliation") from None
    return Membership(node.channel, actor, role, state, now)


def read_error(answer: Element, node: NodeId, item_id: str | None) -> ChannelError:
    """The domain error for a remote `<iq type="error">`: only its conditions are read,
    never its text (docs/errors.md)."""
    error = next((c for c in _children(answer) if split_tag(c.tag)[1] == "error"), None)
    condition, app = "", ""
    if error is not None:
        for child in _children(error):
            namespace, name = split_tag(child.tag)
            if namespace == NS_STANZAS:
                if name != "text" and not condition:
                    condition = name
            elif not app:
                app = name
    if condition == "item-not-found":
        return ItemNotFound(str(node), item_id) if item_id else NodeNotFound(str(node))
    if condition == "forbidden":
        if app == "closed-node":
            return ClosedNode("the channel is closed to you: follow it and be approved first")
        return Forbidden("the channel's server does not allow you this")
    if condition == "not-authorized" and app == "pending-subscription":
        return SubscriptionPending("your follow request awaits approval")
    if condition == "unexpected-request" and app == "not-subscribed":
        return NotSubscribed("you do not follow this channel")
    if condition == "not-allowed" and app == "node-must-have-owner":
        return OwnerRequired("the owner cannot leave or be demoted")
    if condition in ("bad-request", "not-acceptable") and app in (
        "invalid-payload",
        "payload-too-big",
    ):
        return InvalidPayload("the channel's server refused the payload", condition=app)
    if condition == "bad-request":
        return BadRequest("the channel's server refused the request as malformed")
    if condition == "conflict":
        return NodeExists(str(node))
    return RemoteError(
        f"the channel's server answered with an error ({condition[:40] or 'unknown'})"
    )


def read_channel_config(form: DataForm, channel: Jid, *, now: datetime) -> ChannelConfig:
    """A remote channel's configuration from its node_config form (ProtoXEP table 1), as
    its server rendered it (`forms.node_config_fields`); a field that is missing or out of
    its vocabulary takes the value a new channel would have.

    Raises:
        RemoteError: the form is no node configuration form.
    """
    if form.form_type not in (None, NS_PUBSUB_NODE_CONFIG):
        raise _garbage("a form that is no node configuration")

    def parsed(var: str, parse: Callable[[str], T], default: T) -> T:
        raw = (form.get(var) or "").strip()
        if not raw:
            return default
        try:
            return parse(raw)
        except (ChannelError, ValueError):
            return default

    def jid(raw: str) -> Jid:
        return Jid.parse(raw).bare

    created = parsed(CREATION_DATE, parse_datetime, now)
    return ChannelConfig(
        title=(form.get(TITLE) or "")[:MAX_TITLE],
        description=(form.get(DESCRIPTION) or "")[:MAX_DESCRIPTION],
        access_model=parsed(ACCESS_MODEL, AccessModel.parse, AccessModel.OPEN),
        default_role=parsed(DEFAULT_AFFILIATION, _follower_role, Role.MEMBER),
        creator=parsed(CREATOR, jid, channel),
        channel_type=parsed(CHANNEL_TYPE, ChannelType, ChannelType.PERSONAL),
        created=created,
        updated=parsed(UPDATED_DATE, parse_datetime, created),
        ephemeral=parsed(EPHEMERAL, lambda raw: parse_bool(raw, EPHEMERAL), False),
        advertised=False,
    )


def _follower_role(raw: str) -> Role:
    role = Role.parse(raw)
    if role in (Role.OWNER, Role.OUTCAST):
        raise ValueError("not a default role")
    return role


def read_configuration(payload: Element | None, node: NodeId, *, now: datetime) -> ChannelConfig:
    """`<pubsub#owner><configure node><x/></configure></pubsub>`: the channel's
    configuration."""
    configure = payload.find(qname(NS_PUBSUB_OWNER, "configure")) if payload is not None else None
    form = None
    if configure is not None:
        try:
            form = find_form(configure, NS_PUBSUB_NODE_CONFIG)
        except ChannelError:
            form = None
    if form is None:
        raise _garbage("a configuration without its form")
    return read_channel_config(form, node.channel, now=now)
