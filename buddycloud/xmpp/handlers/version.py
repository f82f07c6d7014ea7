"""XEP-0092 software version and XEP-0199 ping (reference row 1)."""

from __future__ import annotations

from xml.etree.ElementTree import Element, SubElement

import buddycloud
from buddycloud.xmpp.handlers.context import IqRequest
from buddycloud.xmpp.namespaces import qname

NS_VERSION = "jabber:iq:version"
NS_PING = "urn:xmpp:ping"


async def handle_version(request: IqRequest) -> Element:
    query = Element(qname(NS_VERSION, "query"))
    SubElement(query, qname(NS_VERSION, "name")).text = "buddycloud-server"
    SubElement(query, qname(NS_VERSION, "version")).text = buddycloud.__version__
    return query


async def handle_ping(request: IqRequest) -> None:
    return None
