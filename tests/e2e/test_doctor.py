"""`buddycloud doctor` against a good and a broken local deployment: a private Prosody,
dnsmasq on a loopback port with and without the domain's records, the real PostgreSQL
(BUDDYCLOUD_TEST_POSTGRES), the server itself, and TLS certificates near and far from
their expiry."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dnsmasq_support import running_dnsmasq
from dnsmasq_support import unavailable_reason as dnsmasq_unavailable
from e2e.conftest import require_prosody
from e2e.harness import ServerProcess, password_of

from buddycloud import doctor
from buddycloud.config import load_config
from buddycloud.prosody import PrivateProsody, ProsodySettings, free_port

DOMAIN = "capulet.lit"
SERVICE = "channels.capulet.lit"
# dnsmasq answers for the zone, as the domain's nameserver does: a name without records
# is NXDOMAIN, not refused.
ZONE = [f"--local=/{DOMAIN}/"]


@dataclass(frozen=True)
class Setup:
    prosody: ProsodySettings
    http_port: int
    postgres_url: str


@pytest.fixture(scope="module")
def setup(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    require_prosody()
    reason = dnsmasq_unavailable()
    if reason is not None:
        pytest.fail(reason)
    settings = ProsodySettings(
        domain=DOMAIN,
        component_jid=SERVICE,
        component_secret=secrets.token_hex(16),
        base_dir=tmp_path_factory.mktemp("doctor-prosody"),
        c2s_port=free_port(),
        component_port=free_port(),
        admins=(f"admin@{DOMAIN}",),
    )
    instance = PrivateProsody(settings)
    instance.start()
    try:
        instance.register("probe", password_of("probe"))  # ServerProcess waits with it
        instance.register("admin", password_of("admin"))
        yield Setup(settings, free_port(), postgres_url)
    finally:
        instance.stop()


def write_config(
    directory: Path, setup: Setup, nameserver: tuple[str, int], **changes: str
) -> Path:
    values = {
        "url": setup.postgres_url,
        "secret": setup.prosody.component_secret,
        "admin_jid": f"admin@{DOMAIN}",
        "admin_password": password_of("admin"),
        **changes,
    }
    path = directory / "buddycloud.toml"
    path.write_text(
        "[server]\n"
        f'domain = "{DOMAIN}"\n'
        "[storage]\n"
        f'url = "{values["url"]}"\n'
        "[xmpp]\n"
        f'component_jid = "{SERVICE}"\n'
        f'secret = "{values["secret"]}"\n'
        f"port = {setup.prosody.component_port}\n"
        f"c2s_port = {setup.prosody.c2s_port}\n"
        f'admin_jid = "{values["admin_jid"]}"\n'
        f'admin_password = "{values["admin_password"]}"\n'
        "[http]\n"
        f'listen = "127.0.0.1:{setup.http_port}"\n'
        "[federation]\n"
        f'nameservers = ["{nameserver[0]}:{nameserver[1]}"]\n'
        "dns_timeout = 2\n"
    )
    return path


def dns_options(setup: Setup, api_url: str) -> tuple[dict[str, str], list[str]]:
    """The records of the good deployment, as dnsmasq options."""
    txt = {
        f"_bcloud-server._tcp.{DOMAIN}": f"v=1.0 server={SERVICE}",
        f"_buddycloud-api._tcp.{DOMAIN}": doctor.api_record_text(api_url),
    }
    options = [
        *ZONE,
        f"--srv-host=_xmpp-client._tcp.{DOMAIN},xmpp.{DOMAIN},{setup.prosody.c2s_port},0,5",
        f"--srv-host=_xmpp-server._tcp.{DOMAIN},xmpp.{DOMAIN},5269,0,5",
        f"--host-record=xmpp.{DOMAIN},127.0.0.1",
    ]
    return txt, options


async def run_doctor(config: Path, *args: str) -> tuple[int, list[str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "buddycloud",
        "doctor",
        "--config",
        str(config),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert err == b"", err.decode()
    assert process.returncode is not None
    return process.returncode, out.decode().splitlines()


def line_of(lines: list[str], name: str) -> str:
    found = [line for line in lines if line.split("] ", 1)[1].startswith(f"{name}:")]
    assert len(found) == 1, (name, lines)
    return found[0]


async def test_a_good_deployment_passes_every_check(setup: Setup, tmp_path: Path) -> None:
    api_url = f"http://127.0.0.1:{setup.http_port}/api"
    txt, options = dns_options(setup, api_url)
    with running_dnsmasq(txt, tmp_path, options=options) as nameserver:
        config = write_config(tmp_path, setup, nameserver)
        # Stopped: the doctor holds the component's connection and asks disco itself.
        status, lines = await run_doctor(config, "--api-url", api_url)
        assert line_of(lines, "disco") == f"[ok] disco: disco#items of {DOMAIN} lists {SERVICE}"
        assert line_of(lines, "xmpp").startswith("[ok] xmpp: ")
        assert line_of(lines, "http").startswith("[FAIL] http: ")
        assert status == 1

        server = ServerProcess(config, tmp_path, setup.prosody.c2s_port)
        server.start()
        try:
            status, lines = await run_doctor(config, "--api-url", api_url)
        finally:
            assert server.stop() == 0, server.log_tail()
    assert status == 0, "\n".join(lines)
    assert [line for line in lines if not line.startswith(("[ok] ", "[skip] "))] == []
    assert "the channel server is connected as" in line_of(lines, "xmpp")
    assert line_of(lines, "xmpp admin").startswith(f"[ok] xmpp admin: admin@{DOMAIN} signs in")
    assert line_of(lines, f"dns _xmpp-client._tcp.{DOMAIN} SRV").endswith(
        f"xmpp.{DOMAIN}:{setup.prosody.c2s_port}"
    )
    assert line_of(lines, "storage").startswith("[ok] storage: postgresql://")
    assert '"storage": "ok"' in line_of(lines, "http") or "'storage': 'ok'" in line_of(
        lines, "http"
    )
    # The private Prosody has no TLS: said, not failed.
    xmpp_tls = line_of(lines, f"tls xmpp 127.0.0.1:{setup.prosody.c2s_port}")
    assert xmpp_tls.startswith("[skip]") and "STARTTLS" in xmpp_tls


async def test_a_broken_deployment_says_what_to_fix(
    setup: Setup, tmp_path: Path, postgres_admin_url: str
) -> None:
    api_url = "https://buddycloud.capulet.lit/api"
    absent = postgres_url_of(postgres_admin_url, f"buddycloud_absent_{uuid.uuid4().hex[:8]}")
    with running_dnsmasq({}, tmp_path, options=ZONE) as nameserver:
        config = write_config(
            tmp_path,
            setup,
            nameserver,
            url=absent,
            secret="wrong-secret",
            admin_password="wrong-admin-password",
        )
        status, lines = await run_doctor(config)
    assert status == 1
    storage = line_of(lines, "storage")
    assert storage.startswith("[FAIL]") and "does not exist" in storage and "createdb" in storage
    xmpp = line_of(lines, "xmpp")
    assert xmpp.startswith("[FAIL]") and "not-authorized" in xmpp and "[xmpp] secret" in xmpp
    assert "wrong-secret" not in "\n".join(lines)
    admin = line_of(lines, "xmpp admin")
    assert admin.startswith("[FAIL]") and "refused the administrator's sign-in" in admin
    assert "wrong-admin-password" not in "\n".join(lines)
    # Each missing record is printed as the zone line to add, the doctor's own text.
    expected = doctor.records(load_config(config, {}), api_url)
    for record in expected:
        line = line_of(lines, f"dns {record.name.rstrip('.')} {record.type}")
        assert line == (
            f"[FAIL] dns {record.name.rstrip('.')} {record.type}: missing; add to the zone "
            f"of the domain: {record.zone_line()}"
        )
    assert line_of(lines, "http").startswith("[FAIL] http: http://127.0.0.1:")


def postgres_url_of(admin_url: str, name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def test_a_wrong_channel_server_record_is_named(setup: Setup, tmp_path: Path) -> None:
    txt = {f"_bcloud-server._tcp.{DOMAIN}": "v=1.0 server=pubsub.capulet.lit"}
    with running_dnsmasq(txt, tmp_path, options=ZONE) as nameserver:
        status, lines = await run_doctor(write_config(tmp_path, setup, nameserver))
    line = line_of(lines, f"dns _bcloud-server._tcp.{DOMAIN} TXT")
    assert line == (
        f'[FAIL] dns _bcloud-server._tcp.{DOMAIN} TXT: has "v=1.0 server=pubsub.capulet.lit", '
        f"not the expected text; replace it: _bcloud-server._tcp.{DOMAIN}. 3600 IN TXT "
        f'"v=1.0 server={SERVICE}"'
    )
    assert status == 1


# --- TLS certificates --------------------------------------------------------------------


def make_certificate(directory: Path, days: int) -> tuple[Path, Path]:
    cert, key = directory / f"cert-{days}.pem", directory / f"key-{days}.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            str(days),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def https_edge(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[int, Path]]:
    """An HTTPS server on loopback with a certificate valid for `request.param` days."""
    cert, key = make_certificate(tmp_path, request.param)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port, cert
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("https_edge", "expected"), [(5, "FAIL"), (90, "ok")], indirect=["https_edge"]
)
async def test_the_api_certificate_must_last_14_days(
    setup: Setup, tmp_path: Path, https_edge: tuple[int, Path], expected: str
) -> None:
    port, cert = https_edge
    api_url = f"https://127.0.0.1:{port}/api"
    with running_dnsmasq({}, tmp_path, options=ZONE) as nameserver:
        config = write_config(tmp_path, setup, nameserver)
        _, lines = await run_doctor(config, "--api-url", api_url, "--ca-file", str(cert))
    line = line_of(lines, f"tls 127.0.0.1:{port}")
    assert line.startswith(f"[{expected}]"), line
    if expected == "FAIL":
        assert "in 5 days (under 14); renew it" in line
    assert line_of(lines, "http public") == f"[ok] http public: {api_url} answered 204"


async def test_an_administrator_without_the_rights_is_named(setup: Setup, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        setup,
        ("127.0.0.1", 9),
        admin_jid=f"probe@{DOMAIN}",
        admin_password=password_of("probe"),
    )
    check = await doctor.check_xmpp_admin(load_config(config, {}))
    assert check.status == "FAIL"
    assert "may not run add-user, change-user-password, delete-user" in check.detail
