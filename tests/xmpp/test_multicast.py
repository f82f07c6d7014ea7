"""Finding the XMPP server's XEP-0033 service, and its limit (buddycloud.xmpp.multicast)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buddycloud.xmpp.multicast import (
    DEFAULT_LIMIT,
    MAX_ADDRESSES,
    MulticastService,
    QueryFailed,
    discover,
    parse_service,
)
from buddycloud.xmpp.namespaces import NS_ADDRESS, NS_DISCO_INFO, NS_DISCO_ITEMS
from buddycloud.xmpp.xml import parse_xml

SERVICE = "channels.capulet.lit"


def info(*features: str, limit: str | None = None) -> Element:
    form = ""
    if limit is not None:
        form = (
            "<x xmlns='jabber:x:data' type='result'>"
            f"<field var='FORM_TYPE' type='hidden'><value>{NS_ADDRESS}</value></field>"
            f"<field var='message'><value>{limit}</value></field></x>"
        )
    listed = "".join(f"<feature var='{feature}'/>" for feature in features)
    return parse_xml(f"<query xmlns='{NS_DISCO_INFO}'>{listed}{form}</query>")


def items(*jids: str, node: str | None = None) -> Element:
    attribute = f" node='{node}'" if node else ""
    listed = "".join(f"<item jid='{jid}'{attribute}/>" for jid in jids)
    return parse_xml(f"<query xmlns='{NS_DISCO_ITEMS}'>{listed}</query>")


@pytest.mark.parametrize(
    ("advertised", "limit"),
    [
        (None, DEFAULT_LIMIT),
        ("7", 7),
        (" 300 ", 300),
        ("infinite", MAX_ADDRESSES),
        ("100000", MAX_ADDRESSES),
        ("many", DEFAULT_LIMIT),
        ("\u00b2", DEFAULT_LIMIT),  # a digit to str.isdigit, not to int()
    ],
)
def test_the_limit_comes_from_the_service_and_is_capped(advertised: str | None, limit: int) -> None:
    assert parse_service("capulet.lit", info(NS_ADDRESS, limit=advertised)) == MulticastService(
        "capulet.lit", limit
    )


@given(st.text(max_size=30))
def test_any_advertised_limit_gives_a_usable_one_or_none(advertised: str) -> None:
    form = (
        "<x xmlns='jabber:x:data' type='result'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{NS_ADDRESS}</value></field>"
        "<field var='message'><value/></field></x>"
    )
    query = parse_xml(f"<query xmlns='{NS_DISCO_INFO}'><feature var='{NS_ADDRESS}'/>{form}</query>")
    value = query.find(".//{jabber:x:data}field[@var='message']/{jabber:x:data}value")
    assert value is not None
    value.text = advertised
    service = parse_service("capulet.lit", query)
    assert service is None or 2 <= service.limit <= MAX_ADDRESSES


def test_no_feature_or_a_limit_below_two_is_no_multicast() -> None:
    assert parse_service("capulet.lit", info(NS_DISCO_INFO)) is None
    assert parse_service("capulet.lit", info(NS_ADDRESS, limit="1")) is None
    assert parse_service("capulet.lit", info(NS_ADDRESS, limit="0")) is None


class Server:
    """Answers disco queries from a table; records who was asked."""

    def __init__(self, answers: dict[tuple[str, str], Element | Exception]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, str]] = []

    async def query(self, to: str, payload: Element) -> Element:
        key = (to, "info" if payload.tag == f"{{{NS_DISCO_INFO}}}query" else "items")
        self.asked.append(key)
        answer = self.answers.get(key, QueryFailed(f"{to}: item-not-found"))
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_a_server_that_is_its_own_service_is_asked_once() -> None:
    server = Server({("capulet.lit", "info"): info(NS_DISCO_INFO, NS_ADDRESS, limit="1000")})
    found = await discover(server.query, "capulet.lit", own_jid=SERVICE)
    assert found == MulticastService("capulet.lit", MAX_ADDRESSES)
    assert server.asked == [("capulet.lit", "info")]


async def test_otherwise_the_service_is_one_of_the_servers_items() -> None:
    server = Server(
        {
            ("capulet.lit", "info"): info(NS_DISCO_INFO),
            ("capulet.lit", "items"): items(SERVICE, "pubsub.capulet.lit", "multicast.capulet.lit"),
            ("pubsub.capulet.lit", "info"): info("http://jabber.org/protocol/pubsub"),
            ("multicast.capulet.lit", "info"): info(NS_ADDRESS),
        }
    )
    found = await discover(server.query, "capulet.lit", own_jid=SERVICE)
    assert found == MulticastService("multicast.capulet.lit", DEFAULT_LIMIT)
    assert (SERVICE, "info") not in server.asked  # never asks itself


async def test_items_with_nodes_are_not_services() -> None:
    server = Server(
        {
            ("capulet.lit", "info"): info(NS_DISCO_INFO),
            ("capulet.lit", "items"): items("multicast.capulet.lit", node="x"),
            ("multicast.capulet.lit", "info"): info(NS_ADDRESS),
        }
    )
    assert await discover(server.query, "capulet.lit", own_jid=SERVICE) is None


async def test_errors_and_silence_mean_no_multicast() -> None:
    silent = Server({("capulet.lit", "info"): QueryFailed("capulet.lit did not answer")})
    assert await discover(silent.query, "capulet.lit", own_jid=SERVICE) is None
    failing_items = Server(
        {
            ("capulet.lit", "info"): info(NS_DISCO_INFO),
            ("capulet.lit", "items"): items("a.capulet.lit", "b.capulet.lit"),
            ("b.capulet.lit", "info"): info(NS_ADDRESS, limit="50"),
        }
    )
    found = await discover(failing_items.query, "capulet.lit", own_jid=SERVICE)
    assert found == MulticastService("b.capulet.lit", 50)  # a.capulet.lit's error is skipped
