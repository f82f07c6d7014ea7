"""XML namespaces of Atom and its extensions, and ElementTree tag helpers."""

from __future__ import annotations

NS_ATOM = "http://www.w3.org/2005/Atom"
NS_THREAD = "http://purl.org/syndication/thread/1.0"
NS_TOMBSTONES = "http://purl.org/atompub/tombstones/1.0"
NS_ACTIVITY = "http://activitystrea.ms/spec/1.0/"
NS_REVIEW = "http://activitystrea.ms/schema/1.0/review"
NS_ATOM_BUDDYCLOUD = "http://buddycloud.com/atom-elements-0"
# Media attached to a post (reference 2.1 and 2.5: `bcm:media/bcm:item id channel`).
NS_MEDIA = "http://buddycloud.org/v1/media"


def qname(namespace: str, name: str) -> str:
    """The ElementTree tag `{namespace}name`."""
    return f"{{{namespace}}}{name}"


def split_tag(tag: str) -> tuple[str, str]:
    """Split an ElementTree tag into (namespace, local name); no namespace gives ''."""
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag
