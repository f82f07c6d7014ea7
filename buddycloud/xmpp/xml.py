"""The bounded stream parser, and the XML helpers the XMPP edge shares with the HTTP edge.

The component's stream is parsed by slixmpp with `BoundedPullParser`, which measures every
element of a stanza as it starts (depth, attributes, names: the limits below, documented in
docs/xmpp.md). Otherwise the edge only parses text it produced itself (stored payloads) or
test fixtures, through defusedxml (`buddycloud.wire.xml`) so that entity expansion and
external references are refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from xml.etree.ElementTree import Element, XMLPullParser

from buddycloud.wire.namespaces import split_tag
from buddycloud.wire.xml import NS_XML as NS_XML
from buddycloud.wire.xml import Prewritten as Prewritten
from buddycloud.wire.xml import UnsafeXml as UnsafeXml
from buddycloud.wire.xml import byte_size as byte_size
from buddycloud.wire.xml import escape_text as escape_text
from buddycloud.wire.xml import namespace_of as namespace_of
from buddycloud.wire.xml import parse_xml as parse_xml
from buddycloud.wire.xml import prewritten as prewritten
from buddycloud.wire.xml import quote_attribute as quote_attribute
from buddycloud.wire.xml import serialize as serialize
from buddycloud.wire.xml import text_of as text_of
from buddycloud.wire.xml import utf8_size as utf8_size
from buddycloud.wire.xml import wrapper_size as wrapper_size

# Limits on every stanza the component receives, checked as its elements start. A stanza
# breaking one is answered bad-request naming the limit (an IQ get/set or a message) or
# dropped; nothing in it reaches a handler.
MAX_DEPTH = 64  # levels of elements below the stanza element (<iq/>, <message/>, <presence/>)
MAX_ATTRIBUTES = 32  # attributes on one element (namespace declarations are not counted)
MAX_ATTRIBUTE_CHARS = 4096  # characters in one attribute value (a JID is at most 3,071)
MAX_NAME_CHARS = 1024  # characters in an element or attribute name, namespace included

if TYPE_CHECKING:
    _PullParser = XMLPullParser[Element]
else:
    _PullParser = XMLPullParser


def _refusal(element: Element, level: int) -> str | None:
    """What is wrong with an element `level` levels below its stanza, None if nothing."""
    if level > MAX_DEPTH:
        return f"elements nest deeper than {MAX_DEPTH} levels inside a stanza"
    tag = element.tag
    if len(tag) > MAX_NAME_CHARS:
        return f"an element name is longer than {MAX_NAME_CHARS} characters"
    attributes = element.attrib
    if not attributes:
        return None
    name = split_tag(tag)[1][:40]
    if len(attributes) > MAX_ATTRIBUTES:
        return f"<{name}/> carries more than {MAX_ATTRIBUTES} attributes"
    for key, value in attributes.items():
        if len(key) > MAX_NAME_CHARS:
            return f"an attribute name of <{name}/> is longer than {MAX_NAME_CHARS} characters"
        if len(value) > MAX_ATTRIBUTE_CHARS:
            attribute = split_tag(key)[1][:40]
            return (
                f"attribute {attribute} of <{name}/> is longer than "
                f"{MAX_ATTRIBUTE_CHARS} characters"
            )
    return None


class BoundedPullParser(_PullParser):
    """An XMLPullParser for an XMPP stream that measures each stanza as it is parsed.

    Stanzas are the children of the stream's root element. While a stanza is parsed, every
    element of it is checked as it starts; `refusal` then says what the stanza currently
    being read broke (None if nothing), until the next stanza starts. A stanza's `end`
    event is read while `refusal` is still its own.
    """

    def __init__(self) -> None:
        super().__init__(events=("start", "end"))
        self._depth = 0
        self.refusal: str | None = None

    def read_events(self) -> Iterator[Any]:
        # Only start and end events were asked for: each is (event, element).
        events = cast("Iterator[tuple[str, Element]]", super().read_events())
        for pair in events:
            if pair[0] == "start":
                self._depth += 1
                # The stream's root is at depth 1, a stanza at 2, its payload at 3...
                level = self._depth - 2
                if level == 0:
                    self.refusal = None
                if level >= 0 and self.refusal is None:
                    self.refusal = _refusal(pair[1], level)
            else:
                self._depth -= 1
            yield pair
