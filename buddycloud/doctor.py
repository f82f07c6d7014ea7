"""`buddycloud doctor`: checks a deployment and says what to fix, one line per check.

The checks, in order: the configuration; the storage (reachable, schema at this server's
version); the XMPP server (reachable, the component secret accepted); the administrator of
the built-in accounts' XMPP twins (signs in, may run the XEP-0133 commands); the domain's DNS
records (`_xmpp-client._tcp` and `_xmpp-server._tcp` SRV, `_bcloud-server._tcp` and
`_buddycloud-api._tcp` TXT, as the original Buddycloud installation checks had them), with
the exact record to add when one is missing or wrong; the channel service found by disco
from the domain; the HTTP edge (its local `[http] listen` and the public API URL); the TLS
certificates of the public API (when https) and of the XMPP server (when it offers
STARTTLS), which must not expire within 14 days.

DNS queries go to `[federation] nameservers` when set, else to the system's resolver.
Every check has its own timeout; none changes anything (the storage is not migrated).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.SRV
import dns.resolver
import httpx

from buddycloud.config import Config
from buddycloud.domain.errors import AccountDirectoryUnavailable
from buddycloud.federation.dns import parse_server_record
from buddycloud.storage.base import StorageUnavailable, redact_url
from buddycloud.storage.factory import open_storage
from buddycloud.xmpp.admin import XmppAccounts
from buddycloud.xmpp.component import probe_component

Status = Literal["ok", "FAIL", "skip"]
CERTIFICATE_DAYS = 14
TIMEOUT = 10.0
TTL = 3600
XMPP_CLIENT_PORT = 5222
XMPP_SERVER_PORT = 5269
_NS_STREAM = "http://etherx.jabber.org/streams"
_NS_TLS = "urn:ietf:params:xml:ns:xmpp-tls"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: what was checked, how it went, and what to fix."""

    name: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"[{self.status}] {self.name}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Options:
    """What the doctor needs beyond the configuration.

    Attributes:
        api_url: where clients reach the HTTP API from outside (through the reverse
            proxy); `https://buddycloud.<domain>/api` by default.
        ca_file: certificates to trust besides the system's (a private CA; tests).
        now: the time certificates are compared with.
    """

    api_url: str
    ca_file: Path | None = None
    now: datetime | None = None


def default_api_url(config: Config) -> str:
    return f"https://buddycloud.{config.server.domain.domain}/api"


# --- the DNS records ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """A DNS record the domain needs, in zone-file syntax."""

    name: str
    type: Literal["SRV", "TXT"]
    value: str  # SRV: "priority weight port target."; TXT: the text, unquoted

    def zone_line(self) -> str:
        value = f'"{self.value}"' if self.type == "TXT" else self.value
        return f"{self.name} {TTL} IN {self.type} {value}"


def api_record_text(api_url: str) -> str:
    """The `_buddycloud-api._tcp` TXT record's text for the API at `api_url`."""
    parts = urlsplit(api_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (
        f"v=1.0 host={parts.hostname} protocol={parts.scheme} path={parts.path or '/'} port={port}"
    )


def records(config: Config, api_url: str) -> list[Record]:
    """The records `[server] domain` needs, its own name as the XMPP server's host."""
    domain = config.server.domain.domain
    component = config.xmpp.component_jid if config.xmpp is not None else f"channels.{domain}"
    return [
        Record(f"_xmpp-client._tcp.{domain}.", "SRV", f"0 5 {XMPP_CLIENT_PORT} {domain}."),
        Record(f"_xmpp-server._tcp.{domain}.", "SRV", f"0 5 {XMPP_SERVER_PORT} {domain}."),
        Record(f"_bcloud-server._tcp.{domain}.", "TXT", f"v=1.0 server={component}"),
        Record(f"_buddycloud-api._tcp.{domain}.", "TXT", api_record_text(api_url)),
    ]


def _resolver(config: Config) -> dns.asyncresolver.Resolver:
    nameservers = config.federation.nameservers
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(address, port) for address, port in nameservers
        ]
    else:
        resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = float(config.federation.dns_timeout)
    return resolver


async def _lookup(
    resolver: dns.asyncresolver.Resolver, name: str, kind: str
) -> tuple[list[object], str | None]:
    """The answer's records, or none and why (None: the name has no such record)."""
    try:
        answer = await resolver.resolve(name, kind, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return [], None
    except (dns.exception.DNSException, OSError) as exc:
        return [], f"the lookup failed ({exc or type(exc).__name__})"
    return list(answer), None


async def check_record(
    resolver: dns.asyncresolver.Resolver, record: Record, server: str
) -> tuple[Check, list[tuple[str, int]]]:
    """One record's check, and for SRV records the (target, port) pairs it names."""
    name = f"dns {record.name.rstrip('.')} {record.type}"
    found, failure = await _lookup(resolver, record.name, record.type)
    add = f"add to the zone of the domain: {record.zone_line()}"
    if failure is not None:
        return Check(name, "FAIL", f"{failure}; {add}"), []
    if record.type == "SRV":
        targets = [
            (str(srv.target).rstrip("."), int(srv.port))
            for srv in found
            if isinstance(srv, dns.rdtypes.IN.SRV.SRV)
        ]
        if not targets:
            return Check(name, "FAIL", f"missing; {add}"), []
        shown = ", ".join(f"{target}:{port}" for target, port in targets)
        return Check(name, "ok", shown), targets
    texts = [
        b"".join(txt.strings).decode("utf-8", errors="replace")
        for txt in found
        if isinstance(txt, dns.rdtypes.ANY.TXT.TXT)
    ]
    if not texts:
        return Check(name, "FAIL", f"missing; {add}"), []
    if record.name.startswith("_bcloud-server."):
        named = [str(parse_server_record(text)) for text in texts if parse_server_record(text)]
        if server in named:
            return Check(name, "ok", f'"{record.value}"'), []
    elif record.value in texts:
        return Check(name, "ok", f'"{record.value}"'), []
    shown = ", ".join(f'"{text}"' for text in texts)
    return Check(
        name, "FAIL", f"has {shown}, not the expected text; replace it: {record.zone_line()}"
    ), []


# --- TLS ---------------------------------------------------------------------------------


def _tls_context(options: Options) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if options.ca_file is not None:
        context.load_verify_locations(cafile=str(options.ca_file))
    return context


def certificate_check(name: str, peer: dict[str, object] | None, options: Options) -> Check:
    """The certificate's expiry against `now` plus CERTIFICATE_DAYS."""
    not_after = peer.get("notAfter") if peer else None
    if not isinstance(not_after, str):
        return Check(name, "FAIL", "the server sent no certificate")
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    now = options.now or datetime.now(UTC)
    days = (expires - now).total_seconds() / 86400
    when = expires.strftime("%Y-%m-%d %H:%M UTC")
    if days < 0:
        return Check(name, "FAIL", f"the certificate expired on {when}; renew it")
    if days < CERTIFICATE_DAYS:
        return Check(
            name,
            "FAIL",
            f"the certificate expires on {when}, in {days:.0f} days (under "
            f"{CERTIFICATE_DAYS}); renew it",
        )
    return Check(name, "ok", f"valid until {when} ({days:.0f} days)")


async def https_certificate(host: str, port: int, options: Options) -> Check:
    name = f"tls {host}:{port}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_tls_context(options), server_hostname=host),
            TIMEOUT,
        )
    except ssl.SSLCertVerificationError as exc:
        return Check(name, "FAIL", f"the certificate is not valid: {exc.verify_message}")
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return Check(name, "FAIL", f"no TLS connection: {_reason(exc)}")
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        return certificate_check(name, ssl_object.getpeercert(), options)
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def xmpp_certificate(domain: str, host: str, port: int, options: Options) -> Check:
    """STARTTLS on the XMPP client port, then the certificate for `domain`."""
    name = f"tls xmpp {host}:{port}"
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return Check(name, "FAIL", f"cannot connect: {_reason(exc)}")
    try:
        writer.write(
            f"<?xml version='1.0'?><stream:stream to='{domain}' version='1.0' "
            f"xmlns='jabber:client' xmlns:stream='{_NS_STREAM}'>".encode()
        )
        features = await _read_until(reader, (b"</stream:features>", b"/stream:features>"))
        if _NS_TLS.encode() not in features:
            return Check(
                name,
                "skip",
                "offers no STARTTLS; a public server should: import a certificate "
                "(docs/deploy.md, TLS)",
            )
        writer.write(f"<starttls xmlns='{_NS_TLS}'/>".encode())
        answer = await _read_until(reader, (b"proceed", b"failure"))
        if b"proceed" not in answer:
            return Check(name, "FAIL", "refused STARTTLS")
        try:
            await asyncio.wait_for(
                writer.start_tls(_tls_context(options), server_hostname=domain), TIMEOUT
            )
        except ssl.SSLCertVerificationError as exc:
            return Check(name, "FAIL", f"the certificate is not valid: {exc.verify_message}")
        ssl_object = writer.get_extra_info("ssl_object")
        return certificate_check(name, ssl_object.getpeercert(), options)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return Check(name, "FAIL", f"TLS failed: {_reason(exc)}")
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


async def _read_until(reader: asyncio.StreamReader, endings: tuple[bytes, ...]) -> bytes:
    data = b""
    deadline = time.monotonic() + TIMEOUT
    while not any(ending in data for ending in endings):
        left = deadline - time.monotonic()
        chunk = await asyncio.wait_for(reader.read(4096), max(left, 0.01))
        if not chunk:
            break
        data += chunk
        if len(data) > 65536:
            break
    return data


# --- the checks --------------------------------------------------------------------------


async def check_storage(config: Config) -> Check:
    url = config.storage.url
    shown = redact_url(url)
    if url.startswith("sqlite"):
        path = url.partition("://")[2][1:]
        if path and path != ":memory:" and not Path(path).exists():
            return Check(
                "storage",
                "ok",
                f"{shown}: no database yet; `buddycloud serve` or `buddycloud migrate` creates it",
            )
    try:
        storage = await asyncio.wait_for(open_storage(url), TIMEOUT * 2)
    except StorageUnavailable as exc:
        return Check("storage", "FAIL", str(exc))
    except TimeoutError:
        return Check("storage", "FAIL", f"{shown}: no answer within {TIMEOUT * 2:.0f} s")
    except ValueError as exc:
        return Check("storage", "FAIL", f"{shown}: {exc}")
    await storage.close()
    return Check("storage", "ok", f"{shown}: reachable, schema at this server's version")


async def check_xmpp(config: Config) -> tuple[Check, list[str] | None]:
    """The component handshake, and what disco#items of the domain lists (None: not
    asked, because the running channel server holds the component's connection)."""
    xmpp = config.xmpp
    if xmpp is None:
        return Check("xmpp", "skip", "no [xmpp] section: the server serves no XMPP"), None
    where = f"{xmpp.host}:{xmpp.port}"
    outcome = await probe_component(
        str(xmpp.component_jid),
        xmpp.secret,
        xmpp.host,
        xmpp.port,
        disco_domain=config.server.domain.domain,
        timeout=TIMEOUT,
    )
    if outcome.failure is not None:
        return Check("xmpp", "FAIL", f"XMPP server at {where}: {outcome.failure}"), None
    if outcome.already_connected:
        return (
            Check(
                "xmpp",
                "ok",
                f"{where} accepted the secret of {xmpp.component_jid}; the channel server "
                "is connected as it",
            ),
            None,
        )
    return (
        Check(
            "xmpp",
            "ok",
            f"{where} accepted the secret of {xmpp.component_jid} (no channel server is "
            "connected now)",
        ),
        outcome.disco_items,
    )


async def check_xmpp_admin(config: Config) -> Check:
    """The administrator of the built-in accounts' XMPP twins signs in at the client port
    and may run the XEP-0133 commands the twins need."""
    xmpp = config.xmpp
    if xmpp is None or xmpp.admin_jid is None or xmpp.admin_password is None:
        return Check(
            "xmpp admin", "skip", "no [xmpp] admin_jid: built-in accounts get no XMPP account"
        )
    domain = config.server.domain.domain
    accounts = XmppAccounts(
        xmpp.admin_jid, xmpp.admin_password, domain, xmpp.c2s_host, xmpp.c2s_port, TIMEOUT
    )
    try:
        missing = await accounts.missing_commands()
    except AccountDirectoryUnavailable as exc:
        return Check("xmpp admin", "FAIL", f"{exc.message} (check [xmpp] admin_password)")
    if missing:
        return Check(
            "xmpp admin",
            "FAIL",
            f"{xmpp.admin_jid} signs in, but may not run {', '.join(missing)} at {domain}: "
            "list it in Prosody's admins (with admin_adhoc loaded), or allow it ejabberd's "
            "configure rule (with mod_adhoc and mod_configure)",
        )
    return Check(
        "xmpp admin",
        "ok",
        f"{xmpp.admin_jid} signs in at {xmpp.c2s_host}:{xmpp.c2s_port} and may make, change "
        "and delete the XMPP accounts of the built-in ones",
    )


def check_disco(config: Config, items: list[str] | None, health: dict[str, object] | None) -> Check:
    if config.xmpp is None:
        return Check("disco", "skip", "no [xmpp] section")
    domain = config.server.domain.domain
    jid = str(config.xmpp.component_jid)
    if items is None:
        if health is not None and health.get("xmpp") == "connected":
            return Check(
                "disco",
                "ok",
                f"the channel server is connected as {jid}; the XMPP server routes its "
                f"disco (disco#items of {domain} is listed when it is stopped)",
            )
        return Check("disco", "skip", "the XMPP server could not be asked")
    if jid in items:
        return Check("disco", "ok", f"disco#items of {domain} lists {jid}")
    listed = ", ".join(items) or "nothing"
    return Check(
        "disco",
        "FAIL",
        f"disco#items of {domain} lists {listed}, not {jid}: declare the component under "
        f'the domain\'s host in the XMPP server (Prosody: Component "{jid}"; ejabberd: '
        "ejabberd_service hosts) so that clients find it",
    )


async def check_http(
    config: Config, options: Options
) -> tuple[list[Check], dict[str, object] | None]:
    """The local `[http] listen` (`/health`) and the public API URL."""
    checks = []
    health: dict[str, object] | None = None
    host = config.http.host
    shown_host = f"[{host}]" if ":" in host else host
    local = f"http://{shown_host}:{config.http.port}"
    async with httpx.AsyncClient(timeout=TIMEOUT, verify=_tls_context(options)) as http:
        try:
            answer = await http.get(f"{local}/health")
            body = answer.json()
            health = body if isinstance(body, dict) else None
            if answer.status_code == 200:
                checks.append(Check("http", "ok", f"{local}/health answered {body}"))
            else:
                checks.append(
                    Check("http", "FAIL", f"{local}/health answered {answer.status_code}: {body}")
                )
        except (httpx.HTTPError, ValueError) as exc:
            checks.append(
                Check(
                    "http",
                    "FAIL",
                    f"{local}: {_reason(exc)}: is `buddycloud serve` running (systemctl "
                    "status buddycloud)?",
                )
            )
        try:
            answer = await http.get(options.api_url.rstrip("/"))
            if answer.status_code >= 500:
                checks.append(
                    Check(
                        "http public",
                        "FAIL",
                        f"{options.api_url} answered {answer.status_code}: check the reverse "
                        "proxy and that it forwards to [http] listen",
                    )
                )
            else:
                checks.append(
                    Check("http public", "ok", f"{options.api_url} answered {answer.status_code}")
                )
        except httpx.HTTPError as exc:
            checks.append(
                Check(
                    "http public",
                    "FAIL",
                    f"{options.api_url}: {_reason(exc)}: check the reverse proxy and DNS "
                    "(docs/deploy.md)",
                )
            )
    return checks, health


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno > 0:
        return os.strerror(exc.errno)  # asyncio's strerror repeats the address
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def run_checks(config: Config, options: Options, source: str) -> list[Check]:
    """Every check, in order; the configuration already loaded from `source`."""
    checks = [Check("configuration", "ok", f"{source} is valid")]
    checks.append(await check_storage(config))
    xmpp_check, disco_items = await check_xmpp(config)
    checks.append(xmpp_check)
    checks.append(await check_xmpp_admin(config))
    resolver = _resolver(config)
    server = (
        str(config.xmpp.component_jid) if config.xmpp else f"channels.{config.server.domain.domain}"
    )
    client_targets: list[tuple[str, int]] = []
    for record in records(config, options.api_url):
        check, targets = await check_record(resolver, record, server)
        checks.append(check)
        if record.name.startswith("_xmpp-client."):
            client_targets = targets
    http_checks, health = await check_http(config, options)
    checks.append(check_disco(config, disco_items, health))
    checks.extend(http_checks)
    api = urlsplit(options.api_url)
    if api.scheme == "https" and api.hostname:
        checks.append(await https_certificate(api.hostname, api.port or 443, options))
    else:
        checks.append(Check(f"tls {api.hostname}", "skip", f"{options.api_url} is not https"))
    domain = config.server.domain.domain
    host, port = client_targets[0] if client_targets else (domain, XMPP_CLIENT_PORT)
    address = await _address(resolver, host)
    checks.append(await xmpp_certificate(domain, address, port, options))
    return checks


async def _address(resolver: dns.asyncresolver.Resolver, host: str) -> str:
    """The host's IPv4 address through the doctor's resolver (the configured nameservers),
    or the name itself for the system to resolve."""
    found, _ = await _lookup(resolver, f"{host}.", "A")
    for record in found:
        address = getattr(record, "address", None)
        if isinstance(address, str):
            return address
    return host


def failed(checks: list[Check]) -> bool:
    """Whether any check failed (the command's exit status is then 1)."""
    return any(check.status == "FAIL" for check in checks)
