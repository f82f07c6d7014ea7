"""Who is online, as the notification fan-out reads it."""

from __future__ import annotations

from buddycloud.domain.jid import Jid
from buddycloud.xmpp.presence import OnlineUsers


def test_addresses_follow_resources_coming_and_going() -> None:
    online = OnlineUsers()
    juliet = Jid.parse("juliet@capulet.lit")
    online.add(Jid.parse("juliet@capulet.lit/balcony"))
    online.add(Jid.parse("juliet@capulet.lit/chamber"))
    online.add(Jid.parse("juliet@capulet.lit/balcony"))  # twice online is once
    assert sorted(online.addresses(juliet)) == [
        '"juliet@capulet.lit/balcony"',
        '"juliet@capulet.lit/chamber"',
    ]
    # Any form of the JID finds the bare JID's resources.
    assert online.addresses(Jid.parse("juliet@capulet.lit/elsewhere")) == online.addresses(juliet)
    assert online.remove(Jid.parse("juliet@capulet.lit/balcony"))
    assert online.addresses(juliet) == ('"juliet@capulet.lit/chamber"',)
    assert not online.remove(Jid.parse("juliet@capulet.lit/balcony"))
    assert online.remove(Jid.parse("juliet@capulet.lit/chamber"))
    assert online.addresses(juliet) == ()
    assert not online.is_online(juliet)


def test_a_bare_unavailable_takes_every_resource_offline() -> None:
    online = OnlineUsers()
    online.add(Jid.parse("romeo@montague.lit/orchard"))
    online.add(Jid.parse("romeo@montague.lit/street"))
    assert online.remove(Jid.parse("romeo@montague.lit"))
    assert online.addresses(Jid.parse("romeo@montague.lit")) == ()
    assert len(online) == 0


def test_addresses_are_quoted_for_xml() -> None:
    online = OnlineUsers()
    # A resource may hold any character, quotes and ampersands included.
    online.add(Jid.parse('nurse@capulet.lit/kitchen "&" garden'))
    assert online.addresses(Jid.parse("nurse@capulet.lit")) == (
        '"nurse@capulet.lit/kitchen &quot;&amp;&quot; garden"',
    )
    online.clear()
    assert online.addresses(Jid.parse("nurse@capulet.lit")) == ()
