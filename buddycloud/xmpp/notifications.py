"""Domain events to `<message type=headline>` with pubsub#event payloads (reference section 4).

Each event is rendered and serialised ONCE; only the `to` attribute differs between the
copies, so fan-out costs one string format per online resource and no database query.
Recipients are the online full JIDs (from directed presence) of the event's audience,
which the engine computed.

Where the XMPP server has an XEP-0033 multicast service (`multicast.py`), each headline
leaves as one stanza with its recipients' JIDs as `bcc` addresses. Should the
service refuse one, that notification is sent again, one copy per resource, and so is
every later one.

Every stanza fits the XMPP server's stanza size limit (`fitting.py`): a published item
too large for it is notified without its payload, `<item id/>` only (XEP-0060 §6.5.6
allows it), and the client fetches it; multicast stanzas carry as many addresses as fit.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.events import (
    AuthorizationRequested,
    ConfigurationChanged,
    Event,
    ItemPublished,
    ItemRetracted,
    NodeDeleted,
    RoleChanged,
    SubscriptionChanged,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Entry, Membership, NodeId
from buddycloud.wire.atom import entry_text
from buddycloud.xmpp.fitting import DEFAULT_MAX_STANZA_BYTES, fits
from buddycloud.xmpp.forms import render_node_config
from buddycloud.xmpp.handlers.context import StanzaSink
from buddycloud.xmpp.multicast import MulticastService
from buddycloud.xmpp.namespaces import NS_ADDRESS, NS_PUBSUB_EVENT, qname
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.stanzas import render_authorization_form, render_item
from buddycloud.xmpp.xml import quote_attribute, serialize, utf8_size

log = logging.getLogger(__name__)

# Multicast stanzas kept for sending again should the service refuse them. A refusal comes
# back within a round trip; this covers well over a second of notifications at full load.
UNCONFIRMED_KEPT = 4096
# More than any notification's envelope (`<message from type id to>` for a JID of at most
# 3 x 1023 characters, quoted): a body this much smaller than the limit needs no measuring.
ENVELOPE_BOUND = 16 * 1024
# The digits an `id` attribute of this notifier takes at most.
_ID_DIGITS = 20


def _event(child: Element) -> Element:
    event = Element(qname(NS_PUBSUB_EVENT, "event"))
    event.append(child)
    return event


def _affiliations(node: NodeId, membership: Membership) -> Element:
    """`<affiliations node><affiliation jid affiliation/></affiliations>` (XEP-0060 8.9.4)."""
    affiliations = Element(qname(NS_PUBSUB_EVENT, "affiliations"), {"node": str(node)})
    SubElement(
        affiliations,
        qname(NS_PUBSUB_EVENT, "affiliation"),
        {"jid": str(membership.jid), "affiliation": membership.role.value},
    )
    return affiliations


class Notifier:
    """The engine listener of the XMPP edge. Construct once; pass to `engine.add_listener`."""

    def __init__(
        self,
        service_jid: Jid,
        online: OnlineUsers,
        sink: StanzaSink,
        *,
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
    ) -> None:
        self.service_jid = service_jid
        self.online = online
        self.sink = sink
        self.max_stanza_bytes = max_stanza_bytes
        self._service = str(service_jid)
        self._from = quote_attribute(self._service)
        self._ids = itertools.count(1)
        # The XEP-0033 service to send through; None sends one copy per recipient.
        self.multicast: MulticastService | None = None
        # Members whose home server notifies them (federation's outbox sends it the
        # event): not notified from here. None: everyone is notified from here.
        self.home_delivers: Callable[[Jid], bool] | None = None
        self._unconfirmed: dict[str, tuple[str, str, list[str]]] = {}
        self._last_event: Event | None = None
        self._last_bodies: list[str] = []

    async def __call__(self, event: Event) -> None:
        # An authorization prompt must reach an offline owner or moderator: the XMPP server
        # stores a message to a bare JID until they come online. Everything else goes to
        # online resources only, and is not even rendered when none is online.
        prompt = isinstance(event, AuthorizationRequested)
        # An authorization prompt is asked directly, whatever the moderator's domain.
        elsewhere = None if prompt else self.home_delivers
        targets = self._targets(event.audience, offline_to_bare=prompt, elsewhere=elsewhere)
        if not targets:
            return
        message_type = None if prompt else "headline"
        for body in self.render(event):
            fitted = self._fitted(event, body, targets, message_type)
            if fitted is not None:
                self._send(fitted, targets, message_type=message_type)

    def _fitted(
        self, event: Event, body: str, targets: list[str], message_type: str | None
    ) -> str | None:
        """`body`, or its stand-in when the stanza carrying it would exceed the XMPP
        server's limit: a published item without its payload. None: nothing fits."""
        limit = self.max_stanza_bytes
        if fits(body, limit - ENVELOPE_BOUND):
            return body
        room = limit - self._envelope_size(targets, message_type)
        if fits(body, room):
            return body
        if isinstance(event, ItemPublished):
            stub = self.item_stub(event)
            if fits(stub, room):
                return stub
        log.warning(
            "a %s notification of %d bytes does not fit in a stanza under [xmpp] "
            "max_stanza_bytes (%d); not sent",
            type(event).__name__,
            utf8_size(body),
            limit,
        )
        return None

    def item_stub(self, event: ItemPublished) -> str:
        """The notification of a published item without its payload: its id only."""
        return (
            f'<event xmlns="{NS_PUBSUB_EVENT}"><items node={quote_attribute(str(event.node.id))}>'
            f"<item id={quote_attribute(event.item.id)}/></items></event>"
        )

    def _envelope_size(self, targets: list[str], message_type: str | None) -> int:
        """The largest envelope a notification to `targets` gets (with one address, for
        the multicast service: `_multicast` puts in a stanza as many as fit)."""
        widest = max(utf8_size(target) for target in targets)
        service = self.multicast
        if service is not None and message_type == "headline":
            head, open_addresses = self._multicast_head(service)
            return (
                utf8_size(head + open_addresses)
                + _ID_DIGITS
                + utf8_size(_address(""))
                + widest
                + len("</addresses></message>")
            )
        type_attribute = f" type={quote_attribute(message_type)}" if message_type else ""
        head = f'<message from={self._from}{type_attribute} id="n" to=>'
        return utf8_size(head) + _ID_DIGITS + widest + len("</message>")

    def render(self, event: Event) -> list[str]:
        """The serialised children of each message this event produces (not to be
        changed: the last event's are kept, so that its notifications and federation's
        outbox render it once between them)."""
        if event is self._last_event:
            return self._last_bodies
        bodies = self._render(event)
        self._last_event, self._last_bodies = event, bodies
        return bodies

    def _render(self, event: Event) -> list[str]:
        service = self._service
        match event:
            case ItemPublished(node=node, item=item):
                if isinstance(item.payload, Entry) and not item.deleted:
                    # The common case, written as text: one entry per publish, rendered once.
                    entry = entry_text(item.payload, service=service, node=item.node)
                    return [
                        f'<event xmlns="{NS_PUBSUB_EVENT}"><items '
                        f"node={quote_attribute(str(node.id))}><item "
                        f"id={quote_attribute(item.id)}>{entry}</item></items></event>"
                    ]
                items = Element(qname(NS_PUBSUB_EVENT, "items"), {"node": str(node.id)})
                items.append(render_item(item, service=service, namespace=NS_PUBSUB_EVENT))
                return [serialize(_event(items))]
            case ItemRetracted(node=node, tombstone=tombstone, notify=notify):
                if not notify:
                    return []
                items = Element(qname(NS_PUBSUB_EVENT, "items"), {"node": str(node.id)})
                SubElement(items, qname(NS_PUBSUB_EVENT, "retract"), {"id": tombstone.id})
                items.append(render_item(tombstone, service=service, namespace=NS_PUBSUB_EVENT))
                return [serialize(_event(items))]
            case SubscriptionChanged(node=node_id, membership=membership, with_role=with_role):
                # One <event> with both children when the role goes with it, as the
                # original server sent them (reference section 4).
                attributes = {
                    "node": str(node_id),
                    "jid": str(membership.jid),
                    "subscription": membership.subscription.value,
                }
                if membership.invited_by is not None:
                    attributes["invited-by"] = str(membership.invited_by)
                subscription = Element(qname(NS_PUBSUB_EVENT, "subscription"), attributes)
                message = _event(subscription)
                if with_role:
                    message.append(_affiliations(node_id, membership))
                return [serialize(message)]
            case RoleChanged(node=node_id, membership=membership):
                return [serialize(_event(_affiliations(node_id, membership)))]
            case ConfigurationChanged(channel=channel, nodes=nodes):
                bodies = []
                for node_id in nodes:
                    configuration = Element(
                        qname(NS_PUBSUB_EVENT, "configuration"), {"node": str(node_id)}
                    )
                    configuration.append(render_node_config(channel, None))
                    bodies.append(serialize(_event(configuration)))
                return bodies
            case NodeDeleted(node=node_id):
                return [self._delete(node_id)]
            case AuthorizationRequested(node=node_id, subscriber=subscriber):
                return [serialize(render_authorization_form(node_id, subscriber))]
        return []

    def _delete(self, node_id: NodeId) -> str:
        return serialize(_event(Element(qname(NS_PUBSUB_EVENT, "delete"), {"node": str(node_id)})))

    def _targets(
        self,
        audience: Iterable[Jid],
        *,
        offline_to_bare: bool,
        elsewhere: Callable[[Jid], bool] | None = None,
    ) -> list[str]:
        """The quoted `to` addresses of every online resource of the audience, but those
        of members `elsewhere` says their home server notifies."""
        targets: list[str] = []
        addresses = self.online.addresses
        for member in audience:
            online = addresses(member)
            if online:
                if elsewhere is not None and elsewhere(member):
                    continue
                targets.extend(online)
            elif offline_to_bare:
                targets.append(quote_attribute(str(member.bare)))
        return targets

    def _send(self, body: str, targets: list[str], *, message_type: str | None) -> None:
        # Only headlines go through the multicast service: the XMPP server never stores
        # them, while an authorization prompt to an offline moderator is stored as sent.
        # Every headline takes it, even for one recipient: with one path per recipient,
        # they arrive in the order they were sent (ejabberd's service is a process apart).
        service = self.multicast
        if service is not None and message_type == "headline":
            self._multicast(service, body, targets)
            return
        type_attribute = f" type={quote_attribute(message_type)}" if message_type else ""
        head = f"<message from={self._from}{type_attribute} id="
        ids = self._ids
        self.sink.send_many(
            [f'{head}"n{next(ids)}" to={target}>{body}</message>' for target in targets]
        )

    def _multicast_head(self, service: MulticastService) -> tuple[str, str]:
        head = f'<message from={self._from} type="headline" to={service.quoted_jid} id="m'
        return head, f'"><addresses xmlns="{NS_ADDRESS}">'

    def _multicast(self, service: MulticastService, body: str, targets: list[str]) -> None:
        head, open_addresses = self._multicast_head(service)
        ids = self._ids
        unconfirmed = self._unconfirmed
        texts = []
        # Each stanza carries at most the service's limit of addresses, and as many as fit
        # beside the body under the stanza size limit (`_fitted` made room for one).
        room = self.max_stanza_bytes - (
            utf8_size(head)
            + utf8_size(open_addresses)
            + utf8_size(body)
            + _ID_DIGITS
            + len("</addresses></message>")
        )
        chunks: list[list[str]] = []
        chunk: list[str] = []
        used = 0
        for target in targets:
            size = len(target) + 26 if target.isascii() else utf8_size(_address(target))
            if chunk and (len(chunk) >= service.limit or used + size > room):
                chunks.append(chunk)
                chunk, used = [], 0
            chunk.append(target)
            used += size
        if chunk:
            chunks.append(chunk)
        for chunk in chunks:
            number = next(ids)
            addresses = "".join([_address(target) for target in chunk])
            texts.append(f"{head}{number}{open_addresses}{addresses}</addresses>{body}</message>")
            unconfirmed[f"m{number}"] = (service.jid, body, chunk)
        while len(unconfirmed) > UNCONFIRMED_KEPT:
            del unconfirmed[next(iter(unconfirmed))]
        self.sink.send_many(texts)

    def refused(self, message: Element) -> bool:
        """Handle an error answer to a multicast stanza: send its copies one by one, and
        every later notification too. False if `message` answers no multicast stanza."""
        stanza_id = message.get("id", "")
        sent = self._unconfirmed.get(stanza_id)
        if sent is None or message.get("from") != sent[0]:
            return False
        del self._unconfirmed[stanza_id]
        service_jid, body, targets = sent
        if self.multicast is not None and self.multicast.jid == service_jid:
            log.warning(
                "the multicast service %s refused a notification; sending one copy per "
                "recipient from now on",
                service_jid,
            )
            self.multicast = None
        self._send(body, targets, message_type="headline")
        return True


def _address(target: str) -> str:
    """A `bcc` address for the quoted JID `target` (26 bytes besides the JID)."""
    return f'<address type="bcc" jid={target}/>'
