"""The `buddycloud` command: `serve`, `migrate`, `user`, `federation`, `doctor`,
`systemd-unit`, `--version`.

Exit status: 0 on success, 1 when the command failed while running (one line on stderr),
2 for a bad command line, a bad configuration, or a deployment that cannot start: storage
that cannot be opened (missing database, refused credentials, unreachable host, a schema
too old or too new) or an XMPP server that refuses the component or cannot be reached
(one line on stderr, never a traceback).

`buddycloud user add|passwd|delete|list` manage the built-in user database through the
engine, on the storage `[storage] url` names. Passwords are asked twice on the terminal,
or read as one line from standard input with `--password-stdin`; never from the command
line, where other users of the machine could read them.

`buddycloud federation status` prints how delivery to each remote domain stands: the
outbox's queue and its last success and error (docs/federation.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Protocol, TextIO, cast

from buddycloud import __version__
from buddycloud.config import Config, ConfigError, load_config, log_level
from buddycloud.domain.errors import ChannelError
from buddycloud.domain.model import PageRequest
from buddycloud.domain.times import format_datetime
from buddycloud.util import logs
from buddycloud.util.errors import CannotStart

if TYPE_CHECKING:
    from buddycloud.services.engine import Engine

PROG = "buddycloud"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line is wrong."""


class CommandFailed(Exception):
    """The command could not do what it was asked (exit status 1)."""


class _Migrate(Protocol):
    def __call__(self, url: str, /) -> object: ...


class _Run(Protocol):
    def __call__(self, config: Config, /, *, with_prosody: bool) -> object: ...


class _OpenEngine(Protocol):
    def __call__(self, config: Config, /) -> contextlib.AbstractAsyncContextManager[Engine]: ...


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports mistakes as one line instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = _Parser(
        prog=PROG,
        description="A federated social channels server (Buddycloud channels over XMPP, "
        "REST and websockets).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    config_help = (
        "TOML configuration file (see docs/config.md); without it, the defaults and "
        "BUDDYCLOUD_<SECTION>_<KEY> environment variables apply"
    )
    serve = commands.add_parser(
        "serve",
        help="run the server",
        description="Run the server: HTTP edge, and the XMPP component when [xmpp] is set.",
    )
    _add_common(serve, config_help)
    serve.add_argument(
        "--with-prosody",
        action="store_true",
        help="also start a private Prosody for the configured domain, with this server "
        "wired in as its component",
    )
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the database schema",
        description="Create or upgrade the database schema named by [storage] url.",
    )
    _add_common(migrate, config_help)
    _add_user_commands(commands, config_help)
    _add_federation_commands(commands, config_help)
    _add_deployment_commands(commands, config_help)
    return parser


def _add_federation_commands(
    commands: argparse._SubParsersAction[_Parser], config_help: str
) -> None:
    federation = commands.add_parser(
        "federation",
        help="see how delivery to other domains stands",
        description="What this server knows of the other domains it sends events to.",
    )
    actions = federation.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    status = actions.add_parser(
        "status",
        allow_abbrev=False,
        help="list the remote domains, their queues and their last success and error",
        description="Print one line per remote domain this server has sent events to or "
        "has events queued for, by name: the domain, its channel server ('-' while none "
        "was found), the events queued for it, the time of the last delivery ('never'), "
        "and the last error with its time and the failed tries since the last delivery "
        "('-' when none), separated by tabs.",
    )
    _add_common(status, config_help)


def _add_deployment_commands(
    commands: argparse._SubParsersAction[_Parser], config_help: str
) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check a deployment and say what to fix",
        description="Check the configuration, the storage, the XMPP server and the "
        "component secret, the domain's DNS records, the channel service's discovery, the "
        "HTTP edge and the TLS certificates; one line per check. Exit status 1 when a "
        "check failed (docs/deploy.md).",
    )
    _add_common(doctor, config_help)
    doctor.add_argument(
        "--api-url",
        metavar="URL",
        help="where clients reach the HTTP API from outside, through the reverse proxy "
        "(default: https://buddycloud.<domain>/api)",
    )
    doctor.add_argument(
        "--ca-file",
        type=Path,
        metavar="FILE",
        help="PEM certificates to trust besides the system's (a private CA)",
    )
    unit = commands.add_parser(
        "systemd-unit",
        help="print a systemd unit that runs the server as a service",
        description="Print a systemd unit running `buddycloud serve` (docs/deploy.md): save "
        "it as /etc/systemd/system/buddycloud.service.",
    )
    unit.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=Path("/etc/buddycloud/buddycloud.toml"),
        help="the configuration file the service reads (default: %(default)s)",
    )
    unit.add_argument(
        "--user",
        default="buddycloud",
        help="the system user and group it runs as (default: %(default)s)",
    )
    unit.add_argument(
        "--command",
        dest="unit_command",
        metavar="PATH",
        help="the buddycloud command to run (default: this installation's)",
    )


def _add_common(command: argparse.ArgumentParser, config_help: str) -> None:
    command.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    command.add_argument(
        "--log-level",
        type=_log_level_argument,
        metavar="LEVEL",
        help="the least severe log lines written: debug, info, warning or error (instead "
        "of [log] level)",
    )


def _add_user_commands(commands: argparse._SubParsersAction[_Parser], config_help: str) -> None:
    user = commands.add_parser(
        "user",
        help="manage the accounts of the built-in user database",
        description="Add, list and delete accounts of the built-in user database, and set "
        "their passwords. Accounts are of [server] domain; a NAME without '@' is of it.",
    )
    actions = user.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    password_stdin = (
        "read the password as one line from standard input instead of asking for it twice "
        "on the terminal"
    )
    add = actions.add_parser(
        "add",
        allow_abbrev=False,  # `--password X` must not pass for `--password-stdin`
        help="create an account and its personal channel",
        description="Create an account and its personal channel. The password is asked "
        "twice on the terminal, or read from standard input with --password-stdin.",
    )
    add.add_argument("name", metavar="NAME", help="user or user@domain")
    add.add_argument("--email", required=True, help="the account's email address")
    add.add_argument("--password-stdin", action="store_true", help=password_stdin)
    _add_common(add, config_help)
    passwd = actions.add_parser(
        "passwd",
        allow_abbrev=False,  # `--password X` must not pass for `--password-stdin`
        help="set an account's password",
        description="Set an account's password; the old one stops working.",
    )
    passwd.add_argument("name", metavar="NAME", help="user or user@domain")
    passwd.add_argument("--password-stdin", action="store_true", help=password_stdin)
    _add_common(passwd, config_help)
    delete = actions.add_parser(
        "delete",
        allow_abbrev=False,  # `--password X` must not pass for `--password-stdin`
        help="delete an account with its channels, posts and follows",
        description="Delete an account: its channels, its posts in other channels and "
        "its follows go too, as when the user deletes it.",
    )
    delete.add_argument("name", metavar="NAME", help="user or user@domain")
    _add_common(delete, config_help)
    listing = actions.add_parser(
        "list",
        allow_abbrev=False,
        help="list the accounts",
        description="Print one line per account, ordered by address: the address, the "
        "email and the creation time, separated by tabs.",
    )
    _add_common(listing, config_help)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line and return the exit status.

    Args:
        argv: the arguments after the program name; `sys.argv[1:]` when None.
        environ: the environment; `os.environ` when None.
    """
    environ = os.environ if environ is None else environ
    try:
        parser = build_parser()
        try:
            args, unexpected = parser.parse_known_args(argv)
        except SystemExit as exit_:
            # --help and --version print, then ask to exit: report their status instead.
            return exit_.code if isinstance(exit_.code, int) else EXIT_OK
        if unexpected:
            if args.command == "user":
                # What was typed there may be a password: it is not repeated.
                raise UsageError(
                    "unexpected arguments (not repeated here); a password is never given "
                    "on the command line: it is asked on the terminal, or read with "
                    "--password-stdin"
                )
            parser.error(f"unrecognized arguments: {' '.join(unexpected)}")
        if args.command == "systemd-unit":
            return _systemd_unit(args, sys.stdout)
        if args.command == "doctor":
            return _doctor(args, environ, sys.stdout)
        config = load_config(args.config, environ)
        if args.command in ("user", "federation"):
            # Quiet: the command prints its own outcome; warnings and errors still show.
            _configure_logging(config, args.log_level, logging.WARNING)
            if args.command == "federation":
                return _federation(config)
            return _user(config, args)
        _configure_logging(config, args.log_level)
        if args.command == "migrate":
            return _migrate(config)
        return _serve(config, with_prosody=args.with_prosody)
    except (UsageError, ConfigError, CannotStart) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (ChannelError, OSError, CommandFailed) as exc:
        return _fail(_describe(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _doctor(args: argparse.Namespace, environ: Mapping[str, str], out: TextIO) -> int:
    from buddycloud import doctor

    source = str(args.config) if args.config is not None else "the configuration"
    try:
        config = load_config(args.config, environ)
    except ConfigError as exc:
        print(doctor.Check("configuration", "FAIL", str(exc)).line(), file=out)
        return EXIT_FAILED
    # The checks' own lines say what went wrong; the libraries' logs would repeat it.
    _configure_logging(config, args.log_level, logging.CRITICAL)
    options = doctor.Options(
        api_url=args.api_url or doctor.default_api_url(config), ca_file=args.ca_file
    )
    checks = asyncio.run(doctor.run_checks(config, options, source))
    for check in checks:
        print(check.line(), file=out)
    return EXIT_FAILED if doctor.failed(checks) else EXIT_OK


def _systemd_unit(args: argparse.Namespace, out: TextIO) -> int:
    from buddycloud.systemd import unit

    try:
        text = unit(command=args.unit_command, config=args.config, user=args.user)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out.write(text)
    return EXIT_OK


def _migrate(config: Config) -> int:
    migrate = cast(_Migrate, _entry_point("buddycloud.storage.factory", "migrate"))
    _await_if_needed(migrate(config.storage.url))
    return EXIT_OK


def _serve(config: Config, *, with_prosody: bool) -> int:
    run = cast(_Run, _entry_point("buddycloud.app", "run"))
    _await_if_needed(run(config, with_prosody=with_prosody))
    return EXIT_OK


def _user(config: Config, args: argparse.Namespace) -> int:
    open_engine = cast(_OpenEngine, _entry_point("buddycloud.app", "open_engine"))
    asyncio.run(_user_action(open_engine, config, args, sys.stdout))
    return EXIT_OK


async def _user_action(
    open_engine: _OpenEngine, config: Config, args: argparse.Namespace, out: TextIO
) -> None:
    async with open_engine(config) as engine:
        if args.action == "list":
            await _list_accounts(engine, out)
            return
        jid = engine.account_jid(args.name)
        exists = await engine.find_account(jid) is not None
        if args.action == "add":
            if exists:
                raise CommandFailed(f"the account {jid} exists already")
            password = _new_password(from_stdin=args.password_stdin)
            await engine.create_account(str(jid), password, args.email)
            print(f"created the account {jid} and its channel", file=out)
            return
        if not exists:
            raise CommandFailed(f"no account {jid}")
        if args.action == "passwd":
            await engine.change_password(jid, _new_password(from_stdin=args.password_stdin))
            print(f"changed the password of {jid}", file=out)
        else:
            await engine.delete_account(jid)
            print(f"deleted the account {jid} with its channels, posts and follows", file=out)


async def _list_accounts(engine: Engine, out: TextIO) -> None:
    after: str | None = None
    while True:
        page = await engine.list_accounts(PageRequest(max=500, after=after))
        for account in page.items:
            print(f"{account.jid}\t{account.email}\t{format_datetime(account.created)}", file=out)
        if not page.items or page.last is None:
            return
        after = page.last


def _federation(config: Config) -> int:
    open_engine = cast(_OpenEngine, _entry_point("buddycloud.app", "open_engine"))
    asyncio.run(_federation_status(open_engine, config, sys.stdout))
    return EXIT_OK


async def _federation_status(open_engine: _OpenEngine, config: Config, out: TextIO) -> None:
    async with open_engine(config) as engine:
        statuses = await engine.outbox_status()
    for status in statuses:
        success = format_datetime(status.last_success) if status.last_success else "never"
        error = "-"
        if status.last_error is not None and status.last_error_at is not None:
            error = f"{format_datetime(status.last_error_at)} {status.last_error}"
            if status.attempts:
                tries = "try" if status.attempts == 1 else "tries"
                error += f" ({status.attempts} failed {tries} since the last delivery)"
        fields = (status.domain, status.server or "-", str(status.depth), success, error)
        print("\t".join(fields), file=out)


def _new_password(*, from_stdin: bool) -> str:
    """A new password: one line of standard input, or asked twice on the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.removesuffix("\n").removesuffix("\r")
        if not password:
            raise CommandFailed("no password on standard input")
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password on: pipe it with --password-stdin")
    try:
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Password again: ")
    except EOFError:
        raise CommandFailed("no password given") from None
    if first != second:
        raise CommandFailed("the two passwords differ; nothing was changed")
    return first


def _entry_point(module_name: str, attribute: str) -> object:
    # Imported on use, so that `--version`, `--help` and configuration errors answer
    # without loading the server (storage drivers, XMPP library, HTTP stack).
    module = importlib.import_module(module_name)
    return cast(object, getattr(module, attribute))


def _await_if_needed(result: object) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_wait(result))


async def _wait(awaitable: object) -> None:
    await cast("asyncio.Future[object]", awaitable)


def _configure_logging(config: Config, given: str | None, default: int | None = None) -> None:
    """The log at `--log-level` when given, else at `default` when given, else at `[log]
    level`; in `[log] format`."""
    if given is not None:
        level = logs.level_number(given)
    else:
        level = logs.level_number(config.log.level) if default is None else default
    logs.configure(level, config.log.format)


def _log_level_argument(raw: str) -> str:
    try:
        return log_level(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        target = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{target}"
    return str(exc) or type(exc).__name__


def _fail(message: str, status: int) -> int:
    # One line, whatever the message: a multi-line reason would read as several errors.
    line = " ".join(message.split())
    print(f"{PROG}: error: {line}", file=sys.stderr)
    return status
