"""Replies and notifications that fit the XMPP server's stanza size limit.

An XMPP server closes a component's stream when the component sends it a stanza larger
than it accepts; until the component has reconnected, every user's requests to it bounce.
Prosody 0.12 accepts `component_stanza_size_limit` bytes from a component (by default its
`s2s_stanza_size_limit`, 512 KiB); ejabberd 23.01 the `max_stanza_size` of its
`ejabberd_service` listener (unlimited unless set). `[xmpp] max_stanza_bytes` says which
limit applies, and the edge measures everything it renders against it:

- a page of results (`fit_page`) holds the results that fit, in order, up to the first
  one that does not; its RSM `<set>` names the page's new last result and the size of the
  whole set, so `after=last` continues where the page ended and nothing is skipped;
- a result too large to fit even alone is sent as a stub (for an item: `<item id/>`
  without its payload, as XEP-0060 allows in notifications), so that paging goes on;
  where there is no stub, the request is answered with `ReplyTooLarge`.

Sizes are UTF-8 bytes of the text the component writes, which is what the XMPP server
counts. Each result is serialised once: the reply reuses the measured text (`Prewritten`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar
from xml.etree.ElementTree import Element

from buddycloud.domain.model import Page
from buddycloud.xmpp.errors import ReplyTooLarge
from buddycloud.xmpp.rsm import render_rsm
from buddycloud.xmpp.xml import Prewritten, prewritten, serialize, utf8_size

# Prosody 0.12's limit for stanzas from a component (mod_component.lua), 512 KiB.
DEFAULT_MAX_STANZA_BYTES = 512 * 1024

T = TypeVar("T")


def fits(text: str, limit: int) -> bool:
    """Whether `text` is at most `limit` bytes in UTF-8 (cheap for short texts)."""
    length = len(text)
    if length * 4 <= limit:  # no character takes more than 4 bytes
        return True
    return length <= limit and utf8_size(text) <= limit


@dataclass(frozen=True, slots=True)
class Runs(Generic[T]):
    """Consecutive results with the same `key` share one wrapper element, of `size`
    bytes (the `<items node>` blocks of a page of items from several nodes)."""

    key: Callable[[T], object]
    size: Callable[[T], int]


@dataclass(slots=True)
class _Measured:
    index: int
    element: Element
    text: str
    cost: int


def rsm_size(page: Page[T]) -> int:
    """The bytes of the RSM `<set/>` rendered for `page`."""
    return utf8_size(serialize(render_rsm(page)))


def fit_page(
    page: Page[T],
    render: Callable[[T], Element],
    *,
    context: str,
    room: int,
    with_rsm: bool = True,
    from_end: bool = False,
    stub: Callable[[T], Element] | None = None,
    runs: Runs[T] | None = None,
    name: Callable[[T], str] | None = None,
    condition: str | None = None,
) -> tuple[Page[T], list[Prewritten]]:
    """The part of `page` that fits in `room` bytes, and its results rendered.

    Args:
        page: the results, with `cursor_of` (to name the new ends of a cut page).
        render: one result's element, a child of an element of namespace `context`.
        context: the namespace of the element the rendered results go into.
        room: bytes for the rendered results, their `runs` wrappers and the RSM `<set/>`
            (the rest of the reply is counted by the caller).
        with_rsm: the reply carries the page's RSM `<set/>` even when the page is whole;
            a cut page always needs one (reserved here, rendered by the caller).
        from_end: the page is read backwards (RSM `before`): keep its last results.
        stub: a smaller stand-in for a result too large to fit even alone.
        runs: wrappers shared by consecutive results.
        name: how an error names a result (e.g. "item 42").
        condition: the error's application condition (`payload-too-big` for items).

    Returns:
        The page itself when everything fits, else the page cut with `Page.keep`; and the
        kept results' elements in page order, carrying their measured serialisation.

    Raises:
        ReplyTooLarge: the first result does not fit even alone, and has no stub that does.
    """
    items = page.items
    order = range(len(items) - 1, -1, -1) if from_end else range(len(items))
    budget = room - (rsm_size(page) if with_rsm else 0)
    measured: list[_Measured] = []
    total = 0
    previous: object = _NO_RUN
    whole = True
    for index in order:
        element = render(items[index])
        text = serialize(element, parent_namespace=context)
        cost = utf8_size(text)
        if runs is not None:
            key = runs.key(items[index])
            if key != previous:
                cost += runs.size(items[index])
                previous = key
        measured.append(_Measured(index, element, text, cost))
        total += cost
        if total > budget:
            whole = False
            break
    if whole:
        return page, _in_page_order(measured, context)
    # The page ends early: reserve room for its RSM <set/> whatever its new ends are.
    longest = max(
        (_cursor(page, items[entry.index]) for entry in measured), key=utf8_size, default=""
    )
    budget = room - rsm_size(Page([], page.count, longest, longest, page.extra))
    kept: list[_Measured] = []
    total = 0
    for entry in measured:
        if total + entry.cost > budget:
            break
        kept.append(entry)
        total += entry.cost
    if not kept:
        first = measured[0]
        stand_in = _stubbed(first, items[first.index], stub, context, runs, budget)
        if stand_in is None:
            what = name(items[first.index]) if name is not None else "a result"
            raise too_large(what, first.cost, budget, condition=condition)
        kept = [stand_in]
    return page.keep(len(kept), from_end=from_end), _in_page_order(kept, context)


_NO_RUN = object()


def _cursor(page: Page[T], item: T) -> str:
    if page.cursor_of is None:
        raise ValueError("a page without cursor_of cannot be cut")
    return page.cursor_of(item)


def _stubbed(
    first: _Measured,
    item: T,
    stub: Callable[[T], Element] | None,
    context: str,
    runs: Runs[T] | None,
    budget: int,
) -> _Measured | None:
    """The stand-in for the first result, which does not fit alone; None if none fits."""
    if stub is None:
        return None
    element = stub(item)
    text = serialize(element, parent_namespace=context)
    cost = utf8_size(text) + (runs.size(item) if runs is not None else 0)
    return _Measured(first.index, element, text, cost) if cost <= budget else None


def too_large(what: str, size: int, room: int, *, condition: str | None = None) -> ReplyTooLarge:
    """The error for `what`, `size` bytes serialised, when a reply has `room` bytes."""
    return ReplyTooLarge(
        f"{what} is {size} bytes serialised, more than the {max(room, 0)} bytes a reply "
        "can hold under the XMPP server's stanza size limit",
        condition=condition,
    )


def _in_page_order(entries: list[_Measured], context: str) -> list[Prewritten]:
    ordered = sorted(entries, key=lambda entry: entry.index)
    return [prewritten(entry.element, entry.text, context) for entry in ordered]
