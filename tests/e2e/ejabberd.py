"""A private ejabberd 23.01 for the end-to-end suite (testbed README sections 6 and 10).

It runs `ejabberdctl … foreground` directly as the `ejabberd` user (not through su, which
would move the Erlang VM out of our reach), with its own config directory, spool, logs and
ports, and `ERL_DIST_PORT` set so that no epmd daemon is started. Users are created by
in-band registration (XEP-0077), which costs a socket round trip instead of an Erlang VM
start per user.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

from buddycloud.prosody import free_port, port_accepts, stream_ready

EJABBERDCTL = "ejabberdctl"
USER = "ejabberd"


def unavailable_reason() -> str | None:
    """Why a private ejabberd cannot run here, or None."""
    if shutil.which(EJABBERDCTL) is None:
        return "ejabberd is not installed (Debian: apt-get install -y ejabberd)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"the {USER!r} system user does not exist"
    if os.geteuid() != 0:
        return f"starting ejabberd as the {USER!r} user needs root"
    return None


class PrivateEjabberd:
    """One private ejabberd node serving `domain`, with the channel component declared."""

    def __init__(
        self,
        domain: str,
        component_jid: str,
        component_secret: str,
        *,
        anonymous_host: str | None = None,
        admins: tuple[str, ...] = (),
    ) -> None:
        self.domain = domain
        self.admins = admins
        self.anonymous_host = anonymous_host
        self.component_jid = component_jid
        self.component_secret = component_secret
        self.interface = "127.0.0.1"
        self.c2s_port = free_port()
        self.component_port = free_port()
        self.dist_port = free_port()
        self.node = f"bc{uuid.uuid4().hex[:8]}@localhost"
        # Under /tmp rather than pytest's per-user 0700 directory, which the ejabberd user
        # cannot enter.
        self.base_dir = Path(tempfile.mkdtemp(prefix="bc-ejabberd-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.base_dir / "logs" / "ejabberd.log"

    def _write_config(self) -> None:
        base = self.base_dir
        for directory in (base / "spool", base / "logs"):
            directory.mkdir(parents=True, exist_ok=True)
        (base / "hosts").write_text(f"127.0.0.1 localhost {self.domain} {self.component_jid}\n")
        (base / "inetrc").write_text(
            '{resolv_conf, "/dev/null"}.\n'
            f'{{hosts_file, "{base / "hosts"}"}}.\n'
            "{lookup, [file]}.\n"
        )
        (base / "ejabberdctl.cfg").write_text(
            f"ERLANG_NODE={self.node}\n"
            "ERL_EPMD_ADDRESS=127.0.0.1\n"
            "INET_DIST_INTERFACE=127.0.0.1\n"
            f"ERL_DIST_PORT={self.dist_port}\n"
            f"EJABBERD_PID_PATH={base / 'ejabberd.pid'}\n"
        )
        hosts = [self.domain] if self.anonymous_host is None else [self.domain, self.anonymous_host]
        # Guests of the anonymous host log in with SASL ANONYMOUS.
        guests = (
            ""
            if self.anonymous_host is None
            else f"""host_config:
  {self.anonymous_host}:
    auth_method: [anonymous]
    anonymous_protocol: sasl_anon
"""
        )
        # XEP-0133 (mod_configure over mod_adhoc) for the admins: the channel server makes
        # the XMPP twins of its built-in accounts with it.
        admins = "".join(f'      - "{admin}"\n' for admin in self.admins)
        acl = f"acl:\n  admin:\n    user:\n{admins}" if self.admins else ""
        (base / "ejabberd.yml").write_text(
            f"""hosts: [{", ".join(hosts)}]
{acl}
{guests}loglevel: info
certfiles: []
auth_method: internal
auth_password_format: plain
registration_timeout: infinity
listen:
  - port: {self.c2s_port}
    ip: "{self.interface}"
    module: ejabberd_c2s
    starttls: false
  - port: {self.component_port}
    ip: "{self.interface}"
    module: ejabberd_service
    # Unlimited by default: the limit Prosody sets for components (and Debian's
    # ejabberd.yml for s2s), so that a stanza over it would close the stream here too.
    max_stanza_size: 524288
    hosts:
      {self.component_jid}:
        password: "{self.component_secret}"
access_rules:
  register:
    allow: all
  c2s:
    allow: all
  configure:
    allow: admin
modules:
  mod_adhoc: {{}}
  mod_configure: {{}}
  mod_disco: {{}}
  mod_register:
    ip_access: all
    access: register
  mod_ping: {{}}
  mod_roster: {{}}
  mod_offline: {{}}
  # XEP-0033: the channel server sends each notification once for all its followers.
  # A component's domain is not one of `hosts`, so it counts as a remote sender, whose
  # default limit is 20 addresses per message.
  mod_multicast:
    limits:
      remote:
        message: infinite
"""
        )
        account = pwd.getpwnam(USER)
        for path in [base, *base.rglob("*")]:
            os.chown(path, account.pw_uid, account.pw_gid)

    def _command(self, *args: str) -> list[str]:
        base = self.base_dir
        return [
            EJABBERDCTL,
            "--config-dir",
            str(base),
            "--config",
            str(base / "ejabberd.yml"),
            "--ctl-config",
            str(base / "ejabberdctl.cfg"),
            "--logs",
            str(base / "logs"),
            "--spool",
            str(base / "spool"),
            *args,
        ]

    def _env(self) -> dict[str, str]:
        # The Erlang cookie lives in $HOME: the node and every ctl call must share it.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base_dir)}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        self._write_config()
        with open(self.base_dir / "console.log", "ab") as output:
            self.process = subprocess.Popen(
                self._command("foreground"),
                cwd=self.base_dir,
                env=self._env(),
                user=USER,
                group=USER,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not (
            port_accepts(self.interface, self.component_port)
            and stream_ready(self.interface, self.c2s_port, self.domain)
        ):
            if not self.running:
                raise RuntimeError(f"ejabberd exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ejabberd did not open its ports in {timeout} s")
            time.sleep(0.1)  # polling interval of a condition with a deadline

    def stop(self, timeout: float = 30.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        # SIGTERM makes the Erlang VM run init:stop(), ejabberd's clean shutdown. The
        # ejabberdctl shell exits at once, so wait for the whole process group instead.
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _group_alive(process.pid):
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.05)  # polling interval of a condition with a deadline
        process.wait(timeout)

    def restart(self, timeout: float = 60.0) -> None:
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def register(self, user: str, password: str, timeout: float = 10.0) -> None:
        """In-band registration (XEP-0077) on an unauthenticated stream."""
        header = (
            f"<?xml version='1.0'?><stream:stream to='{self.domain}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )
        request = (
            "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
            f"<username>{escape(user)}</username><password>{escape(password)}</password>"
            "</query></iq>"
        )
        with socket.create_connection((self.interface, self.c2s_port), timeout=timeout) as sock:
            sock.sendall(header.encode())
            _read_until(sock, _FEATURES, timeout)
            sock.sendall(request.encode())
            reply = _read_until(sock, _REGISTER_REPLY, timeout)
        start_tag = reply.group(1)
        if not re.search(r"type=['\"]result['\"]", start_tag) and "conflict" not in reply.group(0):
            raise RuntimeError(f"registering {user} failed: {reply.group(0)[:500]}")

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for path in (self.log_path, self.base_dir / "console.log"):
            try:
                parts.extend(path.read_text(errors="replace").splitlines()[-lines:])
            except OSError:
                continue
        return "\n".join(parts)


def _group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is left in process group `pgid`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp.
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


_FEATURES = re.compile(r"</stream:features>")
_REGISTER_REPLY = re.compile(r"(<iq[^>]*reg1[^>]*?)(/>|>.*?</iq>)", re.DOTALL)


def _read_until(sock: socket.socket, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
    received = ""
    deadline = time.monotonic() + timeout
    while (match := pattern.search(received)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {pattern.pattern!r} from ejabberd in {timeout} s: {received}")
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError(f"ejabberd closed the stream: {received}")
        received += chunk.decode(errors="replace")
    return match
