"""The built-in user database: accounts, passwords, and what deleting an account removes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from engine_support import JULIET, ROMEO, posts, text

from buddycloud.domain.errors import (
    AccountExists,
    AccountNotFound,
    InvalidConfiguration,
    InvalidJid,
    NodeNotFound,
    NotAuthenticated,
)
from buddycloud.domain.model import PageRequest
from buddycloud.services.engine import Engine

PASSWORD = "balcony-at-midnight"


async def test_a_new_account_signs_in_and_has_its_channel(engine: Engine) -> None:
    account = await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    assert account.jid == JULIET
    assert PASSWORD not in account.password_hash
    assert await engine.authenticate("juliet", PASSWORD) == JULIET
    assert await engine.authenticate("juliet@capulet.lit", PASSWORD) == JULIET
    await engine.publish(JULIET, posts(JULIET), text("my channel exists"))


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("juliet", "wrong password"),
        ("romeo", PASSWORD),  # no such account: the same answer
        ("juliet@montague.lit", PASSWORD),
        ("", PASSWORD),
        ("a@b@c", PASSWORD),
    ],
)
async def test_wrong_credentials_are_one_error(
    engine: Engine, username: str, password: str
) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    with pytest.raises(NotAuthenticated):
        await engine.authenticate(username, password)


async def test_a_taken_name_is_refused(engine: Engine) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    with pytest.raises(AccountExists):
        await engine.create_account("Juliet@capulet.lit", PASSWORD, "other@example.org")


@pytest.mark.parametrize(
    ("username", "password", "email", "error", "named"),
    [
        ("juliet", "short", "j@example.org", InvalidConfiguration, "password"),
        ("juliet", PASSWORD, "not an email", InvalidConfiguration, "email"),
        ("juliet@montague.lit", PASSWORD, "j@example.org", InvalidJid, "capulet.lit"),
        ("guest@anon.capulet.lit", PASSWORD, "j@example.org", InvalidJid, "capulet.lit"),
        ("juliet@capulet.lit/balcony", PASSWORD, "j@example.org", InvalidJid, "user@domain"),
        ("   ", PASSWORD, "j@example.org", InvalidJid, "required"),
    ],
)
async def test_bad_registrations_name_what_is_wrong(
    engine: Engine, username: str, password: str, email: str, error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        await engine.create_account(username, password, email)
    assert (await engine.list_accounts(PageRequest())).count == 0


async def test_a_changed_password_replaces_the_old_one(engine: Engine) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    await engine.change_password(JULIET, "a new secret phrase")

    assert await engine.authenticate("juliet", "a new secret phrase") == JULIET
    with pytest.raises(NotAuthenticated):
        await engine.authenticate("juliet", PASSWORD)
    with pytest.raises(AccountNotFound):
        await engine.change_password(ROMEO, "a new secret phrase")


async def test_deleting_an_account_removes_its_channel_and_sign_in(engine: Engine) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")

    await engine.delete_account(JULIET)

    with pytest.raises(NotAuthenticated):
        await engine.authenticate("juliet", PASSWORD)
    with pytest.raises(NodeNotFound):
        await engine.get_items(ROMEO, posts(JULIET), PageRequest())
    with pytest.raises(AccountNotFound):
        await engine.delete_account(JULIET)


async def test_accounts_are_listed_in_pages(engine: Engine) -> None:
    for name in ("tybalt", "juliet", "romeo"):
        await engine.create_account(name, PASSWORD, f"{name}@example.org")

    first = await engine.list_accounts(PageRequest(max=2))
    rest = await engine.list_accounts(PageRequest(max=2, after=first.last))

    assert [str(a.jid) for a in first.items + rest.items] == [
        "juliet@capulet.lit",
        "romeo@capulet.lit",
        "tybalt@capulet.lit",
    ]
    assert first.count == 3


def test_the_dummy_hash_is_made_on_first_need_not_on_import() -> None:
    """Importing the module (every `buddycloud` command does) costs no argon2 hash."""
    probe = "import buddycloud.services.users as u; print(u._absent_hash.cache_info().currsize)"
    made = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert made.stdout.strip() == "0"


async def test_a_new_password_or_a_deleted_account_ends_every_sign_in(engine: Engine) -> None:
    await engine.create_account("juliet", PASSWORD, "juliet@example.org")
    assert await engine.sign_in_generation(JULIET) == 0

    await engine.change_password(JULIET, "a new secret phrase")
    assert await engine.sign_in_generation(JULIET) == 1
    assert await engine.end_sign_ins(JULIET) == 2
    await engine.delete_account(JULIET)
    assert await engine.sign_in_generation(JULIET) == 3
