"""The built-in user database: accounts with a password, for the `database` sign-in method.

An account is a bare JID of this server's domain with an argon2id password hash and an
email address (for password resets). Creating one also registers the user's personal
channel, as the original HTTP API did after its in-band registration; deleting one
unregisters the user first (`AccountOps.unregister`), then forgets the password.

Hashing costs tens of milliseconds of CPU by design, so it runs in a worker thread and
never stalls the event loop. A sign-in for an account that does not exist verifies against
a fixed hash all the same, so the time taken does not tell whether the account exists; that
hash is made on first need, not when the module is imported.

Whatever the sign-in method, a user's issued tokens carry their sign-in generation; raising
it (signing out, a new password, a deleted account) revokes every token issued before.

With an account directory (`use_account_directory`: the XMPP server, when `[xmpp]` names an
administrator), every account has a twin there with the same name and password, so that the
same credentials work in any XMPP client. The twin is written first, and the account here
only once it has succeeded, so that the two never disagree silently:
- creating: the XMPP account is made first; if the account here then cannot be stored, the
  XMPP account is removed again. An XMPP account of that name already there means the name
  is taken (an XMPP user owns it and perhaps a channel);
- a new password (changed, reset or set by the command line) is given to the XMPP account
  first; an account here without a twin (made before twins were configured) gets one;
- deleting removes the XMPP account first, so that a deleted user's password stops working
  everywhere; a twin already gone is no obstacle.
When the XMPP server cannot be asked or refuses, `AccountDirectoryUnavailable` is raised and
nothing here has changed (a reset token stays good).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from buddycloud.domain.errors import (
    AccountDirectoryUnavailable,
    AccountExists,
    AccountNotFound,
    InvalidConfiguration,
    InvalidJid,
    InvalidResetToken,
    NotAuthenticated,
    Unsupported,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import Account, Page, PageRequest
from buddycloud.services.accounts import AccountOps

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_EMAIL_LENGTH = 254
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

log = logging.getLogger(__name__)

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _absent_hash() -> str:
    """What a password is checked against when no account has the name (same cost)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


class UserOps(AccountOps):
    def account_jid(self, username: str) -> Jid:
        """The bare JID a username names: `user@domain`, or `user` on this server's domain.

        Raises:
            InvalidJid: the username is not a JID, or names a user of another domain or a
                guest domain.
        """
        raw = username.strip()
        if not raw or len(raw) > 1024:
            raise InvalidJid(username[:64], "a username is required")
        jid = Jid.parse(raw if "@" in raw else f"{raw}@{self.config.domain}")
        if not jid.local or jid.resource:
            raise InvalidJid(raw[:64], "a username is user or user@domain")
        if not self.is_local_user(jid):
            raise InvalidJid(raw[:64], f"accounts here are of the domain {self.config.domain}")
        return jid.bare

    async def create_account(self, username: str, password: str, email: str) -> Account:
        """Add an account and create its personal channel.

        Raises:
            InvalidJid: see `account_jid`.
            InvalidConfiguration: the password or email is not acceptable (field named).
            AccountExists: the name is taken (here, or on the XMPP server).
            AccountDirectoryUnavailable: the XMPP account could not be made; nothing was.
        """
        jid = self.account_jid(username)
        _check_password(password)
        email = email.strip()
        if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
            raise InvalidConfiguration("email", "not an email address")
        if self.directory is None:
            password_hash = await asyncio.to_thread(_HASHER.hash, password)
            account = Account(jid, password_hash, email, self.clock.now())
            await self.storage.insert_account(account)
        else:
            if await self.storage.find_account(jid) is not None:
                raise AccountExists(str(jid))
            # The hash (CPU, in a thread) is made while the XMPP server works.
            password_hash, _ = await asyncio.gather(
                asyncio.to_thread(_HASHER.hash, password), self.directory.add(jid, password)
            )
            account = Account(jid, password_hash, email, self.clock.now())
            try:
                await self.storage.insert_account(account)
            except Exception:
                await self._remove_new_twin(jid)
                raise
        await self.register(jid)
        log.info("account %s created", jid)
        return account

    async def authenticate(self, username: str, password: str) -> Jid:
        """The account's JID when the password is right.

        Raises:
            NotAuthenticated: a wrong password, a malformed name or no such account (the
                same error for all three).
        """
        try:
            jid: Jid | None = self.account_jid(username)
        except InvalidJid:
            jid = None
        if not await self.check_password(jid, password) or jid is None:
            raise NotAuthenticated()
        log.info("%s signed in", jid)
        return jid

    async def check_password(self, user: Jid | None, password: str) -> bool:
        """Whether `password` is the account's; False, after as long, when there is no
        account (or no user: a name that could not be one)."""
        jid = user.bare if user is not None else None
        account = await self.storage.find_account(jid) if jid is not None else None
        stored = account.password_hash if account is not None else None
        if stored is None:
            stored = await asyncio.to_thread(_absent_hash)
        if not await asyncio.to_thread(_verify, stored, password) or account is None:
            return False
        assert jid is not None
        if _HASHER.check_needs_rehash(stored):
            rehashed = await asyncio.to_thread(_HASHER.hash, password)
            await self.storage.update_account_password(jid, rehashed)
        return True

    async def change_password(self, user: Jid, password: str) -> None:
        """Set a new password for an existing account.

        Raises:
            InvalidConfiguration: the password is not acceptable.
            AccountNotFound: `user` has no account here.
            AccountDirectoryUnavailable: the XMPP account's password could not be set;
                neither was this one.
        """
        _check_password(password)
        hashing = asyncio.to_thread(_HASHER.hash, password)
        if self.directory is None:
            password_hash = await hashing
        else:
            if await self.storage.find_account(user.bare) is None:
                hashing.close()
                raise AccountNotFound(str(user.bare))
            password_hash, _ = await asyncio.gather(
                hashing, self._twin_password(user.bare, password)
            )
        await self.storage.update_account_password(user.bare, password_hash)
        await self.end_sign_ins(user)
        log.info("password of account %s changed", user.bare)

    async def find_account(self, user: Jid) -> Account | None:
        return await self.storage.find_account(user.bare)

    async def delete_account(self, user: Jid) -> None:
        """Unregister the user (their channels, posts and follows go) and remove the account.

        Raises:
            AccountNotFound: `user` has no account here.
            AccountDirectoryUnavailable: the XMPP account could not be deleted; nothing was.
        """
        jid = user.bare
        if await self.storage.find_account(jid) is None:
            raise AccountNotFound(str(jid))
        if self.directory is not None:
            try:
                await self.directory.remove(jid)
            except AccountNotFound:
                log.info("account %s had no XMPP account to delete", jid)
        await self.unregister(jid)
        await self.storage.delete_account(jid)
        await self.end_sign_ins(jid)
        log.info("account %s deleted", jid)

    async def _twin_password(self, jid: Jid, password: str) -> None:
        """Give the XMPP account the password, making the account when it has none."""
        assert self.directory is not None
        try:
            await self.directory.change_password(jid, password)
        except AccountNotFound:
            try:
                await self.directory.add(jid, password)
            except AccountExists:
                raise AccountDirectoryUnavailable(
                    f"the XMPP server refused to change the password of {jid}"
                ) from None
            log.info("account %s had no XMPP account: made it with the new password", jid)

    async def _remove_new_twin(self, jid: Jid) -> None:
        """Undo `directory.add` after the account here could not be stored."""
        assert self.directory is not None
        try:
            await self.directory.remove(jid)
        except AccountNotFound:
            pass
        except AccountDirectoryUnavailable as exc:
            log.error(
                "the XMPP account %s was made, the account here could not be, and removing "
                "the XMPP account failed (%s): delete it on the XMPP server",
                jid,
                exc.message,
            )

    async def list_accounts(self, page: PageRequest) -> Page[Account]:
        return await self.storage.list_accounts(page)

    async def sign_in_generation(self, user: Jid) -> int:
        """The generation the user's tokens must carry to be good (0 at first)."""
        return await self.storage.find_sign_in_generation(user.bare)

    async def end_sign_ins(self, user: Jid) -> int:
        """Revoke every token issued to the user so far; the generation new ones carry."""
        generation = await self.storage.raise_sign_in_generation(user.bare)
        log.info("sign-ins of %s ended", user.bare)
        return generation

    async def server_key(self, name: str) -> str:
        """A random key the server made once for itself, shared by all its workers."""
        return await self.storage.get_or_insert_server_key(name, secrets.token_urlsafe(48))

    # --- password resets by email ------------------------------------------------------

    def require_mail(self) -> None:
        """Raises Unsupported when this server sends no mail (no `[mail]` section)."""
        if self.mailer is None:
            raise Unsupported(
                "password-reset", "this server sends no mail, so passwords are not reset by mail"
            )

    async def request_password_reset(self, username: str) -> None:
        """Mail the account a one-time token for a new password; do nothing, and say
        nothing, when no account has the name.

        The token is kept only as its SHA-256 digest, works once, and expires after
        `reset_lifetime`; asking again leaves the earlier tokens working until one is used.

        Raises:
            Unsupported: this server sends no mail.
            OSError: the mail could not be handed to the mail server.
        """
        self.require_mail()
        assert self.mailer is not None
        try:
            jid = self.account_jid(username)
        except InvalidJid:
            return
        account = await self.storage.find_account(jid)
        if account is None:
            return
        token = secrets.token_urlsafe(32)
        expires = self.clock.now() + self.reset_lifetime
        await self.storage.insert_password_reset(_digest(token), jid, expires)
        minutes = int(self.reset_lifetime.total_seconds() // 60)
        if self.reset_url is not None:
            how = f"Choose a new one here:\n\n  {self.reset_url.replace('{token}', token)}\n"
        else:
            how = (
                f"Your reset code:\n\n  {token}\n\nSend it with your new password to "
                "POST /api/account/pw/reset/confirm.\n"
            )
        body = (
            f"Someone, probably you, asked for a new password for {jid}.\n\n{how}\n"
            f"It works once, within {minutes} minutes. If you did not ask, ignore this mail: "
            "your password stays as it is.\n"
        )
        await self.mailer(account.email, f"A new password for {jid}", body)
        log.info("password reset for %s mailed", jid)

    async def confirm_password_reset(self, token: str, password: str) -> Jid:
        """Set the password of the account a reset token was mailed for; the token is used
        up, and every sign-in of the account ends.

        Raises:
            InvalidConfiguration: the password is not acceptable (the token stays good).
            InvalidResetToken: the token is unknown, used already, or expired.
            AccountDirectoryUnavailable: the XMPP account's password could not be set;
                the token stays good for another `reset_lifetime`.
        """
        _check_password(password)
        if not token or len(token) > 256:
            raise InvalidResetToken()
        digest = _digest(token)
        jid = await self.storage.take_password_reset(digest, self.clock.now())
        if jid is None:
            raise InvalidResetToken()
        try:
            await self.change_password(jid, password)
        except AccountNotFound:
            raise InvalidResetToken() from None  # the account went meanwhile
        except AccountDirectoryUnavailable:
            # Nothing changed: the user may try again with the same mail.
            expires = self.clock.now() + self.reset_lifetime
            await self.storage.insert_password_reset(digest, jid, expires)
            raise
        return jid


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidConfiguration(
            "password", f"a password has at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidConfiguration(
            "password", f"a password has at most {MAX_PASSWORD_LENGTH} characters"
        )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(password_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
