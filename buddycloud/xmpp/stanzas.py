"""Typed requests parsed once from XML, and the responses rendered from engine results.

Every operation of reference section 3 that the component serves has a request dataclass,
a `parse_<operation>(payload)` taking the IQ's child element (`<pubsub/>`, `<query/>`), and
a `render_<operation>(...)` building the child of the result IQ. Handlers never walk XML.

Parsers raise only domain errors (`BadRequest` and its subclasses, `Unsupported`) or the
edge's `MalformedStanza`; tests/xmpp/test_fuzz.py checks that on random input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import (
    InvalidConfiguration,
    InvalidJid,
    InvalidPayload,
    ItemRequired,
    PayloadTooLarge,
)
from buddycloud.domain.events import ArchivedEvent, AuthorizationRequested
from buddycloud.domain.ids import local_item_id
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    MAX_PAGE,
    Channel,
    Item,
    Membership,
    NodeId,
    NodeMembership,
    Page,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.domain.times import format_datetime, parse_datetime
from buddycloud.services.config import ConfigUpdate, NodeView
from buddycloud.wire.atom import ENTRY, parse_entry, render_payload
from buddycloud.xmpp.errors import InstantNodesUnsupported, MalformedStanza, NodeIdRequired
from buddycloud.xmpp.fitting import Runs, fit_page
from buddycloud.xmpp.forms import (
    FILTER_KEYS,
    DataForm,
    FormField,
    filter_fields,
    find_form,
    node_config_fields,
    parse_bool,
    parse_config_update,
    render_form,
    render_node_config,
)
from buddycloud.xmpp.namespaces import (
    NS_BUDDYCLOUD,
    NS_CLIENT,
    NS_DATA_FORMS,
    NS_DELAY,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_FORWARD,
    NS_MAM,
    NS_MAM_TMP,
    NS_PUBSUB,
    NS_PUBSUB_EVENT,
    NS_PUBSUB_META_DATA,
    NS_PUBSUB_NODE_CONFIG,
    NS_PUBSUB_OWNER,
    NS_PUBSUB_SUBSCRIBE_AUTHORIZATION,
    NS_REGISTER,
    NS_SEARCH,
    qname,
    split_tag,
)
from buddycloud.xmpp.rsm import find_set, parse_int, parse_rsm, parse_set, render_rsm
from buddycloud.xmpp.xml import (
    byte_size,
    namespace_of,
    prewritten,
    quote_attribute,
    serialize,
    text_of,
    utf8_size,
    wrapper_size,
)

DEFAULT_MAX_PAYLOAD_BYTES = 65536
MAX_ITEM_IDS = 100
MAX_CHANGES = 100

# --- attribute helpers ------------------------------------------------------------------


def _child(parent: Element, namespace: str, name: str) -> Element:
    element = parent.find(qname(namespace, name))
    if element is None:
        raise MalformedStanza(f"missing <{name}/> element")
    return element


def _node(element: Element) -> NodeId:
    raw = element.get("node")
    if not raw:
        raise NodeIdRequired()
    return NodeId.parse(raw)


def _optional_node(element: Element) -> NodeId | None:
    raw = element.get("node")
    return NodeId.parse(raw) if raw else None


def _jid(element: Element, attribute: str = "jid") -> Jid:
    raw = element.get(attribute)
    if not raw:
        raise MalformedStanza(f"missing {attribute} attribute", condition="jid-required")
    return Jid.parse(raw)


def _flag(element: Element, name: str, *, default: bool = False) -> bool:
    """A boolean attribute, with or without the Buddycloud namespace (true/1/false/0)."""
    raw = element.get(name)
    if raw is None:
        raw = element.get(qname(NS_BUDDYCLOUD, name))
    if raw is None:
        return default
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise MalformedStanza(f"attribute {name} must be true, false, 1 or 0")


def _item_id(raw: str | None) -> str:
    if not raw:
        raise MalformedStanza("an item needs an id attribute", condition="item-required")
    return local_item_id(raw)


def _date(raw: str | None) -> datetime | None:
    return parse_datetime(raw) if raw else None


def _pubsub(namespace: str = NS_PUBSUB) -> Element:
    return Element(qname(namespace, "pubsub"))


def node_of(membership: Membership) -> NodeId:
    """The node a channel-wide membership is shown on: the channel's posts node (5.4)."""
    return NodeId(membership.channel, "posts")


# --- pages cut to the stanza size limit (fitting.py) ------------------------------------


def _shell_size(outer: Element, block: Element) -> int:
    """The bytes of `outer` serialised with its results' element `block` holding content
    of zero bytes: the part of a reply that does not depend on the results."""
    placeholder = prewritten(Element("_"), "", namespace_of(block))
    block.append(placeholder)
    try:
        return utf8_size(serialize(outer))
    finally:
        block.remove(placeholder)


def _fill(
    outer: Element,
    block: Element,
    page: Page[_Value],
    render: Callable[[_Value], Element],
    *,
    room: int,
    from_end: bool = False,
    with_rsm: bool = True,
    stub: Callable[[_Value], Element] | None = None,
) -> Page[_Value]:
    """Put into `block` the results of `page` that fit in a reply child `outer` of `room`
    bytes, and append the RSM `<set/>` to `outer` (always `with_rsm`, else only when the
    page had to end early). The page actually sent."""
    kept, children = fit_page(
        page,
        render,
        context=namespace_of(block),
        room=room - _shell_size(outer, block),
        with_rsm=with_rsm,
        from_end=from_end,
        stub=stub,
    )
    block.extend(children)
    if with_rsm or kept is not page:
        outer.append(render_rsm(kept))
    return kept


def stub_item(item: Item, *, namespace: str = NS_PUBSUB) -> Element:
    """An item without its payload: its id only. XEP-0060 §6.5.6 lets a service send
    notifications so, and the client fetches the item by id."""
    return Element(qname(namespace, "item"), {"id": item.id})


# --- disco (XEP-0030) -------------------------------------------------------------------

IDENTITIES: tuple[tuple[str, str, str], ...] = (
    ("pubsub", "channels", "Buddycloud channel server"),
    ("pubsub", "inbox", "Buddycloud inbox"),
)
FEATURES: tuple[str, ...] = (
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_REGISTER,
    NS_SEARCH,
    NS_MAM,
    NS_MAM_TMP,
    "http://jabber.org/protocol/rsm",
    NS_PUBSUB,
    f"{NS_PUBSUB}#create-nodes",
    f"{NS_PUBSUB}#config-node",
    f"{NS_PUBSUB}#delete-nodes",
    f"{NS_PUBSUB}#delete-items",
    f"{NS_PUBSUB}#publish",
    f"{NS_PUBSUB}#retract-items",
    f"{NS_PUBSUB}#retrieve-items",
    f"{NS_PUBSUB}#subscribe",
    f"{NS_PUBSUB}#retrieve-subscriptions",
    f"{NS_PUBSUB}#retrieve-affiliations",
    f"{NS_PUBSUB}#manage-subscriptions",
    f"{NS_PUBSUB}#modify-affiliations",
    f"{NS_PUBSUB}#meta-data",
    f"{NS_PUBSUB}#outcast-affiliation",
    f"{NS_PUBSUB}#member-affiliation",
    f"{NS_PUBSUB}#publisher-affiliation",
    f"{NS_PUBSUB}#persistent-items",
    f"{NS_PUBSUB}#item-ids",
    NS_BUDDYCLOUD,
)


_Value = TypeVar("_Value")


@dataclass(frozen=True, slots=True)
class DiscoInfoRequest:
    node: NodeId | None


def parse_disco_info(query: Element) -> DiscoInfoRequest:
    """`<query xmlns=disco#info [node]/>` (reference rows 2-3)."""
    return DiscoInfoRequest(_optional_node(query))


def render_disco_info(view: NodeView | None) -> Element:
    """The service's identities and features, or a node's identity and meta-data form."""
    query = Element(qname(NS_DISCO_INFO, "query"))
    if view is None:
        for category, type_, name in IDENTITIES:
            SubElement(
                query,
                qname(NS_DISCO_INFO, "identity"),
                {"category": category, "type": type_, "name": name},
            )
        for feature in FEATURES:
            SubElement(query, qname(NS_DISCO_INFO, "feature"), {"var": feature})
        return query
    query.set("node", str(view.node.id))
    SubElement(query, qname(NS_DISCO_INFO, "identity"), {"category": "pubsub", "type": "leaf"})
    SubElement(query, qname(NS_DISCO_INFO, "feature"), {"var": NS_PUBSUB})
    fields = node_config_fields(view.channel, view.node) + (
        FormField("pubsub#num_subscribers", (str(view.num_subscribers),), "text-single"),
    )
    query.append(render_form(DataForm("result", NS_PUBSUB_META_DATA, fields)))
    return query


@dataclass(frozen=True, slots=True)
class DiscoItemsRequest:
    node: NodeId | None
    page: PageRequest


TOP_NODES: dict[str, Literal["followers", "posts"]] = {
    "/top-followed-nodes": "followers",
    "/top-published-nodes": "posts",
}


@dataclass(frozen=True, slots=True)
class TopNodesRequest:
    """disco#items on `/top-followed-nodes` or `/top-published-nodes` (reference row 6)."""

    node: str
    by: Literal["followers", "posts"]
    limit: int


def parse_disco_items(query: Element) -> DiscoItemsRequest | TopNodesRequest:
    """`<query xmlns=disco#items [node]>` with RSM (reference rows 4-6)."""
    raw = query.get("node")
    if raw in TOP_NODES:
        return TopNodesRequest(raw, TOP_NODES[raw], parse_rsm(query, default_max=10).max)
    return DiscoItemsRequest(_optional_node(query), parse_rsm(query))


def render_disco_channels(
    service: Jid,
    channels: Page[Channel] | Sequence[Channel],
    *,
    room: int,
    node: str | None = None,
    from_end: bool = False,
) -> Element:
    """Channels, one `<item>` per channel's posts node; a page carries its RSM.

    A list (the top channels) that does not fit ends early, with an RSM `<set/>` whose
    count says how long it was.
    """
    query = Element(qname(NS_DISCO_ITEMS, "query"), {"node": node} if node else {})
    paged = isinstance(channels, Page)
    page = channels if isinstance(channels, Page) else _listed(channels)

    def render(channel: Channel) -> Element:
        return Element(
            qname(NS_DISCO_ITEMS, "item"),
            {
                "jid": str(service),
                "node": str(NodeId(channel.jid, "posts")),
                "name": channel.config.title,
            },
        )

    _fill(query, query, page, render, room=room, from_end=from_end, with_rsm=paged)
    return query


def _listed(channels: Sequence[Channel]) -> Page[Channel]:
    listed = list(channels)
    return Page(
        listed,
        len(listed),
        str(listed[0].jid) if listed else None,
        str(listed[-1].jid) if listed else None,
        cursor_of=lambda channel: str(channel.jid),
    )


def render_disco_node_items(
    service: Jid, node: NodeId, page: Page[Item], *, room: int, from_end: bool = False
) -> Element:
    """The item ids of a node (`name` = id), as the Node.js server answered row 5."""
    query = Element(qname(NS_DISCO_ITEMS, "query"), {"node": str(node)})

    def render(item: Item) -> Element:
        return Element(qname(NS_DISCO_ITEMS, "item"), {"jid": str(service), "name": item.id})

    _fill(query, query, page, render, room=room, from_end=from_end)
    return query


# --- register (XEP-0077) ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegisterRequest:
    remove: bool


def parse_register(query: Element) -> RegisterRequest:
    """`<query xmlns=jabber:iq:register/>`; `<remove/>` asks to unregister (row 9)."""
    return RegisterRequest(query.find(qname(NS_REGISTER, "remove")) is not None)


def render_register_form() -> Element:
    """Row 7: registering needs no fields."""
    query = Element(qname(NS_REGISTER, "query"))
    SubElement(
        query, qname(NS_REGISTER, "instructions")
    ).text = "Send an empty set to create your channel."
    return query


# --- create, configure, delete (XEP-0060 §8) --------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateRequest:
    node: NodeId
    update: ConfigUpdate | None


def parse_create(pubsub: Element) -> CreateRequest:
    """`<create node/>` with an optional `<configure><x type=submit/></configure>` (row 10).

    Instant nodes (no node attribute) are not supported: Buddycloud node ids are chosen by
    the channel's owner (XEP-0060 §8.1.2, nodeid-required).
    """
    create = _child(pubsub, NS_PUBSUB, "create")
    if not create.get("node"):
        raise InstantNodesUnsupported()
    node = _node(create)
    configure = pubsub.find(qname(NS_PUBSUB, "configure"))
    update = None
    if configure is not None:
        form = find_form(configure)
        if form is not None:
            update = parse_config_update(form)
    return CreateRequest(node, update)


@dataclass(frozen=True, slots=True)
class ConfigureGetRequest:
    node: NodeId


def parse_configure_get(pubsub: Element) -> ConfigureGetRequest:
    """`<pubsub#owner><configure node/>` (row 11)."""
    return ConfigureGetRequest(_node(_child(pubsub, NS_PUBSUB_OWNER, "configure")))


def render_configure(view: NodeView) -> Element:
    pubsub = _pubsub(NS_PUBSUB_OWNER)
    configure = SubElement(pubsub, qname(NS_PUBSUB_OWNER, "configure"), {"node": str(view.node.id)})
    configure.append(render_node_config(view.channel, view.node, type_="form"))
    return pubsub


@dataclass(frozen=True, slots=True)
class ConfigureSetRequest:
    node: NodeId
    update: ConfigUpdate


def parse_configure_set(pubsub: Element) -> ConfigureSetRequest:
    """`<pubsub#owner><configure node><x type=submit/></configure>` (row 12)."""
    configure = _child(pubsub, NS_PUBSUB_OWNER, "configure")
    node = _node(configure)
    form = find_form(configure)
    if form is None:
        raise MalformedStanza("a configure request needs a data form", condition="invalid-options")
    return ConfigureSetRequest(node, parse_config_update(form))


@dataclass(frozen=True, slots=True)
class DeleteRequest:
    node: NodeId


def parse_delete(pubsub: Element) -> DeleteRequest:
    """`<pubsub#owner><delete node/>` (row 13)."""
    return DeleteRequest(_node(_child(pubsub, NS_PUBSUB_OWNER, "delete")))


# --- publish and retract (XEP-0060 §7.1-7.2) --------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishRequest:
    node: NodeId
    item_id: str | None
    payload: EntryDraft | RawPayload


def parse_publish(
    pubsub: Element, *, max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
) -> PublishRequest:
    """`<publish node><item [id]>payload</item></publish>` (row 14).

    The payload's size is measured by serialising it, before any other work.

    Raises:
        NodeIdRequired, ItemRequired, InvalidPayload, PayloadTooLarge, InvalidItemId
    """
    publish = _child(pubsub, NS_PUBSUB, "publish")
    node = _node(publish)
    items = publish.findall(qname(NS_PUBSUB, "item"))
    if not items:
        raise ItemRequired("a publish request needs an item")
    if len(items) > 1:
        raise InvalidPayload("publish one item per request")
    item = items[0]
    raw_id = item.get("id")
    item_id = local_item_id(raw_id) if raw_id else None
    children = list(item)
    if not children:
        raise InvalidPayload("the item has no payload", condition="payload-required")
    if len(children) > 1:
        raise InvalidPayload("an item holds exactly one payload element")
    payload = children[0]
    size = byte_size(payload)
    if size > max_payload_bytes:
        raise PayloadTooLarge(size, max_payload_bytes)
    if payload.tag == ENTRY:
        return PublishRequest(node, item_id, parse_entry(payload, byte_size=size))
    namespace = payload.tag[1:].partition("}")[0] if payload.tag.startswith("{") else ""
    return PublishRequest(node, item_id, RawPayload(serialize(payload), namespace))


def render_publish(node: NodeId, item_id: str) -> Element:
    pubsub = _pubsub()
    publish = SubElement(pubsub, qname(NS_PUBSUB, "publish"), {"node": str(node)})
    SubElement(publish, qname(NS_PUBSUB, "item"), {"id": item_id})
    return pubsub


@dataclass(frozen=True, slots=True)
class RetractRequest:
    node: NodeId
    item_id: str
    notify: bool


def parse_retract(pubsub: Element) -> RetractRequest:
    """`<retract node [notify]><item id/></retract>` (row 15, ProtoXEP 6.2).

    Notifications are sent unless `notify` is false or 0.
    """
    retract = _child(pubsub, NS_PUBSUB, "retract")
    node = _node(retract)
    items = retract.findall(qname(NS_PUBSUB, "item"))
    if not items:
        raise ItemRequired("a retract request needs an item id")
    if len(items) > 1:
        # One item per request, so that a refused retraction never leaves others done.
        raise MalformedStanza("retract one item per request")
    return RetractRequest(
        node, _item_id(items[0].get("id")), _flag(retract, "notify", default=True)
    )


# --- items (XEP-0060 §6.5) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemsRequest:
    node: NodeId
    item_ids: tuple[str, ...]
    page: PageRequest
    parent_only: bool


FIREHOSE = "/firehose"


@dataclass(frozen=True, slots=True)
class FirehoseRequest:
    page: PageRequest
    parent_only: bool


def parse_items(pubsub: Element) -> ItemsRequest | FirehoseRequest:
    """`<items node [max_items] [parent-only]><item id/>*</items>` + RSM (row 16);
    node `/firehose` reads the newest public items of every channel (row 17).

    `max_items` sets the page size unless RSM gives `max`.
    """
    items = _child(pubsub, NS_PUBSUB, "items")
    if items.get("node") == FIREHOSE:
        if items.find(qname(NS_PUBSUB, "item")) is not None:
            raise MalformedStanza("items of the firehose are fetched from their own nodes")
        return FirehoseRequest(_items_page(pubsub, items), _flag(items, "parent-only"))
    node = _node(items)
    requested = items.findall(qname(NS_PUBSUB, "item"))
    if len(requested) > MAX_ITEM_IDS:
        raise MalformedStanza(f"ask for at most {MAX_ITEM_IDS} items by id")
    ids = tuple(_item_id(item.get("id")) for item in requested)
    return ItemsRequest(node, ids, _items_page(pubsub, items), _flag(items, "parent-only"))


def _items_page(pubsub: Element, items: Element) -> PageRequest:
    max_items = items.get("max_items")
    default_max = parse_int(max_items, "max_items", maximum=MAX_PAGE) if max_items else 50
    return parse_rsm(pubsub, default_max=default_max)


def render_item(item: Item, *, service: str, namespace: str = NS_PUBSUB) -> Element:
    element = Element(qname(namespace, "item"), {"id": item.id})
    payload = render_payload(item, service=service)
    if payload is not None:
        element.append(payload)
    return element


def render_items(
    node: NodeId, page: Page[Item], *, service: str, room: int, from_end: bool = False
) -> Element:
    """`<pubsub><items node><item id>payload</item>*</items><set/></pubsub>`, holding the
    items of `page` that fit in `room` bytes (fitting.py)."""
    pubsub = _pubsub()
    block = SubElement(pubsub, qname(NS_PUBSUB, "items"), {"node": str(node)})
    _fill(
        pubsub,
        block,
        page,
        lambda item: render_item(item, service=service),
        room=room,
        from_end=from_end,
        stub=stub_item,
    )
    return pubsub


def render_items_by_id(node: NodeId, items: Sequence[Item], *, service: str, room: int) -> Element:
    """The items asked for by id, in the order asked, as many as fit in `room` bytes.

    When some do not fit, an RSM `<set/>` ends the reply: `count` is the number asked for,
    `last` the last one sent, and the client asks again for the others. An item too large
    for a reply even alone is sent as a stub when several were asked for; asked for
    alone, it is answered with ReplyTooLarge.
    """
    pubsub = _pubsub()
    block = SubElement(pubsub, qname(NS_PUBSUB, "items"), {"node": str(node)})
    asked = Page(
        list(items),
        len(items),
        items[0].id if items else None,
        items[-1].id if items else None,
        cursor_of=lambda item: item.id,
    )
    kept, children = fit_page(
        asked,
        lambda item: render_item(item, service=service),
        context=NS_PUBSUB,
        room=room - _shell_size(pubsub, block),
        with_rsm=False,
        stub=stub_item if len(items) > 1 else None,
        name=lambda item: f"item {item.id}",
        condition="payload-too-big",
    )
    block.extend(children)
    if kept is not asked:
        pubsub.append(render_rsm(kept))
    return pubsub


def render_grouped_items(
    page: Page[Item], *, service: str, room: int, from_end: bool = False
) -> Element:
    """Items of several nodes as consecutive `<items node>` blocks (ProtoXEP example 8),
    as many as fit in `room` bytes (fitting.py)."""
    pubsub = _pubsub()
    kept, children = fit_page(
        page,
        lambda item: render_item(item, service=service),
        context=NS_PUBSUB,
        room=room - _shell_size(pubsub, pubsub),
        from_end=from_end,
        stub=stub_item,
        runs=Runs(key=_node_of_item, size=_items_block_size),
    )
    block: Element | None = None
    current: NodeId | None = None
    for item, child in zip(kept.items, children, strict=True):
        if block is None or item.node != current:
            block = SubElement(pubsub, qname(NS_PUBSUB, "items"), {"node": str(item.node)})
            current = item.node
        block.append(child)
    pubsub.append(render_rsm(kept))
    return pubsub


def _node_of_item(item: Item) -> NodeId:
    return item.node


def _items_block_size(item: Item) -> int:
    return wrapper_size(Element(qname(NS_PUBSUB, "items"), {"node": str(item.node)}), NS_PUBSUB)


# --- acting for a user of another domain (reference 5.2) ---------------------------------


def parse_actor(payload: Element) -> Jid | None:
    """The `<actor xmlns="http://buddycloud.org/v1">` a `<pubsub>` request carries, if any.

    Raises:
        MalformedStanza: more than one actor, or one that is not a JID.
    """
    if split_tag(payload.tag)[1] != "pubsub":
        return None
    actors = payload.findall(qname(NS_BUDDYCLOUD, "actor"))
    if not actors:
        return None
    if len(actors) > 1:
        raise MalformedStanza("a request acts for one actor")
    try:
        return Jid.parse((actors[0].text or "").strip())
    except InvalidJid as exc:
        raise MalformedStanza(f"the actor is not a JID: {exc.message}") from None


# --- subscribe and unsubscribe (XEP-0060 §6.1-6.2) --------------------------------------


@dataclass(frozen=True, slots=True)
class SubscribeRequest:
    node: NodeId
    subscriber: Jid
    temporary: bool = False


def parse_subscribe(pubsub: Element) -> SubscribeRequest:
    """`<subscribe node jid/>` (row 29), with `<options>`: `pubsub#expire=presence` asks for
    a temporary subscription; other options are ignored."""
    subscribe = _child(pubsub, NS_PUBSUB, "subscribe")
    node = _node(subscribe)
    try:
        subscriber = _jid(subscribe)
    except InvalidJid as exc:
        raise MalformedStanza(exc.message, condition="invalid-jid") from None
    options = pubsub.find(qname(NS_PUBSUB, "options"))
    form = find_form(options) if options is not None else None
    expire = form.get("pubsub#expire") if form is not None else None
    return SubscribeRequest(node, subscriber, temporary=expire == "presence")


def render_subscription(membership: Membership, node: NodeId | None = None) -> Element:
    """`<pubsub><subscription node jid subscription/><affiliation …/></pubsub>` (row 29)."""
    node = node or node_of(membership)
    pubsub = _pubsub()
    pubsub.append(_subscription(NS_PUBSUB, membership, node=node))
    SubElement(
        pubsub,
        qname(NS_PUBSUB, "affiliation"),
        {"node": str(node), "jid": str(membership.jid), "affiliation": membership.role.value},
    )
    return pubsub


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    node: NodeId
    subscriber: Jid | None


def parse_unsubscribe(pubsub: Element) -> UnsubscribeRequest:
    """`<unsubscribe node [jid]/>` (row 30); without jid, the requester unsubscribes."""
    unsubscribe = _child(pubsub, NS_PUBSUB, "unsubscribe")
    node = _node(unsubscribe)
    raw = unsubscribe.get("jid")
    return UnsubscribeRequest(node, Jid.parse(raw) if raw else None)


# --- subscriptions and affiliations lists (rows 23-28) ----------------------------------


@dataclass(frozen=True, slots=True)
class MembershipListRequest:
    """A list of subscriptions or affiliations: a node's (with `node`) or the requester's;
    the requester's own list holds either lasting or (`ephemeral`) ephemeral channels."""

    namespace: str
    node: NodeId | None
    page: PageRequest
    ephemeral: bool = False


def _parse_membership_list(pubsub: Element, name: str) -> MembershipListRequest:
    namespace = _namespace_of(pubsub)
    element = _child(pubsub, namespace, name)
    node = _optional_node(element)
    if node is None and namespace == NS_PUBSUB_OWNER:
        raise NodeIdRequired()
    return MembershipListRequest(namespace, node, parse_rsm(pubsub), _flag(element, "ephemeral"))


def parse_subscriptions(pubsub: Element) -> MembershipListRequest:
    """`<subscriptions [node]/>` in the pubsub or pubsub#owner namespace, with RSM."""
    return _parse_membership_list(pubsub, "subscriptions")


def _namespace_of(pubsub: Element) -> str:
    return NS_PUBSUB_OWNER if pubsub.tag == qname(NS_PUBSUB_OWNER, "pubsub") else NS_PUBSUB


def _subscription(namespace: str, membership: Membership, *, node: NodeId | None) -> Element:
    attributes = {"jid": str(membership.jid), "subscription": membership.subscription.value}
    if node is not None:
        attributes = {"node": str(node), **attributes}
    if membership.invited_by is not None:
        attributes["invited-by"] = str(membership.invited_by)
    if membership.temporary:
        attributes["temporary"] = "1"
    return Element(qname(namespace, "subscription"), attributes)


def render_node_subscriptions(
    namespace: str, node: NodeId, page: Page[Membership], *, room: int, from_end: bool = False
) -> Element:
    """A node's followers. Each row names the node as well, as the Java server's did
    (reference row 24), for clients that read it from the row."""
    pubsub = _pubsub(namespace)
    block = SubElement(pubsub, qname(namespace, "subscriptions"), {"node": str(node)})
    _fill(
        pubsub,
        block,
        page,
        lambda membership: _subscription(namespace, membership, node=node),
        room=room,
        from_end=from_end,
    )
    return pubsub


def render_user_subscriptions(
    page: Page[NodeMembership], *, room: int, from_end: bool = False
) -> Element:
    """One `<subscription node jid subscription/>` per node of each followed channel."""
    pubsub = _pubsub()
    block = SubElement(pubsub, qname(NS_PUBSUB, "subscriptions"))
    _fill(
        pubsub,
        block,
        page,
        lambda row: _subscription(NS_PUBSUB, row.membership, node=row.node.id),
        room=room,
        from_end=from_end,
    )
    return pubsub


def parse_affiliations(pubsub: Element) -> MembershipListRequest:
    """`<affiliations [node]/>` in the pubsub or pubsub#owner namespace, with RSM."""
    return _parse_membership_list(pubsub, "affiliations")


def render_node_affiliations(
    namespace: str, node: NodeId, page: Page[Membership], *, room: int, from_end: bool = False
) -> Element:
    """A node's roles. Each row names the node as well, as the Java server's did
    (reference row 27), for clients that read it from the row."""
    pubsub = _pubsub(namespace)
    block = SubElement(pubsub, qname(namespace, "affiliations"), {"node": str(node)})

    def render(membership: Membership) -> Element:
        return Element(
            qname(namespace, "affiliation"),
            {
                "node": str(node),
                "jid": str(membership.jid),
                "affiliation": membership.role.value,
            },
        )

    _fill(pubsub, block, page, render, room=room, from_end=from_end)
    return pubsub


def render_user_affiliations(
    page: Page[NodeMembership], *, room: int, from_end: bool = False
) -> Element:
    """One `<affiliation node jid affiliation/>` per node of each channel the user has a
    role in; `jid` is the user's, as the Java server sent it (reference row 26)."""
    pubsub = _pubsub()
    block = SubElement(pubsub, qname(NS_PUBSUB, "affiliations"))

    def render(row: NodeMembership) -> Element:
        return Element(
            qname(NS_PUBSUB, "affiliation"),
            {
                "node": str(row.node.id),
                "jid": str(row.membership.jid),
                "affiliation": row.membership.role.value,
            },
        )

    _fill(pubsub, block, page, render, room=room, from_end=from_end)
    return pubsub


@dataclass(frozen=True, slots=True)
class SubscriptionsSetRequest:
    node: NodeId
    changes: tuple[tuple[Jid, SubscriptionState], ...]


def _owner_changes(
    pubsub: Element, name: str, parse: Callable[[str], _Value]
) -> tuple[NodeId, tuple[tuple[Jid, _Value], ...]]:
    """`<pubsub#owner><NAMEs node><NAME jid NAME=value/>+`: the rows of an owner change."""
    element = _child(pubsub, NS_PUBSUB_OWNER, f"{name}s")
    node = _node(element)
    rows = element.findall(qname(NS_PUBSUB_OWNER, name))
    if not rows:
        raise MalformedStanza(f"name at least one {name} to change")
    if len(rows) > MAX_CHANGES:
        raise MalformedStanza(f"change at most {MAX_CHANGES} {name}s per request")
    changes = []
    for row in rows:
        value = row.get(name)
        if not value:
            raise MalformedStanza(f"each {name} needs a {name} attribute")
        try:
            parsed = parse(value)
        except InvalidConfiguration as exc:
            # A value outside the XEP-0060 schema's list: a malformed request, not a
            # configuration the server declines.
            raise MalformedStanza(exc.reason) from None
        changes.append((_jid(row), parsed))
    return node, tuple(changes)


def parse_subscriptions_set(pubsub: Element) -> SubscriptionsSetRequest:
    """`<pubsub#owner><subscriptions node><subscription jid subscription/>+` (row 25)."""
    return SubscriptionsSetRequest(*_owner_changes(pubsub, "subscription", SubscriptionState.parse))


@dataclass(frozen=True, slots=True)
class AffiliationsSetRequest:
    node: NodeId
    changes: tuple[tuple[Jid, Role], ...]


def parse_affiliations_set(pubsub: Element) -> AffiliationsSetRequest:
    """`<pubsub#owner><affiliations node><affiliation jid affiliation/>+` (row 28)."""
    return AffiliationsSetRequest(*_owner_changes(pubsub, "affiliation", Role.parse))


# --- Buddycloud extensions (rows 18-22, 31) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class RecentItemsRequest:
    since: str | None
    max_per_node: str | None
    parent_only: bool
    page: PageRequest


def parse_recent_items(pubsub: Element) -> RecentItemsRequest:
    """`<recent-items xmlns=bc since max [parent-only]/>` + RSM (ProtoXEP 6.1.1).

    `since` and `max` stay raw: the engine raises the 6.1.1.1 errors.
    """
    element = _child(pubsub, NS_BUDDYCLOUD, "recent-items")
    return RecentItemsRequest(
        element.get("since"),
        element.get("max"),
        _flag(element, "parent-only"),
        parse_rsm(pubsub),
    )


@dataclass(frozen=True, slots=True)
class UserItemsRequest:
    since: datetime | None
    parent_only: bool
    page: PageRequest


def parse_user_items(pubsub: Element) -> UserItemsRequest:
    """`<user-items xmlns=bc [since] [parent-only]/>` + RSM (row 19)."""
    element = _child(pubsub, NS_BUDDYCLOUD, "user-items")
    return UserItemsRequest(
        _date(element.get("since")), _flag(element, "parent-only"), parse_rsm(pubsub)
    )


@dataclass(frozen=True, slots=True)
class ItemRequest:
    """An item named by node and item_id: replies (row 20) and thread (row 21)."""

    node: NodeId
    item_id: str
    page: PageRequest


def _parse_item_request(pubsub: Element, name: str) -> ItemRequest:
    element = _child(pubsub, NS_BUDDYCLOUD, name)
    item_id = element.get("item_id")
    if not item_id:
        raise MalformedStanza(f"<{name}/> needs an item_id attribute", condition="item-required")
    return ItemRequest(_node(element), local_item_id(item_id), parse_rsm(pubsub))


def parse_replies(pubsub: Element) -> ItemRequest:
    """`<replies xmlns=bc node item_id/>` + RSM."""
    return _parse_item_request(pubsub, "replies")


def parse_thread(pubsub: Element) -> ItemRequest:
    """`<thread xmlns=bc node item_id/>` + RSM."""
    return _parse_item_request(pubsub, "thread")


@dataclass(frozen=True, slots=True)
class ThreadsRequest:
    node: NodeId
    page: PageRequest


def parse_threads(pubsub: Element) -> ThreadsRequest:
    """`<threads node/>` in the pubsub namespace, + RSM (row 22)."""
    return ThreadsRequest(_node(_child(pubsub, NS_PUBSUB, "threads")), parse_rsm(pubsub))


def render_threads(
    page: Page[Thread], *, service: str, room: int, from_end: bool = False
) -> Element:
    """Threads with their items, as many threads as fit in `room` bytes. A thread too
    large even alone is sent with its items' ids only: the `thread` request pages it."""
    pubsub = _pubsub()

    def render(thread: Thread, *, stubs: bool = False) -> Element:
        element = Element(
            qname(NS_PUBSUB, "thread"),
            {"node": str(thread.node), "id": thread.id, "updated": format_datetime(thread.updated)},
        )
        for item in thread.items:
            element.append(stub_item(item) if stubs else render_item(item, service=service))
        return element

    _fill(
        pubsub,
        pubsub,
        page,
        render,
        room=room,
        from_end=from_end,
        stub=lambda thread: render(thread, stubs=True),
    )
    return pubsub


@dataclass(frozen=True, slots=True)
class SubscriptionsWithConfigurationRequest:
    filters: dict[str, str]
    allowed_fields: tuple[str, ...] | None
    page: PageRequest


def parse_subscriptions_with_configuration(
    pubsub: Element,
) -> SubscriptionsWithConfigurationRequest:
    """ProtoXEP 7.1, examples 17 and 19: optional subscription and configuration filters."""
    element = _child(pubsub, NS_BUDDYCLOUD, "subscriptions-with-configuration")
    filters: dict[str, str] = {}
    subscription_filter = element.find(qname(NS_BUDDYCLOUD, "subscription-filter"))
    if subscription_filter is not None:
        for allow in subscription_filter.findall(qname(NS_BUDDYCLOUD, "allow")):
            field_name = allow.get("field", "")
            key = FILTER_KEYS.get(field_name)
            if key is None:
                raise MalformedStanza(f"cannot filter on field {field_name[:60]!r}")
            filters[key] = allow.get("value", "")
    allowed: tuple[str, ...] | None = None
    configuration_filter = element.find(qname(NS_BUDDYCLOUD, "configuration-filter"))
    if configuration_filter is not None:
        allowed = tuple(
            allow.get("field", "")
            for allow in configuration_filter.findall(qname(NS_BUDDYCLOUD, "allow"))
        )
    return SubscriptionsWithConfigurationRequest(filters, allowed, parse_rsm(pubsub))


def render_subscriptions_with_configuration(
    page: Page[NodeMembership],
    allowed_fields: Sequence[str] | None,
    *,
    room: int,
    from_end: bool = False,
) -> Element:
    """ProtoXEP examples 18 and 20: one row per node, with that node's configuration."""
    pubsub = _pubsub()
    block = SubElement(pubsub, qname(NS_BUDDYCLOUD, "subscriptions-with-configuration"))

    def render(found: NodeMembership) -> Element:
        node = str(found.node.id)
        row = Element(
            qname(NS_BUDDYCLOUD, "subscription-with-configuration"),
            {
                "node": node,
                "subscription": found.membership.subscription.value,
                "jid": str(found.membership.jid),
            },
        )
        configure = SubElement(row, qname(NS_BUDDYCLOUD, "configure"), {"node": node})
        fields = filter_fields(node_config_fields(found.channel, found.node), allowed_fields)
        configure.append(render_form(DataForm("result", NS_PUBSUB_NODE_CONFIG, fields)))
        return row

    _fill(pubsub, block, page, render, room=room, from_end=from_end)
    return pubsub


# --- search (XEP-0055 with a data form; rows 33-34) -------------------------------------

SEARCH_DEFAULT_RPP = 25
SEARCH_MAX_PAGE = 100


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """Numbered result pages (`rpp`, `page`), or an RSM `<set/>` (`rsm`) continuing from
    the end of a page that had to end early (a cursor names a result, "<node>,<id>")."""

    words: tuple[str, ...]
    author: Jid | None
    rpp: int
    page_number: int
    rsm: PageRequest | None = None

    @property
    def has_cursor(self) -> bool:
        rsm = self.rsm
        return rsm is not None and (rsm.after is not None or rsm.backwards)

    @property
    def page(self) -> PageRequest:
        """`rpp` results (or RSM `max`), after the `offset` ones of the pages before or
        from the RSM cursor."""
        return self.rsm if self.rsm is not None else PageRequest(max=self.rpp)

    @property
    def offset(self) -> int:
        return 0 if self.has_cursor else (self.page_number - 1) * self.rpp


def render_search_form() -> Element:
    """Row 33: the fields a search takes."""
    query = Element(qname(NS_SEARCH, "query"))
    SubElement(query, qname(NS_SEARCH, "instructions")).text = "Search posts by words and author."
    fields = (
        FormField("content", (), "text-multi", "Words the post contains"),
        FormField("author", (), "jid-single", "Author"),
        FormField("rpp", (str(SEARCH_DEFAULT_RPP),), "fixed", "Results per page"),
        FormField("page", ("1",), "fixed", "Page"),
    )
    query.append(render_form(DataForm("form", NS_SEARCH, fields)))
    return query


def parse_search(query: Element) -> SearchRequest:
    """Row 34: a submitted form with content words, author, rpp and page."""
    form = find_form(query)
    if form is None or form.type != "submit":
        raise MalformedStanza("a search needs a submitted data form")
    words: list[str] = []
    for form_field in form.fields:
        if form_field.var == "content":
            for value in form_field.values:
                words.extend(value.split())
    author_raw = form.get("author")
    rpp_raw = form.get("rpp")
    page_raw = form.get("page")
    rpp = parse_int(rpp_raw, "rpp", minimum=1, maximum=MAX_PAGE) if rpp_raw else SEARCH_DEFAULT_RPP
    set_el = find_set(query)
    return SearchRequest(
        tuple(words),
        Jid.parse(author_raw) if author_raw else None,
        rpp,
        parse_int(page_raw, "page", minimum=1, maximum=SEARCH_MAX_PAGE) if page_raw else 1,
        parse_set(set_el, default_max=rpp) if set_el is not None else None,
    )


def render_search_results(
    page: Page[Item], *, service: str, room: int, with_rsm: bool = False, from_end: bool = False
) -> Element:
    """Row 34: `<reported>` node, id, entry and one `<item>` row per post, as many rows as
    fit in `room` bytes. An RSM `<set/>` follows the form when the request had one, or
    when the page had to end early (its `last` continues with `<set><after/></set>`)."""
    query = Element(qname(NS_SEARCH, "query"))
    reported = (
        FormField("node", (), "text-single", "Node"),
        FormField("id", (), "text-single", "Item id"),
        FormField("entry", (), "xml", "Item"),
    )
    x = render_form(DataForm("result", NS_SEARCH, (), reported=reported))
    query.append(x)

    def render(item: Item, *, stub: bool = False) -> Element:
        row = Element(qname(NS_DATA_FORMS, "item"))
        for var, text in (("node", str(item.node)), ("id", item.id)):
            field_el = SubElement(row, qname(NS_DATA_FORMS, "field"), {"var": var})
            SubElement(field_el, qname(NS_DATA_FORMS, "value")).text = text
        entry_field = SubElement(row, qname(NS_DATA_FORMS, "field"), {"var": "entry"})
        value = SubElement(entry_field, qname(NS_DATA_FORMS, "value"))
        payload = None if stub else render_payload(item, service=service)
        if payload is not None:
            value.append(payload)
        return row

    _fill(
        query,
        x,
        page,
        render,
        room=room,
        from_end=from_end,
        with_rsm=with_rsm,
        stub=lambda item: render(item, stub=True),
    )
    return query


# --- message archive management (XEP-0313 on a pubsub node; row 32) ---------------------


@dataclass(frozen=True, slots=True)
class MamQuery:
    query_id: str | None
    node: NodeId | None
    start: datetime | None
    end: datetime | None
    with_: Jid | None
    page: PageRequest


def parse_mam_query(query: Element) -> MamQuery:
    """`<query xmlns=urn:xmpp:mam:2 [queryid] [node]>` with form fields start, end, with."""
    form = find_form(query)
    start = end = None
    with_: Jid | None = None
    if form is not None:
        if form.type != "submit":
            raise MalformedStanza("a MAM query form must be of type submit")
        start = _date(form.get("start"))
        end = _date(form.get("end"))
        with_raw = form.get("with")
        with_ = Jid.parse(with_raw) if with_raw else None
    query_id = query.get("queryid")
    if query_id is not None and len(query_id) > 256:
        raise MalformedStanza("queryid is too long")
    return MamQuery(query_id, _optional_node(query), start, end, with_, parse_rsm(query))


def render_mam_form() -> Element:
    """XEP-0313 §6.1: the fields a query accepts."""
    query = Element(qname(NS_MAM, "query"))
    fields = (
        FormField("with", (), "jid-single"),
        FormField("start", (), "text-single"),
        FormField("end", (), "text-single"),
    )
    query.append(render_form(DataForm("form", NS_MAM, fields)))
    return query


def render_mam_result(
    query: MamQuery,
    item: Item,
    *,
    service: str,
    stub: bool = False,
    result_id: str | None = None,
) -> Element:
    """One `<result><forwarded><delay/><message><event><items><item>…` (XEP-0313 §4.2);
    `stub`: the item without its payload, for a result too large for a stanza. The
    result's id is the item's unless `result_id` is given. The forwarded message is in the
    client namespace (XEP-0297 §3)."""
    attributes = {"id": result_id if result_id is not None else item.id}
    if query.query_id is not None:
        attributes["queryid"] = query.query_id
    result = Element(qname(NS_MAM, "result"), attributes)
    forwarded = SubElement(result, qname(NS_FORWARD, "forwarded"))
    SubElement(forwarded, qname(NS_DELAY, "delay"), {"stamp": format_datetime(item.updated)})
    message = SubElement(
        forwarded, qname(NS_CLIENT, "message"), {"from": service, "type": "headline"}
    )
    event = SubElement(message, qname(NS_PUBSUB_EVENT, "event"))
    items = SubElement(event, qname(NS_PUBSUB_EVENT, "items"), {"node": str(item.node)})
    if stub:
        items.append(stub_item(item, namespace=NS_PUBSUB_EVENT))
    else:
        items.append(render_item(item, service=service, namespace=NS_PUBSUB_EVENT))
    return result


def render_mam_fin(page: Page[Any], *, complete: bool) -> Element:
    fin = Element(qname(NS_MAM, "fin"), {"complete": "true" if complete else "false"})
    fin.append(render_rsm(page))
    return fin


# --- inbox sync (reference row 32, urn:xmpp:mam:tmp) ----------------------------------------

# Without RSM `max`, as many events as the original Node server sent (its default), which
# is also the most one page holds (MAX_PAGE).
INBOX_DEFAULT_MAX = MAX_PAGE


@dataclass(frozen=True, slots=True)
class InboxSyncRequest:
    query_id: str | None
    start: datetime | None
    end: datetime | None
    page: PageRequest


def parse_inbox_sync(query: Element) -> InboxSyncRequest:
    """`<query xmlns=urn:xmpp:mam:tmp [queryid]><start>ISO</start>[<end>ISO</end>]</query>`
    with RSM (reference row 32); without `start`, from the beginning."""
    start = _date(text_of(query.find(qname(NS_MAM_TMP, "start"))))
    end = _date(text_of(query.find(qname(NS_MAM_TMP, "end"))))
    query_id = query.get("queryid")
    if query_id is not None and len(query_id) > 256:
        raise MalformedStanza("queryid is too long")
    return InboxSyncRequest(query_id, start, end, parse_rsm(query, default_max=INBOX_DEFAULT_MAX))


def render_inbox_result(
    request: InboxSyncRequest, archived: ArchivedEvent, body: str, *, service: str, to: str
) -> str:
    """One replayed event: `<message><result xmlns=mam:tmp queryid id><forwarded><delay/>
    <message>` + the live notification's child (`body`, serialised), as the original Node
    server sent it (a real message inside `<forwarded>`, reference section 12).

    Authorization prompts are plain messages, as live; every other event a headline."""
    source = quote_attribute(service)
    target = quote_attribute(to)
    query_id = (
        f" queryid={quote_attribute(request.query_id)}" if request.query_id is not None else ""
    )
    prompt = isinstance(archived.event, AuthorizationRequested)
    kind = "" if prompt else ' type="headline"'
    return (
        f"<message from={source} to={target}>"
        f'<result xmlns="{NS_MAM_TMP}"{query_id} id={quote_attribute(archived.id)}>'
        f'<forwarded xmlns="{NS_FORWARD}">'
        f'<delay xmlns="{NS_DELAY}" stamp="{format_datetime(archived.at)}"/>'
        f'<message xmlns="{NS_CLIENT}" from={source} to={target}{kind}>{body}</message>'
        "</forwarded></result></message>"
    )


def render_inbox_done(page: Page[ArchivedEvent]) -> Element:
    """The IQ result after the replayed events: the original sent it empty; the RSM set
    (first, last, count) tells a client where the page ended, to ask for the next one."""
    query = Element(qname(NS_MAM_TMP, "query"))
    query.append(render_rsm(page))
    return query


# --- subscription authorization (XEP-0060 §8.6; row 35) ---------------------------------


@dataclass(frozen=True, slots=True)
class AuthorizationAnswer:
    node: NodeId
    subscriber: Jid
    allow: bool


def parse_authorization_answer(message: Element) -> AuthorizationAnswer | None:
    """The submitted subscribe_authorization form of a message, None when it has none."""
    for x in message.findall(qname(NS_DATA_FORMS, "x")):
        form_type = _form_type_of(x)
        if form_type != NS_PUBSUB_SUBSCRIBE_AUTHORIZATION:
            continue
        form = find_form(message, NS_PUBSUB_SUBSCRIBE_AUTHORIZATION)
        if form is None:
            return None
        if form.type != "submit":
            raise MalformedStanza("an authorization answer must be a submitted form")
        node_raw = form.get("pubsub#node")
        subscriber_raw = form.get("pubsub#subscriber_jid")
        if not node_raw:
            raise NodeIdRequired()
        if not subscriber_raw:
            raise MalformedStanza("pubsub#subscriber_jid is required", condition="jid-required")
        return AuthorizationAnswer(
            NodeId.parse(node_raw),
            Jid.parse(subscriber_raw),
            parse_bool(form.get("pubsub#allow"), "pubsub#allow"),
        )
    return None


def _form_type_of(x: Element) -> str | None:
    for field_el in x.findall(qname(NS_DATA_FORMS, "field")):
        if field_el.get("var") == "FORM_TYPE":
            value = field_el.find(qname(NS_DATA_FORMS, "value"))
            return value.text if value is not None else None
    return None


def render_authorization_form(node: NodeId, subscriber: Jid) -> Element:
    """The prompt sent to owners and moderators (reference section 4)."""
    return render_form(
        DataForm(
            "form",
            NS_PUBSUB_SUBSCRIBE_AUTHORIZATION,
            (
                FormField("pubsub#node", (str(node),), "text-single", "Node"),
                FormField("pubsub#subscriber_jid", (str(subscriber),), "jid-single", "Subscriber"),
                FormField("pubsub#allow", ("false",), "boolean", "Allow this person to follow?"),
            ),
            title="Confirm channel subscription",
            instructions=f"{subscriber} asks to follow {node}.",
        )
    )
