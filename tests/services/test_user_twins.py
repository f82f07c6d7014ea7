"""XMPP twins of the built-in accounts: the XMPP server's account is written first, and the
account here only once that succeeded, so the two never disagree silently (docs/auth.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from engine_support import JULIET, posts, text

from buddycloud.domain.errors import (
    AccountDirectoryUnavailable,
    AccountExists,
    AccountNotFound,
    InvalidConfiguration,
    InvalidResetToken,
    NotAuthenticated,
)
from buddycloud.domain.jid import Jid
from buddycloud.services.engine import Engine

PASSWORD = "balcony-at-midnight"
NEW_PASSWORD = "a-rose-by-any-other-name"


@dataclass
class FakeDirectory:
    """The XMPP server's accounts, in memory; `down` makes every command fail."""

    accounts: dict[Jid, str] = field(default_factory=dict)
    down: bool = False
    calls: list[str] = field(default_factory=list)

    def _check(self, what: str) -> None:
        self.calls.append(what)
        if self.down:
            raise AccountDirectoryUnavailable("the XMPP server did not answer")

    async def add(self, user: Jid, password: str) -> None:
        self._check("add")
        if user in self.accounts:
            raise AccountExists(str(user))
        self.accounts[user] = password

    async def change_password(self, user: Jid, password: str) -> None:
        self._check("change")
        if user not in self.accounts:
            raise AccountNotFound(str(user))
        self.accounts[user] = password

    async def remove(self, user: Jid) -> None:
        self._check("remove")
        if self.accounts.pop(user, None) is None:
            raise AccountNotFound(str(user))


@pytest.fixture
def directory(engine: Engine) -> FakeDirectory:
    fake = FakeDirectory()
    engine.use_account_directory(fake)
    return fake


async def test_a_new_account_is_made_on_the_xmpp_server_with_the_same_password(
    engine: Engine, directory: FakeDirectory
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    assert directory.accounts == {JULIET: PASSWORD}
    assert await engine.authenticate("juliet", PASSWORD) == JULIET
    await engine.publish(JULIET, posts(JULIET), text("my channel exists"))


async def test_an_xmpp_server_that_fails_leaves_no_account_here(
    engine: Engine, directory: FakeDirectory
) -> None:
    directory.down = True

    with pytest.raises(AccountDirectoryUnavailable):
        await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    assert await engine.find_account(JULIET) is None
    with pytest.raises(NotAuthenticated):
        await engine.authenticate("juliet", PASSWORD)
    directory.down = False
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")  # free to retry
    assert directory.accounts == {JULIET: PASSWORD}


async def test_a_name_an_xmpp_user_has_is_taken(engine: Engine, directory: FakeDirectory) -> None:
    directory.accounts[JULIET] = "her own xmpp password"

    with pytest.raises(AccountExists):
        await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    assert directory.accounts == {JULIET: "her own xmpp password"}
    assert await engine.find_account(JULIET) is None


async def test_a_name_taken_here_never_reaches_the_xmpp_server(
    engine: Engine, directory: FakeDirectory
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    directory.calls.clear()

    with pytest.raises(AccountExists):
        await engine.create_account("juliet", "another-password", "other@example.org")

    assert directory.calls == [] and directory.accounts == {JULIET: PASSWORD}


async def test_bad_input_is_refused_before_the_xmpp_server_is_asked(
    engine: Engine, directory: FakeDirectory
) -> None:
    with pytest.raises(InvalidConfiguration):
        await engine.create_account("juliet", "short", "juliet@example.org")
    with pytest.raises(InvalidConfiguration):
        await engine.create_account("juliet", PASSWORD, "not an address")

    assert directory.calls == []


async def test_when_the_account_here_cannot_be_stored_the_xmpp_one_is_removed(
    engine: Engine, directory: FakeDirectory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_insert(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(engine.storage, "insert_account", broken_insert)

    with pytest.raises(OSError, match="disk full"):
        await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    assert directory.accounts == {}


async def test_a_new_password_reaches_the_xmpp_server_first(
    engine: Engine, directory: FakeDirectory
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    await engine.change_password(JULIET, NEW_PASSWORD)

    assert directory.accounts == {JULIET: NEW_PASSWORD}
    assert await engine.authenticate("juliet", NEW_PASSWORD) == JULIET


async def test_a_password_the_xmpp_server_did_not_take_is_not_taken_here(
    engine: Engine, directory: FakeDirectory
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    directory.down = True

    with pytest.raises(AccountDirectoryUnavailable):
        await engine.change_password(JULIET, NEW_PASSWORD)

    assert await engine.authenticate("juliet", PASSWORD) == JULIET
    with pytest.raises(NotAuthenticated):
        await engine.authenticate("juliet", NEW_PASSWORD)


async def test_an_account_made_before_twins_gets_one_with_its_next_password(
    engine: Engine,
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    directory = FakeDirectory()
    engine.use_account_directory(directory)

    await engine.change_password(JULIET, NEW_PASSWORD)

    assert directory.accounts == {JULIET: NEW_PASSWORD}
    assert directory.calls == ["change", "add"]


async def test_deleting_removes_the_xmpp_account_first(
    engine: Engine, directory: FakeDirectory
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    await engine.delete_account(JULIET)

    assert directory.accounts == {}
    assert await engine.find_account(JULIET) is None


async def test_an_xmpp_server_that_fails_keeps_the_account_and_its_channel(
    engine: Engine, directory: FakeDirectory
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    directory.down = True

    with pytest.raises(AccountDirectoryUnavailable):
        await engine.delete_account(JULIET)

    assert await engine.authenticate("juliet", PASSWORD) == JULIET
    await engine.publish(JULIET, posts(JULIET), text("still here"))


async def test_an_account_without_a_twin_is_deleted_all_the_same(engine: Engine) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    directory = FakeDirectory()
    engine.use_account_directory(directory)

    await engine.delete_account(JULIET)

    assert await engine.find_account(JULIET) is None


async def test_a_reset_the_xmpp_server_did_not_take_leaves_the_token_good(
    engine: Engine, directory: FakeDirectory
) -> None:
    mails: list[str] = []

    async def mailer(to: str, subject: str, body: str) -> None:
        mails.append(body)

    engine.use_mail(
        mailer, reset_url="https://app.example/reset?t={token}", reset_lifetime=timedelta(hours=1)
    )
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    await engine.request_password_reset("juliet")
    token = mails[0].split("t=", 1)[1].split()[0]
    directory.down = True

    with pytest.raises(AccountDirectoryUnavailable):
        await engine.confirm_password_reset(token, NEW_PASSWORD)

    directory.down = False
    assert await engine.confirm_password_reset(token, NEW_PASSWORD) == JULIET
    assert directory.accounts == {JULIET: NEW_PASSWORD}
    with pytest.raises(InvalidResetToken):
        await engine.confirm_password_reset(token, NEW_PASSWORD)
