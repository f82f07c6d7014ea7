"""The `buddycloud` command: `serve`, `migrate`, `--version`.

Exit status: 0 on success, 1 when the command failed while running (one line on stderr),
2 for a bad command line or a bad configuration (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn, Protocol, cast

from buddycloud import __version__
from buddycloud.config import Config, ConfigError, load_config
from buddycloud.domain.errors import ChannelError
from buddycloud.storage.base import SchemaVersionMismatch
from buddycloud.util.logs import context_handler

PROG = "buddycloud"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line is wrong."""


class _Migrate(Protocol):
    def __call__(self, url: str, /) -> object: ...


class _Run(Protocol):
    def __call__(self, config: Config, /, *, with_prosody: bool) -> object: ...


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
    serve.add_argument("--config", type=Path, metavar="FILE", help=config_help)
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
    migrate.add_argument("--config", type=Path, metavar="FILE", help=config_help)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line and return the exit status.

    Args:
        argv: the arguments after the program name; `sys.argv[1:]` when None.
        environ: the environment; `os.environ` when None.
    """
    environ = os.environ if environ is None else environ
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exit_:
            # --help and --version print, then ask to exit: report their status instead.
            return exit_.code if isinstance(exit_.code, int) else EXIT_OK
        config = load_config(args.config, environ)
        _configure_logging()
        if args.command == "migrate":
            return _migrate(config)
        return _serve(config, with_prosody=args.with_prosody)
    except (UsageError, ConfigError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (ChannelError, SchemaVersionMismatch, OSError) as exc:
        return _fail(_describe(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _migrate(config: Config) -> int:
    migrate = cast(_Migrate, _entry_point("buddycloud.storage.factory", "migrate"))
    _await_if_needed(migrate(config.storage.url))
    return EXIT_OK


def _serve(config: Config, *, with_prosody: bool) -> int:
    run = cast(_Run, _entry_point("buddycloud.app", "run"))
    _await_if_needed(run(config, with_prosody=with_prosody))
    return EXIT_OK


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


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        # Each line written while a request is handled names it (buddycloud.util.logs).
        logging.basicConfig(level=logging.INFO, handlers=[context_handler(logging.StreamHandler())])
        # Alembic announces each of its plugins at INFO on every migration run.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


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
