"""Who is online: full JIDs that sent directed presence to the component.

Online presence is edge state, not engine state (reference section 4: "presence-gated
delivery"). Notifications go to each online full JID of each audience member.
"""

from __future__ import annotations

from buddycloud.domain.jid import Jid


class OnlineUsers:
    """Online full JIDs by bare JID. Lookups are O(1) per audience member."""

    def __init__(self) -> None:
        self._by_bare: dict[Jid, set[Jid]] = {}

    def add(self, jid: Jid) -> None:
        self._by_bare.setdefault(jid.bare, set()).add(jid)

    def remove(self, jid: Jid) -> bool:
        """Forget one full JID (or every resource of a bare JID); True if it was online."""
        resources = self._by_bare.get(jid.bare)
        if resources is None:
            return False
        if jid.is_bare:
            del self._by_bare[jid.bare]
            return True
        if jid not in resources:
            return False
        resources.discard(jid)
        if not resources:
            del self._by_bare[jid.bare]
        return True

    def resources(self, bare: Jid) -> frozenset[Jid]:
        return frozenset(self._by_bare.get(bare.bare, ()))

    def is_online(self, jid: Jid) -> bool:
        resources = self._by_bare.get(jid.bare)
        if not resources:
            return False
        return jid.is_bare or jid in resources

    def __len__(self) -> int:
        return sum(len(resources) for resources in self._by_bare.values())

    def clear(self) -> None:
        self._by_bare.clear()
