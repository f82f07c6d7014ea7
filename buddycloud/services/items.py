"""Items: publishing, retraction, reads, threads, feeds and search (ProtoXEP 6)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial

from buddycloud.domain.entries import EntryDraft, ThreadContext, complete_entry, tombstone
from buddycloud.domain.errors import (
    BadRequest,
    ChannelError,
    Forbidden,
    InvalidDate,
    InvalidPayload,
    ItemNotFound,
    PayloadTooLarge,
    RecentItemsError,
    Unsupported,
)
from buddycloud.domain.events import ItemPublished, ItemRetracted
from buddycloud.domain.ids import cross_node_cursor, local_item_id, new_item_id
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    MAX_PAGE,
    Item,
    NodeId,
    Page,
    PageRequest,
    RawPayload,
    Thread,
)
from buddycloud.domain.permissions import Operation, public_scope, read_scope
from buddycloud.domain.times import parse_datetime
from buddycloud.services.base import search_words
from buddycloud.services.following import FollowOps
from buddycloud.services.ports import RemoteChannels
from buddycloud.storage.base import NodeContext, SearchQuery

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ItemOps(FollowOps):
    # --- writes -------------------------------------------------------------------------

    async def publish(
        self,
        requester: Jid,
        node: NodeId,
        payload: EntryDraft | RawPayload,
        item_id: str | None = None,
    ) -> Item:
        """Publish an item, or update one of the requester's own (same id).

        Atom nodes take entries, completed by the server (ProtoXEP example 13); other nodes
        take payloads of their `pubsub#type`. Acknowledged only once stored.

        Raises:
            NodeNotFound, Forbidden, ClosedNode, Banned, InvalidPayload, PayloadTooLarge,
            ThreadError, RatingError
        """
        author = requester.bare
        remote = self._remote_for(author, node)
        if remote is not None:
            self._check_size(payload)
            return await self._publish_remotely(remote, author, node, payload, item_id)
        context = await self._context(author, node)
        self._check_publish(author, context, payload)
        return await self._publish(author, context, payload, item_id)

    def _check_publish(
        self, author: Jid, context: NodeContext, payload: EntryDraft | RawPayload
    ) -> None:
        """What `publish` checks before it reads anything else: the right to post, the
        payload's size, and that the node holds payloads of that kind."""
        node = context.node.id
        self._require(Operation.PUBLISH, author, context)
        self._check_size(payload)
        if isinstance(payload, EntryDraft):
            if not context.node.is_atom:
                raise InvalidPayload(
                    f"node {node} holds {context.node.payload_type} payloads, not Atom entries"
                )
        elif context.node.is_atom:
            raise InvalidPayload(
                f"node {node} holds Atom entries", condition="entry-element-required"
            )
        elif payload.namespace != context.node.payload_type:
            raise InvalidPayload(
                f"node {node} holds {context.node.payload_type} payloads, "
                f"not {payload.namespace[:100]}"
            )

    async def _builder(
        self, author: Jid, context: NodeContext, payload: EntryDraft | RawPayload
    ) -> Callable[[str, Item | None], Item]:
        """The pure step that makes the stored item, given its id and the version it
        replaces; what an entry refers to is loaded now."""
        now = self.clock.now()
        if isinstance(payload, EntryDraft):
            return await self._entry_builder(author, context, payload, now)
        return partial(_raw_item, context.node.id, author, payload, now)

    async def _publish(
        self,
        author: Jid,
        context: NodeContext,
        payload: EntryDraft | RawPayload,
        item_id: str | None,
    ) -> Item:
        node = context.node.id
        build = await self._builder(author, context, payload)
        max_items = context.node.max_items
        if item_id:
            # The id may name an earlier version: it is read, checked and replaced in one
            # transaction, so that no other write slips in between.
            named = local_item_id(item_id)
            item, previous = await self.storage.put_item_after(
                node, named, partial(build, named), max_items=max_items
            )
        else:
            item, previous = build(new_item_id(), None), None  # a fresh id names nothing older
            await self.storage.put_item(item, max_items=max_items)
        audience = await self._audience(context.channel, Operation.READ_ITEMS)
        await self._emit(
            ItemPublished(context.node, item, audience, is_update=previous is not None)
        )
        return item

    async def _publish_remotely(
        self,
        remote: RemoteChannels,
        author: Jid,
        node: NodeId,
        payload: EntryDraft | RawPayload,
        item_id: str | None,
    ) -> Item:
        """Publish to another domain's channel; the item as its server completed it."""
        given = await remote.publish(author, node, payload, item_id)
        try:
            return await remote.get_item(author, node, given)
        except ChannelError:
            # Published all the same: answer with what is known of it.
            now = self.clock.now()
            raw = payload if isinstance(payload, RawPayload) else None
            return Item(node, given, author, now, now, raw)

    async def replace_latest(
        self, requester: Jid, node: NodeId, payload: EntryDraft | RawPayload
    ) -> Item:
        """Publish `payload` as the node's one current item (reference row 10, "replace
        current", for status and geolocation nodes).

        A node that keeps a single item replaces it in the same write. On other nodes the
        newest live item, if any, is retracted first (with the rights `retract` needs),
        then the payload is published: two writes, each announced. The payload is checked
        in full (rights, size, kind, thread) before anything is retracted.

        Raises:
            what `publish` and `retract` raise.
        """
        author = requester.bare
        context = await self._context(author, node)
        self._check_publish(author, context, payload)
        if context.node.max_items != 1:
            (await self._builder(author, context, payload))(new_item_id(), None)
            newest = await self.storage.list_items(node, PageRequest(max=1), include_deleted=False)
            if newest.items:
                current = newest.items[0]
                own = current.author == author
                self._require(
                    Operation.RETRACT_OWN if own else Operation.RETRACT_ANY, author, context
                )
                await self._replace_with_tombstone(context, current, notify=True)
        return await self._publish(author, context, payload, None)

    def _check_size(self, payload: EntryDraft | RawPayload) -> None:
        size = payload.byte_size if isinstance(payload, EntryDraft) else len(payload.xml.encode())
        if size > self.config.max_payload_bytes:
            raise PayloadTooLarge(size, self.config.max_payload_bytes)

    async def _entry_builder(
        self, author: Jid, context: NodeContext, draft: EntryDraft, now: datetime
    ) -> Callable[[str, Item | None], Item]:
        """Load what an entry refers to; return the pure step that completes it, given its
        id and the version it replaces (ProtoXEP 6.3)."""
        node = context.node.id
        in_reply_to = local_item_id(draft.in_reply_to) if draft.in_reply_to else None
        target = local_item_id(draft.target) if draft.target else None
        parent = await self.storage.find_item(node, in_reply_to) if in_reply_to else None
        referenced = await self.storage.find_item(node, target) if target else None
        already_rated = False
        if draft.rating is not None and target is not None:
            existing = await self.storage.find_rating(node, target, author)
            already_rated = existing is not None and not existing.deleted

        def build(item_id: str, previous: Item | None) -> Item:
            entry = complete_entry(
                draft,
                item_id=item_id,
                author=author,
                now=now,
                in_reply_to=in_reply_to,
                target=target,
                context=ThreadContext(parent, referenced, previous, already_rated),
            )
            return Item(node, item_id, author, entry.published, now, entry, in_reply_to)

        return build

    async def retract(
        self, requester: Jid, node: NodeId, item_id: str, *, notify: bool = True
    ) -> Item:
        """Retract an item, leaving a tombstone (ProtoXEP 6.2, example 11).

        Authors may retract their own posts; the owner and moderators any post (table 6).

        Raises:
            NodeNotFound, ItemNotFound, Forbidden
        """
        author = requester.bare
        remote = self._remote_for(author, node)
        if remote is not None:
            await remote.retract(author, node, item_id, notify=notify)
            now = self.clock.now()
            return Item(node, local_item_id(item_id), author, now, now, None, deleted=True)
        item_id = local_item_id(item_id)
        context = await self._context(author, node)
        item = await self.storage.find_item(node, item_id)
        if item is None or item.deleted:
            # Someone who may not read the node learns nothing about its items.
            self._require(Operation.READ_ITEMS, author, context)
            raise ItemNotFound(str(node), item_id)
        own = item.author == author
        self._require(Operation.RETRACT_OWN if own else Operation.RETRACT_ANY, author, context)
        return await self._replace_with_tombstone(context, item, notify=notify)

    async def _replace_with_tombstone(
        self, context: NodeContext, item: Item, *, notify: bool
    ) -> Item:
        """Store the item's tombstone and announce it to the node's readers."""
        dead = tombstone(item, self.clock.now())
        await self.storage.put_item(dead)
        audience = await self._audience(context.channel, Operation.READ_ITEMS)
        await self._emit(ItemRetracted(context.node, dead, audience, notify=notify))
        return dead

    # --- reads ----------------------------------------------------------------------------

    async def _readable(self, requester: Jid, node: NodeId) -> NodeContext:
        context = await self._read_context(requester.bare, node)
        self._require(Operation.READ_ITEMS, requester.bare, context)
        return context

    def reads_locally(self, node: NodeId) -> bool:
        """Whether the items of `node` are read from this server's own storage, so that
        every change to them comes through this engine's events (not another domain's)."""
        return self.remote is None or self.is_mine(node)

    async def require_readable(self, requester: Jid, node: NodeId) -> None:
        """Return when `requester` may read the items of `node`, one `reads_locally`
        holds for; raise what `get_items` would raise otherwise.

        Raises:
            NodeNotFound, ClosedNode, Banned, Forbidden
        """
        await self._readable(requester, node)

    async def get_items(
        self,
        requester: Jid,
        node: NodeId,
        page: PageRequest,
        *,
        parent_only: bool = False,
        since: datetime | None = None,
        until: datetime | None = None,
        author: Jid | None = None,
    ) -> Page[Item]:
        """A node's items, newest activity first, paged (XEP-0059); `since`, `until` and
        `author` narrow the set the page is cut from.

        Another domain's channel is read from the cache by its subscribed local followers,
        and asked of its own server for anyone else."""
        remote = await self._reader_remote(requester.bare, node)
        if remote is not None:
            if parent_only or since or until or author:
                raise Unsupported("federation", "filtered item lists of other domains' channels")
            return await remote.get_items(requester.bare, node, page)
        await self._readable(requester, node)
        return await self.storage.list_items(
            node,
            _with_item_cursors(page),
            parent_only=parent_only,
            since=since,
            until=until,
            author=author,
        )

    async def get_item(self, requester: Jid, node: NodeId, item_id: str) -> Item:
        """Raises NodeNotFound, ItemNotFound, ClosedNode, Banned."""
        remote = await self._reader_remote(requester.bare, node)
        if remote is not None:
            return await remote.get_item(requester.bare, node, item_id)
        await self._readable(requester, node)
        return await self.storage.get_item(node, local_item_id(item_id))

    async def get_replies(
        self, requester: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        """Replies to one item, newest first. Raises ItemNotFound if it does not exist.

        Another domain's channel is read from the cache or forwarded, as `get_items`."""
        remote = await self._reader_remote(requester.bare, node)
        if remote is not None:
            return await remote.get_replies(requester.bare, node, item_id, page)
        await self._readable(requester, node)
        return await self.storage.list_replies(
            node, local_item_id(item_id), _with_item_cursors(page)
        )

    async def get_thread(
        self, requester: Jid, node: NodeId, item_id: str, page: PageRequest
    ) -> Page[Item]:
        """A whole thread: the parent item followed by its replies (newest first).

        `after` naming the parent continues with the first replies (a page that ended
        right after the parent)."""
        remote = await self._reader_remote(requester.bare, node)
        if remote is not None:
            return await remote.get_thread(requester.bare, node, item_id, page)
        await self._readable(requester, node)
        parent = await self.storage.get_item(node, local_item_id(item_id))
        if parent.in_reply_to is not None:
            parent = await self.storage.get_item(node, parent.in_reply_to)
        page = _with_item_cursors(page)
        replies_page = replace(page, after=None) if page.after == parent.id else page
        replies = await self.storage.list_replies(node, parent.id, replies_page)
        first_page = page.after is None and page.before is None and not page.last_page
        items = [parent, *replies.items] if first_page else replies.items
        return Page(
            items,
            replies.count + 1,
            items[0].id if items else None,
            items[-1].id if items else None,
            cursor_of=_item_cursor,
        )

    async def get_threads(self, requester: Jid, node: NodeId, page: PageRequest) -> Page[Thread]:
        """A node's threads, most recently active first."""
        remote = await self._reader_remote(requester.bare, node)
        if remote is not None:
            return await remote.get_threads(requester.bare, node, page)
        await self._readable(requester, node)
        return await self.storage.list_threads(node, _with_item_cursors(page))

    async def firehose(
        self, requester: Jid, page: PageRequest, *, parent_only: bool = False
    ) -> Page[Item]:
        """The newest items of every channel the requester may read without following it:
        open channels, and `local` ones for users of this domain (reference op 17,
        `/firehose`), less those the requester is banned from. Newest `updated` first;
        cursors are "<node>,<item id>".

        Raises:
            InvalidPaging: a malformed global id as cursor.
            ItemNotFound: an unknown cursor.
        """
        scope = public_scope(requester.bare, requester_is_local=self.is_local_user(requester.bare))
        return await self.storage.list_public_items(
            scope, _with_global_cursors(page), parent_only=parent_only
        )

    async def recent_items(
        self,
        requester: Jid,
        *,
        since: str | None,
        max_per_node: str | None,
        parent_only: bool,
        page: PageRequest,
    ) -> Page[Item]:
        """ProtoXEP 6.1.1: new posts of every channel the requester follows.

        Raises:
            RecentItemsError: max-required, invalid-max-value-provided, since-required or
                invalid-since-value-provided (6.1.1.1).
        """
        if max_per_node is None or not max_per_node.strip():
            raise RecentItemsError("max-required", "a maximum number of items per node is required")
        try:
            per_node = int(max_per_node)
        except ValueError:
            per_node = 0
        if per_node < 1:
            raise RecentItemsError("invalid-max-value-provided", "max must be a positive integer")
        if since is None or not since.strip():
            raise RecentItemsError("since-required", "a valid since date is required")
        try:
            since_time = parse_datetime(since)
        except InvalidDate:
            raise RecentItemsError(
                "invalid-since-value-provided", "since must be an ISO-8601 date"
            ) from None
        return await self.storage.recent_items(
            requester.bare,
            since=since_time,
            max_per_node=min(per_node, MAX_PAGE),
            parent_only=parent_only,
            node_names=frozenset({"posts"}),
            page=_with_global_cursors(page),
        )

    async def user_items(
        self,
        requester: Jid,
        *,
        since: datetime | None,
        parent_only: bool,
        page: PageRequest,
        until: datetime | None = None,
        author: Jid | None = None,
    ) -> Page[Item]:
        """The requester's whole feed: items of every node of every channel they follow;
        `since`, `until` and `author` narrow the set the page is cut from."""
        return await self.storage.recent_items(
            requester.bare,
            since=since or EPOCH,
            max_per_node=MAX_PAGE,
            parent_only=parent_only,
            node_names=None,
            page=_with_global_cursors(page),
            until=until,
            author=author,
        )

    async def search(
        self,
        requester: Jid,
        *,
        words: Sequence[str],
        author: Jid | None,
        page: PageRequest,
        offset: int = 0,
    ) -> Page[Item]:
        """Full-text search over the posts the requester may read; `offset` skips that many
        results before the page. Cursors are those of the firehose, "<node>,<item id>".

        Raises:
            BadRequest: neither words nor an author were given, or too many words.
        """
        cleaned = search_words(words, required=False)
        if not cleaned and author is None:
            raise BadRequest("search needs words or an author")
        scope = read_scope(requester.bare, requester_is_local=self.is_local_user(requester))
        return await self.storage.search_items(
            SearchQuery(cleaned, author.bare if author else None, scope),
            _with_global_cursors(page),
            offset=offset,
        )


def _raw_item(
    node: NodeId,
    author: Jid,
    payload: RawPayload,
    now: datetime,
    item_id: str,
    previous: Item | None,
) -> Item:
    """A payload the engine does not interpret, replacing `previous` (its author's only)."""
    if previous is None:
        return Item(node, item_id, author, now, now, payload)
    if previous.author != author:
        raise Forbidden("only the author of an item may update it")
    return Item(node, item_id, author, previous.published, now, payload)


def _item_cursor(item: Item) -> str:
    return item.id


def _with_cursors(page: PageRequest, convert: Callable[[str], str]) -> PageRequest:
    """`page` with its `after` or `before` cursor rewritten by `convert`."""
    if page.after is None and page.before is None:
        return page
    return replace(
        page,
        after=convert(page.after) if page.after else None,
        before=convert(page.before) if page.before else None,
    )


def _with_item_cursors(page: PageRequest) -> PageRequest:
    """Cursors within a node may name items by their global id too."""
    return _with_cursors(page, local_item_id)


def _with_global_cursors(page: PageRequest) -> PageRequest:
    """Cursors across nodes are "<node>,<item id>"; a global `tag:<service>,<node>,<id>`
    names the same item."""
    return _with_cursors(page, cross_node_cursor)
