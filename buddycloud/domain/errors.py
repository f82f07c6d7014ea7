"""Domain errors: facts about what went wrong, never wire messages.

Each edge maps these to its own vocabulary with one table (see docs/errors.md).
Names follow the condition, without an "Error" suffix.
"""

from __future__ import annotations


class ChannelError(Exception):
    """Base of every error the channel engine raises on purpose."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


# --- bad input -------------------------------------------------------------------------


class BadRequest(ChannelError):
    """The request is malformed."""


class InvalidJid(BadRequest):
    """A JID is not valid."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"invalid JID {raw[:100]!r}: {reason}")
        self.raw = raw


class JidMismatch(BadRequest):
    """A subscribe or unsubscribe names someone other than the requester (bare JIDs
    compared; XEP-0060 §6.1.3.1 "JIDs do not match")."""

    def __init__(self, named: str, operation: str) -> None:
        super().__init__(f"you may only {operation} yourself, not {named[:100]!r}")
        self.named = named


class InvalidNodeId(BadRequest):
    """A node id does not follow /user/<channel-jid>/<node-name>."""

    def __init__(self, raw: str, reason: str) -> None:
        super().__init__(f"invalid node {raw[:200]!r}: {reason}")
        self.raw = raw


class InvalidDate(BadRequest):
    """A date is not an ISO-8601 timestamp."""


class InvalidPayload(BadRequest):
    """An item payload is not acceptable for its node."""

    def __init__(self, message: str, *, condition: str = "invalid-payload") -> None:
        super().__init__(message)
        self.condition = condition


class PayloadTooLarge(InvalidPayload):
    """An item payload exceeds the configured size limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"payload of {size} bytes exceeds the limit of {limit} bytes",
            condition="payload-too-big",
        )


class ItemRequired(BadRequest):
    """The request must carry an item."""


class InvalidConfiguration(BadRequest):
    """A node configuration field has a value the server does not accept."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"configuration field {field!r}: {reason}")
        self.field = field
        self.reason = reason


class InvalidPaging(BadRequest):
    """A paging request (max, after, before) is not acceptable."""


class RecentItemsError(BadRequest):
    """A recent-items request is invalid (ProtoXEP 6.1.1.1)."""

    def __init__(self, condition: str, message: str) -> None:
        super().__init__(message)
        self.condition = condition


class RatingError(BadRequest):
    """A rating is invalid (ProtoXEP 6.3.4.1)."""

    def __init__(self, condition: str, message: str) -> None:
        super().__init__(message)
        self.condition = condition


class ThreadError(BadRequest):
    """A reply or reference breaks the thread rules (ProtoXEP 6.3.2-6.3.3)."""

    def __init__(self, condition: str, message: str) -> None:
        super().__init__(message)
        self.condition = condition


# --- missing things --------------------------------------------------------------------


class NotFound(ChannelError):
    """Something does not exist."""


class NodeNotFound(NotFound):
    """The node does not exist."""

    def __init__(self, node: str) -> None:
        super().__init__(f"node {node} does not exist")
        self.node = node


class ChannelNotFound(NodeNotFound):
    """The channel does not exist."""


class ItemNotFound(NotFound):
    """The item does not exist."""

    def __init__(self, node: str, item_id: str) -> None:
        super().__init__(f"item {item_id} does not exist in {node}")
        self.node = node
        self.item_id = item_id


class CursorNotFound(NotFound):
    """A paging cursor (RSM `after` or `before`) names no entry of the list (XEP-0059)."""

    def __init__(self, cursor: str) -> None:
        super().__init__(f"the paging cursor {cursor[:100]!r} names nothing in this list")
        self.cursor = cursor


class NodeExists(ChannelError):
    """A node or channel with that id exists already."""

    def __init__(self, node: str) -> None:
        super().__init__(f"node {node} exists already")
        self.node = node


# --- permissions -----------------------------------------------------------------------


class Forbidden(ChannelError):
    """The requester may not do this."""


class ClosedNode(Forbidden):
    """The channel is closed to the requester: follow it and be approved first."""


class Banned(Forbidden):
    """The requester is banned from the channel."""


class SubscriptionPending(Forbidden):
    """The requester's subscription is waiting for approval."""


class NotLocalUser(Forbidden):
    """Only users of this server's domain may do this."""


class AnonymousReadOnly(Forbidden):
    """Anonymous users may read, and follow while online, but change nothing."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"anonymous users may not {operation}; they may read, and follow for the time "
            "they are online (a temporary subscription, pubsub#expire=presence)"
        )


class OwnAffiliation(Forbidden):
    """Nobody may change their own role."""

    condition = "can-not-modify-own-affiliation"


class OwnSubscription(Forbidden):
    """Nobody may change their own subscription through the owner interface."""

    condition = "can-not-modify-own-subscription"


class NotAuthenticated(ChannelError):
    """The credentials are wrong, or name no account; which of the two is never said."""


class InvalidResetToken(BadRequest):
    """A password reset token is unknown, used already, or expired (which, is not said)."""

    def __init__(self) -> None:
        super().__init__("the reset token is unknown, used already, or expired")


class SignInUnavailable(ChannelError):
    """The credentials could not be checked now: the service that checks them (the app's
    own API, the XMPP server) is slow, down, or answered nonsense."""


class AccountDirectoryUnavailable(ChannelError):
    """The XMPP server, which keeps a twin of every built-in account, could not be made to
    add, change or remove one now: it is down, slow, refused the administrator's sign-in,
    or refused the command. Nothing was changed here."""


class AccountExists(ChannelError):
    """An account of that name exists already."""

    def __init__(self, jid: str) -> None:
        super().__init__(f"the account {jid} exists already")
        self.jid = jid


class AccountNotFound(NotFound):
    """No account of that name."""

    def __init__(self, jid: str) -> None:
        super().__init__(f"no account {jid}")
        self.jid = jid


class OwnerRequired(ChannelError):
    """A channel must keep an owner: the owner can neither leave nor be demoted."""

    condition = "node-must-have-owner"


class NotSubscribed(ChannelError):
    """The requester is not subscribed."""


class Unsupported(ChannelError):
    """The server does not implement this feature."""

    def __init__(self, feature: str, message: str = "") -> None:
        super().__init__(message or f"feature {feature} is not supported")
        self.feature = feature


# --- other domains ---------------------------------------------------------------------


class RemoteError(ChannelError):
    """The channel's home server (another domain's) did not give a usable answer."""


class RemoteServerNotFound(RemoteError):
    """No channel server could be found for the channel's domain."""

    def __init__(self, domain: str) -> None:
        super().__init__(f"found no channel server for {domain}")
        self.domain = domain


class RemoteTimeout(RemoteError):
    """The channel's home server did not answer in time."""

    def __init__(self, domain: str, seconds: float) -> None:
        super().__init__(f"the channel server of {domain} did not answer within {seconds:g} s")
        self.domain = domain


class UntrustedServer(Forbidden):
    """A server asked on behalf of a user, or told of a channel, of a domain whose channel
    server it is not (ProtoXEP 10.1)."""
