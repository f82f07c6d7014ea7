"""Route each stanza addressed to the component: the table, and the one error funnel.

`IQ_ROUTES` maps (IQ type, namespace, element) to a handler (STYLE principle 6). For
`<pubsub/>` the element is the operation inside it (`publish`, `recent-items`…), skipping
auxiliary children (RSM `<set/>`, `<actor/>`, `<options/>`, `<configure/>` after create).

Errors (STYLE principle 4, RFC 6120 §8.4):
- an IQ whose namespace the component does not speak -> service-unavailable;
- a known namespace but unknown element -> feature-not-implemented;
- a known element with the wrong IQ type -> bad-request;
- anything a handler raises -> `errors.error_element` (unknown exceptions: logged,
  internal-server-error, no detail);
- IQ results and errors addressed to the component are dropped, never relayed.

A reply is sent only after the handler returned, i.e. after the engine's write committed.
Handlers get the bytes their result's child may take (`IqRequest.room`: `[xmpp]
max_stanza_bytes` less the envelope) and cut pages to fit (fitting.py); an answer that
would still be too large becomes a `ReplyTooLarge` error, never a stanza the XMPP server
would close the stream for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from xml.etree.ElementTree import Element

from buddycloud.domain.errors import InvalidJid, Unsupported
from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine
from buddycloud.xmpp.errors import (
    MalformedStanza,
    ServiceUnavailable,
    WrongIqType,
    XmlLimitExceeded,
    error_element,
)
from buddycloud.xmpp.fitting import DEFAULT_MAX_STANZA_BYTES, fits, too_large
from buddycloud.xmpp.handlers.buddycloud import (
    handle_recent_items,
    handle_replies,
    handle_subscriptions_with_configuration,
    handle_thread,
    handle_threads,
    handle_user_items,
)
from buddycloud.xmpp.handlers.context import Edge, IqHandler, IqRequest, StanzaSink
from buddycloud.xmpp.handlers.disco import handle_disco_info, handle_disco_items
from buddycloud.xmpp.handlers.mam import handle_inbox_sync, handle_mam_form, handle_mam_query
from buddycloud.xmpp.handlers.pubsub import (
    handle_affiliations,
    handle_create,
    handle_items,
    handle_publish,
    handle_retract,
    handle_subscribe,
    handle_subscriptions,
    handle_unsubscribe,
)
from buddycloud.xmpp.handlers.pubsub_owner import (
    handle_affiliations_set,
    handle_configure_get,
    handle_configure_set,
    handle_delete,
    handle_subscriptions_set,
)
from buddycloud.xmpp.handlers.register import handle_register_get, handle_register_set
from buddycloud.xmpp.handlers.search import handle_search_get, handle_search_set
from buddycloud.xmpp.handlers.version import NS_PING, NS_VERSION, handle_ping, handle_version
from buddycloud.xmpp.namespaces import (
    NS_BUDDYCLOUD,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_MAM,
    NS_MAM_TMP,
    NS_PUBSUB,
    NS_PUBSUB_OWNER,
    NS_REGISTER,
    NS_RSM,
    NS_SEARCH,
    qname,
    split_tag,
)
from buddycloud.xmpp.notifications import Notifier
from buddycloud.xmpp.presence import OnlineUsers
from buddycloud.xmpp.stanzas import (
    DEFAULT_MAX_PAYLOAD_BYTES,
    parse_actor,
    parse_authorization_answer,
)
from buddycloud.xmpp.xml import quote_attribute, serialize, utf8_size

log = logging.getLogger(__name__)

RouteKey = tuple[str, str, str]

IQ_ROUTES: Mapping[RouteKey, IqHandler] = {
    ("get", NS_DISCO_INFO, "query"): handle_disco_info,
    ("get", NS_DISCO_ITEMS, "query"): handle_disco_items,
    ("get", NS_REGISTER, "query"): handle_register_get,
    ("set", NS_REGISTER, "query"): handle_register_set,
    ("get", NS_VERSION, "query"): handle_version,
    ("get", NS_PING, "ping"): handle_ping,
    ("set", NS_PUBSUB, "create"): handle_create,
    ("set", NS_PUBSUB, "publish"): handle_publish,
    ("set", NS_PUBSUB, "retract"): handle_retract,
    ("get", NS_PUBSUB, "items"): handle_items,
    ("set", NS_PUBSUB, "subscribe"): handle_subscribe,
    ("set", NS_PUBSUB, "unsubscribe"): handle_unsubscribe,
    ("get", NS_PUBSUB, "subscriptions"): handle_subscriptions,
    ("get", NS_PUBSUB, "affiliations"): handle_affiliations,
    ("get", NS_PUBSUB, "threads"): handle_threads,
    ("get", NS_PUBSUB_OWNER, "configure"): handle_configure_get,
    ("set", NS_PUBSUB_OWNER, "configure"): handle_configure_set,
    ("set", NS_PUBSUB_OWNER, "delete"): handle_delete,
    ("get", NS_PUBSUB_OWNER, "subscriptions"): handle_subscriptions,
    ("set", NS_PUBSUB_OWNER, "subscriptions"): handle_subscriptions_set,
    ("get", NS_PUBSUB_OWNER, "affiliations"): handle_affiliations,
    ("set", NS_PUBSUB_OWNER, "affiliations"): handle_affiliations_set,
    ("get", NS_BUDDYCLOUD, "recent-items"): handle_recent_items,
    ("get", NS_BUDDYCLOUD, "user-items"): handle_user_items,
    ("get", NS_BUDDYCLOUD, "replies"): handle_replies,
    ("get", NS_BUDDYCLOUD, "thread"): handle_thread,
    ("get", NS_BUDDYCLOUD, "subscriptions-with-configuration"): (
        handle_subscriptions_with_configuration
    ),
    ("get", NS_SEARCH, "query"): handle_search_get,
    ("set", NS_SEARCH, "query"): handle_search_set,
    ("get", NS_MAM, "query"): handle_mam_form,
    ("set", NS_MAM, "query"): handle_mam_query,
    # Reference row 32 names a get; a set is taken too, as for urn:xmpp:mam:2.
    ("get", NS_MAM_TMP, "query"): handle_inbox_sync,
    ("set", NS_MAM_TMP, "query"): handle_inbox_sync,
}

KNOWN_NAMESPACES = frozenset({namespace for _, namespace, _ in IQ_ROUTES}) | {NS_PUBSUB}

# Children of <pubsub/> that qualify the operation rather than name it.
_AUXILIARY = frozenset(
    {
        qname(NS_RSM, "set"),
        qname(NS_BUDDYCLOUD, "actor"),
        qname(NS_PUBSUB, "options"),
        qname(NS_PUBSUB, "configure"),
        qname(NS_PUBSUB, "publish-options"),
    }
)


# The XEP-0060 feature names of operations this server does not implement, named by the
# `unsupported` error (§6.3 subscription options, §8.3 default configuration, §8.5 purge).
_FEATURES = {
    "options": "subscription-options",
    "default": "retrieve-default",
    "purge": "purge-nodes",
}


def route_key(iq_type: str, payload: Element) -> RouteKey:
    """The IQ_ROUTES key of an IQ's payload.

    Raises:
        MalformedStanza: a `<pubsub/>` element names no operation.
    """
    namespace, name = split_tag(payload.tag)
    if name == "pubsub" and namespace in (NS_PUBSUB, NS_PUBSUB_OWNER):
        children = [child for child in payload if isinstance(child.tag, str)]
        operation = next((c for c in children if c.tag not in _AUXILIARY), None)
        if operation is None:
            operation = children[0] if children else None
        if operation is None:
            raise MalformedStanza("the pubsub element names no operation")
        namespace, name = split_tag(operation.tag)
    return (iq_type, namespace, name)


def find_handler(key: RouteKey, routes: Mapping[RouteKey, IqHandler] = IQ_ROUTES) -> IqHandler:
    """The handler for `key` in `routes`, or the RFC 6120 error for a request nobody
    handles.

    Raises:
        WrongIqType, Unsupported, ServiceUnavailable
    """
    handler = routes.get(key)
    if handler is not None:
        return handler
    iq_type, namespace, name = key
    other = "set" if iq_type == "get" else "get"
    if (other, namespace, name) in routes:
        raise WrongIqType(f"<{name}/> takes an IQ of type {other}")
    if namespace in KNOWN_NAMESPACES:
        raise Unsupported(_FEATURES.get(name, name), f"<{name}/> is not implemented")
    raise ServiceUnavailable("the channel service does not speak this namespace")


def _stanza_name(element: Element) -> str:
    return split_tag(element.tag)[1]


class Router:
    """Turn stanzas addressed to the component into engine calls and replies."""

    def __init__(
        self,
        engine: Engine,
        service_jid: Jid,
        sink: StanzaSink,
        online: OnlineUsers,
        *,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES,
    ) -> None:
        # A notifier that sends nothing: its renderer draws the events the inbox sync
        # replays, so that they look exactly like the live notifications.
        renderer = Notifier(service_jid, online, sink, max_stanza_bytes=max_stanza_bytes).render
        self.edge = Edge(
            engine, service_jid, sink, max_payload_bytes, online, max_stanza_bytes, renderer
        )
        self._service = str(service_jid)
        self._routes: dict[RouteKey, IqHandler] = dict(IQ_ROUTES)
        # Channel creations started by available presence, by bare JID, until they end.
        # The XMPP server delivers a user's stanzas in order, but each is handled in its own
        # task: a request sent right after presence waits here for the channel it may need.
        self._registering: dict[Jid, asyncio.Task[None]] = {}

    @property
    def engine(self) -> Engine:
        return self.edge.engine

    def add_route(self, key: RouteKey, handler: IqHandler) -> None:
        """Route IQs of `key` to `handler` too: what another edge serves through the
        component (the federation inbox), wired by the composition root."""
        self._routes[key] = handler

    @property
    def online(self) -> OnlineUsers:
        return self.edge.online

    async def handle(self, stanza: Element, *, refusal: str | None = None) -> None:
        """Handle one stanza; never raises (every failure becomes a reply or a log line).

        `refusal` says which parse-time limit the stanza broke (`BoundedPullParser`): an
        IQ get/set or a message is then answered bad-request with it, anything else is
        dropped; the stanza's content is not looked at.
        """
        name = _stanza_name(stanza)
        try:
            if refusal is not None:
                self._refuse(stanza, XmlLimitExceeded(refusal))
            elif name == "iq":
                await self._handle_iq(stanza)
            elif name == "presence":
                await self._handle_presence(stanza)
            elif name == "message":
                await self._handle_message(stanza)
        except Exception:
            log.exception("failed to handle a %s stanza", name)

    def _refuse(self, stanza: Element, error: XmlLimitExceeded) -> None:
        name = _stanza_name(stanza)
        type_ = stanza.get("type")
        answerable = (
            name == "iq" and type_ in ("get", "set") and stanza.get("id") is not None
        ) or (name == "message" and type_ != "error")
        if not answerable or self._sender(stanza) is None:
            log.info("dropped a %s over the parse-time limits: %s", name, error.message)
            return
        self.edge.sink.send_text(self._reply(stanza, "error", error_element(error)))

    # --- IQ -------------------------------------------------------------------------------

    async def _handle_iq(self, iq: Element) -> None:
        iq_type = iq.get("type", "")
        if iq_type in ("result", "error"):
            # Answers to requests the component did not send (or federation answers that
            # its own client correlates); never relayed anywhere.
            return
        requester = self._sender(iq)
        if requester is None or iq.get("id") is None:
            return
        await self._after_registration(requester)
        try:
            if iq_type not in ("get", "set"):
                raise MalformedStanza(f"unknown IQ type {iq_type[:20]!r}")
            children = [child for child in iq if isinstance(child.tag, str)]
            if len(children) != 1:
                # RFC 6120 §8.2.3: a get or set carries exactly one payload.
                raise MalformedStanza("an IQ get or set must hold exactly one element")
            handler = find_handler(route_key(iq_type, children[0]), self._routes)
            actor = parse_actor(children[0])
            if actor is not None:
                # Another domain's channel server, asking for one of its users; only the
                # server discovery names for that user's domain is believed (10.1).
                requester = await self.engine.acting_for(requester, actor)
            room = self.edge.max_stanza_bytes - self._envelope_size(iq, "result")
            payload = await handler(IqRequest(self.edge, requester, children[0], room))
        except Exception as exc:
            self._answer(iq, "error", error_element(exc))
            return
        self._answer(iq, "result", payload)

    def _answer(self, stanza: Element, type_: str, child: Element | None) -> None:
        """Send the answer to `stanza`. One larger than the XMPP server accepts would close
        the component's stream: it becomes an error instead (or, if even that is too
        large, is logged and not sent)."""
        limit = self.edge.max_stanza_bytes
        text = self._reply(stanza, type_, child)
        if not fits(text, limit):
            size = utf8_size(text)
            log.warning(
                "an answer to %s was %d bytes, more than [xmpp] max_stanza_bytes (%d)",
                _stanza_name(stanza),
                size,
                limit,
            )
            envelope = self._envelope_size(stanza, type_)
            error = too_large("the answer", size - envelope, limit - envelope)
            text = self._reply(stanza, "error", error_element(error))
            if not fits(text, limit):
                return
        self.edge.sink.send_text(text)

    def _head(self, stanza: Element, type_: str) -> str:
        """The answer's start tag without its closing `>`. The envelope is written as
        text: every publish is answered here, and only the child needs the serialiser."""
        head = (
            f"<{_stanza_name(stanza)} type={quote_attribute(type_)} "
            f"from={quote_attribute(stanza.get('to') or self._service)} "
            f"to={quote_attribute(stanza.get('from', ''))}"
        )
        stanza_id = stanza.get("id")
        if stanza_id is not None:
            head += f" id={quote_attribute(stanza_id)}"
        return head

    def _envelope_size(self, stanza: Element, type_: str) -> int:
        """The bytes of the answer to `stanza` around its child."""
        return utf8_size(self._head(stanza, type_)) + len(_stanza_name(stanza)) + 4

    def _reply(self, stanza: Element, type_: str, child: Element | None) -> str:
        """The answer to `stanza`, serialised."""
        head = self._head(stanza, type_)
        if child is None:
            return f"{head}/>"
        return f"{head}>{serialize(child)}</{_stanza_name(stanza)}>"

    def _sender(self, stanza: Element) -> Jid | None:
        raw = stanza.get("from")
        if not raw:
            log.warning("dropped a %s without a sender", _stanza_name(stanza))
            return None
        try:
            return Jid.parse(raw)
        except InvalidJid:
            log.warning("dropped a %s from an invalid JID", _stanza_name(stanza))
            return None

    # --- presence -------------------------------------------------------------------------

    async def _handle_presence(self, presence: Element) -> None:
        """Directed presence decides who receives notifications (reference section 4)."""
        sender = self._sender(presence)
        if sender is None:
            return
        type_ = presence.get("type", "available")
        if type_ == "available":
            if not self.online.is_online(sender):
                log.info("%s is online (directed presence)", sender)
            self.online.add(sender)
            await self._register_once(sender)
        elif type_ in ("unavailable", "error"):
            await self._gone(sender)
        elif type_ == "probe":
            self._send_presence(sender, None)
        elif type_ == "subscribe":
            # Anyone may see that the service is available; then tell them it is.
            self._send_presence(sender, "subscribed")
            self._send_presence(sender, None)
        elif type_ == "unsubscribe":
            self._send_presence(sender, "unsubscribed")

    async def _gone(self, sender: Jid) -> None:
        """A resource (every resource, for a bare JID) is offline."""
        if self.online.remove(sender):
            log.info("%s is offline", sender)
        if not self.online.is_online(sender.bare):
            # Temporary subscriptions last while the user is online (reference row 29).
            await self.engine.end_temporary_subscriptions(sender.bare)

    async def _register_once(self, sender: Jid) -> None:
        """A local user coming online gets their personal channel (channel-api-2010 seed)."""
        bare = sender.bare
        if bare in self.edge.channel_checked or not self.engine.is_local_user(bare):
            return
        task = self._registering.get(bare)
        if task is None:
            task = asyncio.create_task(self._register(bare))
            self._registering[bare] = task
            task.add_done_callback(lambda _: self._registering.pop(bare, None))
        await asyncio.shield(task)

    async def _register(self, bare: Jid) -> None:
        try:
            await self.engine.register(bare)
        except Exception:
            log.exception("could not register the channel of %s", bare)
            return
        self.edge.channel_checked.add(bare)

    async def _after_registration(self, sender: Jid) -> None:
        """Wait for the channel creation the sender's presence started, if it runs."""
        if self._registering:
            task = self._registering.get(sender.bare)
            if task is not None:
                await asyncio.shield(task)

    def _send_presence(self, to: Jid, type_: str | None) -> None:
        attributes = {"from": str(self.edge.service_jid), "to": str(to)}
        if type_ is not None:
            attributes["type"] = type_
        self.edge.sink.send(Element("presence", attributes))

    # --- messages -------------------------------------------------------------------------

    async def _handle_message(self, message: Element) -> None:
        """Subscription authorization answers (XEP-0060 §8.6; reference row 35)."""
        sender = self._sender(message)
        if sender is None:
            return
        if message.get("type") == "error":
            # A bounced notification: that resource is gone (it may have left while the
            # component was disconnected, so no unavailable presence will ever come).
            await self._gone(sender)
            return
        try:
            answer = parse_authorization_answer(message)
            if answer is None:
                return
            await self.engine.authorize(sender, answer.node, answer.subscriber, allow=answer.allow)
        except Exception as exc:
            self._answer(message, "error", error_element(exc))
