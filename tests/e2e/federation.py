"""Two federated domains on one machine: capulet.lit and montague.lit.

Each domain has its own private Prosody 0.12 and its own channel server
(`buddycloud serve` as a process, connected as the component `channels.<domain>`). The two
Prosody instances federate over s2s: each listens on port 5269 of its own loopback address,
and one private hosts file, read by Prosody's resolver (libunbound, `local-zone: ". static"`),
maps each domain's names to its address and every other name to NXDOMAIN (testbed recipe A).
Nothing leaves the machine and no system file is touched.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from e2e.harness import Client, ServerProcess, password_of

from buddycloud.prosody import PrivateProsody, ProsodySettings, free_loopback_addresses, free_port

CAPULET = "capulet.lit"
MONTAGUE = "montague.lit"
# A domain without an XMPP service whose channels montague.lit's server hosts: only DNS
# names it (ProtoXEP 2.3). And one whose DNS record points at something that is no
# channel server.
VERONA = "verona.lit"
PADUA = "padua.lit"
# A spare component on capulet.lit's Prosody, outside capulet.lit's disco#items, that tests
# connect from their own process to send what they like over s2s.
PROBE = "probe.lit"
# A third domain without an XMPP service whose DNS record names the probe component as its
# channel server: tests stand in for that server from their own process (its outbox's
# receiver, or mantua.lit's channels sending montague.lit's inbox what they like).
MANTUA = "mantua.lit"
TXT_RECORDS = {
    f"_bcloud-server._tcp.{VERONA}": f"v=1.0 server=channels.{MONTAGUE}",
    f"_bcloud-server._tcp.{PADUA}": f"v=1.0 server={MONTAGUE}",
    f"_bcloud-server._tcp.{MANTUA}": f"v=1.0 server={PROBE}",
}
# Users registered on each domain ("probe" is the readiness check's).
DOMAIN_USERS = {
    CAPULET: ("juliet", "nurse", "tybalt", "probe"),
    MONTAGUE: ("romeo", "benvolio", "balthasar", "probe"),
}


def service_of(domain: str) -> str:
    return f"channels.{domain}"


@dataclass
class Domain:
    """One domain of the pair: its Prosody, its channel server, and how to reach them."""

    name: str
    address: str  # the loopback address its names resolve to (s2s listens there)
    prosody: PrivateProsody
    workdir: Path
    server: ServerProcess | None = None
    extra_config: dict[str, list[str]] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return service_of(self.name)

    @property
    def c2s_port(self) -> int:
        return self.prosody.settings.c2s_port

    def client(self, user: str, *, resource: str = "e2e") -> Client:
        return Client(
            user, self.c2s_port, resource=resource, domain=self.name, service=self.service
        )

    def write_config(self) -> Path:
        """The channel server's TOML configuration (with `extra_config` sections)."""
        settings = self.prosody.settings
        sections = {
            "server": [f'domain = "{self.name}"', f'topics_domain = "topics.{self.name}"'],
            "storage": [f'url = "sqlite:///{self.workdir / "buddycloud.db"}"'],
            "xmpp": [
                f'component_jid = "{self.service}"',
                f'secret = "{settings.component_secret}"',
                f'host = "{settings.interface}"',
                f"port = {settings.component_port}",
            ],
            "http": ['listen = "127.0.0.1:0"'],
        }
        for name, lines in self.extra_config.items():
            sections.setdefault(name, []).extend(lines)
        text = "".join(
            f"[{name}]\n" + "".join(line + "\n" for line in lines)
            for name, lines in sections.items()
        )
        path = self.workdir / "buddycloud.toml"
        path.write_text(text)
        return path

    def start_server(self) -> ServerProcess:
        self.server = ServerProcess(
            self.write_config(),
            self.workdir,
            self.c2s_port,
            domain=self.name,
            service=self.service,
        )
        self.server.start()
        return self.server

    def stop_server(self) -> int | None:
        server, self.server = self.server, None
        return server.stop() if server is not None else None


@dataclass
class TwoDomains:
    capulet: Domain
    montague: Domain
    nameserver: tuple[str, int] = ("127.0.0.1", 53)  # the private dnsmasq
    probe_secret: str = ""

    def __iter__(self) -> Iterator[Domain]:
        return iter((self.capulet, self.montague))

    def domain(self, name: str) -> Domain:
        return {CAPULET: self.capulet, MONTAGUE: self.montague}[name]


def hosts_entries(domain: str, address: str) -> tuple[tuple[str, str], ...]:
    """Names of `domain` that remote servers reach over s2s, mapped to its address."""
    return tuple((name, address) for name in (domain, service_of(domain), f"topics.{domain}"))


def start_prosody_pair(base_dir: Path, nameserver: tuple[str, int]) -> TwoDomains:
    """Both Prosody instances started, federating, with their users registered, and each
    channel server configured to ask `nameserver` for TXT records.

    The channel servers are not started.
    """
    addresses = dict(zip((CAPULET, MONTAGUE), free_loopback_addresses(2), strict=True))
    hosts = tuple(
        entry for name, address in addresses.items() for entry in hosts_entries(name, address)
    ) + ((PROBE, addresses[CAPULET]),)
    probe_secret = secrets.token_hex(16)
    federation = [f'nameservers = ["{nameserver[0]}:{nameserver[1]}"]']
    domains: list[Domain] = []
    try:
        for name, address in addresses.items():
            workdir = base_dir / name
            workdir.mkdir(parents=True)
            settings = ProsodySettings(
                domain=name,
                component_jid=service_of(name),
                component_secret=secrets.token_hex(16),
                base_dir=workdir / "prosody",
                c2s_port=free_port(),
                component_port=free_port(),
                s2s_port=5269,
                s2s_interface=address,
                hosts=hosts,
                multicast=False,
                extra_components=((PROBE, probe_secret),) if name == CAPULET else (),
            )
            prosody = PrivateProsody(settings)
            federation = [f'nameservers = ["{nameserver[0]}:{nameserver[1]}"]']
            domains.append(
                Domain(name, address, prosody, workdir, None, {"federation": federation})
            )
            prosody.start()
            for user in DOMAIN_USERS[name]:
                prosody.register(user, password_of(user))
    except BaseException:
        for domain in domains:
            domain.prosody.stop()
        raise
    return TwoDomains(domains[0], domains[1], nameserver, probe_secret)


def stop_all(pair: TwoDomains) -> list[str]:
    """Stop both channel servers and both Prosody instances; the problems met, if any."""
    problems = []
    for domain in pair:
        status = domain.stop_server()
        if status not in (0, None):
            problems.append(f"the {domain.name} channel server exited with {status} on SIGTERM")
    for domain in pair:
        domain.prosody.stop()
    return problems
