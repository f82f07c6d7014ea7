"""Domain errors to stanza errors: ONE table, looked up along the exception's MRO.

`STANZA_ERRORS` is mirrored in docs/errors.md (tests/xmpp/test_errors.py keeps the two
equal). The edge's own parsing errors are defined here too; they subclass the domain's
`BadRequest`/`ChannelError` so that one lookup serves both.

Rules (STYLE principle 4):
- a mapped error becomes its condition, type and application condition, with its message
  as <text/> (messages are written by this project and never quote more than 100-200
  characters of input);
- anything else becomes internal-server-error with no detail, logged with its traceback;
- an error received from a remote entity is never relayed: the edge never forwards
  <error/> elements, it only ever renders rows of this table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.errors import (
    AccountDirectoryUnavailable,
    AccountExists,
    AnonymousReadOnly,
    BadRequest,
    Banned,
    ChannelError,
    ChannelNotFound,
    ClosedNode,
    CursorNotFound,
    Forbidden,
    InvalidConfiguration,
    InvalidDate,
    InvalidJid,
    InvalidNodeId,
    InvalidPaging,
    InvalidPayload,
    ItemNotFound,
    ItemRequired,
    JidMismatch,
    NodeExists,
    NodeNotFound,
    NotAuthenticated,
    NotFound,
    NotLocalUser,
    NotSubscribed,
    OwnAffiliation,
    OwnerRequired,
    OwnSubscription,
    PayloadTooLarge,
    RatingError,
    RecentItemsError,
    RemoteError,
    RemoteServerNotFound,
    RemoteTimeout,
    SignInUnavailable,
    SubscriptionPending,
    ThreadError,
    Unsupported,
    UntrustedServer,
)
from buddycloud.xmpp.namespaces import (
    NS_BUDDYCLOUD_ERRORS,
    NS_PUBSUB_ERRORS,
    NS_STANZAS,
    qname,
)

log = logging.getLogger(__name__)


# --- errors raised by the edge itself ---------------------------------------------------


class MalformedStanza(BadRequest):
    """A stanza is structurally wrong: missing or invalid attributes or children.

    `condition` is an optional application condition (XEP-0060 pubsub#errors names such as
    `nodeid-required`, `invalid-jid`, `invalid-options`).
    """

    def __init__(self, message: str, *, condition: str | None = None) -> None:
        super().__init__(message)
        self.condition = condition


class NodeIdRequired(MalformedStanza):
    """A node operation names no node, or an empty one (XEP-0060 §7.2.3.3, §8.2.3.3)."""

    def __init__(self, message: str = "the request must name a node") -> None:
        super().__init__(message, condition="nodeid-required")


class InstantNodesUnsupported(NodeIdRequired):
    """A create names no node: instant nodes are not supported, Buddycloud node ids are
    chosen by the channel's owner (XEP-0060 §8.1.2)."""

    def __init__(self) -> None:
        super().__init__("instant nodes are not supported: name the node to create")


class XmlLimitExceeded(BadRequest):
    """A stanza broke a parse-time limit: elements nested too deep, too many attributes, an
    attribute value or a name too long (`buddycloud/xmpp/xml.py`, docs/xmpp.md)."""


class WrongIqType(BadRequest):
    """The IQ type does not fit the request (e.g. a set where only get is defined)."""


class ServiceUnavailable(ChannelError):
    """The component does not speak this namespace at all (RFC 6120 §8.4)."""


class PresenceRequired(ChannelError):
    """A temporary subscription lasts while its user is online, which the component knows
    from directed presence: a user who sent none cannot take one (reference row 29)."""


class ReplyTooLarge(ChannelError):
    """The answer would be larger than the XMPP server accepts in one stanza from the
    component (`[xmpp] max_stanza_bytes`): a result too large to fit even alone, with no
    smaller stand-in (docs/xmpp.md, "Stanza size"). `condition` is `payload-too-big` when
    one item's payload is what does not fit."""

    def __init__(self, message: str, *, condition: str | None = None) -> None:
        super().__init__(message)
        self.condition = condition


class InboxRefused(ChannelError):
    """A whole inbox IQ refused for good (docs/federation.md, "The inbox"): its sender is
    the channel server of none of the domains its events are about. The sender drops the
    batch (type cancel)."""


class MalformedInbox(ChannelError):
    """An `<inbox>` element that is not one: no `<event>`, or something else in it. The
    sender drops the batch (type cancel)."""


class InboxUnavailable(ChannelError):
    """The inbox cannot apply the events now (the storage failed): the sender keeps the
    batch and tries again later (type wait)."""


# --- the table --------------------------------------------------------------------------

# The application conditions XEP-0060 §14 defines in pubsub#errors; any other dynamic
# `.condition` belongs to the Buddycloud errors namespace (reference section 3).
PUBSUB_ERROR_CONDITIONS = frozenset(
    {
        "closed-node",
        "configuration-required",
        "invalid-jid",
        "invalid-options",
        "invalid-payload",
        "invalid-subid",
        "item-forbidden",
        "item-required",
        "jid-required",
        "max-items-exceeded",
        "max-nodes-exceeded",
        "nodeid-required",
        "not-in-roster-group",
        "not-subscribed",
        "payload-too-big",
        "payload-required",
        "pending-subscription",
        "presence-subscription-required",
        "subid-required",
        "too-many-subscriptions",
        "unsupported",
        "unsupported-access-model",
    }
)


@dataclass(frozen=True, slots=True)
class StanzaErrorSpec:
    """One row: RFC 6120 condition and type, plus an optional application condition."""

    condition: str
    type: str
    app_condition: str | None = None
    app_namespace: str | None = None


def _spec(
    condition: str, type_: str, app: str | None = None, ns: str | None = None
) -> StanzaErrorSpec:
    if app is not None and ns is None:
        ns = NS_PUBSUB_ERRORS if app in PUBSUB_ERROR_CONDITIONS else NS_BUDDYCLOUD_ERRORS
    return StanzaErrorSpec(condition, type_, app, ns)


# Rows carrying `app_condition=None` but whose exception has a `.condition` attribute use
# that attribute (RecentItemsError, RatingError, ThreadError, InvalidPayload,
# MalformedStanza, OwnAffiliation, ...).
STANZA_ERRORS: dict[type[BaseException], StanzaErrorSpec] = {
    ChannelError: _spec("undefined-condition", "cancel"),
    BadRequest: _spec("bad-request", "modify"),
    MalformedStanza: _spec("bad-request", "modify"),
    NodeIdRequired: _spec("bad-request", "modify", "nodeid-required"),
    InstantNodesUnsupported: _spec("not-acceptable", "modify", "nodeid-required"),
    WrongIqType: _spec("bad-request", "modify"),
    XmlLimitExceeded: _spec("bad-request", "modify"),
    InvalidJid: _spec("bad-request", "modify", "invalid-jid"),
    JidMismatch: _spec("bad-request", "modify", "invalid-jid"),
    InvalidNodeId: _spec("bad-request", "modify", "invalid-node-format"),
    InvalidDate: _spec("bad-request", "modify"),
    InvalidPayload: _spec("bad-request", "modify", "invalid-payload"),
    PayloadTooLarge: _spec("not-acceptable", "modify", "payload-too-big"),
    ItemRequired: _spec("bad-request", "modify", "item-required"),
    InvalidConfiguration: _spec("not-acceptable", "modify"),
    InvalidPaging: _spec("bad-request", "modify"),
    RecentItemsError: _spec("bad-request", "modify"),
    RatingError: _spec("bad-request", "modify"),
    ThreadError: _spec("bad-request", "modify"),
    NotFound: _spec("item-not-found", "cancel"),
    NodeNotFound: _spec("item-not-found", "cancel"),
    ChannelNotFound: _spec("item-not-found", "cancel"),
    ItemNotFound: _spec("item-not-found", "cancel"),
    CursorNotFound: _spec("item-not-found", "cancel"),
    NodeExists: _spec("conflict", "cancel"),
    AccountExists: _spec("conflict", "cancel"),
    NotAuthenticated: _spec("not-authorized", "auth"),
    SignInUnavailable: _spec("service-unavailable", "wait"),
    AccountDirectoryUnavailable: _spec("service-unavailable", "wait"),
    Forbidden: _spec("forbidden", "auth"),
    ClosedNode: _spec("forbidden", "auth", "closed-node"),
    Banned: _spec("forbidden", "auth"),
    SubscriptionPending: _spec("not-authorized", "auth", "pending-subscription"),
    NotLocalUser: _spec("not-allowed", "cancel"),
    AnonymousReadOnly: _spec("forbidden", "auth"),
    OwnAffiliation: _spec("not-allowed", "cancel", "can-not-modify-own-affiliation"),
    OwnSubscription: _spec("not-allowed", "cancel", "can-not-modify-own-subscription"),
    OwnerRequired: _spec("not-allowed", "cancel", "node-must-have-owner"),
    NotSubscribed: _spec("unexpected-request", "cancel", "not-subscribed"),
    Unsupported: _spec("feature-not-implemented", "cancel", "unsupported"),
    ServiceUnavailable: _spec("service-unavailable", "cancel"),
    PresenceRequired: _spec("not-acceptable", "modify", "invalid-options"),
    ReplyTooLarge: _spec("not-acceptable", "cancel"),
    RemoteError: _spec("remote-server-not-found", "cancel"),
    RemoteServerNotFound: _spec("remote-server-not-found", "cancel"),
    RemoteTimeout: _spec("remote-server-timeout", "wait"),
    UntrustedServer: _spec("forbidden", "auth"),
    InboxRefused: _spec("forbidden", "cancel"),
    MalformedInbox: _spec("bad-request", "cancel"),
    InboxUnavailable: _spec("internal-server-error", "wait"),
}

INTERNAL_ERROR = StanzaErrorSpec("internal-server-error", "cancel")


def lookup(exc: BaseException) -> StanzaErrorSpec | None:
    """The row for `exc`'s class or its nearest mapped base class, None when unmapped."""
    return lookup_class(type(exc))


def lookup_class(cls: type[BaseException]) -> StanzaErrorSpec | None:
    """The row for an exception class, following its MRO (Starlette's handler lookup)."""
    for base in cls.__mro__:
        spec = STANZA_ERRORS.get(base)
        if spec is not None:
            return spec
    return None


def resolve(exc: BaseException) -> tuple[StanzaErrorSpec, str | None]:
    """The error to send for `exc` and the text to show, applying dynamic conditions.

    Unknown exceptions are logged with their traceback and resolve to
    internal-server-error without text.
    """
    spec = lookup(exc)
    if spec is None:
        log.error("unexpected error while handling a stanza", exc_info=exc)
        return INTERNAL_ERROR, None
    dynamic = getattr(exc, "condition", None)
    if isinstance(dynamic, str) and dynamic:
        spec = _spec(spec.condition, spec.type, dynamic)
    text = exc.message if isinstance(exc, ChannelError) else None
    return spec, text


def render_error(spec: StanzaErrorSpec, text: str | None = None, *, feature: str = "") -> Element:
    """Render `<error type=…><condition/><text/><app-condition/></error>` (RFC 6120 §8.3)."""
    error = Element("error", {"type": spec.type})
    SubElement(error, qname(NS_STANZAS, spec.condition))
    if text:
        SubElement(error, qname(NS_STANZAS, "text")).text = text
    if spec.app_condition and spec.app_namespace:
        app = SubElement(error, qname(spec.app_namespace, spec.app_condition))
        if feature:
            app.set("feature", feature)
    return error


def error_element(exc: BaseException) -> Element:
    """The `<error/>` element for any exception raised while handling a stanza."""
    spec, text = resolve(exc)
    feature = exc.feature if isinstance(exc, Unsupported) else ""
    return render_error(spec, text, feature=feature)
