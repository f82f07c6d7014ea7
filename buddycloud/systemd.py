"""The systemd unit that runs `buddycloud serve` as a service (`buddycloud systemd-unit`).

docs/deploy.md installs it as /etc/systemd/system/buddycloud.service. The server logs to
standard error, which the journal keeps (`journalctl -u buddycloud`); SIGTERM stops it
cleanly (exit status 0).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

DEFAULT_CONFIG = Path("/etc/buddycloud/buddycloud.toml")
DEFAULT_USER = "buddycloud"
STATE_DIRECTORY = "buddycloud"  # /var/lib/buddycloud, made by systemd for the user


def default_command() -> str:
    """The `buddycloud` command of this installation: the script beside this Python."""
    script = Path(sys.executable).parent / "buddycloud"
    if script.exists():
        return str(script)
    return f"{sys.executable} -m buddycloud"


def unit(
    *, command: str | None = None, config: Path = DEFAULT_CONFIG, user: str = DEFAULT_USER
) -> str:
    """The unit's text.

    Args:
        command: how to run `buddycloud` (an absolute path, possibly with arguments);
            this installation's by default.
        config: the configuration file `serve` reads; an absolute path.
        user: the system user (and group) the server runs as.

    Raises:
        ValueError: `config` or `command` is not absolute, or `user` is not a plain name.
    """
    command = command if command is not None else default_command()
    if not command.startswith("/"):
        raise ValueError(f"the command must be an absolute path, got {command!r}")
    if not config.is_absolute():
        raise ValueError(f"the configuration file must be an absolute path, got {str(config)!r}")
    if not user or not all(c.isalnum() or c in "-_" for c in user) or user[0] == "-":
        raise ValueError(f"not a user name: {user!r}")
    serve = f"{command} serve --config {shlex.quote(str(config))}"
    return f"""\
# Printed by `buddycloud systemd-unit`; see docs/deploy.md.
[Unit]
Description=Buddycloud channel server (REST API, websocket, XMPP component)
After=network-online.target postgresql.service prosody.service ejabberd.service
Wants=network-online.target

[Service]
Type=exec
User={user}
Group={user}
# /var/lib/{STATE_DIRECTORY}, owned by {user}: the working directory (SQLite, if used).
StateDirectory={STATE_DIRECTORY}
WorkingDirectory=/var/lib/{STATE_DIRECTORY}
# Secrets may come from here instead of the file: BUDDYCLOUD_XMPP_SECRET=...
EnvironmentFile=-/etc/buddycloud/environment
ExecStart={serve}
# A deployment that cannot start exits with status 2 and one line in the journal
# (journalctl -u buddycloud); an XMPP server that starts later is waited for this way.
Restart=on-failure
RestartSec=5
TimeoutStopSec=30
NoNewPrivileges=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
LockPersonality=yes

[Install]
WantedBy=multi-user.target
"""
