"""Tables 5 and 6 of the Buddycloud Channels ProtoXEP, cell by cell, against the code."""

from __future__ import annotations

import pytest
from protoxep_tables import DEPARTURES, cells, cells_5, cells_6

from buddycloud.domain.errors import (
    AnonymousReadOnly,
    Banned,
    ClosedNode,
    Forbidden,
    OwnAffiliation,
    OwnerRequired,
    SubscriptionPending,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import AccessModel, Role, SubscriptionState
from buddycloud.domain.permissions import (
    READ_TABLE,
    Operation,
    check_invitation,
    check_role_change,
    may,
    public_models,
    public_scope,
    read_scope,
    require,
)


def test_the_transcription_covers_every_operation_of_both_tables() -> None:
    covered = {cell[0] for cell in cells_5() + cells_6()}
    assert len(cells_5()) == 3 * 3 * 6 + 6 * 6  # 3 "all" rows x 3 models, 6 model rows
    assert len(cells_6()) == 7 * 3 * 6
    assert len(covered) == 12


def test_the_server_departs_from_table_5_only_for_banned_users_of_open_channels() -> None:
    """Table 5 prints "yes" for banned users reading an open channel's posts and followers;
    table 7 says an outcast "cannot view any posts or replies", and the server refuses."""
    printed = {cell[:3]: cell[3] for cell in cells_5(as_printed=True)}
    applied = {cell[:3]: cell[3] for cell in cells_5()}
    differing = {key for key in printed if printed[key] != applied[key]}
    assert differing == set(DEPARTURES)
    for operation, access_model, role in DEPARTURES:
        assert printed[(operation, access_model, role)] is True
        assert may(operation, role, access_model, requester_is_local=False) is False
        assert may(operation, role, access_model, requester_is_local=True) is False
        with pytest.raises(Banned):
            require(operation, role, access_model, requester_is_local=True)


@pytest.mark.parametrize(("operation", "access_model", "role", "expected"), cells_5() + cells_6())
def test_every_cell_for_a_requester_from_another_domain(
    operation: Operation, access_model: AccessModel, role: Role, expected: bool
) -> None:
    assert may(operation, role, access_model, requester_is_local=False) is expected


@pytest.mark.parametrize(("operation", "access_model", "role", "expected"), cells_5() + cells_6())
def test_local_channels_are_open_to_their_home_domain(
    operation: Operation, access_model: AccessModel, role: Role, expected: bool
) -> None:
    """Table 3: `local` appears open to users of its domain, closed to everyone else."""
    result = may(operation, role, access_model, requester_is_local=True)
    if (
        access_model is AccessModel.LOCAL
        and operation in (Operation.READ_ITEMS, Operation.READ_FOLLOWERS)
        and role is Role.NONE
    ):
        assert result is True
    else:
        assert result is expected


def test_a_pending_follower_is_told_the_request_is_pending() -> None:
    with pytest.raises(SubscriptionPending):
        require(
            Operation.READ_ITEMS,
            Role.NONE,
            AccessModel.AUTHORIZE,
            requester_is_local=True,
            subscription=SubscriptionState.PENDING,
        )


def test_a_stranger_is_told_the_channel_is_closed() -> None:
    with pytest.raises(ClosedNode):
        require(Operation.READ_ITEMS, Role.NONE, AccessModel.AUTHORIZE, requester_is_local=False)


def test_a_banned_user_is_told_so() -> None:
    with pytest.raises(Banned):
        require(Operation.PUBLISH, Role.OUTCAST, AccessModel.OPEN, requester_is_local=True)


def test_a_follower_may_not_post() -> None:
    with pytest.raises(Forbidden) as caught:
        require(Operation.PUBLISH, Role.MEMBER, AccessModel.OPEN, requester_is_local=True)
    assert not isinstance(caught.value, Banned | ClosedNode)


ALICE, BOB = Jid.parse("alice@capulet.lit"), Jid.parse("bob@capulet.lit")


@pytest.mark.parametrize(
    ("actor_role", "target_role", "new_role", "error"),
    [
        (Role.OWNER, Role.MEMBER, Role.MODERATOR, None),
        (Role.OWNER, Role.MODERATOR, Role.MEMBER, None),
        (Role.OWNER, Role.PUBLISHER, Role.OUTCAST, None),
        (Role.OWNER, Role.NONE, Role.OWNER, None),
        (Role.OWNER, Role.OWNER, Role.MEMBER, OwnerRequired),
        (Role.MODERATOR, Role.MEMBER, Role.PUBLISHER, None),
        (Role.MODERATOR, Role.PUBLISHER, Role.OUTCAST, None),
        (Role.MODERATOR, Role.MEMBER, Role.MODERATOR, Forbidden),
        (Role.MODERATOR, Role.MEMBER, Role.OWNER, Forbidden),
        (Role.MODERATOR, Role.MODERATOR, Role.MEMBER, Forbidden),
        (Role.MODERATOR, Role.OWNER, Role.OUTCAST, OwnerRequired),
        (Role.PUBLISHER, Role.MEMBER, Role.PUBLISHER, Forbidden),
        (Role.MEMBER, Role.NONE, Role.MEMBER, Forbidden),
        (Role.NONE, Role.MEMBER, Role.OUTCAST, Forbidden),
        (Role.OUTCAST, Role.MEMBER, Role.NONE, Forbidden),
    ],
)
def test_who_may_change_whose_role(
    actor_role: Role, target_role: Role, new_role: Role, error: type[Exception] | None
) -> None:
    def change() -> None:
        check_role_change(
            actor=ALICE,
            actor_role=actor_role,
            target=BOB,
            target_role=target_role,
            new_role=new_role,
        )

    if error is None:
        change()
    else:
        with pytest.raises(error):
            change()


@pytest.mark.parametrize("role", list(Role))
def test_nobody_changes_their_own_role(role: Role) -> None:
    with pytest.raises(OwnAffiliation):
        check_role_change(
            actor=ALICE, actor_role=role, target=ALICE, target_role=role, new_role=Role.MEMBER
        )


def test_the_read_scope_follows_table_5() -> None:
    remote = read_scope(ALICE, requester_is_local=False)
    assert remote.roles_by_model[AccessModel.OPEN] == frozenset(Role) - {Role.OUTCAST}
    assert Role.NONE not in remote.roles_by_model[AccessModel.LOCAL]
    local = read_scope(ALICE, requester_is_local=True)
    assert Role.NONE in local.roles_by_model[AccessModel.LOCAL]
    assert Role.OUTCAST not in local.roles_by_model[AccessModel.LOCAL]
    assert Role.NONE not in local.roles_by_model[AccessModel.AUTHORIZE]


def test_the_public_stream_is_what_a_non_follower_may_read() -> None:
    """The firehose's channels: table 5's item reads for role `none`, less bans."""
    assert public_models(requester_is_local=False) == {AccessModel.OPEN}
    assert public_models(requester_is_local=True) == {AccessModel.OPEN, AccessModel.LOCAL}
    not_banned = frozenset(Role) - {Role.OUTCAST}
    remote = public_scope(ALICE, requester_is_local=False)
    assert remote.requester == ALICE
    assert remote.roles_by_model == {AccessModel.OPEN: not_banned}
    local = public_scope(ALICE, requester_is_local=True)
    assert local.roles_by_model == {AccessModel.OPEN: not_banned, AccessModel.LOCAL: not_banned}


ANONYMOUS_COLUMN = {
    (op, model): expected for op, model, role, expected in cells() if role is Role.NONE
}


@pytest.mark.parametrize("local", [True, False])
@pytest.mark.parametrize("role", [role for role in Role if role is not Role.OUTCAST])
@pytest.mark.parametrize(("operation", "access_model"), sorted(ANONYMOUS_COLUMN, key=str))
def test_an_anonymous_requester_gets_the_anonymous_column_whatever_its_role(
    operation: Operation, access_model: AccessModel, role: Role, local: bool
) -> None:
    """Reference section 5.3: guests are read-only; tables 5-6 give them their own column,
    and a guest is never a home-domain user (so `local` channels stay closed to it)."""
    allowed = may(
        operation, role, access_model, requester_is_local=local, requester_is_anonymous=True
    )
    assert allowed is ANONYMOUS_COLUMN[(operation, access_model)]


@pytest.mark.parametrize("operation", [op for op in Operation if op not in READ_TABLE])
def test_an_anonymous_requester_is_told_it_may_only_read(operation: Operation) -> None:
    with pytest.raises(AnonymousReadOnly) as caught:
        require(
            operation,
            Role.OWNER,
            AccessModel.OPEN,
            requester_is_local=True,
            requester_is_anonymous=True,
        )
    assert "temporary subscription" in caught.value.message


def test_a_banned_anonymous_requester_is_told_it_is_banned() -> None:
    with pytest.raises(Banned):
        require(
            Operation.READ_ITEMS,
            Role.OUTCAST,
            AccessModel.AUTHORIZE,
            requester_is_local=False,
            requester_is_anonymous=True,
        )


def test_following_for_good_is_for_everyone_but_banned_and_anonymous_users() -> None:
    for role in Role:
        expected = role is not Role.OUTCAST
        assert may(Operation.FOLLOW, role, AccessModel.OPEN, requester_is_local=False) is expected
        assert not may(
            Operation.FOLLOW,
            role,
            AccessModel.OPEN,
            requester_is_local=False,
            requester_is_anonymous=True,
        )


@pytest.mark.parametrize("new_role", list(Role))
def test_an_anonymous_user_may_be_banned_but_given_no_role(new_role: Role) -> None:
    def change() -> None:
        check_role_change(
            actor=ALICE,
            actor_role=Role.OWNER,
            target=BOB,
            target_role=Role.NONE,
            new_role=new_role,
            target_is_anonymous=True,
        )

    if new_role in (Role.NONE, Role.OUTCAST):
        change()
    else:
        with pytest.raises(Forbidden):
            change()


def test_an_anonymous_user_changes_no_role_whatever_it_holds() -> None:
    with pytest.raises(AnonymousReadOnly):
        check_role_change(
            actor=ALICE,
            actor_role=Role.OWNER,
            target=BOB,
            target_role=Role.MEMBER,
            new_role=Role.OUTCAST,
            actor_is_anonymous=True,
        )


def test_who_may_be_invited() -> None:
    check_invitation(target=BOB, target_role=Role.NONE, target_is_anonymous=False)
    with pytest.raises(Banned):
        check_invitation(target=BOB, target_role=Role.OUTCAST, target_is_anonymous=False)
    with pytest.raises(Forbidden) as caught:
        check_invitation(target=BOB, target_role=Role.NONE, target_is_anonymous=True)
    assert not isinstance(caught.value, Banned)
