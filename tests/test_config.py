"""The configuration file and its environment overrides (docs/config.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from buddycloud.config import (
    DEFAULT_STORAGE_URL,
    SECTIONS,
    Config,
    ConfigError,
    LogConfig,
    env_var,
    load_config,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import WELL_KNOWN_NODES, AccessModel, Role

FULL = """
[server]
domain = "capulet.lit"
topics_domain = "topics.capulet.lit"
well_known_nodes = ["posts", "status", "geoloc"]
max_payload_bytes = 131072
personal_access_model = "authorize"
personal_default_role = "member"
topic_access_model = "local"
topic_default_role = "publisher"
anonymous_domains = ["Guests.Capulet.lit", "visitors.capulet.lit"]

[storage]
url = "postgresql://postgres@127.0.0.1:5432/channels"

[xmpp]
component_jid = "channels.capulet.lit"
secret = "s3cret"
host = "xmpp.capulet.lit"
port = 15347
multicast = false
max_stanza_bytes = 262144
reconnect_queue_bytes = 0

[http]
listen = "0.0.0.0:9090"
metrics_token = "prometheus-scrapes-with-this"
access_log = true
long_poll_seconds = 55
ws_ping_seconds = 30
ws_send_queue = 64
replay_events = 500
"""


Write = Callable[[str], Path]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """Writes the configuration file under test and returns its path."""

    def write(text: str) -> Path:
        path = tmp_path / "buddycloud.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def error_of(path: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return str(caught.value)


def test_no_file_and_no_environment_gives_the_embedded_default() -> None:
    config = load_config(None, {})
    assert config == Config()
    assert config.server.domain == Jid("", "localhost")
    assert config.server.topics_domain == Jid("", "topics.localhost")
    assert config.server.well_known_nodes == WELL_KNOWN_NODES
    assert config.server.max_payload_bytes == 65536
    assert config.server.personal_access_model is AccessModel.OPEN
    assert config.server.personal_default_role is Role.PUBLISHER
    assert config.server.topic_access_model is AccessModel.OPEN
    assert config.server.topic_default_role is Role.MEMBER
    assert config.storage.url == DEFAULT_STORAGE_URL == "sqlite:///data/buddycloud.db"
    assert config.xmpp is None
    assert (config.http.listen, config.http.host, config.http.port) == (
        "127.0.0.1:8080",
        "127.0.0.1",
        8080,
    )
    assert config.http.metrics_token is None  # /metrics for loopback callers only
    assert config.http.access_log is False
    assert config.http.long_poll_seconds == 30
    assert config.http.ws_ping_seconds == 20
    assert config.http.ws_send_queue == 256
    assert config.http.replay_events == 10_000


def test_an_empty_file_gives_the_embedded_default(write: Write) -> None:
    assert load_config(write(""), {}) == Config()


def test_every_key_of_a_full_file_is_read(write: Write) -> None:
    config = load_config(write(FULL), {})
    assert config.server.domain == Jid.parse("capulet.lit")
    assert config.server.topics_domain == Jid.parse("topics.capulet.lit")
    assert config.server.well_known_nodes == ("posts", "status", "geoloc")
    assert config.server.max_payload_bytes == 131072
    assert config.server.personal_access_model is AccessModel.AUTHORIZE
    assert config.server.personal_default_role is Role.MEMBER
    assert config.server.topic_access_model is AccessModel.LOCAL
    assert config.server.topic_default_role is Role.PUBLISHER
    assert config.server.anonymous_domains == ("guests.capulet.lit", "visitors.capulet.lit")
    assert config.storage.url == "postgresql://postgres@127.0.0.1:5432/channels"
    assert config.xmpp is not None
    assert config.xmpp.component_jid == Jid.parse("channels.capulet.lit")
    assert config.xmpp.secret == "s3cret"
    assert (config.xmpp.host, config.xmpp.port) == ("xmpp.capulet.lit", 15347)
    assert config.xmpp.multicast is False
    assert config.xmpp.max_stanza_bytes == 262144
    assert config.xmpp.reconnect_queue_bytes == 0
    assert (config.http.host, config.http.port) == ("0.0.0.0", 9090)
    assert config.http.metrics_token == "prometheus-scrapes-with-this"
    assert config.http.access_log is True
    assert config.http.long_poll_seconds == 55
    assert config.http.ws_ping_seconds == 30
    assert config.http.ws_send_queue == 64
    assert config.http.replay_events == 500


def test_topics_domain_defaults_to_topics_dot_domain(write: Write) -> None:
    config = load_config(write('[server]\ndomain = "Montague.LIT"\n'), {})
    assert config.server.domain == Jid("", "montague.lit")
    assert config.server.topics_domain == Jid("", "topics.montague.lit")


def test_xmpp_section_gets_default_host_and_port(write: Write) -> None:
    config = load_config(write('[xmpp]\ncomponent_jid = "channels.a.lit"\nsecret = "x"\n'), {})
    assert config.xmpp is not None
    assert (config.xmpp.host, config.xmpp.port) == ("127.0.0.1", 5347)
    assert config.xmpp.multicast is True
    # Prosody 0.12's component_stanza_size_limit (its s2s limit), and a 16 MiB queue.
    assert config.xmpp.max_stanza_bytes == 512 * 1024
    assert config.xmpp.reconnect_queue_bytes == 16 * 1024 * 1024


def test_the_secret_never_appears_in_the_repr(write: Write) -> None:
    config = load_config(write(FULL), {})
    assert "s3cret" not in repr(config)
    assert "prometheus-scrapes-with-this" not in repr(config)


def test_role_and_access_model_accept_buddycloud_names(write: Write) -> None:
    config = load_config(
        write(
            '[server]\npersonal_default_role = "follower+post"\ntopic_default_role = "follower"\n'
            'personal_access_model = "whitelist"\n'
        ),
        {},
    )
    assert config.server.personal_default_role is Role.PUBLISHER
    assert config.server.topic_default_role is Role.MEMBER
    assert config.server.personal_access_model is AccessModel.AUTHORIZE


# --- environment overrides -------------------------------------------------------------


def test_environment_overrides_every_kind_of_value(write: Write) -> None:
    environ = {
        "BUDDYCLOUD_SERVER_DOMAIN": "verona.lit",
        "BUDDYCLOUD_SERVER_TOPICS_DOMAIN": "groups.verona.lit",
        "BUDDYCLOUD_SERVER_WELL_KNOWN_NODES": "posts, status",
        "BUDDYCLOUD_SERVER_MAX_PAYLOAD_BYTES": "2048",
        "BUDDYCLOUD_SERVER_PERSONAL_ACCESS_MODEL": "local",
        "BUDDYCLOUD_SERVER_TOPIC_DEFAULT_ROLE": "moderator",
        "BUDDYCLOUD_STORAGE_URL": "sqlite:////var/lib/buddycloud/db.sqlite",
        "BUDDYCLOUD_XMPP_PORT": "25347",
        "BUDDYCLOUD_XMPP_SECRET": "from-env",
        "BUDDYCLOUD_XMPP_MULTICAST": "True",
        "BUDDYCLOUD_XMPP_MAX_STANZA_BYTES": "65536",
        "BUDDYCLOUD_XMPP_RECONNECT_QUEUE_BYTES": "1048576",
        "BUDDYCLOUD_HTTP_LISTEN": "[::1]:8443",
        "BUDDYCLOUD_HTTP_METRICS_TOKEN": "from-the-environment",
        "BUDDYCLOUD_HTTP_ACCESS_LOG": "false",
        "BUDDYCLOUD_HTTP_WS_SEND_QUEUE": "8",
    }
    config = load_config(write(FULL), environ)
    assert config.server.domain == Jid("", "verona.lit")
    assert config.server.topics_domain == Jid("", "groups.verona.lit")
    assert config.server.well_known_nodes == ("posts", "status")
    assert config.server.max_payload_bytes == 2048
    assert config.server.personal_access_model is AccessModel.LOCAL
    assert config.server.topic_default_role is Role.MODERATOR
    assert config.storage.url == "sqlite:////var/lib/buddycloud/db.sqlite"
    assert config.xmpp is not None
    assert (config.xmpp.port, config.xmpp.secret) == (25347, "from-env")
    assert config.xmpp.multicast is True  # the file says false
    assert config.xmpp.max_stanza_bytes == 65536
    assert config.xmpp.reconnect_queue_bytes == 1048576
    assert config.xmpp.component_jid == Jid.parse("channels.capulet.lit")  # from the file
    assert (config.http.listen, config.http.host, config.http.port) == ("[::1]:8443", "::1", 8443)
    assert config.http.metrics_token == "from-the-environment"
    assert config.http.access_log is False  # the file says true
    assert config.http.ws_send_queue == 8
    assert config.http.long_poll_seconds == 55  # from the file


def test_environment_alone_can_enable_xmpp() -> None:
    config = load_config(
        None,
        {"BUDDYCLOUD_XMPP_COMPONENT_JID": "channels.a.lit", "BUDDYCLOUD_XMPP_SECRET": "x"},
    )
    assert config.xmpp is not None
    assert config.xmpp.component_jid == Jid("", "channels.a.lit")


def test_unrelated_variables_are_ignored() -> None:
    environ = {
        "BUDDYCLOUD_TEST_POSTGRES": "postgresql://postgres@127.0.0.1/postgres",
        "BUDDYCLOUD_SERVER": "x",
        "PATH": "/usr/bin",
    }
    assert load_config(None, environ) == Config()


def test_every_key_has_an_environment_variable() -> None:
    names = [env_var(section, key) for section, keys in SECTIONS.items() for key in keys]
    assert "BUDDYCLOUD_SERVER_TOPICS_DOMAIN" in names
    assert "BUDDYCLOUD_XMPP_COMPONENT_JID" in names
    assert len(set(names)) == len(names)


# --- mistakes are named ----------------------------------------------------------------


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert error_of(path) == f"{path}: no such configuration file"


def test_invalid_toml_is_named_with_its_position(write: Write) -> None:
    path = write("[server\n")
    message = error_of(path)
    assert message.startswith(f"{path}: not valid TOML")
    assert "line 1" in message


def test_unknown_section_is_refused(write: Write) -> None:
    path = write("[serverr]\ndomain = 'a.lit'\n")
    message = error_of(path)
    assert message.startswith(f"{path}: unknown section 'serverr'")
    assert "[server]" in message


def test_top_level_key_is_refused(write: Write) -> None:
    path = write("domain = 'a.lit'\n")
    assert "unknown top-level key 'domain'" in error_of(path)


def test_section_written_as_a_value_is_refused(write: Write) -> None:
    assert "'server' must be a section" in error_of(write("server = 'a.lit'\n"))


def test_unknown_key_names_file_section_and_key(write: Write) -> None:
    path = write("[http]\nlisten = '127.0.0.1:80'\nport = 80\n")
    message = error_of(path)
    assert message.startswith(f"{path}: [http] port: unknown key")
    assert "listen" in message


def test_unknown_key_from_the_environment_names_the_variable() -> None:
    message = error_of(None, {"BUDDYCLOUD_STORAGE_PATH": "/tmp/x"})
    assert message.startswith("environment variable BUDDYCLOUD_STORAGE_PATH: [storage] path:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server]\ndomain = 'juliet@capulet.lit'", "[server] domain: must be a bare domain"),
        ("[server]\ndomain = 'capulet.lit/x'", "[server] domain: must be a bare domain"),
        ("[server]\ndomain = 'bad domain'", "[server] domain: not a valid domain"),
        ("[server]\ndomain = ''", "[server] domain: not a valid domain"),
        ("[server]\ndomain = 42", "[server] domain: must be a string, got an integer (42)"),
        ("[server]\ntopics_domain = 'localhost'", "[server] topics_domain: must differ"),
        ("[server]\nwell_known_nodes = 'posts'", "[server] well_known_nodes: must be a list"),
        ("[server]\nwell_known_nodes = ['posts', 1]", "well_known_nodes: must be a list"),
        ("[server]\nwell_known_nodes = ['status']", "well_known_nodes: must include 'posts'"),
        ("[server]\nwell_known_nodes = ['posts', 'a/b']", "well_known_nodes: invalid node"),
        ("[server]\nwell_known_nodes = ['posts', 'posts']", "well_known_nodes: lists a node"),
        ("[server]\nanonymous_domains = 'anon.x.lit'", "anonymous_domains: must be a list"),
        ("[server]\nanonymous_domains = ['a@b.lit']", "anonymous_domains: 'a@b.lit': must be"),
        ("[server]\nanonymous_domains = ['localhost']", "anonymous_domains: 'localhost' is the"),
        ("[server]\nmax_payload_bytes = '10'", "max_payload_bytes: must be an integer"),
        ("[server]\nmax_payload_bytes = 1.5", "max_payload_bytes: must be an integer"),
        ("[server]\nmax_payload_bytes = true", "max_payload_bytes: must be an integer"),
        ("[server]\nmax_payload_bytes = 0", "max_payload_bytes: must be between 1024 and"),
        ("[server]\npersonal_access_model = 'secret'", "personal_access_model: must be one of"),
        ("[server]\ntopic_default_role = 'owner'", "topic_default_role: must be one of"),
        ("[server]\npersonal_default_role = 'outcast'", "personal_default_role: must be one"),
        ("[server]\npersonal_default_role = 'king'", "personal_default_role: must be one of"),
        ("[storage]\nurl = 'mysql://db/x'", "[storage] url: must be a URL"),
        ("[storage]\nurl = 'data/buddycloud.db'", "[storage] url: must be a URL"),
        ("[storage]\nurl = 'sqlite://data.db'", "[storage] url: a SQLite URL needs three"),
        ("[storage]\nurl = 'postgresql+psycopg://db/x'", "[storage] url: must be a URL"),
        ("[xmpp]\nsecret = 'x'", "[xmpp] component_jid: required"),
        ("[xmpp]\ncomponent_jid = 'c.a.lit'", "[xmpp] secret: required"),
        ("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = ''", "[xmpp] secret: must not be empty"),
        ("[xmpp]\ncomponent_jid = 'c@a.lit'\nsecret = 'x'", "component_jid: must be a bare"),
        ("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nport = 0", "port: must be between"),
        ("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nport = 65536", "must be between 1"),
        ("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nport = '5347'", "must be an integer"),
        ("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nhost = 'a b'", "[xmpp] host: must"),
        ("[http]\nlisten = '8080'", "[http] listen: must be host:port"),
        ("[http]\nlisten = ':8080'", "[http] listen: must be host:port"),
        ("[http]\nlisten = 'localhost:http'", "[http] listen: the port must be a number"),
        ("[http]\nlisten = 'localhost:-1'", "[http] listen: the port must be a number"),
        ("[http]\nlisten = 'localhost:70000'", "[http] listen: the port must be a number"),
        ("[http]\nlisten = '::1:8080'", "[http] listen: write an IPv6 address in brackets"),
        ("[http]\nlisten = '[nope]:8080'", "[http] listen: 'nope' is not an IPv6 address"),
        ("[http]\nlisten = 8080", "[http] listen: must be a string"),
        ("[http]\nmetrics_token = ''", "[http] metrics_token: must have at least 16"),
        ("[http]\nmetrics_token = 'short'", "[http] metrics_token: must have at least 16"),
        ("[http]\nmetrics_token = 'has a space in it!'", "metrics_token: must be printable"),
        ("[http]\nmetrics_token = 'tab\tinside-the-token'", "metrics_token: must be printable"),
        ("[http]\nmetrics_token = 1234567890123456", "metrics_token: must be a string"),
        ("[http]\naccess_log = 'yes'", "[http] access_log: must be true or false"),
        ("[http]\nlong_poll_seconds = 0", "[http] long_poll_seconds: must be between 1 and 300"),
        ("[http]\nlong_poll_seconds = 301", "[http] long_poll_seconds: must be between"),
        ("[http]\nws_ping_seconds = '20'", "[http] ws_ping_seconds: must be an integer"),
        ("[http]\nws_send_queue = 0", "[http] ws_send_queue: must be between 1 and 100000"),
        ("[http]\nreplay_events = -1", "[http] replay_events: must be between 0 and 1000000"),
        (
            "[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nmulticast = 'no'",
            "[xmpp] multicast: must be true or false, got",
        ),
        (
            "[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nmax_stanza_bytes = 10000",
            "[xmpp] max_stanza_bytes: must be between 16384 and 268435456, got 10000",
        ),
        (
            "[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nmax_stanza_bytes = '512k'",
            "[xmpp] max_stanza_bytes: must be an integer",
        ),
        (
            "[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nreconnect_queue_bytes = -1",
            "[xmpp] reconnect_queue_bytes: must be between 0 and 1073741824, got -1",
        ),
        (
            "[log]\nlevel = 'chatty'",
            "[log] level: must be one of debug, info, warning, error (got 'chatty')",
        ),
        ("[log]\nformat = 'xml'", "[log] format: must be one of text, json (got 'xml')"),
        ("[log]\ncolour = true", "[log] colour: unknown key (known keys: level, format)"),
    ],
)
def test_bad_values_name_file_section_key_and_reason(
    write: Write, text: str, expected: str
) -> None:
    path = write(text + "\n")
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BUDDYCLOUD_XMPP_PORT", "not-a-port", "[xmpp] port: must be an integer"),
        ("BUDDYCLOUD_XMPP_PORT", "99999", "[xmpp] port: must be between 1 and 65535"),
        ("BUDDYCLOUD_SERVER_DOMAIN", "a@b.lit", "[server] domain: must be a bare domain"),
        ("BUDDYCLOUD_HTTP_LISTEN", "nowhere", "[http] listen: must be host:port"),
        ("BUDDYCLOUD_HTTP_REPLAY_EVENTS", "many", "[http] replay_events: must be an integer"),
        ("BUDDYCLOUD_SERVER_WELL_KNOWN_NODES", "", "well_known_nodes: must include 'posts'"),
        ("BUDDYCLOUD_XMPP_MULTICAST", "yes", "[xmpp] multicast: must be true or false"),
        ("BUDDYCLOUD_XMPP_MAX_STANZA_BYTES", "lots", "[xmpp] max_stanza_bytes: must be an"),
        (
            "BUDDYCLOUD_XMPP_MAX_STANZA_BYTES",
            "999999999",
            "[xmpp] max_stanza_bytes: must be between 16384 and 268435456",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(variable: str, value: str, expected: str) -> None:
    environ = {
        "BUDDYCLOUD_XMPP_COMPONENT_JID": "channels.a.lit",
        "BUDDYCLOUD_XMPP_SECRET": "x",
        variable: value,
    }
    message = error_of(None, environ)
    assert message.startswith(f"environment variable {variable}: ")
    assert expected in message


def test_a_mistyped_secret_is_not_echoed(write: Write) -> None:
    message = error_of(write("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 12345678\n"))
    assert message.endswith("[xmpp] secret: must be a string, got an integer")


def test_a_refused_metrics_token_is_not_echoed() -> None:
    message = error_of(None, {"BUDDYCLOUD_HTTP_METRICS_TOKEN": "too-short"})
    assert "[http] metrics_token: must have at least 16 characters" in message
    assert "too-short" not in message


def test_anonymous_domains_reach_the_engine(write: Write) -> None:
    from buddycloud.app import engine_config

    engine = engine_config(load_config(write(FULL), {}))
    assert engine.anonymous_domains == {"guests.capulet.lit", "visitors.capulet.lit"}
    assert engine.is_anonymous(Jid.parse("x@visitors.capulet.lit"))
    assert not engine.is_anonymous(Jid.parse("x@capulet.lit"))


async def test_the_stanza_limit_and_queue_size_reach_the_component(
    write: Write, tmp_path: Path
) -> None:
    from buddycloud.app import build

    text = FULL.replace(
        "postgresql://postgres@127.0.0.1:5432/channels", f"sqlite:///{tmp_path}/x.db"
    )
    app = await build(load_config(write(text), {}))
    try:
        assert app.component is not None
        assert app.component.max_stanza_bytes == 262144
        assert app.component.router.edge.max_stanza_bytes == 262144
        assert app.component.notifier.max_stanza_bytes == 262144
        assert app.component.reconnect_queue_bytes == 0
    finally:
        await app.close()


# --- [federation] ------------------------------------------------------------------------


def test_federation_defaults_to_the_system_resolver_and_documented_ttls() -> None:
    federation = load_config(None, {}).federation
    assert federation.nameservers == ()
    assert (
        federation.discovery_ttl,
        federation.failure_ttl,
        federation.dns_timeout,
        federation.request_timeout,
        federation.retry_max,
        federation.backfill,
    ) == (600, 30, 5, 10, 30, 50)


def test_federation_nameservers_take_ipv4_ipv6_and_bare_addresses(write: Write) -> None:
    path = write(
        "[federation]\n"
        "nameservers = ['127.0.0.1:5353', '[::1]:53', '10.0.0.1', '[fe80::1]']\n"
        "discovery_ttl = 60\nfailure_ttl = 5\ndns_timeout = 2\nrequest_timeout = 20\n"
        "retry_max = 120\n"
        "backfill = 0\n"
    )
    federation = load_config(path, {}).federation
    assert federation.nameservers == (
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("10.0.0.1", 53),
        ("fe80::1", 53),
    )
    assert (federation.discovery_ttl, federation.failure_ttl, federation.dns_timeout) == (60, 5, 2)
    assert federation.request_timeout == 20
    assert federation.retry_max == 120
    assert federation.backfill == 0


def test_federation_nameservers_from_the_environment_are_comma_separated() -> None:
    config = load_config(None, {"BUDDYCLOUD_FEDERATION_NAMESERVERS": "127.0.0.1:5353, [::1]:54"})
    assert config.federation.nameservers == (("127.0.0.1", 5353), ("::1", 54))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nameservers = '127.0.0.1'", "[federation] nameservers: must be a list of strings"),
        ("nameservers = ['ns.capulet.lit:53']", "'ns.capulet.lit:53': must be an IP address"),
        ("nameservers = ['127.0.0.1:0']", "the port must be a number between 1 and 65535"),
        ("nameservers = ['127.0.0.1:dns']", "the port must be a number between 1 and 65535"),
        ("nameservers = ['1.2.3:53']", "must be an IP address with an optional port"),
        ("nameservers = ['[::1]53']", "write an IPv6 nameserver as [address]:port"),
        ("discovery_ttl = 0", "[federation] discovery_ttl: must be between 1 and"),
        ("failure_ttl = 'short'", "[federation] failure_ttl: must be an integer"),
        ("dns_timeout = 61", "[federation] dns_timeout: must be between 1 and 60"),
        ("request_timeout = 0", "[federation] request_timeout: must be between 1 and 60"),
        ("retry_max = 0", "[federation] retry_max: must be between 1 and 3600"),
        ("retry_max = 3601", "[federation] retry_max: must be between 1 and 3600"),
        ("backfill = 1001", "[federation] backfill: must be between 0 and 1000"),
        ("resolver = 'x'", "[federation] resolver: unknown key"),
    ],
)
def test_bad_federation_values_are_named(write: Write, text: str, expected: str) -> None:
    path = write(f"[federation]\n{text}\n")
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


# --- [auth] ----------------------------------------------------------------------------------

APP_SECRET = "the app and the server share this secret"


def test_auth_defaults_to_the_built_in_database_and_documented_lifetimes() -> None:
    auth = load_config(None, {}).auth
    assert auth.methods == ("database",)
    assert auth.secret is None and auth.remote_url is None and auth.token_key is None
    assert (auth.token_lifetime, auth.session_lifetime) == (900, 7 * 24 * 3600)
    assert (auth.max_account_failures, auth.max_address_failures) == (10, 100)
    assert (auth.failure_window, auth.remote_timeout, auth.cache_seconds) == (900, 5, 60)


def test_every_auth_key_is_read(write: Write) -> None:
    auth = load_config(
        write(
            f"""
[xmpp]
component_jid = "channels.capulet.lit"
secret = "x"

[auth]
methods = ["secret", "remote", "database", "xmpp"]
secret = "{APP_SECRET}"
remote_url = "https://app.example/check"
remote_timeout = 3
cache_seconds = 0
token_key = "{APP_SECRET} but another one"
token_lifetime = 300
session_lifetime = 86400
max_account_failures = 5
max_address_failures = 50
failure_window = 60
"""
        ),
        {},
    ).auth
    assert auth.methods == ("secret", "remote", "database", "xmpp")
    assert auth.secret == APP_SECRET
    assert auth.remote_url == "https://app.example/check"
    assert (auth.remote_timeout, auth.cache_seconds) == (3, 0)
    assert auth.token_key == f"{APP_SECRET} but another one"
    assert (auth.token_lifetime, auth.session_lifetime) == (300, 86400)
    assert (auth.max_account_failures, auth.max_address_failures, auth.failure_window) == (
        5,
        50,
        60,
    )
    assert APP_SECRET not in repr(auth)


def test_auth_methods_come_comma_separated_from_the_environment() -> None:
    auth = load_config(
        None, {"BUDDYCLOUD_AUTH_METHODS": "database, secret", "BUDDYCLOUD_AUTH_SECRET": APP_SECRET}
    ).auth
    assert auth.methods == ("database", "secret")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("methods = []", "[auth] methods: must name at least one method"),
        ("methods = ['ldap']", "[auth] methods: 'ldap' is not a method; use database"),
        ("methods = ['database', 'database']", "[auth] methods: lists a method twice"),
        ("methods = 'database'", "[auth] methods: must be a list"),
        ("methods = ['secret']", '[auth] secret: required when methods include "secret"'),
        ("methods = ['remote']", '[auth] remote_url: required when methods include "remote"'),
        ("methods = ['xmpp']", '[auth] methods: "xmpp" signs users in at the XMPP server'),
        ("secret = 'short'", "[auth] secret: must have at least 32 bytes"),
        ("token_key = 'short'", "[auth] token_key: must have at least 32 bytes"),
        ("remote_url = 'ftp://app/x'", "[auth] remote_url: must be an http:// or https:// URL"),
        ("remote_url = 'https:///x'", "[auth] remote_url: must be an http:// or https:// URL"),
        ("remote_timeout = 0", "[auth] remote_timeout: must be between 1 and 60"),
        ("token_lifetime = 10", "[auth] token_lifetime: must be between 30 and"),
        ("token_lifetime = 600\nsession_lifetime = 300", "session_lifetime: must be at least"),
        ("max_account_failures = 0", "[auth] max_account_failures: must be between 1 and"),
        ("failure_window = '15m'", "[auth] failure_window: must be an integer"),
        ("cache = 5", "[auth] cache: unknown key"),
    ],
)
def test_bad_auth_values_are_named(write: Write, text: str, expected: str) -> None:
    path = write(f"[auth]\n{text}\n")
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_refused_secret_is_not_echoed() -> None:
    message = error_of(None, {"BUDDYCLOUD_AUTH_SECRET": "hunter2"})
    assert "[auth] secret: must have at least 32 bytes" in message
    assert "hunter2" not in message


def test_every_key_and_variable_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text()
    for section, keys in SECTIONS.items():
        part = doc.split(f"## `[{section}]`", 1)
        assert len(part) == 2, f"docs/config.md has no [{section}] section"
        table = part[1].split("\n## ", 1)[0]
        for key in keys:
            assert f"| `{key}` |" in table, f"[{section}] {key} is not documented"
            assert f"`{env_var(section, key)}`" in doc, env_var(section, key)


def test_the_client_port_defaults_to_the_component_host_and_5222(write: Write) -> None:
    xmpp = load_config(
        write("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nhost = 'xmpp.a.lit'\n"), {}
    ).xmpp
    assert xmpp is not None and (xmpp.c2s_host, xmpp.c2s_port) == ("xmpp.a.lit", 5222)
    xmpp = load_config(
        write("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nc2s_host = 'c2s.a.lit'\n"),
        {"BUDDYCLOUD_XMPP_C2S_PORT": "15222"},
    ).xmpp
    assert xmpp is not None and (xmpp.c2s_host, xmpp.c2s_port) == ("c2s.a.lit", 15222)
    message = error_of(write("[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\nc2s_port = 0\n"))
    assert "[xmpp] c2s_port: must be between 1 and 65535" in message


def test_the_xmpp_administrator_is_optional_and_needs_both_keys(write: Write) -> None:
    base = "[xmpp]\ncomponent_jid = 'c.a.lit'\nsecret = 'x'\n"
    xmpp = load_config(write(base), {}).xmpp
    assert xmpp is not None and xmpp.admin_jid is None and xmpp.admin_password is None
    xmpp = load_config(
        write(base + "admin_jid = 'admin@a.lit'\n"),
        {"BUDDYCLOUD_XMPP_ADMIN_PASSWORD": "s3cret-admin"},
    ).xmpp
    assert xmpp is not None and str(xmpp.admin_jid) == "admin@a.lit"
    assert xmpp.admin_password == "s3cret-admin" and "s3cret" not in repr(xmpp)
    alone = error_of(write(base + "admin_jid = 'admin@a.lit'\n"))
    assert "[xmpp] admin_jid: admin_jid and admin_password go together" in alone
    for bad in ("a.lit", "admin@a.lit/res", "@@"):
        message = error_of(write(base + f"admin_jid = '{bad}'\nadmin_password = 'p'\n"))
        assert "[xmpp] admin_jid:" in message, bad
    empty = error_of(write(base + "admin_jid = 'admin@a.lit'\nadmin_password = ''\n"))
    assert "[xmpp] admin_password: must not be empty" in empty


def test_mail_is_off_by_default_and_read_when_configured(write: Write) -> None:
    assert load_config(None, {}).mail is None
    mail = load_config(
        write(
            "[mail]\nhost = 'smtp.a.lit'\nfrom = 'channels@a.lit'\nport = 2525\n"
            "starttls = false\nuser = 'channels'\npassword = 'smtp-secret'\n"
            "reset_url = 'https://app.a.lit/reset?t={token}'\nreset_lifetime = 600\n"
        ),
        {},
    ).mail
    assert mail is not None
    assert (mail.host, mail.port, mail.sender, mail.starttls) == (
        "smtp.a.lit",
        2525,
        "channels@a.lit",
        False,
    )
    assert (mail.user, mail.password) == ("channels", "smtp-secret")
    assert (mail.reset_url, mail.reset_lifetime) == ("https://app.a.lit/reset?t={token}", 600)
    assert "smtp-secret" not in repr(mail)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("from = 'c@a.lit'", "[mail] host: required"),
        ("host = 'smtp.a.lit'", "[mail] from: required"),
        ("host = 'h'\nfrom = 'not an address'", "[mail] from: must be one mail address"),
        ("host = 'h'\nfrom = 'c@a.lit'\nuser = 'u'", "[mail] user: user and password go"),
        ("host = 'h'\nfrom = 'c@a.lit'\nreset_url = 'https://a/x'", "reset_url: must hold"),
        ("host = 'h'\nfrom = 'c@a.lit'\nreset_lifetime = 10", "reset_lifetime: must be between"),
    ],
)
def test_bad_mail_values_are_named(write: Write, text: str, expected: str) -> None:
    assert expected in error_of(write(f"[mail]\n{text}\n"))


def test_log_section_defaults_and_values(write: Write) -> None:
    assert load_config(None, {}).log == LogConfig("info", "text")
    path = write("[log]\nlevel = 'WARNING'\nformat = 'json'\n")
    assert load_config(path, {}).log == LogConfig("warning", "json")
    assert load_config(path, {"BUDDYCLOUD_LOG_LEVEL": "debug"}).log.level == "debug"
