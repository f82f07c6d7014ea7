"""XEP-0059 result set management: `<set/>` to PageRequest, Page to `<set/>`."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.errors import InvalidPaging
from buddycloud.domain.model import DEFAULT_PAGE, Page, PageRequest
from buddycloud.xmpp.namespaces import NS_RSM, qname

MAX_CURSOR = 1024


def parse_int(raw: str, what: str, *, minimum: int = 0, maximum: int = 10**9) -> int:
    """A decimal integer attribute or text, checked against a range.

    Raises:
        InvalidPaging: not a decimal integer within range.
    """
    text = raw.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise InvalidPaging(f"{what} must be a non-negative integer, not {raw[:20]!r}")
    value = int(text)
    if not minimum <= value <= maximum:
        raise InvalidPaging(f"{what} must be between {minimum} and {maximum}")
    return value


def find_set(parent: Element) -> Element | None:
    return parent.find(qname(NS_RSM, "set"))


def parse_rsm(parent: Element, *, default_max: int = DEFAULT_PAGE) -> PageRequest:
    """The page asked for by the `<set xmlns=rsm>` child of `parent` (default: first page).

    XEP-0059 §2.5: an empty `<before/>` asks for the last page.

    Raises:
        InvalidPaging: `max` is not a non-negative integer, a cursor is too long, or both
            `after` and `before` are given.
    """
    set_el = find_set(parent)
    if set_el is None:
        return PageRequest(max=default_max)
    return parse_set(set_el, default_max=default_max)


def parse_set(set_el: Element, *, default_max: int = DEFAULT_PAGE) -> PageRequest:
    """Parse one `<set/>` element (see `parse_rsm`)."""
    max_el = set_el.find(qname(NS_RSM, "max"))
    max_ = default_max if max_el is None else parse_int(max_el.text or "", "max")
    after_el = set_el.find(qname(NS_RSM, "after"))
    before_el = set_el.find(qname(NS_RSM, "before"))
    after = _cursor(after_el) or None
    before = _cursor(before_el)
    last_page = before_el is not None and not before
    if after is not None and before_el is not None:
        raise InvalidPaging("after and before cannot both be given")
    return PageRequest(max=max_, after=after, before=before or None, last_page=last_page)


def _cursor(element: Element | None) -> str | None:
    if element is None:
        return None
    text = (element.text or "").strip()
    if len(text) > MAX_CURSOR:
        raise InvalidPaging(f"an RSM cursor may hold at most {MAX_CURSOR} characters")
    return text


def render_page_request(page: PageRequest) -> Element:
    """Render a request's `<set/>` (the client side; used by tests and federation)."""
    set_el = Element(qname(NS_RSM, "set"))
    SubElement(set_el, qname(NS_RSM, "max")).text = str(page.max)
    if page.after is not None:
        SubElement(set_el, qname(NS_RSM, "after")).text = page.after
    if page.before is not None or page.last_page:
        SubElement(set_el, qname(NS_RSM, "before")).text = page.before or None
    return set_el


def render_rsm(page: Page[Any]) -> Element:
    """Render a result's `<set><first index/><last/><count/></set>` (XEP-0059 §2.1)."""
    set_el = Element(qname(NS_RSM, "set"))
    if page.first is not None:
        first = SubElement(set_el, qname(NS_RSM, "first"))
        first.text = page.first
        if "index" in page.extra:
            first.set("index", page.extra["index"])
    if page.last is not None:
        SubElement(set_el, qname(NS_RSM, "last")).text = page.last
    SubElement(set_el, qname(NS_RSM, "count")).text = str(page.count)
    return set_el
