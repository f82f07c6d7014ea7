"""Who is online: full JIDs that sent directed presence to the component.

Online presence is edge state, not engine state (reference section 4: "presence-gated
delivery"). Notifications go to each online full JID of each audience member.
"""

from __future__ import annotations

from buddycloud.domain.jid import Jid
from buddycloud.xmpp.xml import quote_attribute


class OnlineUsers:
    """Online full JIDs by bare JID. Lookups are O(1) per audience member.

    Each bare JID's online resources are also kept as ready-quoted `to` attribute values,
    rebuilt when its resources change, so that a notification's fan-out formats nothing
    per recipient but the stanza itself.
    """

    def __init__(self) -> None:
        self._by_bare: dict[Jid, set[Jid]] = {}
        self._addresses: dict[Jid, tuple[str, ...]] = {}

    def add(self, jid: Jid) -> None:
        resources = self._by_bare.setdefault(jid.bare, set())
        if jid not in resources:
            resources.add(jid)
            self._quote(jid.bare)

    def remove(self, jid: Jid) -> bool:
        """Forget one full JID (or every resource of a bare JID); True if it was online."""
        resources = self._by_bare.get(jid.bare)
        if resources is None:
            return False
        if jid.is_bare:
            del self._by_bare[jid.bare]
            del self._addresses[jid.bare]
            return True
        if jid not in resources:
            return False
        resources.discard(jid)
        if not resources:
            del self._by_bare[jid.bare]
        self._quote(jid.bare)
        return True

    def _quote(self, bare: Jid) -> None:
        resources = self._by_bare.get(bare)
        if resources:
            self._addresses[bare] = tuple(quote_attribute(str(jid)) for jid in resources)
        else:
            self._addresses.pop(bare, None)

    def addresses(self, bare: Jid) -> tuple[str, ...]:
        """The online resources of `bare` as quoted XML attribute values; () if offline."""
        return self._addresses.get(bare.bare, ())

    def is_online(self, jid: Jid) -> bool:
        resources = self._by_bare.get(jid.bare)
        if not resources:
            return False
        return jid.is_bare or jid in resources

    def __len__(self) -> int:
        return sum(len(resources) for resources in self._by_bare.values())

    def clear(self) -> None:
        self._by_bare.clear()
        self._addresses.clear()
