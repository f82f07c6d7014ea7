"""This server's inbox: the events other domains' channel servers send it (issue 13).

    <iq type="set" from="channels.capulet.lit" to="channels.montague.lit">
      <inbox xmlns="http://buddycloud.org/v1#inbox">
        <event xmlns="http://jabber.org/protocol/pubsub#event">...</event>...
      </inbox>
    </iq>

Each `<event>` is what the sender's notifier renders for one event (items published or
retracted, a subscription with or without its affiliation, affiliations, configuration,
deletion), oldest first. `parse_inbox` reads them once into the engine's values
(`buddycloud.services.remote`); an event it cannot read becomes an `UnreadableEvent`, which
the engine refuses with a warning. `handle_inbox` hands them to the engine, which checks
the sender's trust per event and applies them to its cache, and answers as the sender
expects (docs/federation.md): a result once every event is applied or refused; an error of
type cancel when the whole IQ is refused for good; of type wait when it may be tried again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from xml.etree.ElementTree import Element

from buddycloud.domain.errors import ChannelError, UntrustedServer
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import NodeId, Role, SubscriptionState
from buddycloud.federation.wire import read_item
from buddycloud.services.remote import (
    InboxEvent,
    RemoteConfiguration,
    RemoteDeletion,
    RemotePublished,
    RemoteRetracted,
    RemoteRole,
    RemoteSubscription,
    UnreadableEvent,
)
from buddycloud.xmpp.errors import InboxRefused, InboxUnavailable, MalformedInbox
from buddycloud.xmpp.forms import find_form, parse_node_config
from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.namespaces import NS_INBOX, NS_PUBSUB_EVENT, NS_PUBSUB_NODE_CONFIG, qname

log = logging.getLogger(__name__)

INBOX_ROUTE = ("set", NS_INBOX, "inbox")
# More events than any batch of 64 KiB holds: an inbox IQ with more is refused whole.
MAX_EVENTS = 2000

_EVENT = qname(NS_PUBSUB_EVENT, "event")


def _children(element: Element) -> list[Element]:
    return [child for child in element if isinstance(child.tag, str)]


def parse_inbox(inbox: Element, *, now: datetime) -> list[InboxEvent]:
    """The events of an `<inbox>`, in order; one that cannot be read as an
    `UnreadableEvent` in its place.

    Raises:
        MalformedInbox: no `<event>`, something other than `<event>`s, or too many.
    """
    children = _children(inbox)
    if not children:
        raise MalformedInbox("an inbox carries at least one event")
    if len(children) > MAX_EVENTS:
        raise MalformedInbox(f"an inbox carries at most {MAX_EVENTS} events")
    if any(child.tag != _EVENT for child in children):
        raise MalformedInbox("an inbox carries pubsub#event elements only")
    events: list[InboxEvent] = []
    for child in children:
        events.extend(parse_event(child, now=now))
    return events


def parse_event(event: Element, *, now: datetime) -> list[InboxEvent]:
    """One `<event>`: what it tells, or why it cannot be read."""
    parts = _children(event)
    if not parts:
        return [UnreadableEvent("an empty event")]
    try:
        head = parts[0]
        name = head.tag.rpartition("}")[2] if head.tag.startswith(f"{{{NS_PUBSUB_EVENT}}}") else ""
        if name == "items":
            return _items(head, now=now)
        if name == "subscription":
            return [_subscription(head, parts[1:])]
        if name == "affiliations":
            node = _node(head)
            return [_role(node, affiliation) for affiliation in _children(head)]
        if name == "configuration":
            node = _node(head)
            form = find_form(head, NS_PUBSUB_NODE_CONFIG)
            if form is None:
                return [UnreadableEvent(f"a configuration of {node} without its form")]
            channel, _ = parse_node_config(form, node, now=now, lenient=True)
            return [RemoteConfiguration(node, channel.config)]
        if name == "delete":
            return [RemoteDeletion(_node(head))]
        return [UnreadableEvent(f"an event of an unknown kind <{head.tag[:100]}>")]
    except ChannelError as exc:
        return [UnreadableEvent(exc.message)]


def _node(element: Element) -> NodeId:
    return NodeId.parse(element.get("node", ""))


def _items(items: Element, *, now: datetime) -> list[InboxEvent]:
    node = _node(items)
    retractions = items.findall(qname(NS_PUBSUB_EVENT, "retract"))
    if retractions:
        # A retraction comes with the tombstone `<item>`: the retraction is what counts.
        return [RemoteRetracted(node, retract.get("id", "")) for retract in retractions]
    found: list[InboxEvent] = []
    for element in items.findall(qname(NS_PUBSUB_EVENT, "item")):
        try:
            found.append(RemotePublished(read_item(node, element, now=now)))
        except ChannelError as exc:
            found.append(UnreadableEvent(f"an item of {node}: {exc.message}"))
    return found or [UnreadableEvent(f"items of {node} without an item")]


def _subscription(subscription: Element, rest: list[Element]) -> InboxEvent:
    node = _node(subscription)
    jid = Jid.parse(subscription.get("jid", "")).bare
    state = SubscriptionState.parse(subscription.get("subscription", ""))
    invited_by_raw = subscription.get("invited-by")
    invited_by = Jid.parse(invited_by_raw).bare if invited_by_raw else None
    role: Role | None = None
    for affiliations in rest:
        if affiliations.tag != qname(NS_PUBSUB_EVENT, "affiliations"):
            continue
        for affiliation in _children(affiliations):
            if Jid.parse(affiliation.get("jid", "")).bare == jid:
                role = Role.parse(affiliation.get("affiliation", ""))
    return RemoteSubscription(node, jid, state, role, invited_by)


def _role(node: NodeId, affiliation: Element) -> InboxEvent:
    if affiliation.tag != qname(NS_PUBSUB_EVENT, "affiliation"):
        return UnreadableEvent(f"affiliations of {node} holding something else")
    jid = Jid.parse(affiliation.get("jid", "")).bare
    return RemoteRole(node, jid, Role.parse(affiliation.get("affiliation", "")))


async def handle_inbox(request: IqRequest) -> None:
    """Apply an inbox IQ (route `INBOX_ROUTE`); answered once every event is applied or
    refused."""
    sender = request.requester
    engine = request.engine
    try:
        events = parse_inbox(request.payload, now=engine.clock.now())
    except MalformedInbox as exc:
        log.warning("refused an inbox IQ from %s: %s", sender, exc.message)
        raise
    try:
        await engine.receive_inbox(sender, events)
    except UntrustedServer as exc:
        raise InboxRefused(exc.message) from None
    except ChannelError:
        raise
    except Exception:
        log.exception(
            "the inbox could not apply the events %s sent; it will send them again", sender
        )
        raise InboxUnavailable("the events could not be stored now; try again later") from None
