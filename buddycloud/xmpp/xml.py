"""Small ElementTree helpers: the bounded stream parser, safe parsing of stored XML, and a
serialiser that writes default namespaces.

The component's stream is parsed by slixmpp with `BoundedPullParser`, which measures every
element of a stanza as it starts (depth, attributes, names: the limits below, documented in
docs/xmpp.md). Otherwise the edge only parses text it produced itself (stored payloads) or
test fixtures, through defusedxml so that entity expansion and external references are
refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from defusedxml.ElementTree import fromstring as _safe_fromstring

from buddycloud.xmpp.namespaces import split_tag

NS_XML = "http://www.w3.org/XML/1998/namespace"

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


class UnsafeXml(ValueError):
    """Text could not be parsed as safe, well-formed XML."""


def parse_xml(text: str) -> Element:
    """Parse XML text with defusedxml.

    Raises:
        UnsafeXml: the text is not well-formed or uses forbidden constructs (DTDs, entities).
    """
    try:
        element: Element = _safe_fromstring(text)
    except (ParseError, ValueError) as exc:
        raise UnsafeXml(str(exc)) from None
    except Exception as exc:  # defusedxml raises its own DefusedXmlException subclasses
        raise UnsafeXml(str(exc)) from None
    return element


def serialize(element: Element, *, parent_namespace: str = "") -> str:
    """Serialise an element as XML text, declaring namespaces as default namespaces.

    The result reads like the examples of the specifications (`<event xmlns="...">`), and a
    top-level element without a namespace inherits the stream's default namespace.
    """
    parts: list[str] = []
    _write(element, parent_namespace, parts)
    return "".join(parts)


@functools.lru_cache(maxsize=4096)
def _split(tag: str) -> tuple[str, str]:
    # The same few dozen tags make up every stanza; split each once.
    return split_tag(tag)


def escape_text(text: str) -> str:
    """`text` as XML character data."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    return text


_ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\n": "&#10;",
        "\r": "&#13;",
        "\t": "&#9;",
    }
)
_ATTRIBUTE_SPECIALS = frozenset('&<>"\n\r\t')


def quote_attribute(value: str) -> str:
    """`value` as a double-quoted XML attribute value."""
    if _ATTRIBUTE_SPECIALS.isdisjoint(value):
        return f'"{value}"'
    return f'"{value.translate(_ATTRIBUTE_ESCAPES)}"'


class Prewritten(Element):
    """An element whose serialisation is known already: `serialize` copies `xml` instead of
    writing the element again, when the element sits in a parent of namespace `context`.

    A reply cut to the stanza size limit measures each child by serialising it; the
    reply's serialisation then reuses that text.
    """

    xml: str
    context: str


def prewritten(element: Element, xml: str, context: str) -> Prewritten:
    """A copy of `element` carrying its serialisation `xml`, written for a parent of
    namespace `context` (`serialize(element, parent_namespace=context)`)."""
    copy = Prewritten(element.tag, element.attrib)
    copy.text = element.text
    copy.tail = element.tail
    copy.extend(element)
    copy.xml = xml
    copy.context = context
    return copy


def wrapper_size(element: Element, parent_namespace: str = "") -> int:
    """The UTF-8 bytes of `element`'s start and end tags, as `serialize` writes them around
    content, in a parent of namespace `parent_namespace` (its own text and children are
    not counted)."""
    parts: list[str] = []
    _start(element, parent_namespace, parts)
    name = _split(element.tag)[1]
    return utf8_size("".join(parts)) + len(name) + 4  # ">" and "</name>"


def namespace_of(element: Element) -> str:
    return _split(element.tag)[0]


def utf8_size(text: str) -> int:
    """The length of `text` encoded as UTF-8."""
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _start(element: Element, parent_namespace: str, out: list[str]) -> str:
    """Write `<name xmlns… attributes` (without the closing `>`); the element's namespace."""
    namespace, name = _split(element.tag)
    out.append("<" + name)
    if namespace != parent_namespace:
        out.append(" xmlns=" + quote_attribute(namespace))
    prefixes: dict[str, str] = {}
    for key, value in element.attrib.items():
        attr_ns, attr_name = _split(key)
        if not attr_ns:
            out.append(f" {attr_name}={quote_attribute(value)}")
        elif attr_ns == NS_XML:
            out.append(f" xml:{attr_name}={quote_attribute(value)}")
        else:
            prefix = prefixes.get(attr_ns)
            if prefix is None:
                prefix = f"ns{len(prefixes)}"
                prefixes[attr_ns] = prefix
                out.append(f" xmlns:{prefix}={quote_attribute(attr_ns)}")
            out.append(f" {prefix}:{attr_name}={quote_attribute(value)}")
    return namespace


def _write(element: Element, parent_namespace: str, out: list[str]) -> None:
    if type(element) is Prewritten and element.context == parent_namespace:
        out.append(element.xml)
        return
    namespace = _start(element, parent_namespace, out)
    text = element.text
    if not text and not len(element):
        out.append("/>")
        return
    out.append(">")
    if text:
        out.append(escape_text(text))
    for child in element:
        _write(child, namespace, out)
        if child.tail:
            out.append(escape_text(child.tail))
    out.append(f"</{_split(element.tag)[1]}>")


def byte_size(element: Element) -> int:
    """The size of an element serialised as UTF-8, as the payload size limit measures it."""
    return len(serialize(element).encode("utf-8"))


def text_of(element: Element | None) -> str | None:
    """The element's text, '' for an empty element, None when the element is missing."""
    if element is None:
        return None
    return element.text or ""
