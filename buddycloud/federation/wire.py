"""What this server sends to, and reads from, other domains' channel servers.

Requests are ordinary XEP-0060 requests with `<actor xmlns="http://buddycloud.org/v1">`
naming the user they are made for (reference 5.2). Answers are read into domain values
here, once; a remote error is mapped to a domain error and its text dropped (STYLE 4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.entries import EntryDraft, parse_rating
from buddycloud.domain.errors import (
    BadRequest,
    ChannelError,
    ClosedNode,
    Forbidden,
    InvalidConfiguration,
    InvalidDate,
    InvalidJid,
    InvalidPayload,
    ItemNotFound,
    NodeExists,
    NodeNotFound,
    NotSubscribed,
    OwnAffiliation,
    OwnerRequired,
    OwnSubscription,
    RemoteError,
    SubscriptionPending,
    Unsupported,
)
from buddycloud.domain.ids import local_item_id
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    MAX_PAGE,
    ChannelConfig,
    Entry,
    Item,
    Membership,
    NodeId,
    Page,
    RawPayload,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.domain.times import parse_datetime
from buddycloud.services.config import ConfigUpdate, NodeView
from buddycloud.wire.atom import parse_entry
from buddycloud.xmpp.errors import MalformedStanza
from buddycloud.xmpp.forms import (
    DataForm,
    find_form,
    parse_node_config,
    parse_num_subscribers,
    render_config_update,
)
from buddycloud.xmpp.namespaces import (
    NS_ACTIVITY,
    NS_ATOM,
    NS_BUDDYCLOUD,
    NS_DISCO_INFO,
    NS_PUBSUB,
    NS_PUBSUB_META_DATA,
    NS_PUBSUB_NODE_CONFIG,
    NS_PUBSUB_OWNER,
    NS_REVIEW,
    NS_RSM,
    NS_STANZAS,
    NS_THREAD,
    qname,
    split_tag,
)
from buddycloud.xmpp.rsm import MAX_CURSOR
from buddycloud.xmpp.xml import UnsafeXml, parse_xml, serialize

T = TypeVar("T")

# Never more items read from one remote answer than a local page may hold.
MAX_REMOTE_ITEMS = 100
MAX_ITEM_ID = 1024


def pubsub_request(actor: Jid, *operations: Element, namespace: str = NS_PUBSUB) -> Element:
    """`<pubsub>operations…<actor>actor</actor></pubsub>`, in the pubsub namespace or (for
    the owner operations) pubsub#owner."""
    pubsub = Element(qname(namespace, "pubsub"))
    pubsub.extend(operations)
    SubElement(pubsub, qname(NS_BUDDYCLOUD, "actor")).text = str(actor)
    return pubsub


def configure_request(node: NodeId, update: ConfigUpdate | None = None) -> Element:
    """`<configure node/>` (XEP-0060 §8.2), with the submitted form of `update` for a set."""
    configure = Element(qname(NS_PUBSUB_OWNER, "configure"), {"node": str(node)})
    if update is not None:
        configure.append(render_config_update(update))
    return configure


def meta_data_request(node: NodeId) -> Element:
    """`<query xmlns=disco#info node/>`: the node's meta-data form (XEP-0060 §5.4)."""
    return Element(qname(NS_DISCO_INFO, "query"), {"node": str(node)})


def memberships_request(name: str, node: NodeId) -> Element:
    """`<subscriptions node/>` or `<affiliations node/>` of the owner namespace."""
    return Element(qname(NS_PUBSUB_OWNER, name), {"node": str(node)})


def subscriptions_set_request(
    node: NodeId, changes: Sequence[tuple[Jid, SubscriptionState]]
) -> Element:
    """`<subscriptions node><subscription jid subscription/>+` (XEP-0060 §8.8.2)."""
    block = memberships_request("subscriptions", node)
    for jid, state in changes:
        SubElement(
            block,
            qname(NS_PUBSUB_OWNER, "subscription"),
            {"jid": str(jid), "subscription": state.value},
        )
    return block


def affiliations_set_request(node: NodeId, changes: Sequence[tuple[Jid, Role]]) -> Element:
    """`<affiliations node><affiliation jid affiliation/>+` (XEP-0060 §8.9.2)."""
    block = memberships_request("affiliations", node)
    for jid, role in changes:
        SubElement(
            block,
            qname(NS_PUBSUB_OWNER, "affiliation"),
            {"jid": str(jid), "affiliation": role.value},
        )
    return block


def item_request(name: str, node: NodeId, item_id: str) -> Element:
    """`<replies/>` or `<thread/>` (Buddycloud namespace) naming one item."""
    return Element(qname(NS_BUDDYCLOUD, name), {"node": str(node), "item_id": item_id})


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


def _pubsub(payload: Element | None, what: str, namespace: str = NS_PUBSUB) -> Element:
    if payload is None or payload.tag != qname(namespace, "pubsub"):
        raise _garbage(f"something other than {what}")
    return payload


def _page(payload: Element, found: list[T], cursor_of: Callable[[T], str]) -> Page[T]:
    """A page of what was found, with the first, last and count of the answer's RSM
    `<set/>` (XEP-0059), or of what was found when it has none."""
    rsm = payload.find(qname(NS_RSM, "set"))
    count = len(found)
    first = cursor_of(found[0]) if found else None
    last = cursor_of(found[-1]) if found else None
    if rsm is not None:
        count_text = (rsm.findtext(qname(NS_RSM, "count")) or "").strip()
        if count_text.isascii() and count_text.isdigit() and len(count_text) < 10:
            count = int(count_text)
        first = _cursor(rsm.findtext(qname(NS_RSM, "first"))) or first
        last = _cursor(rsm.findtext(qname(NS_RSM, "last"))) or last
    return Page(found, count, first, last, cursor_of=cursor_of)


def _cursor(text: str | None) -> str | None:
    text = (text or "").strip()
    return text if text and len(text) <= MAX_CURSOR else None


def read_items(node: NodeId, payload: Element | None, *, now: datetime) -> Page[Item]:
    """`<pubsub><items node><item id>payload</item>*</items>[<set/>]</pubsub>` (an items,
    replies or thread answer)."""
    payload = _pubsub(payload, "items")
    block = payload.find(qname(NS_PUBSUB, "items"))
    if block is None:
        raise _garbage("no items")
    items = [
        read_item(node, element, now=now)
        for element in block.findall(qname(NS_PUBSUB, "item"))[:MAX_REMOTE_ITEMS]
    ]
    return _page(payload, items, _item_id)


def _item_id(item: Item) -> str:
    return item.id


def read_threads(node: NodeId, payload: Element | None, *, now: datetime) -> Page[Thread]:
    """`<pubsub><thread node id updated><item/>+</thread>*<set/></pubsub>`."""
    payload = _pubsub(payload, "threads")
    threads = []
    for element in payload.findall(qname(NS_PUBSUB, "thread"))[:MAX_REMOTE_ITEMS]:
        thread_id = element.get("id", "")
        if not thread_id or len(thread_id) > MAX_ITEM_ID:
            raise _garbage("a thread without a usable id")
        items = tuple(
            read_item(node, item, now=now)
            for item in element.findall(qname(NS_PUBSUB, "item"))[:MAX_REMOTE_ITEMS]
        )
        updated = _parse_date(element.get("updated"))
        if updated is None:
            updated = max((item.updated for item in items), default=now)
        threads.append(Thread(node, thread_id, updated, items))
    return _page(payload, threads, _thread_id)


def _thread_id(thread: Thread) -> str:
    return thread.id


def _configure_form(configure: Element | None) -> DataForm:
    """The node_config form of an owner `<configure/>` answer.

    Raises:
        RemoteError: the answer holds no such form.
    """
    block = _pubsub(configure, "a configuration", NS_PUBSUB_OWNER).find(
        qname(NS_PUBSUB_OWNER, "configure")
    )
    try:
        form = find_form(block, NS_PUBSUB_NODE_CONFIG) if block is not None else None
    except MalformedStanza:
        form = None
    if form is None:
        raise _garbage("a configuration without its form")
    return form


def read_configuration(node: NodeId, configure: Element | None, *, now: datetime) -> ChannelConfig:
    """The channel's configuration from the answer to an owner `<configure/>` get, as this
    server caches it: a field out of its vocabulary takes a new channel's value
    (`parse_node_config`, lenient)."""
    channel, _ = parse_node_config(_configure_form(configure), node, now=now, lenient=True)
    return channel.config


def read_node_view(
    node: NodeId, configure: Element | None, meta_data: Element | None, *, now: datetime
) -> NodeView:
    """A node and its channel's metadata from the answers to an owner `<configure/>` get
    (the configuration form) and a disco#info on the node (its follower count)."""
    form = _configure_form(configure)
    if meta_data is None or meta_data.tag != qname(NS_DISCO_INFO, "query"):
        raise _garbage("something other than the node's meta-data")
    try:
        meta = find_form(meta_data, NS_PUBSUB_META_DATA)
        if meta is None:
            raise _garbage("no meta-data form")
        channel, found = parse_node_config(form, node, now=now)
        return NodeView(channel, found, parse_num_subscribers(meta))
    except (MalformedStanza, InvalidConfiguration):
        raise _garbage("a configuration form it does not fill in right") from None


def read_memberships(
    node: NodeId, name: str, payload: Element | None, *, now: datetime
) -> Page[Membership]:
    """An owner `<subscriptions node/>` or `<affiliations node/>` answer: each row's
    subscription state (the role left none), or each row's role (the state left none);
    the list says only the one."""
    payload = _pubsub(payload, name, NS_PUBSUB_OWNER)
    block = payload.find(qname(NS_PUBSUB_OWNER, name))
    if block is None:
        raise _garbage(f"no {name}")
    row_name = name.removesuffix("s")
    rows = []
    for row in block.findall(qname(NS_PUBSUB_OWNER, row_name))[:MAX_PAGE]:
        try:
            jid = Jid.parse(row.get("jid", "")).bare
            if row_name == "subscription":
                state = SubscriptionState.parse(row.get("subscription", ""))
                inviter = row.get("invited-by")
                rows.append(
                    Membership(
                        node.channel,
                        jid,
                        Role.NONE,
                        state,
                        now,
                        invited_by=Jid.parse(inviter).bare if inviter else None,
                        temporary=row.get("temporary") in ("1", "true"),
                    )
                )
            else:
                role = Role.parse(row.get("affiliation", ""))
                rows.append(Membership(node.channel, jid, role, SubscriptionState.NONE, now))
        except ChannelError:
            raise _garbage(f"a {row_name} it does not fill in right") from None
    return _page(payload, rows, _member_jid)


def _member_jid(membership: Membership) -> str:
    return str(membership.jid)


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
    return _parse_date(entry.findtext(qname(NS_ATOM, name)))


def _parse_date(raw: str | None) -> datetime | None:
    text = (raw or "").strip()
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
    if condition == "not-allowed" and app == "can-not-modify-own-affiliation":
        return OwnAffiliation("nobody may change their own role")
    if condition == "not-allowed" and app == "can-not-modify-own-subscription":
        return OwnSubscription("nobody may change their own subscription this way")
    if condition == "not-allowed":
        return Forbidden("the channel's server does not allow you this")
    if condition in ("bad-request", "not-acceptable") and app in (
        "invalid-payload",
        "payload-too-big",
    ):
        return InvalidPayload("the channel's server refused the payload", condition=app)
    if condition == "bad-request":
        return BadRequest("the channel's server refused the request as malformed")
    if condition == "not-acceptable":
        return InvalidConfiguration("configuration", "the channel's server refused the value")
    if condition == "feature-not-implemented":
        return Unsupported("federation", "the channel's server does not offer this")
    if condition == "conflict":
        return NodeExists(str(node))
    return RemoteError(
        f"the channel's server answered with an error ({condition[:40] or 'unknown'})"
    )
