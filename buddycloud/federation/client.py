"""This server acting for its users on other domains' channels (reference 5.2).

`RemoteServers` implements the engine's `RemoteChannels` port: each request goes to the
channel server that discovery names for the channel's domain, from this server's
component, with `<actor>` naming the local user. Discovery and the request together take
at most `timeout` seconds; past that the user gets `RemoteTimeout`, well within their own
IQ timeout. Remote errors come back as domain errors (`wire.read_error`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import RemoteError, RemoteServerNotFound, RemoteTimeout
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    ChannelConfig,
    Item,
    Membership,
    NodeId,
    Page,
    PageRequest,
    RawPayload,
    Role,
    SubscriptionState,
    Thread,
)
from buddycloud.federation.discovery import ServerDiscovery
from buddycloud.federation.wire import (
    affiliations_set_request,
    configure_request,
    item_request,
    memberships_request,
    meta_data_request,
    pubsub_request,
    read_configuration,
    read_error,
    read_items,
    read_membership,
    read_memberships,
    read_node_view,
    read_published_id,
    read_threads,
    render_payload,
    result_payload,
    subscriptions_set_request,
)
from buddycloud.services.config import ConfigUpdate, NodeView
from buddycloud.services.ports import Clock
from buddycloud.xmpp.multicast import QueryFailed, QueryTimeout
from buddycloud.xmpp.namespaces import NS_PUBSUB, NS_PUBSUB_OWNER, qname
from buddycloud.xmpp.rsm import render_page_request

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT = 10.0


class Request(Protocol):
    async def __call__(self, type_: str, to: str, payload: Element, *, timeout: float) -> Element:
        """Send an IQ; its answer (result or error). Raises QueryFailed, QueryTimeout."""


class RemoteServers:
    """The channels of other domains, through their channel servers.

    Args:
        discovery: finds each domain's channel server, and decides trust.
        request: sends an IQ from this server's component (`ChannelComponent.request`).
        clock: dates what the remote answer leaves undated.
        timeout: seconds for discovery and the request together.
    """

    def __init__(
        self,
        discovery: ServerDiscovery,
        request: Request,
        clock: Clock,
        *,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        self.discovery = discovery
        self._request = request
        self._clock = clock
        self.timeout = timeout

    async def _ask(
        self,
        type_: str,
        actor: Jid,
        node: NodeId,
        *operations: Element,
        item_id: str | None = None,
        namespace: str = NS_PUBSUB,
    ) -> Element | None:
        """Send the request, acting for `actor`; the payload of its result.

        Raises:
            RemoteServerNotFound, RemoteTimeout, RemoteError, or the domain error the
            remote error maps to.
        """
        request = pubsub_request(actor, *operations, namespace=namespace)
        [answer] = await self._exchange(node, [(type_, request)], item_id=item_id)
        return answer

    async def _exchange(
        self,
        node: NodeId,
        requests: Sequence[tuple[str, Element]],
        *,
        item_id: str | None = None,
    ) -> list[Element | None]:
        """Send the requests together to the channel server of `node`'s domain; the
        payloads of their results, in order. The first error answer, in order, wins."""
        domain = node.channel.domain
        try:
            async with asyncio.timeout(self.timeout):
                server = await self.discovery.channel_server(domain)
                if server is None:
                    raise RemoteServerNotFound(domain)
                # Each request ends (answered, failed or timed out) before any failure
                # counts: none is left running unawaited.
                outcomes = await asyncio.gather(
                    *(
                        self._request(type_, str(server), payload, timeout=self.timeout)
                        for type_, payload in requests
                    ),
                    return_exceptions=True,
                )
                answers = []
                for outcome in outcomes:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    answers.append(outcome)
        except (TimeoutError, QueryTimeout):
            log.info("the channel server of %s did not answer in %g s", domain, self.timeout)
            raise RemoteTimeout(domain, self.timeout) from None
        except QueryFailed as exc:
            log.info("could not reach the channel server of %s: %s", domain, exc)
            raise RemoteError(f"could not reach the channel server of {domain}") from None
        for answer in answers:
            if answer.get("type") == "error":
                raise read_error(answer, node, item_id)
            if answer.get("type") != "result":
                raise RemoteError(
                    "the channel's server answered with something other than a result"
                )
        return [result_payload(answer) for answer in answers]

    async def get_items(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Item]:
        items = Element(qname(NS_PUBSUB, "items"), {"node": str(node)})
        answer = await self._ask("get", actor, node, items, render_page_request(page))
        return read_items(node, answer, now=self._clock.now())

    async def get_item(self, actor: Jid, node: NodeId, item_id: str) -> Item:
        items = Element(qname(NS_PUBSUB, "items"), {"node": str(node)})
        SubElement(items, qname(NS_PUBSUB, "item"), {"id": item_id})
        answer = await self._ask("get", actor, node, items, item_id=item_id)
        page = read_items(node, answer, now=self._clock.now())
        if not page.items:
            raise RemoteError("the channel's server answered with no item")
        return page.items[0]

    async def publish(
        self, actor: Jid, node: NodeId, payload: EntryDraft | RawPayload, item_id: str | None
    ) -> str:
        publish = Element(qname(NS_PUBSUB, "publish"), {"node": str(node)})
        item = SubElement(publish, qname(NS_PUBSUB, "item"), {"id": item_id} if item_id else {})
        item.append(render_payload(payload))
        answer = await self._ask("set", actor, node, publish)
        return read_published_id(answer, item_id)

    async def retract(self, actor: Jid, node: NodeId, item_id: str, *, notify: bool) -> None:
        attributes = {"node": str(node)} if notify else {"node": str(node), "notify": "false"}
        retract = Element(qname(NS_PUBSUB, "retract"), attributes)
        SubElement(retract, qname(NS_PUBSUB, "item"), {"id": item_id})
        await self._ask("set", actor, node, retract, item_id=item_id)

    async def subscribe(self, actor: Jid, node: NodeId) -> Membership:
        subscribe = Element(qname(NS_PUBSUB, "subscribe"), {"node": str(node), "jid": str(actor)})
        answer = await self._ask("set", actor, node, subscribe)
        return read_membership(node, actor, answer, now=self._clock.now())

    async def unsubscribe(self, actor: Jid, node: NodeId) -> None:
        unsubscribe = Element(
            qname(NS_PUBSUB, "unsubscribe"), {"node": str(node), "jid": str(actor)}
        )
        await self._ask("set", actor, node, unsubscribe)

    async def get_configuration(self, actor: Jid, node: NodeId) -> ChannelConfig:
        answer = await self._ask(
            "get", actor, node, configure_request(node), namespace=NS_PUBSUB_OWNER
        )
        return read_configuration(node, answer, now=self._clock.now())

    async def get_node_view(self, actor: Jid, node: NodeId) -> NodeView:
        # The configuration form, asked for the actor, carries the channel's metadata and
        # the remote's decision; the meta-data form (disco#info, which carries no actor:
        # metadata is for everyone, table 5) the follower count.
        configure = pubsub_request(actor, configure_request(node), namespace=NS_PUBSUB_OWNER)
        answers = await self._exchange(node, [("get", configure), ("get", meta_data_request(node))])
        return read_node_view(node, *answers, now=self._clock.now())

    async def configure(self, actor: Jid, node: NodeId, update: ConfigUpdate) -> NodeView:
        await self._ask(
            "set", actor, node, configure_request(node, update), namespace=NS_PUBSUB_OWNER
        )
        return await self.get_node_view(actor, node)

    async def delete_node(self, actor: Jid, node: NodeId) -> None:
        delete = Element(qname(NS_PUBSUB_OWNER, "delete"), {"node": str(node)})
        await self._ask("set", actor, node, delete, namespace=NS_PUBSUB_OWNER)

    async def node_subscriptions(
        self, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        return await self._memberships("subscriptions", actor, node, page)

    async def node_affiliations(
        self, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        return await self._memberships("affiliations", actor, node, page)

    async def _memberships(
        self, name: str, actor: Jid, node: NodeId, page: PageRequest
    ) -> Page[Membership]:
        answer = await self._ask(
            "get",
            actor,
            node,
            memberships_request(name, node),
            render_page_request(page),
            namespace=NS_PUBSUB_OWNER,
        )
        return read_memberships(node, name, answer, now=self._clock.now())

    async def set_subscriptions(
        self, actor: Jid, node: NodeId, changes: Sequence[tuple[Jid, SubscriptionState]]
    ) -> list[Membership]:
        request = subscriptions_set_request(node, changes)
        await self._ask("set", actor, node, request, namespace=NS_PUBSUB_OWNER)
        now = self._clock.now()
        return [Membership(node.channel, jid, Role.NONE, state, now) for jid, state in changes]

    async def set_roles(
        self, actor: Jid, node: NodeId, changes: Sequence[tuple[Jid, Role]]
    ) -> list[Membership]:
        request = affiliations_set_request(node, changes)
        await self._ask("set", actor, node, request, namespace=NS_PUBSUB_OWNER)
        now = self._clock.now()
        return [
            Membership(node.channel, jid, role, SubscriptionState.NONE, now)
            for jid, role in changes
        ]

    async def get_replies(
        self, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        return await self._thread_items("replies", actor, node, item_id, page)

    async def get_thread(
        self, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        return await self._thread_items("thread", actor, node, item_id, page)

    async def _thread_items(
        self, name: str, actor: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        request = item_request(name, node, item_id)
        answer = await self._ask(
            "get", actor, node, request, render_page_request(page), item_id=item_id
        )
        return read_items(node, answer, now=self._clock.now())

    async def get_threads(self, actor: Jid, node: NodeId, page: PageRequest) -> Page[Thread]:
        threads = Element(qname(NS_PUBSUB, "threads"), {"node": str(node)})
        answer = await self._ask("get", actor, node, threads, render_page_request(page))
        return read_threads(node, answer, now=self._clock.now())

    async def is_channel_server(self, domain: str, sender: Jid) -> bool:
        return await self.discovery.is_channel_server(domain, sender)
