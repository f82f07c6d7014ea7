"""A private Prosody 0.12 instance: config generation, start, user registration, stop.

Used by `buddycloud serve --with-prosody` (a self-contained server for trying the product)
and by the end-to-end tests. The instance never touches the system Prosody: it has its own
config file, data directory, pid file, log and ports, no TLS, and a resolver that never asks
real DNS (libunbound with a private hosts file and `local-zone: ". static"`).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PROSODY = "prosody"
PROSODYCTL = "prosodyctl"
# The Prosody modules this project ships (Lua), put on the private instance's plugin path.
PROSODY_MODULES = Path(__file__).parent / "prosody_modules"
_POLL_INTERVAL = 0.02


class ProsodyError(OSError):
    """The private Prosody could not be configured, started or driven.

    An OSError: like a port that cannot be bound, it is a fault of the machine's setup,
    and the command line reports it as one line.
    """


class ProsodyNotInstalled(ProsodyError):
    """The `prosody` (or `prosodyctl`) executable is not on PATH."""

    def __init__(self, executable: str) -> None:
        super().__init__(
            f"{executable!r} is not installed or not on PATH; install Prosody 0.12 "
            "(Debian: apt-get install -y prosody)"
        )
        self.executable = executable


class ProsodyStartFailed(ProsodyError):
    """Prosody exited, or its ports did not open in time.

    Attributes:
        log_tail: the last lines of its log and console output.
    """

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(message)
        self.log_tail = log_tail


@dataclass(frozen=True, slots=True)
class ProsodySettings:
    """Everything the generated config says.

    Attributes:
        domain: the virtual host users log in to (`capulet.lit`).
        component_jid: the channel server's XEP-0114 component JID.
        component_secret: the shared secret of the component handshake.
        base_dir: directory holding config, data, pid file and log; created if missing.
        c2s_port: client-to-server port.
        component_port: XEP-0114 component port.
        interface: address c2s and the component port listen on.
        s2s_port: server-to-server port, or None for no federation.
        s2s_interface: address s2s listens on (one loopback address per domain, so that
            several private instances can federate on one machine).
        hosts: name -> address entries of the private hosts file libunbound reads.
        extra_virtual_hosts: further virtual hosts on the same instance.
        anonymous_host: a virtual host of guests who log in with SASL ANONYMOUS (the web
            client's read-only visitors, `anon.<domain>` by convention), or None.
        admins: bare JIDs with Prosody admin rights: among them, those of XEP-0133
            service administration (`mod_admin_adhoc`), with which the channel server keeps
            the XMPP twins of its built-in accounts (`[xmpp] admin_jid`).
        admin_host: a virtual host for the channel server's administrator account, apart
            from the users' names, where nobody registers (`admin.<domain>` by
            convention), or None.
        multicast: load the project's XEP-0033 module on the virtual hosts, so that the
            channel server sends each notification once for all its recipients
            (`buddycloud/prosody_modules/mod_buddycloud_multicast.lua`).
        extra_components: further XEP-0114 components, (JID, secret) pairs, on the same
            component port.
    """

    domain: str
    component_jid: str
    component_secret: str
    base_dir: Path
    c2s_port: int = 5222
    component_port: int = 5347
    interface: str = "127.0.0.1"
    s2s_port: int | None = None
    s2s_interface: str = "127.0.0.1"
    hosts: tuple[tuple[str, str], ...] = ()
    extra_virtual_hosts: tuple[str, ...] = ()
    anonymous_host: str | None = None
    admins: tuple[str, ...] = field(default=())
    admin_host: str | None = None
    multicast: bool = True
    extra_components: tuple[tuple[str, str], ...] = ()

    @property
    def config_path(self) -> Path:
        return self.base_dir / "prosody.cfg.lua"

    @property
    def pidfile(self) -> Path:
        return self.base_dir / "prosody.pid"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "prosody.log"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def hosts_path(self) -> Path:
        return self.base_dir / "hosts"


def _lua_string(value: str) -> str:
    """A Lua string literal; the values we write are paths, names and secrets."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _lua_list(values: Sequence[str | int]) -> str:
    items = "; ".join(_lua_string(v) if isinstance(v, str) else str(v) for v in values)
    return "{ " + items + " }" if items else "{ }"


def render_config(settings: ProsodySettings) -> str:
    """The text of a Prosody 0.12 config for `settings`.

    Deliberately not derived from Debian's /etc/prosody/prosody.cfg.lua: that one loads
    mod_limits (10 kb/s per client), TLS and s2s_secure_auth, which would distort tests.
    """
    s = settings
    s2s_ports = [s.s2s_port] if s.s2s_port is not None else []
    # mod_offline: the channel server sends authorization prompts to a moderator's bare
    # JID when they are offline, for the XMPP server to store until they log in.
    modules = [
        "disco",
        "roster",
        "saslauth",
        "register",
        "offline",
        "ping",
        "version",
        "time",
        "uptime",
        # XEP-0133 (with XEP-0050, which it loads): add-user, change-user-password and
        # delete-user, for the accounts `admins` make.
        "admin_adhoc",
    ]
    if s.s2s_port is not None:
        modules.append("dialback")
    if s.multicast:
        modules.append("buddycloud_multicast")
    lines = [
        "-- Private Prosody 0.12 instance generated by buddycloud; regenerated on every start.",
        f"-- Start: prosody -F --config {s.config_path}",
        "run_as_root = true  -- only matters when started as uid 0",
        f"pidfile = {_lua_string(str(s.pidfile))}",
        f"data_path = {_lua_string(str(s.data_dir))}",
        f"certificates = {_lua_string(str(s.base_dir / 'certs'))}  -- empty: no TLS at all",
        "log = { { levels = { min = "
        + _lua_string("info")
        + " }, to = "
        + _lua_string("file")
        + ", filename = "
        + _lua_string(str(s.log_path))
        + " } }",
        "-- TCP_NODELAY: without it the first stanzas on a fresh link stall for 40-90 ms",
        "network_settings = { nagle = false }",
        "",
        f"interfaces = {_lua_list([s.interface])}",
        f"c2s_ports = {_lua_list([s.c2s_port])}",
        "c2s_direct_tls_ports = { }",
        f"component_ports = {_lua_list([s.component_port])}",
        f"component_interfaces = {_lua_list([s.interface])}",
        "http_ports = { }",
        "https_ports = { }",
        f"s2s_ports = {_lua_list(s2s_ports)}",
        f"s2s_interfaces = {_lua_list([s.s2s_interface])}",
        "",
        "-- libunbound: a private hosts file, every other name NXDOMAIN, never real DNS",
        "unbound = { resolvconf = false; hoststxt = "
        + _lua_string(str(s.hosts_path))
        + '; options = { ["local-zone:"] = ". static" } }',
        "",
        "c2s_require_encryption = false",
        "s2s_require_encryption = false",
        "s2s_secure_auth = false",
        "allow_unencrypted_plain_auth = true",
        'authentication = "internal_plain"',
        "allow_registration = true",
        f"admins = {_lua_list(list(s.admins))}",
        f"plugin_paths = {_lua_list([str(PROSODY_MODULES)])}",
        f"modules_enabled = {_lua_list(modules)}",
        "",
    ]
    for host in (s.domain, *s.extra_virtual_hosts):
        lines.append(f"VirtualHost {_lua_string(host)}")
    if s.admin_host is not None:
        lines += [
            f"VirtualHost {_lua_string(s.admin_host)}",
            "  allow_registration = false",
        ]
    if s.anonymous_host is not None:
        lines += [
            f"VirtualHost {_lua_string(s.anonymous_host)}",
            '  authentication = "anonymous"',
            "  allow_registration = false",
        ]
    for jid, secret in ((s.component_jid, s.component_secret), *s.extra_components):
        lines += [
            "",
            f"Component {_lua_string(jid)}",
            f"  component_secret = {_lua_string(secret)}",
        ]
    lines.append("")
    return "\n".join(lines)


def free_port(interface: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((interface, 0))
        port: int = sock.getsockname()[1]
        return port


def free_loopback_addresses(count: int, port: int = 5269) -> tuple[str, ...]:
    """`count` distinct addresses of 127.0.0.0/8 on which `port` can be bound now.

    Federation on one machine gives each domain its own loopback address with s2s on the
    standard port 5269 (a private resolver maps the domain's names to it): Prosody looks a
    remote domain up without SRV records and connects to port 5269 of its address. The
    addresses are drawn at random, so that test runs sharing a machine rarely meet.

    Raises:
        ProsodyError: no such addresses were found after many tries.
    """
    found: list[str] = []
    for _ in range(200):
        if len(found) == count:
            break
        address = f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        if address in found:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
        found.append(address)
    if len(found) < count:
        raise ProsodyError(f"found no {count} loopback addresses with port {port} free")
    return tuple(found)


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether a TCP connection to host:port succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def stream_ready(host: str, port: int, domain: str, timeout: float = 2.0) -> bool:
    """Whether an XMPP server on host:port answers a client stream header with its features."""
    header = (
        f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(header.encode())
            received = b""
            deadline = time.monotonic() + timeout
            while b"</stream:features>" not in received and time.monotonic() < deadline:
                chunk = sock.recv(4096)
                if not chunk:
                    return False
                received += chunk
            return b"</stream:features>" in received
    except OSError:
        return False


def _require(executable: str) -> str:
    path = shutil.which(executable)
    if path is None:
        raise ProsodyNotInstalled(executable)
    return path


def is_installed() -> bool:
    """Whether both `prosody` and `prosodyctl` are on PATH."""
    return shutil.which(PROSODY) is not None and shutil.which(PROSODYCTL) is not None


class PrivateProsody:
    """One private Prosody process, driven from Python.

    The methods block (they run subprocesses and poll sockets); async callers wrap them in
    `asyncio.to_thread`.
    """

    def __init__(self, settings: ProsodySettings) -> None:
        self.settings = settings
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def write_config(self) -> Path:
        """Write the config, the hosts file and the directories; return the config path."""
        s = self.settings
        for directory in (s.base_dir, s.data_dir, s.base_dir / "certs"):
            directory.mkdir(parents=True, exist_ok=True)
        hosts = s.hosts or ((s.domain, s.s2s_interface), (s.component_jid, s.s2s_interface))
        s.hosts_path.write_text("".join(f"{address} {name}\n" for name, address in hosts))
        s.config_path.write_text(render_config(s))
        return s.config_path

    def start(self, timeout: float = 15.0) -> None:
        """Write the config, start Prosody, and return once c2s and the component port accept.

        Raises:
            ProsodyNotInstalled: `prosody` is not on PATH.
            ProsodyStartFailed: it exited or its ports stayed closed for `timeout` seconds.
        """
        if self.running:
            return
        executable = _require(PROSODY)
        s = self.settings
        self._stop_stale()
        for port in (s.c2s_port, s.component_port):
            if port_accepts(s.interface, port):
                raise ProsodyStartFailed(
                    f"port {s.interface}:{port} is already taken by another process", ""
                )
        self.write_config()
        with open(s.base_dir / "prosody.out", "ab") as output:
            self._process = subprocess.Popen(
                [executable, "-F", "--config", str(s.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a terminal's Ctrl-C reaches only us, and we stop Prosody
                # after the component has disconnected.
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        pending = [s.c2s_port, s.component_port]
        while pending:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise ProsodyStartFailed(
                    f"prosody exited with code {code}; see {s.log_path}", self.log_tail()
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ProsodyStartFailed(
                    f"prosody did not open ports {pending} within {timeout} s; see {s.log_path}",
                    self.log_tail(),
                )
            pending = [port for port in pending if not port_accepts(s.interface, port)]
            if not pending and not stream_ready(s.interface, s.c2s_port, s.domain):
                # The ports open before startup completes (the resolver starts later, and a
                # bad setting there still kills the process): wait for a served stream.
                pending = [s.c2s_port]
            if pending:
                time.sleep(_POLL_INTERVAL)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop Prosody with SIGTERM (its clean shutdown), SIGKILL after `timeout` seconds."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self, timeout: float = 15.0) -> None:
        """Stop, then start again on the same ports with the same data."""
        self.stop()
        self.start(timeout)

    def register(self, user: str, password: str, host: str | None = None) -> None:
        """Create an account (or reset its password); works while Prosody runs.

        Raises:
            ProsodyNotInstalled: `prosodyctl` is not on PATH.
            ProsodyError: prosodyctl failed.
        """
        executable = _require(PROSODYCTL)
        if not self.settings.config_path.exists():
            self.write_config()
        command = [
            executable,
            "--config",
            str(self.settings.config_path),
            "register",
            user,
            host or self.settings.domain,
            password,
        ]
        result = subprocess.run(
            command, capture_output=True, stdin=subprocess.DEVNULL, timeout=30, check=False
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace").strip()
            raise ProsodyError(f"prosodyctl register {user} failed: {output}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Prosody's log and console output, for error messages."""
        parts = []
        for path in (self.settings.log_path, self.settings.base_dir / "prosody.out"):
            with contextlib.suppress(OSError):
                parts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(parts)

    def _stop_stale(self) -> None:
        """Stop a Prosody left running on this config by an earlier process that died."""
        pidfile = self.settings.pidfile
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return
        if str(self.settings.config_path) not in cmdline:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
