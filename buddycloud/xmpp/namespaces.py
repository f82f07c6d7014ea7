"""XML namespaces the XMPP edge speaks (reference section 2.1)."""

from __future__ import annotations

NS_COMPONENT = "jabber:component:accept"
NS_CLIENT = "jabber:client"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
NS_PUBSUB_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
NS_PUBSUB_NODE_CONFIG = "http://jabber.org/protocol/pubsub#node_config"
NS_PUBSUB_META_DATA = "http://jabber.org/protocol/pubsub#meta-data"
NS_PUBSUB_SUBSCRIBE_AUTHORIZATION = "http://jabber.org/protocol/pubsub#subscribe_authorization"
NS_PUBSUB_SUBSCRIBE_OPTIONS = "http://jabber.org/protocol/pubsub#subscribe_options"

NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DISCO_ITEMS = "http://jabber.org/protocol/disco#items"
NS_REGISTER = "jabber:iq:register"
NS_SEARCH = "jabber:iq:search"
NS_DATA_FORMS = "jabber:x:data"
NS_RSM = "http://jabber.org/protocol/rsm"
NS_MAM = "urn:xmpp:mam:2"
# The inbox sync of the original servers (reference row 32), an early MAM draft.
NS_MAM_TMP = "urn:xmpp:mam:tmp"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_ADDRESS = "http://jabber.org/protocol/address"

NS_BUDDYCLOUD = "http://buddycloud.org/v1"
NS_BUDDYCLOUD_ERRORS = "http://buddycloud.org/v1/errors"

NS_ATOM = "http://www.w3.org/2005/Atom"
NS_THREAD = "http://purl.org/syndication/thread/1.0"
NS_TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
NS_ACTIVITY = "http://activitystrea.ms/spec/1.0/"
NS_REVIEW = "http://activitystrea.ms/schema/1.0/review"
NS_ATOM_BUDDYCLOUD = "http://buddycloud.com/atom-elements-0"


def qname(namespace: str, name: str) -> str:
    """The ElementTree tag `{namespace}name`."""
    return f"{{{namespace}}}{name}"


def split_tag(tag: str) -> tuple[str, str]:
    """Split an ElementTree tag into (namespace, local name); no namespace gives ''."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag
