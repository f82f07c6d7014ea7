"""The DNS TXT half of discovery, against a real DNS server (dnsmasq on loopback)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dnsmasq_support import free_udp_port, running_dnsmasq, unavailable_reason

from buddycloud.domain.jid import Jid
from buddycloud.federation.dns import DnsTxtLookup, parse_server_record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=1.0 server=channels.verona.lit", "channels.verona.lit"),
        ("v=1.0 server=server01.verona.lit.", "server01.verona.lit"),  # ProtoXEP example 5
        ("server=channels.verona.lit v=1.0", "channels.verona.lit"),
        ("v=1.1  server=Channels.Verona.lit", "channels.verona.lit"),
        ("v=2.0 server=channels.verona.lit", None),
        ("server=channels.verona.lit", None),
        ("v=1.0", None),
        ("v=1.0 server=", None),
        ("v=1.0 server=juliet@verona.lit", None),
        ("v=1.0 server=channels.verona.lit/res", None),
        ("v=1.0 server=a<b.lit", None),
        ("v=1.0 server=a.lit server=b.lit", None),
        ("v=1.0 junk server=a.lit", None),
        ("v=1.0 server=a.lit " + "x" * 2000, None),
        ("", None),
    ],
)
def test_only_a_well_formed_record_names_a_server(text: str, expected: str | None) -> None:
    found = parse_server_record(text)
    assert (str(found) if found is not None else None) == expected


@pytest.fixture
def dnsmasq_required() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.usefixtures("dnsmasq_required")
async def test_the_txt_record_names_the_channel_server(tmp_path: Path) -> None:
    records = {
        "_bcloud-server._tcp.verona.lit": "v=1.0 server=channels.verona.lit",
        "_bcloud-server._tcp.mantua.lit": "just some text",
    }
    with running_dnsmasq(records, tmp_path) as nameserver:
        lookup = DnsTxtLookup([nameserver], timeout=3)
        assert await lookup("verona.lit") == Jid.parse("channels.verona.lit")
        # A domain without the record, and one whose record is not ours: no server.
        assert await lookup("padua.lit") is None
        assert await lookup("mantua.lit") is None


@pytest.mark.usefixtures("dnsmasq_required")
async def test_a_nameserver_that_does_not_answer_gives_no_server_within_the_timeout(
    tmp_path: Path,
) -> None:
    lookup = DnsTxtLookup([("127.0.0.1", free_udp_port())], timeout=1)
    started = time.monotonic()
    assert await lookup("verona.lit") is None
    assert time.monotonic() - started < 3
