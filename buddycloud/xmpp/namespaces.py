"""XML namespaces the XMPP edge speaks (reference section 2.1)."""

from __future__ import annotations

# Atom and the tag helpers are shared with the HTTP edge (buddycloud.wire).
from buddycloud.wire.namespaces import NS_ACTIVITY as NS_ACTIVITY
from buddycloud.wire.namespaces import NS_ATOM as NS_ATOM
from buddycloud.wire.namespaces import NS_ATOM_BUDDYCLOUD as NS_ATOM_BUDDYCLOUD
from buddycloud.wire.namespaces import NS_REVIEW as NS_REVIEW
from buddycloud.wire.namespaces import NS_THREAD as NS_THREAD
from buddycloud.wire.namespaces import NS_TOMBSTONES as NS_TOMBSTONES
from buddycloud.wire.namespaces import qname as qname
from buddycloud.wire.namespaces import split_tag as split_tag

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
NS_COMMANDS = "http://jabber.org/protocol/commands"  # XEP-0050
NS_ADMIN = "http://jabber.org/protocol/admin"  # XEP-0133
NS_RSM = "http://jabber.org/protocol/rsm"
NS_MAM = "urn:xmpp:mam:2"
# The inbox sync of the original servers (reference row 32), an early MAM draft.
NS_MAM_TMP = "urn:xmpp:mam:tmp"
NS_FORWARD = "urn:xmpp:forward:0"
NS_DELAY = "urn:xmpp:delay"
NS_ADDRESS = "http://jabber.org/protocol/address"

NS_BUDDYCLOUD = "http://buddycloud.org/v1"
NS_BUDDYCLOUD_ERRORS = "http://buddycloud.org/v1/errors"
# Events one channel server sends another (docs/federation.md).
NS_INBOX = "http://buddycloud.org/v1#inbox"
