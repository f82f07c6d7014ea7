"""Tables 5 and 6 of the Buddycloud Channels ProtoXEP, transcribed as the spec prints them.

Independent of buddycloud.domain.permissions on purpose: tests compare the code to this.
Columns: producer, moderator, follower+post, follower, anonymous, banned.
"""

from __future__ import annotations

from buddycloud.domain.model import AccessModel, Role
from buddycloud.domain.permissions import Operation

COLUMNS = (Role.OWNER, Role.MODERATOR, Role.PUBLISHER, Role.MEMBER, Role.NONE, Role.OUTCAST)

# Table 5: channel read permissions. "all" rows hold for every access model.
TABLE_5 = """
READ_METADATA    all        yes yes yes yes yes yes
READ_BANNED      all        yes yes no  no  no  no
READ_PENDING     all        yes yes no  no  no  no
READ_ITEMS       open       yes yes yes yes yes yes
READ_ITEMS       authorize  yes yes yes yes no  no
READ_ITEMS       local      yes yes yes yes no  no
READ_FOLLOWERS   open       yes yes yes yes yes yes
READ_FOLLOWERS   authorize  yes yes yes yes no  no
READ_FOLLOWERS   local      yes yes yes yes no  no
"""

# Table 6: channel write permissions ("own posts" = may delete only their own).
TABLE_6 = """
CONFIGURE_TITLE        yes yes no  no  no  no
CONFIGURE_DESCRIPTION  yes yes no  no  no  no
MANAGE_BANNED          yes yes no  no  no  no
APPROVE_PENDING        yes yes no  no  no  no
PUBLISH                yes yes yes no  no  no
RETRACT_ANY            yes yes no  no  no  no
RETRACT_OWN            yes yes yes no  no  no
"""


# The cells where the server departs from table 5 as printed, with what it does instead.
# Table 7 ("Outcast: cannot view any posts or replies"), the seed ("Banned: a list of users
# that cannot access the channel") and both original servers refuse banned users on open
# channels too; docs/permissions.md, "Banned users and open channels", says why.
DEPARTURES = {
    (Operation.READ_ITEMS, AccessModel.OPEN, Role.OUTCAST): False,
    (Operation.READ_FOLLOWERS, AccessModel.OPEN, Role.OUTCAST): False,
}


def cells_5(*, as_printed: bool = False) -> list[tuple[Operation, AccessModel, Role, bool]]:
    """Table 5's cells as the server applies them, or `as_printed` in the ProtoXEP."""
    cells = []
    for line in TABLE_5.strip().splitlines():
        name, model, *answers = line.split()
        models = list(AccessModel) if model == "all" else [AccessModel(model)]
        for access_model in models:
            for role, answer in zip(COLUMNS, answers, strict=True):
                operation = Operation[name]
                allowed = answer == "yes"
                if not as_printed:
                    allowed = DEPARTURES.get((operation, access_model, role), allowed)
                cells.append((operation, access_model, role, allowed))
    return cells


def cells_6() -> list[tuple[Operation, AccessModel, Role, bool]]:
    cells = []
    for line in TABLE_6.strip().splitlines():
        name, *answers = line.split()
        for access_model in AccessModel:
            for role, answer in zip(COLUMNS, answers, strict=True):
                cells.append((Operation[name], access_model, role, answer == "yes"))
    return cells


def cells() -> list[tuple[Operation, AccessModel, Role, bool]]:
    return cells_5() + cells_6()
