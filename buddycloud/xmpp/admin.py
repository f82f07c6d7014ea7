"""XMPP twins of the built-in accounts: XEP-0133 service administration over c2s.

`XmppAccounts` implements the engine's `AccountDirectory` port. Each operation signs in to
the XMPP server's client port as `[xmpp] admin_jid` (the same stream rules as the `xmpp`
sign-in method, `c2s.client_stream`), runs one ad-hoc command (XEP-0050) at the user's
domain, and closes the stream:

| Operation | Command node (`http://jabber.org/protocol/admin#...`) | Fields |
|---|---|---|
| add | `add-user` | `accountjid`, `password`, `password-verify` |
| change_password | `change-user-password` | `accountjid`, `password` |
| remove | `delete-user` | `accountjids` |

Both XMPP servers of the test bed serve these: Prosody with `mod_admin_adhoc` (the admin in
`admins`), ejabberd with `mod_configure` (the admin allowed `configure`). A command is
executed, and its form submitted in the session the server opened. The answers differ:
Prosody completes every command and puts a refusal in `<note type='error'>` ("Account
already exists", "User does not exist"), and completes a deletion of an account it does
not have with only an info note ("could not be deleted"); ejabberd answers a refusal with
an IQ error (`conflict` for an existing account, `bad-request` for a missing one). Both are
read here:

- add: `conflict`, or a note saying the account exists, is `AccountExists`;
- change_password, remove: `bad-request`, an error note, or Prosody's "could not be
  deleted", are `AccountNotFound` (the servers do not tell a missing account from a
  refusal of these commands more precisely);
- anything else (no connection, the administrator's sign-in refused, `forbidden`, an
  unknown command, no answer within `timeout` seconds for the whole operation) is
  `AccountDirectoryUnavailable`, with this server's own text: the XMPP server's is logged,
  never relayed, and passwords are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from xml.etree.ElementTree import Element

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

from buddycloud.domain.errors import AccountDirectoryUnavailable, AccountExists, AccountNotFound
from buddycloud.domain.jid import Jid
from buddycloud.xmpp.c2s import client_stream, close_stream
from buddycloud.xmpp.forms import DataForm, FormField, render_form
from buddycloud.xmpp.namespaces import NS_ADMIN, NS_COMMANDS, NS_DISCO_ITEMS, qname

log = logging.getLogger(__name__)

COMMANDS = ("add-user", "change-user-password", "delete-user")
# Refusals that may mean "no such account" for change-user-password and delete-user.
_MAYBE_ABSENT = frozenset({"bad-request"})


class _Refused(Exception):
    """The XMPP server answered the command with a refusal (an IQ error or an error note)."""

    def __init__(self, condition: str | None, text: str) -> None:
        super().__init__(f"{condition or 'error note'}: {text}")
        self.condition = condition
        self.text = text


class XmppAccounts:
    """The accounts of `domain` on the XMPP server at `host`:`port`, administered as
    `admin`; each operation must be over within `timeout` seconds."""

    def __init__(
        self,
        admin: Jid,
        password: str,
        domain: str,
        host: str,
        port: int,
        timeout: float,
    ) -> None:
        self.admin = admin.bare
        self._password = password
        self.domain = domain
        self.host = host
        self.port = port
        self.timeout = timeout

    async def add(self, user: Jid, password: str) -> None:
        values = {"accountjid": [str(user)], "password": [password], "password-verify": [password]}
        try:
            info = await self._run("add-user", values)
        except _Refused as refused:
            if refused.condition == "conflict" or "exists" in refused.text.lower():
                raise AccountExists(str(user)) from None
            raise self._refusal("create", user, refused) from None
        log.info("made the XMPP account %s%s", user, _said(info))

    async def change_password(self, user: Jid, password: str) -> None:
        values = {"accountjid": [str(user)], "password": [password]}
        try:
            info = await self._run("change-user-password", values)
        except _Refused as refused:
            if refused.condition is None or refused.condition in _MAYBE_ABSENT:
                log.info("the XMPP server changed no password of %s: %s", user, refused.text)
                raise AccountNotFound(str(user)) from None
            raise self._refusal("change the password of", user, refused) from None
        log.info("changed the password of the XMPP account %s%s", user, _said(info))

    async def remove(self, user: Jid) -> None:
        try:
            info = await self._run("delete-user", {"accountjids": [str(user)]})
        except _Refused as refused:
            if refused.condition is None or refused.condition in _MAYBE_ABSENT:
                log.info("the XMPP server deleted no account %s: %s", user, refused.text)
                raise AccountNotFound(str(user)) from None
            raise self._refusal("delete", user, refused) from None
        if "could not be deleted" in info:
            raise AccountNotFound(str(user))
        log.info("deleted the XMPP account %s%s", user, _said(info))

    async def missing_commands(self) -> list[str]:
        """The commands of the table above that the XMPP server does not offer the
        administrator (XEP-0050 disco of the domain's commands, which lists only those the
        requester may run); empty when all are there. For `buddycloud doctor`.

        Raises:
            AccountDirectoryUnavailable: the administrator could not sign in, or the
                server did not answer.
        """
        query = Element(qname(NS_DISCO_ITEMS, "query"), {"node": NS_COMMANDS})
        try:
            async with asyncio.timeout(self.timeout), self._session() as stream:
                iq = stream.make_iq_get(ito=self.domain)
                iq.xml.append(query)
                try:
                    reply = await iq.send()  # type: ignore[no-untyped-call]
                except IqError as exc:
                    raise self._unavailable(
                        f"refused to list its commands ({exc.iq['error']['condition']})"
                    ) from None
        except TimeoutError:
            raise self._unavailable(f"did not answer within {self.timeout:g} s") from None
        offered = {item.get("node") for item in reply.xml.iter(qname(NS_DISCO_ITEMS, "item"))}
        return [name for name in COMMANDS if f"{NS_ADMIN}#{name}" not in offered]

    # --- the command ----------------------------------------------------------------------

    async def _run(self, command: str, values: Mapping[str, Sequence[str]]) -> str:
        """Execute `command` and submit `values`; the server's info notes.

        Raises:
            _Refused: the server refused it.
            AccountDirectoryUnavailable: it could not be asked.
        """
        node = f"{NS_ADMIN}#{command}"
        try:
            async with asyncio.timeout(self.timeout), self._session() as stream:
                opened = await self._ask(stream, _command(node, "execute"))
                session = opened.get("sessionid")
                if opened.get("status") == "completed" or not session:
                    raise self._unavailable(f"did not open the {command} command")
                submit = _command(node, "complete", session=session)
                fields = tuple(FormField(var, tuple(v)) for var, v in values.items())
                submit.append(render_form(DataForm("submit", NS_ADMIN, fields)))
                done = await self._ask(stream, submit)
        except TimeoutError:
            raise self._unavailable(f"did not answer within {self.timeout:g} s") from None
        notes = {
            kind: " ".join((note.text or "").split())
            for kind in ("error", "info")
            for note in done.findall(qname(NS_COMMANDS, "note"))
            if note.get("type", "info") == kind
        }
        if "error" in notes:
            raise _Refused(None, notes["error"])
        return notes.get("info", "")

    async def _ask(self, stream: ClientXMPP, command: Element) -> Element:
        iq = stream.make_iq_set(ito=self.domain)
        iq.xml.append(command)
        try:
            reply = await iq.send()  # type: ignore[no-untyped-call]
        except IqError as exc:
            error = exc.iq["error"]
            raise _Refused(str(error["condition"]), str(error["text"])) from None
        except IqTimeout:
            raise self._unavailable("did not answer the command") from None
        found: Element | None = reply.xml.find(qname(NS_COMMANDS, "command"))
        if found is None:
            raise self._unavailable("answered the command with no command")
        return found

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[ClientXMPP]:
        """A signed-in, bound client stream as the administrator, closed on exit."""
        stream = client_stream(self.admin, self._password, self.host)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def settle(error: Exception | None) -> None:
            if ready.done():
                return
            if error is None:
                ready.set_result(None)
            else:
                ready.set_exception(error)

        def refused(_: Any) -> None:
            settle(self._unavailable(f"refused the administrator's sign-in as {self.admin}"))

        stream.add_event_handler("session_start", lambda _: settle(None))
        stream.add_event_handler("failed_all_auth", refused)
        stream.add_event_handler(
            "connection_failed", lambda _: settle(self._unavailable("could not be reached"))
        )
        stream.add_event_handler(
            "disconnected", lambda _: settle(self._unavailable("ended the stream"))
        )
        try:
            stream.connect(self.host, self.port)
            await ready
            yield stream
        finally:
            await close_stream(stream, graceful=True)

    def _unavailable(self, reason: str) -> AccountDirectoryUnavailable:
        return AccountDirectoryUnavailable(
            f"the XMPP server at {self.host}:{self.port} {reason}; nothing was changed"
        )

    def _refusal(self, what: str, user: Jid, refused: _Refused) -> AccountDirectoryUnavailable:
        log.warning("the XMPP server refused to %s the account %s: %s", what, user, refused)
        return self._unavailable(f"refused to {what} the account {user}")


def _command(node: str, action: str, *, session: str | None = None) -> Element:
    command = Element(qname(NS_COMMANDS, "command"), {"node": node, "action": action})
    if session is not None:
        command.set("sessionid", session)
    return command


def _said(info: str) -> str:
    return f" ({info})" if info else ""
