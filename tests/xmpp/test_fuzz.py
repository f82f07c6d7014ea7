"""Fuzzing every parser: random and mutated elements raise only domain or edge errors.

A parser may refuse input, but only with a `ChannelError` (which the router maps to a
stanza error); anything else would become an internal-server-error.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buddycloud.domain.errors import ChannelError
from buddycloud.wire.atom import parse_entry
from buddycloud.xmpp import stanzas
from buddycloud.xmpp.forms import parse_config_update, parse_form
from buddycloud.xmpp.namespaces import (
    NS_ACTIVITY,
    NS_ATOM,
    NS_BUDDYCLOUD,
    NS_DATA_FORMS,
    NS_DISCO_INFO,
    NS_MAM,
    NS_MAM_TMP,
    NS_PUBSUB,
    NS_PUBSUB_OWNER,
    NS_REGISTER,
    NS_REVIEW,
    NS_RSM,
    NS_SEARCH,
    NS_THREAD,
    qname,
)
from buddycloud.xmpp.router import find_handler, route_key
from buddycloud.xmpp.rsm import parse_rsm
from buddycloud.xmpp.xml import parse_xml

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"

NAMESPACES = [
    NS_PUBSUB,
    NS_PUBSUB_OWNER,
    NS_BUDDYCLOUD,
    NS_RSM,
    NS_DATA_FORMS,
    NS_ATOM,
    NS_THREAD,
    NS_ACTIVITY,
    NS_REVIEW,
    NS_MAM,
    NS_MAM_TMP,
    "urn:example",
    "",
]
NAMES = [
    "pubsub", "create", "configure", "publish", "item", "retract", "items", "subscribe",
    "unsubscribe", "subscriptions", "subscription", "affiliations", "affiliation", "delete",
    "recent-items", "user-items", "replies", "thread", "threads",
    "subscriptions-with-configuration",
    "subscription-filter", "configuration-filter", "allow", "set", "max", "after", "before",
    "x", "field", "value", "entry", "content", "title", "in-reply-to", "target", "id", "rating",
    "verb", "object", "object-type", "query", "remove", "actor", "options", "start", "end",
]  # fmt: skip
ATTRIBUTES = [
    "node", "jid", "id", "max_items", "parent-only", "notify", "type", "var", "since", "max",
    "item_id", "subscription", "affiliation", "field", "value", "ref", "queryid",
]  # fmt: skip
_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n"),
    max_size=40,
)
VALUES = st.one_of(
    _TEXT,
    st.sampled_from(
        [
            "/user/juliet@capulet.lit/posts",
            "/user/juliet@capulet.lit/",
            "/user/@/posts",
            "juliet@capulet.lit",
            "juliet@capulet.lit/balcony",
            "@",
            "",
            "1",
            "0",
            "true",
            "false",
            "-1",
            "99999999999999",
            "submit",
            "form",
            "result",
            "cancel",
            "pubsub#access_model",
            "pubsub#max_items",
            "FORM_TYPE",
            "subscribed",
            "owner",
            "tag:channels.capulet.lit,/user/juliet@capulet.lit/posts,abc",
            "2014-04-18T10:46.100Z",
            "xhtml",
            "max",
        ]
    ),
)


@st.composite
def elements(draw: st.DrawFn, depth: int = 2) -> Element:
    namespace = draw(st.sampled_from(NAMESPACES))
    name = draw(st.sampled_from(NAMES))
    attributes = draw(st.dictionaries(st.sampled_from(ATTRIBUTES), VALUES, max_size=4))
    element = Element(qname(namespace, name) if namespace else name, attributes)
    if draw(st.booleans()):
        element.text = draw(VALUES)
    if depth > 0:
        for child in draw(st.lists(elements(depth - 1), max_size=3)):
            element.append(child)
    return element


def _wrapped(namespace: str, name: str) -> st.SearchStrategy[Element]:
    def build(children: list[Element]) -> Element:
        root = Element(qname(namespace, name))
        root.extend(children)
        return root

    return st.lists(elements(), max_size=3).map(build)


Parser = Callable[[Element], Any]

# Each parser with the operation element it looks for, so that most examples reach past
# the first check.
PUBSUB_PARSERS: list[tuple[str, str, Parser]] = [
    (NS_PUBSUB, "create", stanzas.parse_create),
    (NS_PUBSUB_OWNER, "configure", stanzas.parse_configure_get),
    (NS_PUBSUB_OWNER, "configure", stanzas.parse_configure_set),
    (NS_PUBSUB_OWNER, "delete", stanzas.parse_delete),
    (NS_PUBSUB, "publish", stanzas.parse_publish),
    (NS_PUBSUB, "publish", lambda e: stanzas.parse_publish(e, max_payload_bytes=64)),
    (NS_PUBSUB, "retract", stanzas.parse_retract),
    (NS_PUBSUB, "items", stanzas.parse_items),
    (NS_PUBSUB, "subscribe", stanzas.parse_subscribe),
    (NS_PUBSUB, "unsubscribe", stanzas.parse_unsubscribe),
    (NS_PUBSUB, "subscriptions", stanzas.parse_subscriptions),
    (NS_PUBSUB_OWNER, "subscriptions", stanzas.parse_subscriptions),
    (NS_PUBSUB, "affiliations", stanzas.parse_affiliations),
    (NS_PUBSUB_OWNER, "subscriptions", stanzas.parse_subscriptions_set),
    (NS_PUBSUB_OWNER, "affiliations", stanzas.parse_affiliations_set),
    (NS_BUDDYCLOUD, "recent-items", stanzas.parse_recent_items),
    (NS_BUDDYCLOUD, "user-items", stanzas.parse_user_items),
    (NS_BUDDYCLOUD, "replies", stanzas.parse_replies),
    (NS_BUDDYCLOUD, "thread", stanzas.parse_thread),
    (NS_PUBSUB, "threads", stanzas.parse_threads),
    (
        NS_BUDDYCLOUD,
        "subscriptions-with-configuration",
        stanzas.parse_subscriptions_with_configuration,
    ),
]
QUERY_PARSERS: list[tuple[str, Parser]] = [
    (NS_DISCO_INFO, stanzas.parse_disco_info),
    (NS_DISCO_INFO, stanzas.parse_disco_items),
    (NS_REGISTER, stanzas.parse_register),
    (NS_SEARCH, stanzas.parse_search),
    (NS_MAM, stanzas.parse_mam_query),
    (NS_MAM, parse_rsm),
    (NS_MAM_TMP, stanzas.parse_inbox_sync),
    ("jabber:component:accept", stanzas.parse_authorization_answer),
]

# BUDDYCLOUD_FUZZ_EXAMPLES=2000 for a long run; the default keeps the suite quick.
FUZZ = settings(
    max_examples=int(os.environ.get("BUDDYCLOUD_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def only_domain_errors(parser: Parser, element: Element) -> None:
    try:
        parser(element)
    except ChannelError:
        pass


@pytest.mark.parametrize(("namespace", "name", "parser"), PUBSUB_PARSERS)
@FUZZ
@given(data=st.data())
def test_pubsub_parsers_raise_only_domain_errors(
    namespace: str, name: str, parser: Parser, data: st.DataObject
) -> None:
    wrapper = NS_PUBSUB_OWNER if namespace == NS_PUBSUB_OWNER else NS_PUBSUB
    pubsub = data.draw(_wrapped(wrapper, "pubsub"))
    operation = Element(
        qname(namespace, name),
        data.draw(st.dictionaries(st.sampled_from(ATTRIBUTES), VALUES, max_size=4)),
    )
    operation.extend(data.draw(st.lists(elements(), max_size=3)))
    pubsub.insert(data.draw(st.integers(0, len(pubsub))), operation)
    only_domain_errors(parser, pubsub)


@pytest.mark.parametrize(("namespace", "parser"), QUERY_PARSERS)
@FUZZ
@given(data=st.data())
def test_query_parsers_raise_only_domain_errors(
    namespace: str, parser: Parser, data: st.DataObject
) -> None:
    only_domain_errors(parser, data.draw(_wrapped(namespace, "query")))


@FUZZ
@given(element=elements())
def test_entries_forms_and_routing_raise_only_domain_errors(element: Element) -> None:
    only_domain_errors(lambda e: parse_entry(e, byte_size=0), element)
    only_domain_errors(lambda e: parse_config_update(parse_form(e)), element)
    for iq_type in ("get", "set"):
        only_domain_errors(lambda e, t=iq_type: find_handler(route_key(t, e)), element)  # type: ignore[misc]


def _mutations(root: Element) -> st.SearchStrategy[Element]:
    nodes = list(root.iter())

    @st.composite
    def mutate(draw: st.DrawFn) -> Element:
        mutated = copy.deepcopy(root)
        targets = list(mutated.iter())
        for _ in range(draw(st.integers(1, 4))):
            target = draw(st.sampled_from(targets))
            action = draw(st.integers(0, 4))
            if action == 0 and target.attrib:
                del target.attrib[draw(st.sampled_from(sorted(target.attrib)))]
            elif action == 1 and len(target):
                target.remove(draw(st.sampled_from(list(target))))
            elif action == 2:
                target.text = draw(VALUES)
            elif action == 3:
                target.set(draw(st.sampled_from(ATTRIBUTES)), draw(VALUES))
            else:
                target.append(draw(elements(1)))
        return mutated

    assert nodes
    return mutate()


FIXTURE_PARSERS: list[tuple[str, Parser]] = [
    ("protoxep-12-publish.xml", stanzas.parse_publish),
    ("protoxep-07-recent-items.xml", stanzas.parse_recent_items),
    ("protoxep-09-retract.xml", stanzas.parse_retract),
    (
        "protoxep-19-subscriptions-with-configuration.xml",
        stanzas.parse_subscriptions_with_configuration,
    ),
    ("xep-0060-create-configure.xml", stanzas.parse_create),
    ("xep-0313-node-query.xml", stanzas.parse_mam_query),
]


@pytest.mark.parametrize(("name", "parser"), FIXTURE_PARSERS)
@FUZZ
@given(data=st.data())
def test_mutated_examples_raise_only_domain_errors(
    name: str, parser: Parser, data: st.DataObject
) -> None:
    payload = next(iter(parse_xml((FIXTURES / name).read_text())))
    only_domain_errors(parser, data.draw(_mutations(payload)))


@FUZZ
@given(data=st.data())
def test_mutated_entries_raise_only_domain_errors(data: st.DataObject) -> None:
    for name in ("protoxep-13-entry.xml", "protoxep-15-reference.xml"):
        entry = parse_xml((FIXTURES / name).read_text())
        only_domain_errors(lambda e: parse_entry(e, byte_size=0), data.draw(_mutations(entry)))
