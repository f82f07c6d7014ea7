"""The Prosody module for XEP-0033 multicast, run by Prosody's Lua with Prosody's libraries.

A harness (tests/fixtures/lua/multicast_harness.lua) stands in for Prosody's module API and
stanza routing, and prints what the module posted and answered. The module's work inside
a real Prosody is covered by the end-to-end tests, whose every notification goes through
it (tests/e2e/test_notifications_multicast.py).
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from buddycloud.prosody import PROSODY_MODULES

LUA = "lua5.4"
HARNESS = Path(__file__).parent.parent / "fixtures" / "lua" / "multicast_harness.lua"
MODULE = PROSODY_MODULES / "mod_buddycloud_multicast.lua"
NS_ADDRESS = "http://jabber.org/protocol/address"
BODY = (
    "<event xmlns='http://jabber.org/protocol/pubsub#event'>"
    "<items node='/user/juliet@capulet.lit/posts'><item id='1'/></items></event>"
)


@dataclass
class Outcome:
    handled: bool
    posted: list[tuple[str, ET.Element]]
    sent: list[ET.Element]
    features: list[str]
    extensions: list[ET.Element]


def run(origin: str, stanza: str, *, limit: int | None = None) -> Outcome:
    if shutil.which(LUA) is None or not Path("/usr/lib/prosody/util/stanza.lua").exists():
        pytest.skip("needs Prosody 0.12 and its lua5.4 (Debian: apt-get install -y prosody)")
    args = [LUA, str(HARNESS), str(MODULE), origin, stanza]
    if limit is not None:
        args.append(str(limit))
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    outcome = Outcome(False, [], [], [], [])
    for line in done.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "POST":
            origin_type, _, text = rest.partition(" ")
            outcome.posted.append((origin_type, ET.fromstring(text)))
        elif kind == "SEND":
            outcome.sent.append(ET.fromstring(rest))
        elif kind == "FEATURE":
            outcome.features.append(rest)
        elif kind == "EXTENSION":
            outcome.extensions.append(ET.fromstring(rest))
        elif kind == "HANDLED":
            outcome.handled = rest == "true"
    return outcome


def multicast(addresses: str, *, attributes: str = "") -> str:
    return (
        f"<message from='channels.capulet.lit' to='capulet.lit' type='headline' id='m1'"
        f"{attributes}><addresses xmlns='{NS_ADDRESS}'>{addresses}</addresses>{BODY}</message>"
    )


def bcc(jid: str) -> str:
    return f"<address type='bcc' jid='{jid}'/>"


def error_condition(stanza: ET.Element) -> str:
    error = stanza.find("error")
    assert error is not None, ET.tostring(stanza)
    return error[0].tag.split("}")[1]


def test_a_component_reaches_each_bcc_address_once_and_no_one_sees_the_others() -> None:
    outcome = run(
        "component",
        multicast(
            bcc("juliet@capulet.lit/balcony")
            + bcc("romeo@montague.lit/garden")
            + bcc("juliet@CAPULET.lit/balcony")
        ),
    )
    assert outcome.handled
    assert outcome.sent == []
    assert [(origin, copy.get("to")) for origin, copy in outcome.posted] == [
        ("component", "juliet@capulet.lit/balcony"),
        ("component", "romeo@montague.lit/garden"),
    ]
    for _, copy in outcome.posted:
        assert copy.get("from") == "channels.capulet.lit"
        assert copy.get("type") == "headline"
        assert copy.get("id") == "m1"
        assert copy.find(f"{{{NS_ADDRESS}}}addresses") is None
        items = copy.find(".//{http://jabber.org/protocol/pubsub#event}items")
        assert items is not None
        assert items.get("node") == "/user/juliet@capulet.lit/posts"


def test_to_and_cc_addresses_stay_visible_marked_delivered() -> None:
    outcome = run(
        "component",
        multicast(
            "<address type='to' jid='juliet@capulet.lit'/>"
            "<address type='cc' jid='nurse@capulet.lit'/>"
            + bcc("romeo@montague.lit")
            + "<address type='replyto' jid='channels.capulet.lit'/>"
        ),
    )
    assert [copy.get("to") for _, copy in outcome.posted] == [
        "juliet@capulet.lit",
        "nurse@capulet.lit",
        "romeo@montague.lit",
    ]
    for _, copy in outcome.posted:
        shown = copy.find(f"{{{NS_ADDRESS}}}addresses")
        assert shown is not None
        assert [(a.get("type"), a.get("jid"), a.get("delivered")) for a in shown] == [
            ("to", "juliet@capulet.lit", "true"),
            ("cc", "nurse@capulet.lit", "true"),
            ("replyto", "channels.capulet.lit", None),
        ]


def test_users_may_not_multicast_through_the_server() -> None:
    outcome = run("c2s", multicast(bcc("juliet@capulet.lit/balcony")))
    assert outcome.handled
    assert outcome.posted == []
    assert [error_condition(reply) for reply in outcome.sent] == ["forbidden"]


def test_a_bad_address_refuses_the_whole_stanza() -> None:
    outcome = run("component", multicast(bcc("juliet@capulet.lit/balcony") + bcc("@@bad")))
    assert outcome.posted == []
    assert [error_condition(reply) for reply in outcome.sent] == ["jid-malformed"]
    assert outcome.sent[0].get("to") == "channels.capulet.lit"


def test_more_addresses_than_the_limit_are_refused_whole() -> None:
    addresses = "".join(bcc(f"user{k}@capulet.lit/r") for k in range(4))
    refused = run("component", multicast(addresses), limit=3)
    assert refused.posted == []
    assert [error_condition(reply) for reply in refused.sent] == ["not-acceptable"]
    assert len(run("component", multicast(addresses), limit=4).posted) == 4


def test_other_messages_to_the_host_are_left_to_prosody() -> None:
    outcome = run("c2s", f"<message from='juliet@capulet.lit/b' to='capulet.lit'>{BODY}</message>")
    assert not outcome.handled
    assert outcome.posted == outcome.sent == []


def test_the_service_and_its_limit_are_advertised() -> None:
    outcome = run("component", multicast(bcc("juliet@capulet.lit/b")), limit=250)
    assert outcome.features == [NS_ADDRESS]
    (form,) = outcome.extensions
    values = {
        field.get("var"): [value.text for value in field.findall("{jabber:x:data}value")]
        for field in form.findall("{jabber:x:data}field")
    }
    assert values == {"FORM_TYPE": [NS_ADDRESS], "message": ["250"]}
