"""Private XMPP server instances and processes for the benchmark, all on 127.0.0.1.

Each instance lives in its own scratch directory, listens on free ports picked at start,
and is stopped (with every process it spawned) by `stop()`, which is idempotent.

* Prosody: the project's own private instance (buddycloud.prosody), with extra components
  and Prosody's own `mod_pubsub` as `pubsub.<domain>`.
* ejabberd: `ejabberdctl foreground` run directly as the `ejabberd` user, with its own
  config dir and `ERL_DIST_PORT`, so that no epmd daemon is started or left behind;
  `mod_pubsub` (mnesia) as `pubsub.<domain>`.
* `Process`: any other subprocess in its own process group (the channel server, the trivial
  components).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from buddycloud.prosody import PrivateProsody, ProsodySettings

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout: float, process: subprocess.Popen[bytes]) -> None:
    """Wait until something accepts connections on `port`; fail early if `process` died."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with status {process.returncode} before listening")
        try:
            _, writer = await asyncio.open_connection(HOST, port)
            writer.close()
            return
        except OSError:
            if loop.time() > deadline:
                raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout}s") from None
            await asyncio.sleep(0.05)


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return int(parts[11]) + int(parts[12])


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(parts[2]) == pgid:
            pids.append(int(entry))
    return pids


@dataclass
class Process:
    """A subprocess in its own process group; `stop()` ends the whole group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu_seconds(self) -> float:
        """User+system CPU time of every process in the group so far."""
        return sum(_cpu_ticks(pid) for pid in _group_pids(self.popen.pid)) / CLK_TCK

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
        # Children (e.g. the Erlang VM under ejabberdctl's shell) may outlive the leader.
        deadline = time.monotonic() + timeout
        while _group_pids(self.popen.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_pids(self.popen.pid):
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tail(self, lines: int = 20) -> str:
        """The last lines of the process's log, for error messages."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def spawn(
    name: str,
    argv: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout_pipe: bool = False,
) -> Process:
    """Start `argv` in a new process group, stderr (and stdout unless piped) to `log`."""
    logf = open(log, "ab")  # the child keeps its own descriptor
    popen = subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=subprocess.PIPE if stdout_pipe else logf,
        stderr=logf,
        env=env,
        cwd=cwd,
        user=user,
        group=user,
        extra_groups=[] if user else None,
        start_new_session=True,
    )
    logf.close()
    return Process(name, popen, log)


@dataclass
class XmppServer:
    """What the benchmark needs to know about a running XMPP server."""

    kind: str  # "prosody" | "ejabberd"
    domain: str
    c2s_port: int
    component_port: int
    secret: str
    base: Path
    pubsub_jid: str = ""
    pid: int = 0
    stopper: Callable[[], None] | None = None
    log: Path | None = None
    components: tuple[str, ...] = ()
    component_ports: dict[str, int] = field(default_factory=dict)

    def port_for(self, jid: str) -> int:
        """The component port `jid` connects to."""
        return self.component_ports.get(jid, self.component_port)

    def secret_for(self, jid: str) -> str:
        """The shared secret of component `jid` (each component has its own)."""
        return f"{self.secret}-{jid.split('.')[0]}"

    def stop(self) -> None:
        """Stop the server; idempotent."""
        stopper, self.stopper = self.stopper, None
        if stopper is not None:
            stopper()

    def cpu_seconds(self) -> float:
        """CPU time used so far by every process of the server (its process group)."""
        return sum(_cpu_ticks(pid) for pid in _group_pids(self.pid)) / CLK_TCK


class _BenchProsody(PrivateProsody):
    """The project's private Prosody, with the benchmark's extra components appended."""

    def __init__(self, settings: ProsodySettings, extra: str) -> None:
        super().__init__(settings)
        self.extra = extra

    def write_config(self) -> Path:
        path = super().write_config()
        with path.open("a") as config:
            config.write(self.extra)
        return path


async def start_prosody(
    base: Path, domain: str, admin: str, components: tuple[str, ...]
) -> XmppServer:
    """Start a private Prosody (buddycloud.prosody) with its own mod_pubsub as
    `pubsub.<domain>` and every JID in `components` as an external component; the first
    is the channel server's."""
    server = XmppServer(
        "prosody", domain, free_port(), free_port(), "bench-secret", base, f"pubsub.{domain}"
    )
    server.components = components
    main, *others = components
    settings = ProsodySettings(
        domain=domain,
        component_jid=main,
        component_secret=server.secret_for(main),
        base_dir=base,
        c2s_port=server.c2s_port,
        component_port=server.component_port,
        admins=(admin,),
    )
    extra = f'Component "{server.pubsub_jid}" "pubsub"\n' + "".join(
        f'Component "{jid}"\n  component_secret = "{server.secret_for(jid)}"\n' for jid in others
    )
    prosody = _BenchProsody(settings, extra)
    await asyncio.to_thread(prosody.start, 30.0)
    pid = prosody.pid
    assert pid is not None
    server.pid = pid
    server.stopper = prosody.stop
    server.log = settings.log_path
    return server


EJABBERD_YML = """\
# Private ejabberd for the XMPP benchmark
hosts:
  - {domain}
loglevel: warning
certfiles: []
auth_method: internal
auth_password_format: plain
registration_timeout: infinity
listen:
  - port: {c2s_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
{components}acl:
  admin:
    user: "{admin}"
access_rules:
  register:
    allow: all
  c2s:
    allow: all
  pubsub_createnode:
    allow: all
modules:
  mod_disco: {{}}
  mod_register:
    ip_access: all
    access: register
  mod_ping: {{}}
  mod_roster: {{}}
  # XEP-0033: the channel server sends each notification once for all its followers.
  # A component's domain is not one of `hosts`, so it counts as a remote sender, whose
  # default limit is 20 addresses per message.
  mod_multicast:
    limits:
      remote:
        message: infinite
  mod_pubsub:
    host: {pubsub}
    access_createnode: pubsub_createnode
    plugins: [flat]
"""

EJABBERDCTL_CFG = """\
ERLANG_NODE={node}@localhost
ERL_DIST_PORT={dist_port}
INET_DIST_INTERFACE=127.0.0.1
ERL_EPMD_ADDRESS=127.0.0.1
ERL_OPTIONS="-setcookie {cookie}"
EJABBERD_PID_PATH={base}/ejabberd.pid
"""

INETRC = """\
{{resolv_conf, "/dev/null"}}.
{{hosts_file, "{base}/hosts"}}.
{{lookup, [file]}}.
"""


async def start_ejabberd(
    base: Path, domain: str, admin: str, components: tuple[str, ...]
) -> XmppServer:
    """Start a private ejabberd in the foreground as the `ejabberd` user, its mod_pubsub as
    `pubsub.<domain>` and one component listener per JID in `components`."""
    if shutil.which("ejabberdctl") is None:
        raise RuntimeError("ejabberdctl not found (apt-get install -y ejabberd)")
    base.mkdir(parents=True)
    secret = "bench-secret"
    server = XmppServer(
        "ejabberd", domain, free_port(), free_port(), secret, base, f"pubsub.{domain}"
    )
    server.components = components
    server.component_ports = {jid: free_port() for jid in components}
    server.component_port = server.component_ports[components[0]]
    for sub in ("spool", "logs"):
        (base / sub).mkdir()
    (base / "hosts").write_text("127.0.0.1 localhost\n")
    (base / "inetrc").write_text(INETRC.format(base=base))
    (base / "ejabberd.yml").write_text(
        EJABBERD_YML.format(
            domain=domain,
            c2s_port=server.c2s_port,
            admin=admin,
            pubsub=server.pubsub_jid,
            # One listener per component: a connection to an ejabberd_service listener
            # is given every host configured on it, whichever it authenticated as.
            components="".join(
                f'  - port: {server.port_for(jid)}\n    ip: "127.0.0.1"\n'
                f"    module: ejabberd_service\n    hosts:\n"
                f"      {jid}:\n        password: {server.secret_for(jid)}\n"
                for jid in components
            ),
        )
    )
    (base / "ejabberdctl.cfg").write_text(
        EJABBERDCTL_CFG.format(
            node=f"bench{os.getpid()}",
            dist_port=free_port(),
            cookie=f"bench{os.urandom(8).hex()}",
            base=base,
        )
    )
    entry = pwd.getpwnam("ejabberd")
    for path in [base, *base.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    base.chmod(0o755)
    # Every ancestor must be traversable by the ejabberd user.
    for parent in base.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(base),
        "LANG": "C.UTF-8",
    }
    argv = [
        "ejabberdctl",
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
        "foreground",
    ]
    run_as = None if os.geteuid() == entry.pw_uid else "ejabberd"
    process = spawn("ejabberd", argv, base / "stdout.log", env=env, cwd=base, user=run_as)
    server.pid = process.pid
    server.stopper = process.stop
    server.log = base / "logs" / "ejabberd.log"
    try:
        await wait_for_port(server.c2s_port, 60, process.popen)
        for jid in components:
            await wait_for_port(server.port_for(jid), 60, process.popen)
    except BaseException:
        process.stop()
        raise
    return server
