"""Small ElementTree helpers: safe parsing and a serialiser that writes default namespaces.

slixmpp already parsed the stream into ElementTree elements; the edge only parses text it
produced itself (stored payloads) or test fixtures, always through defusedxml so that
entity expansion and external references are refused.
"""

from __future__ import annotations

import functools
from xml.etree.ElementTree import Element, ParseError

from defusedxml.ElementTree import fromstring as _safe_fromstring

from buddycloud.xmpp.namespaces import split_tag

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


def _write(element: Element, parent_namespace: str, out: list[str]) -> None:
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
    out.append(f"</{name}>")


def byte_size(element: Element) -> int:
    """The size of an element serialised as UTF-8, as the payload size limit measures it."""
    return len(serialize(element).encode("utf-8"))


def text_of(element: Element | None) -> str | None:
    """The element's text, '' for an empty element, None when the element is missing."""
    if element is None:
        return None
    return element.text or ""
