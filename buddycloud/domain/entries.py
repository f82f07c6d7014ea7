"""Atom entries: what a client sends, and how the server validates and completes it.

ProtoXEP 6.3: the server fills in id, author, published, updated, verb and object type
(example 13), enforces threads one level deep (6.3.2), references inside a thread (6.3.3)
and ratings (6.3.4). These rules are pure: the engine loads the parent, target and previous
version and passes them in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from buddycloud.domain.errors import Forbidden, InvalidPayload, RatingError, ThreadError
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Entry, Item

CONTENT_TYPES = frozenset({"text", "html", "xhtml"})
MAX_TITLE = 1024
VERB_POST = "post"
VERB_RATED = "rated"
OBJECT_POST = "post"
OBJECT_COMMENT = "comment"
_RATING = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")


@dataclass(frozen=True, slots=True)
class EntryDraft:
    """An Atom entry as a client sent it, parsed by an edge; nothing in it is trusted."""

    content: str | None
    content_type: str = "text"
    title: str | None = None
    in_reply_to: str | None = None
    target: str | None = None
    rating: str | None = None
    verb: str | None = None
    object_type: str | None = None
    extensions: tuple[str, ...] = ()
    byte_size: int = 0


def parse_rating(raw: str) -> int:
    """ProtoXEP 6.3.4.1: a rating is a number, and an integer from 1 to 5.

    Raises:
        RatingError: invalid-rating or rating-out-of-range.
    """
    if not _RATING.match(raw):
        raise RatingError("invalid-rating", f"rating {raw[:20]!r} is not a number")
    value = float(raw)
    # A long enough digit string parses to infinity, which has no integer value.
    if not 1 <= value <= 5 or value != int(value):
        raise RatingError("rating-out-of-range", "a rating must be an integer from 1 to 5")
    return int(value)


@dataclass(frozen=True, slots=True)
class ThreadContext:
    """The items a draft refers to, as loaded by the engine (None = not found)."""

    parent: Item | None = None
    target: Item | None = None
    previous: Item | None = None
    already_rated: bool = False


def complete_entry(
    draft: EntryDraft,
    *,
    item_id: str,
    author: Jid,
    now: datetime,
    in_reply_to: str | None,
    target: str | None,
    context: ThreadContext,
) -> Entry:
    """Validate a draft against its thread and return the entry the server stores.

    Args:
        in_reply_to: the parent's local id (already normalised), or None.
        target: the referenced item's local id (already normalised), or None.

    Raises:
        InvalidPayload, ThreadError, RatingError, Forbidden
    """
    previous = context.previous
    if previous is not None:
        if previous.deleted:
            raise Forbidden("a deleted item cannot be updated")
        if previous.author != author.bare:
            raise Forbidden("only the author of an item may update it")
        if previous.in_reply_to != in_reply_to:
            raise ThreadError(
                "in-reply-to-changed", "an update cannot move an item to another thread"
            )
    if draft.content_type not in CONTENT_TYPES:
        raise InvalidPayload(
            f"content type {draft.content_type[:20]!r} is not one of text, html, xhtml",
            condition="unsupported-content-type",
        )
    if draft.title is not None and len(draft.title) > MAX_TITLE:
        raise InvalidPayload(f"title longer than {MAX_TITLE} characters")

    if in_reply_to is not None:
        parent = context.parent
        if parent is None or parent.deleted:
            raise ThreadError("parent-item-not-found", f"item {in_reply_to} does not exist")
        if parent.in_reply_to is not None:
            raise ThreadError(
                "max-thread-depth-exceeded", "threads are one level deep: reply to the parent"
            )
    if target is not None:
        if in_reply_to is None:
            raise ThreadError("missing-in-reply-to", "a reference needs a thread (in-reply-to)")
        referenced = context.target
        if referenced is None or referenced.deleted:
            raise ThreadError("targeted-item-not-found", f"item {target} does not exist")
        if target != in_reply_to and referenced.in_reply_to != in_reply_to:
            raise ThreadError("target-outside-thread", "a reference must stay inside its thread")

    rating: int | None = None
    if draft.rating is not None:
        rating = parse_rating(draft.rating)
        if target is None:
            raise ThreadError("missing-target", "a rating must target the post it rates")
        referenced_entry = context.target.entry if context.target else None
        if referenced_entry is not None and referenced_entry.verb == VERB_RATED:
            raise RatingError("invalid-rating-request", "a rating cannot be rated")
        if context.already_rated and previous is None:
            raise RatingError("item-already-rated", "you have already rated this post")

    if rating is not None:
        title, content, content_type, verb = "Rating", f"rating:{rating}.0", "text", VERB_RATED
    else:
        if draft.content is None:
            raise InvalidPayload(
                "an entry needs a content element", condition="content-element-required"
            )
        title = draft.title if draft.title else "Post"
        content, content_type, verb = draft.content, draft.content_type, VERB_POST
    return Entry(
        id=item_id,
        title=title,
        content=content,
        content_type=content_type,
        author=author.bare,
        published=previous.published if previous is not None else now,
        updated=now,
        verb=verb,
        object_type=OBJECT_COMMENT if in_reply_to is not None else OBJECT_POST,
        in_reply_to=in_reply_to,
        target=target,
        rating=rating,
        extensions=draft.extensions,
    )


def tombstone(item: Item, now: datetime) -> Item:
    """ProtoXEP example 11: what stays of a retracted item. No content, no author detail."""
    entry = item.entry
    stripped = (
        replace(
            entry,
            title="",
            content="",
            updated=now,
            rating=None,
            target=None,
            extensions=(),
        )
        if entry is not None
        else None
    )
    return replace(item, payload=stripped, updated=now, deleted=True)


def mentions(content: str, jid: Jid) -> bool:
    """Whether `content` names `jid` (its bare JID, as a word of its own, in any case): a
    mention, as the original HTTP API's `/sync` summary counted them."""
    name = re.escape(str(jid.bare))
    return re.search(rf"(?<![\w.%+\-@]){name}(?![\w\-@]|\.\w)", content, re.IGNORECASE) is not None
