"""Small ElementTree helpers: safe parsing and a serialiser that writes default namespaces.

What is parsed here (stored payloads, HTTP request bodies, test fixtures) goes through
defusedxml, so that entity expansion and external references are refused. The XMPP
stream itself is parsed by slixmpp with the XMPP edge's bounded parser
(`buddycloud.xmpp.xml`).
"""

from __future__ import annotations

import functools
from xml.etree.ElementTree import Element, ParseError

from defusedxml.ElementTree import fromstring as _safe_fromstring

from buddycloud.wire.namespaces import split_tag

NS_XML = "http://www.w3.org/XML/1998/namespace"


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
