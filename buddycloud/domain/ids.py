"""Item ids: local ids, and the global `tag:` form used across servers (ProtoXEP 6.3.2).

A global id is `tag:<service-jid>,<node id>,<local id>`. The server emits local ids in item
lists and accepts both forms wherever a client names an item.
"""

from __future__ import annotations

import re
import uuid

from buddycloud.domain.errors import BadRequest, InvalidPaging
from buddycloud.domain.model import NodeId

MAX_ITEM_ID = 256
_LOCAL_ID = re.compile(r"^[^\s\x00-\x1f\x7f,<>&\"']{1,256}$")


class InvalidItemId(BadRequest):
    """An item id is empty, too long, or contains characters ids may not hold."""


def new_item_id() -> str:
    return uuid.uuid4().hex


def global_item_id(service: str, node: NodeId, item_id: str) -> str:
    return f"tag:{service},{node},{item_id}"


def local_item_id(raw: str) -> str:
    """The local id named by `raw`, which may be a local id or a global `tag:` id.

    Raises:
        InvalidItemId: `raw` is neither.
    """
    if raw.startswith("tag:"):
        # The node part may itself hold commas only in theory (node names cannot); the local
        # id is what follows the last comma.
        parts = raw.split(",")
        if len(parts) < 3:
            raise InvalidItemId(f"malformed global item id {raw[:100]!r}")
        raw = parts[-1]
    if not _LOCAL_ID.match(raw):
        raise InvalidItemId(f"invalid item id {raw[:100]!r}")
    return raw


def cross_node_cursor(raw: str) -> str:
    """A cursor over the items of several nodes, "<node id>,<item id>"; a global
    `tag:<service>,<node id>,<item id>` names the same item.

    Raises:
        InvalidPaging: `raw` is a `tag:` id without a node and an item id.
    """
    if not raw.startswith("tag:"):
        return raw
    _service, _, rest = raw.partition(",")
    node, comma, item_id = rest.partition(",")
    if not node or not comma or not item_id:
        raise InvalidPaging(f"malformed global item id {raw[:100]!r}: tag:<service>,<node>,<id>")
    return rest
