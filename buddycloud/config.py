"""The server's configuration: a TOML file, overridable key by key from the environment.

The contract (docs/config.md): one table per section, `[server]`, `[storage]`, `[xmpp]`,
`[http]`, `[auth]`, `[mail]`, `[federation]` and `[log]`; every key may also come from an
environment variable named `BUDDYCLOUD_<SECTION>_<KEY>` (upper case), which wins over the
file. With neither, the embedded default runs: SQLite under `./data`, HTTP on
127.0.0.1:8080 and no XMPP.

Everything is validated here, once, so that the rest of the server receives typed values.
A mistake raises `ConfigError` naming where the value came from (file or variable), the
section, the key and what is wrong.

To add a section: write its frozen dataclass and a `_build_<section>` function reading
keys through `_Section`, add a field to `Config`, list its keys in `SECTIONS`, and call the
builder in `load_config`.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from buddycloud.domain.errors import InvalidConfiguration, InvalidJid, InvalidNodeId
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import WELL_KNOWN_NODES, AccessModel, Role, check_node_name
from buddycloud.util.logs import FORMATS, LEVELS, LogFormat

ENV_PREFIX = "BUDDYCLOUD_"
DEFAULT_DOMAIN = "localhost"
DEFAULT_STORAGE_URL = "sqlite:///data/buddycloud.db"
DEFAULT_LISTEN = "127.0.0.1:8080"
MIN_METRICS_TOKEN = 16
DEFAULT_MAX_PAYLOAD_BYTES = 65536
DEFAULT_LONG_POLL_SECONDS = 30
DEFAULT_WS_PING_SECONDS = 20
DEFAULT_WS_SEND_QUEUE = 256
DEFAULT_REPLAY_EVENTS = 10_000
MIN_PAYLOAD_LIMIT = 1024
MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024
# Prosody 0.12's limit for what a component sends it (mod_component.lua:
# component_stanza_size_limit, which defaults to s2s_stanza_size_limit, 512 KiB).
DEFAULT_MAX_STANZA_BYTES = 512 * 1024
MIN_STANZA_LIMIT = 16 * 1024
MAX_STANZA_LIMIT = 256 * 1024 * 1024
DEFAULT_RECONNECT_QUEUE_BYTES = 16 * 1024 * 1024
MAX_RECONNECT_QUEUE_BYTES = 1024 * 1024 * 1024
# Storage URL schemes buddycloud.storage.factory opens.
STORAGE_SCHEMES = frozenset(
    {"sqlite", "sqlite+aiosqlite", "postgresql", "postgres", "postgresql+asyncpg"}
)
# The sign-in methods of `[auth] methods` (docs/auth.md).
AUTH_METHODS = ("database", "secret", "remote", "xmpp")
DEFAULT_TOKEN_LIFETIME = 900
DEFAULT_SESSION_LIFETIME = 7 * 24 * 3600
# HS256 keys shorter than the hash (32 bytes) weaken it (RFC 7518 3.2).
MIN_JWT_KEY = 32
# Roles a new follower may be given by default (ProtoXEP table 1, "Default Affiliation").
DEFAULT_ROLE_CHOICES = (Role.MEMBER, Role.PUBLISHER, Role.MODERATOR)


class ConfigError(Exception):
    """The configuration cannot be used. The message says where and why."""


# --- the typed configuration -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """`[server]`: which domains this server is home to, and channel defaults.

    Attributes:
        domain: users of this domain have their personal channels here.
        topics_domain: topic channels are `<name>@topics_domain`.
        well_known_nodes: the nodes every personal channel gets (ProtoXEP table 4).
        max_payload_bytes: the largest item payload accepted, serialised, in bytes.
        personal_access_model: access model of new personal channels.
        personal_default_role: role of new followers of personal channels.
        topic_access_model: access model of new topic channels.
        topic_default_role: role of new followers of topic channels.
        anonymous_domains: domains whose users are anonymous guests (read-only, following
            only while online), besides every domain whose first label is `anon`.
    """

    domain: Jid = field(default_factory=lambda: Jid("", DEFAULT_DOMAIN))
    topics_domain: Jid = field(default_factory=lambda: Jid("", f"topics.{DEFAULT_DOMAIN}"))
    well_known_nodes: tuple[str, ...] = WELL_KNOWN_NODES
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    personal_access_model: AccessModel = AccessModel.OPEN
    personal_default_role: Role = Role.PUBLISHER
    topic_access_model: AccessModel = AccessModel.OPEN
    topic_default_role: Role = Role.MEMBER
    anonymous_domains: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """`[storage]`: where state is kept.

    Attributes:
        url: `sqlite:///relative/path.db` (relative to the working directory),
            `sqlite:////absolute/path.db` or `postgresql://user@host/dbname`.
    """

    url: str = DEFAULT_STORAGE_URL


@dataclass(frozen=True, slots=True)
class XmppConfig:
    """`[xmpp]`: the XEP-0114 component connection. Absent means no XMPP at all.

    Attributes:
        component_jid: the component's address, e.g. `channels.capulet.lit`.
        secret: the shared secret the XMPP server expects for the component.
        host: where the XMPP server's component port listens.
        port: the component port.
        multicast: send each notification once for all its recipients through the XMPP
            server's XEP-0033 multicast service, when it has one.
        max_stanza_bytes: the largest stanza the XMPP server accepts from the component;
            every reply and notification is made to fit (docs/xmpp.md, "Stanza size").
        reconnect_queue_bytes: what the component sends while it reconnects is kept, up
            to this many bytes, and sent once the stream is back (0: nothing is kept).
        c2s_host: where the XMPP server's client port listens (the `xmpp` sign-in method,
            and the administrator's session).
        c2s_port: the client port.
        admin_jid: an account the XMPP server lets run XEP-0133 service administration
            commands for `[server] domain`; with it, every built-in account gets a twin on
            the XMPP server (docs/auth.md, "XMPP twins"). None: no twins.
        admin_password: that account's password.
    """

    component_jid: Jid
    secret: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 5347
    multicast: bool = True
    max_stanza_bytes: int = DEFAULT_MAX_STANZA_BYTES
    reconnect_queue_bytes: int = DEFAULT_RECONNECT_QUEUE_BYTES
    c2s_host: str = "127.0.0.1"
    c2s_port: int = 5222
    admin_jid: Jid | None = None
    admin_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """`[http]`: where the HTTP edge listens, its operational settings, and how it holds
    live connections.

    Attributes:
        listen: the configured `host:port` (`[v6addr]:port` for IPv6).
        host: the host part, without brackets.
        port: the port part.
        metrics_token: the bearer token `/metrics` requires; None serves `/metrics` to
            loopback callers only.
        access_log: log every request at INFO (else at DEBUG).
        long_poll_seconds: how long `GET /api/notifications/posts` holds a request open
            waiting for a post.
        ws_ping_seconds: the websocket heartbeat: the server pings every this many seconds
            and closes a connection whose pong has not come after as many again.
        ws_send_queue: messages waiting to be sent to one websocket before the server
            closes it as too slow (close code 4408).
        replay_events: recent events kept in memory, so that a websocket resuming after a
            reconnect gets what it missed.
    """

    listen: str = DEFAULT_LISTEN
    host: str = "127.0.0.1"
    port: int = 8080
    metrics_token: str | None = field(default=None, repr=False)
    access_log: bool = False
    long_poll_seconds: int = DEFAULT_LONG_POLL_SECONDS
    ws_ping_seconds: int = DEFAULT_WS_PING_SECONDS
    ws_send_queue: int = DEFAULT_WS_SEND_QUEUE
    replay_events: int = DEFAULT_REPLAY_EVENTS


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """`[auth]`: how web and mobile users sign in at the HTTP edge (docs/auth.md).

    Attributes:
        methods: the sign-in methods enabled, in the order credentials are tried: any of
            `database`, `secret`, `remote`, `xmpp`.
        secret: the key an app signs its users' tokens with (`secret` method).
        remote_url: where the app's own API answers whether a password is good (`remote`).
        remote_timeout: seconds the app has to answer.
        cache_seconds: how long a good password is remembered (never a wrong one).
        token_key: the key the server signs the tokens it issues with; None keeps a
            generated one in the database.
        token_lifetime: seconds an issued token is good for.
        session_lifetime: seconds after signing in during which tokens can be refreshed.
        max_account_failures: failed sign-ins for one account within `failure_window`
            before its sign-ins are refused for a while.
        max_address_failures: the same, for one client address.
        failure_window: seconds failures are counted over.
    """

    methods: tuple[str, ...] = ("database",)
    secret: str | None = field(default=None, repr=False)
    remote_url: str | None = None
    remote_timeout: int = 5
    cache_seconds: int = 60
    token_key: str | None = field(default=None, repr=False)
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    session_lifetime: int = DEFAULT_SESSION_LIFETIME
    max_account_failures: int = 10
    max_address_failures: int = 100
    failure_window: int = 900


@dataclass(frozen=True, slots=True)
class MailConfig:
    """`[mail]`: the SMTP server that password reset mails go through. Absent: no mail.

    Attributes:
        host: the SMTP server.
        port: its port (587, submission, by default).
        sender: the From address (`from` in the file).
        starttls: require STARTTLS before anything else is said.
        user: the SMTP login, if the server wants one.
        password: its password.
        reset_url: the link a reset mail holds, `{token}` where the token goes; None: the
            mail holds the token alone.
        reset_lifetime: seconds a reset token works.
    """

    host: str
    sender: str
    port: int = 587
    starttls: bool = True
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    reset_url: str | None = None
    reset_lifetime: int = 3600


@dataclass(frozen=True, slots=True)
class FederationConfig:
    """`[federation]`: how the channel servers of other domains are found.

    Attributes:
        nameservers: (address, port) of the DNS servers asked for `_bcloud-server._tcp`
            TXT records; empty means the system's resolver.
        discovery_ttl: seconds a domain's channel server, once found, is remembered.
        failure_ttl: seconds a domain where none was found is remembered as such.
        dns_timeout: seconds a DNS lookup may take, retries included.
        request_timeout: seconds a request made for a local user of another domain's
            channel may take, discovery included, before the user is told it timed out.
        retry_max: the longest wait, in seconds, between two tries to deliver queued
            events to a domain (the outbox's backoff doubles up to it).
        backfill: how many of a remote channel's most recent items a first follow from
            this domain copies into the cache.
    """

    nameservers: tuple[tuple[str, int], ...] = ()
    discovery_ttl: int = 600
    failure_ttl: int = 30
    dns_timeout: int = 5
    request_timeout: int = 10
    retry_max: int = 30
    backfill: int = 50


@dataclass(frozen=True, slots=True)
class LogConfig:
    """`[log]`: what the server writes to standard error.

    Attributes:
        level: the least severe lines written: `debug`, `info`, `warning` or `error`.
        format: `text` (one line per record) or `json` (one JSON object per line).
    """

    level: str = "info"
    format: LogFormat = "text"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration. `xmpp` is None when the server runs without XMPP."""

    server: ServerConfig = field(default_factory=ServerConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    xmpp: XmppConfig | None = None
    http: HttpConfig = field(default_factory=HttpConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    mail: MailConfig | None = None
    federation: FederationConfig = field(default_factory=FederationConfig)
    log: LogConfig = field(default_factory=LogConfig)


# --- reading raw values ----------------------------------------------------------------

T = TypeVar("T")


def _identity(value: str) -> str:
    return value


@dataclass(frozen=True, slots=True)
class _Raw:
    """One raw value and where it came from (a file path or an environment variable)."""

    value: object
    origin: str
    from_env: bool


class _Section:
    """The raw keys of one section; typed getters validate and consume them."""

    def __init__(self, name: str, raw: dict[str, _Raw], file_label: str) -> None:
        self.name = name
        self._raw = raw
        self._file_label = file_label

    @property
    def present(self) -> bool:
        return bool(self._raw)

    def fail(self, key: str, reason: str, origin: str | None = None) -> ConfigError:
        where = origin if origin is not None else self._file_label
        return ConfigError(f"{where}: [{self.name}] {key}: {reason}")

    def _take(self, key: str) -> _Raw | None:
        return self._raw.pop(key, None)

    def check_no_unknown_keys(self, known: tuple[str, ...]) -> None:
        for key, raw in sorted(self._raw.items()):
            raise self.fail(key, f"unknown key (known keys: {', '.join(known)})", raw.origin)

    def text(
        self,
        key: str,
        default: str | None = None,
        *,
        required_reason: str = "",
        secret: bool = False,
    ) -> str:
        """A string value; without a default the key is required."""
        return self.parsed(key, default, _identity, required_reason=required_reason, secret=secret)

    def parsed(
        self,
        key: str,
        default: str | None,
        convert: Callable[[str], T],
        *,
        required_reason: str = "",
        secret: bool = False,
    ) -> T:
        """A string value converted by `convert`, which raises ValueError with a reason.

        The default is converted too, so defaults and configured values share one path.
        """
        raw = self._take(key)
        if raw is None:
            if default is None:
                reason = required_reason or "required"
                raise self.fail(
                    key, f"{reason}; set it in the file or in {env_var(self.name, key)}"
                )
            return convert(default)
        if not isinstance(raw.value, str):
            got = _describe(raw.value, show_value=not secret)
            raise self.fail(key, f"must be a string, got {got}", raw.origin)
        try:
            return convert(raw.value)
        except ValueError as exc:
            shown = "" if secret else f" (got {raw.value[:200]!r})"
            raise self.fail(key, f"{exc}{shown}", raw.origin) from None

    def optional(self, key: str, convert: Callable[[str], T], *, secret: bool = False) -> T | None:
        """A string value converted by `convert`, or None when the key is not set."""
        if key not in self._raw:
            return None
        return self.parsed(key, None, convert, secret=secret)

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self._take(key)
        if raw is None:
            return default
        value = raw.value
        if raw.from_env and isinstance(value, str):
            try:
                value = int(value.strip(), 10)
            except ValueError:
                raise self.fail(key, f"must be an integer, got {raw.value!r}", raw.origin) from None
        # bool is an int subclass in Python; TOML `true` is never a number here.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(key, f"must be an integer, got {_describe(value)}", raw.origin)
        if not minimum <= value <= maximum:
            raise self.fail(
                key, f"must be between {minimum} and {maximum}, got {value}", raw.origin
            )
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self._take(key)
        if raw is None:
            return default
        value = raw.value
        if raw.from_env and isinstance(value, str):
            value = {"true": True, "false": False}.get(value.strip().lower(), value)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {_describe(value)}", raw.origin)
        return value

    def string_list(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        raw = self._take(key)
        if raw is None:
            return default
        value = raw.value
        if raw.from_env and isinstance(value, str):
            # Environment variables carry lists comma-separated: "posts,status".
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(part, str) for part in value):
            raise self.fail(key, f"must be a list of strings, got {_describe(value)}", raw.origin)
        return tuple(value)

    def origin_of(self, key: str) -> str:
        raw = self._raw.get(key)
        return raw.origin if raw is not None else self._file_label


def _describe(value: object, *, show_value: bool = True) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    name = names.get(type(value))
    if name is not None:
        return f"{name} ({value!r})" if show_value else name
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


# --- validators (raise ValueError with the reason) -------------------------------------


def _domain_jid(raw: str) -> Jid:
    try:
        jid = Jid.parse(raw)
    except InvalidJid as exc:
        raise ValueError(f"not a valid domain: {exc.message}") from None
    if jid.local or jid.resource:
        raise ValueError("must be a bare domain such as 'capulet.lit', without '@' or '/'")
    return jid


def _account_jid(raw: str) -> Jid:
    try:
        jid = Jid.parse(raw)
    except InvalidJid as exc:
        raise ValueError(f"not a valid JID: {exc.message}") from None
    if not jid.local or jid.resource:
        raise ValueError("must be a bare JID of an account, such as 'admin@capulet.lit'")
    return jid


def _non_empty(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty")
    return raw


def _access_model(raw: str) -> AccessModel:
    try:
        return AccessModel.parse(raw)
    except InvalidConfiguration:
        choices = ", ".join(model.value for model in AccessModel)
        raise ValueError(f"must be one of {choices}") from None


def _default_role(raw: str) -> Role:
    try:
        role = Role.parse(raw)
    except InvalidConfiguration:
        role = None
    if role not in DEFAULT_ROLE_CHOICES:
        choices = ", ".join(role.value for role in DEFAULT_ROLE_CHOICES)
        raise ValueError(f"must be one of {choices} (or follower, follower+post)")
    return role


def _storage_url(raw: str) -> str:
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme not in STORAGE_SCHEMES:
        raise ValueError(
            "must be a URL such as sqlite:///data/buddycloud.db or postgresql://user@host/dbname"
        )
    if scheme.startswith("sqlite") and not rest.startswith("/"):
        raise ValueError("a SQLite URL needs three slashes: sqlite:///path/to/file.db")
    return raw


def _host(raw: str) -> str:
    host = raw.strip()
    if not host or any(char.isspace() for char in host) or "/" in host:
        raise ValueError("must be a host name or an IP address")
    return host


def _listen(raw: str) -> tuple[str, str, int]:
    host, sep, port_text = raw.rpartition(":")
    if not sep or not host:
        raise ValueError("must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError("write an IPv6 address in brackets: [::1]:8080")
    else:
        _host(host)
    # Port 0 asks the system for a free port; the log line "HTTP API listening on" names it.
    if not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number between 0 and 65535, got {port_text!r}")
    return raw, host, int(port_text)


def _nameserver(raw: str) -> tuple[str, int]:
    """`IP:PORT`, `[IPv6]:PORT`, or an address alone (port 53)."""
    text = raw.strip()
    host, port_text = text, "53"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError("write an IPv6 nameserver as [address]:port, e.g. [::1]:53")
        port_text = rest[1:] if rest else "53"
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            "must be an IP address with an optional port, e.g. 127.0.0.1:53 or [::1]:5353"
        ) from None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number between 1 and 65535, got {port_text!r}")
    return str(address), int(port_text)


# --- sections --------------------------------------------------------------------------


def _build_server(section: _Section) -> ServerConfig:
    domain = section.parsed("domain", DEFAULT_DOMAIN, _domain_jid)
    topics_origin = section.origin_of("topics_domain")
    topics_domain = section.parsed("topics_domain", f"topics.{domain.domain}", _domain_jid)
    if topics_domain == domain:
        raise section.fail(
            "topics_domain",
            "must differ from domain: topic channels need their own domain",
            topics_origin,
        )
    nodes_origin = section.origin_of("well_known_nodes")
    nodes = section.string_list("well_known_nodes", WELL_KNOWN_NODES)
    for name in nodes:
        try:
            check_node_name(name)
        except InvalidNodeId as exc:
            raise section.fail("well_known_nodes", exc.message, nodes_origin) from None
    if "posts" not in nodes:
        # ProtoXEP 4.3: channel metadata lives on the posts node, so every channel has one.
        raise section.fail("well_known_nodes", "must include 'posts'", nodes_origin)
    if len(set(nodes)) != len(nodes):
        raise section.fail("well_known_nodes", "lists a node twice", nodes_origin)
    anonymous_origin = section.origin_of("anonymous_domains")
    anonymous: list[str] = []
    for raw_name in section.string_list("anonymous_domains", ()):
        try:
            name = _domain_jid(raw_name).domain
        except ValueError as exc:
            raise section.fail(
                "anonymous_domains", f"{raw_name!r}: {exc}", anonymous_origin
            ) from None
        anonymous.append(name)
        if name in (domain.domain, topics_domain.domain):
            raise section.fail(
                "anonymous_domains",
                f"{name!r} is the domain of this server's users or topics, not of guests",
                anonymous_origin,
            )
    config = ServerConfig(
        domain=domain,
        topics_domain=topics_domain,
        well_known_nodes=nodes,
        max_payload_bytes=section.integer(
            "max_payload_bytes",
            DEFAULT_MAX_PAYLOAD_BYTES,
            minimum=MIN_PAYLOAD_LIMIT,
            maximum=MAX_PAYLOAD_LIMIT,
        ),
        personal_access_model=section.parsed("personal_access_model", "open", _access_model),
        personal_default_role=section.parsed("personal_default_role", "publisher", _default_role),
        topic_access_model=section.parsed("topic_access_model", "open", _access_model),
        topic_default_role=section.parsed("topic_default_role", "member", _default_role),
        anonymous_domains=tuple(anonymous),
    )
    section.check_no_unknown_keys(SERVER_KEYS)
    return config


def _build_storage(section: _Section) -> StorageConfig:
    config = StorageConfig(url=section.parsed("url", DEFAULT_STORAGE_URL, _storage_url))
    section.check_no_unknown_keys(STORAGE_KEYS)
    return config


def _build_xmpp(section: _Section) -> XmppConfig | None:
    if not section.present:
        return None
    required = "required when the [xmpp] section is present"
    component_jid = section.parsed("component_jid", None, _domain_jid, required_reason=required)
    secret_origin = section.origin_of("secret")
    secret = section.text("secret", required_reason=required, secret=True)
    if not secret:
        raise section.fail("secret", "must not be empty", secret_origin)
    host = section.parsed("host", "127.0.0.1", _host)
    config = XmppConfig(
        component_jid=component_jid,
        secret=secret,
        host=host,
        port=section.integer("port", 5347, minimum=1, maximum=65535),
        multicast=section.boolean("multicast", True),
        max_stanza_bytes=section.integer(
            "max_stanza_bytes",
            DEFAULT_MAX_STANZA_BYTES,
            minimum=MIN_STANZA_LIMIT,
            maximum=MAX_STANZA_LIMIT,
        ),
        reconnect_queue_bytes=section.integer(
            "reconnect_queue_bytes",
            DEFAULT_RECONNECT_QUEUE_BYTES,
            minimum=0,
            maximum=MAX_RECONNECT_QUEUE_BYTES,
        ),
        c2s_host=section.parsed("c2s_host", host, _host),
        c2s_port=section.integer("c2s_port", 5222, minimum=1, maximum=65535),
        admin_jid=section.optional("admin_jid", _account_jid),
        admin_password=section.optional("admin_password", _non_empty, secret=True),
    )
    if (config.admin_jid is None) != (config.admin_password is None):
        raise section.fail(
            "admin_jid", "admin_jid and admin_password go together: set both or neither"
        )
    section.check_no_unknown_keys(XMPP_KEYS)
    return config


def _metrics_token(raw: str) -> str:
    if len(raw) < MIN_METRICS_TOKEN:
        raise ValueError(f"must have at least {MIN_METRICS_TOKEN} characters")
    if not raw.isascii() or not raw.isprintable() or " " in raw:
        raise ValueError("must be printable ASCII without spaces (it is sent in a header)")
    return raw


def _build_http(section: _Section) -> HttpConfig:
    listen, host, port = section.parsed("listen", DEFAULT_LISTEN, _listen)
    config = HttpConfig(
        listen=listen,
        host=host,
        port=port,
        metrics_token=section.optional("metrics_token", _metrics_token, secret=True),
        access_log=section.boolean("access_log", False),
        long_poll_seconds=section.integer(
            "long_poll_seconds", DEFAULT_LONG_POLL_SECONDS, minimum=1, maximum=300
        ),
        ws_ping_seconds=section.integer(
            "ws_ping_seconds", DEFAULT_WS_PING_SECONDS, minimum=1, maximum=3600
        ),
        ws_send_queue=section.integer(
            "ws_send_queue", DEFAULT_WS_SEND_QUEUE, minimum=1, maximum=100_000
        ),
        replay_events=section.integer(
            "replay_events", DEFAULT_REPLAY_EVENTS, minimum=0, maximum=1_000_000
        ),
    )
    section.check_no_unknown_keys(HTTP_KEYS)
    return config


def _jwt_key(raw: str) -> str:
    if len(raw.encode()) < MIN_JWT_KEY:
        raise ValueError(
            f"must have at least {MIN_JWT_KEY} bytes; generate one with `openssl rand -hex 32`"
        )
    return raw


def _http_url(raw: str) -> str:
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
        raise ValueError("must be an http:// or https:// URL, e.g. https://app.example/auth")
    if any(char.isspace() for char in raw):
        raise ValueError("must not contain spaces")
    return raw


def _build_auth(section: _Section) -> AuthConfig:
    methods_origin = section.origin_of("methods")
    methods = section.string_list("methods", ("database",))
    if not methods:
        raise section.fail("methods", "must name at least one method", methods_origin)
    for method in methods:
        if method not in AUTH_METHODS:
            raise section.fail(
                "methods",
                f"{method[:40]!r} is not a method; use {', '.join(AUTH_METHODS)}",
                methods_origin,
            )
    if len(set(methods)) != len(methods):
        raise section.fail("methods", "lists a method twice", methods_origin)
    secret = section.optional("secret", _jwt_key, secret=True)
    if "secret" in methods and secret is None:
        raise section.fail("secret", 'required when methods include "secret"', methods_origin)
    remote_url = section.optional("remote_url", _http_url)
    if "remote" in methods and remote_url is None:
        raise section.fail("remote_url", 'required when methods include "remote"', methods_origin)
    lifetime_origin = section.origin_of("session_lifetime")
    config = AuthConfig(
        methods=methods,
        secret=secret,
        remote_url=remote_url,
        remote_timeout=section.integer("remote_timeout", 5, minimum=1, maximum=60),
        cache_seconds=section.integer("cache_seconds", 60, minimum=0, maximum=3600),
        token_key=section.optional("token_key", _jwt_key, secret=True),
        token_lifetime=section.integer(
            "token_lifetime", DEFAULT_TOKEN_LIFETIME, minimum=30, maximum=7 * 24 * 3600
        ),
        session_lifetime=section.integer(
            "session_lifetime", DEFAULT_SESSION_LIFETIME, minimum=60, maximum=366 * 24 * 3600
        ),
        max_account_failures=section.integer(
            "max_account_failures", 10, minimum=1, maximum=1_000_000
        ),
        max_address_failures=section.integer(
            "max_address_failures", 100, minimum=1, maximum=1_000_000
        ),
        failure_window=section.integer("failure_window", 900, minimum=1, maximum=24 * 3600),
    )
    if config.session_lifetime < config.token_lifetime:
        raise section.fail("session_lifetime", "must be at least token_lifetime", lifetime_origin)
    section.check_no_unknown_keys(AUTH_KEYS)
    return config


def _mail_address(raw: str) -> str:
    address = raw.strip()
    if address.count("@") != 1 or any(char.isspace() or char in "<>," for char in address):
        raise ValueError("must be one mail address, e.g. channels@capulet.lit")
    return address


def _reset_url(raw: str) -> str:
    _http_url(raw)
    if "{token}" not in raw:
        raise ValueError("must hold {token}, where the reset token goes")
    return raw


def _build_mail(section: _Section) -> MailConfig | None:
    if not section.present:
        return None
    required = "required when the [mail] section is present"
    config = MailConfig(
        host=section.parsed("host", None, _host, required_reason=required),
        sender=section.parsed("from", None, _mail_address, required_reason=required),
        port=section.integer("port", 587, minimum=1, maximum=65535),
        starttls=section.boolean("starttls", True),
        user=section.optional("user", _identity),
        password=section.optional("password", _identity, secret=True),
        reset_url=section.optional("reset_url", _reset_url),
        reset_lifetime=section.integer("reset_lifetime", 3600, minimum=60, maximum=7 * 24 * 3600),
    )
    if (config.user is None) != (config.password is None):
        raise section.fail("user", "user and password go together: set both or neither")
    section.check_no_unknown_keys(MAIL_KEYS)
    return config


def _build_federation(section: _Section) -> FederationConfig:
    origin = section.origin_of("nameservers")
    nameservers = []
    for raw in section.string_list("nameservers", ()):
        try:
            nameservers.append(_nameserver(raw))
        except ValueError as exc:
            raise section.fail("nameservers", f"{raw[:100]!r}: {exc}", origin) from None
    config = FederationConfig(
        nameservers=tuple(nameservers),
        discovery_ttl=section.integer("discovery_ttl", 600, minimum=1, maximum=7 * 24 * 3600),
        failure_ttl=section.integer("failure_ttl", 30, minimum=1, maximum=24 * 3600),
        dns_timeout=section.integer("dns_timeout", 5, minimum=1, maximum=60),
        request_timeout=section.integer("request_timeout", 10, minimum=1, maximum=60),
        retry_max=section.integer("retry_max", 30, minimum=1, maximum=3600),
        backfill=section.integer("backfill", 50, minimum=0, maximum=1000),
    )
    section.check_no_unknown_keys(FEDERATION_KEYS)
    return config


def log_level(raw: str) -> str:
    """A log level name, lower-cased; ValueError naming the choices otherwise."""
    level = raw.strip().lower()
    if level not in LEVELS:
        raise ValueError(f"must be one of {', '.join(LEVELS)}")
    return level


def _log_format(raw: str) -> LogFormat:
    if raw == "text":
        return "text"
    if raw == "json":
        return "json"
    raise ValueError(f"must be one of {', '.join(FORMATS)}")


def _build_log(section: _Section) -> LogConfig:
    config = LogConfig(
        level=section.parsed("level", "info", log_level),
        format=section.parsed("format", "text", _log_format),
    )
    section.check_no_unknown_keys(LOG_KEYS)
    return config


SERVER_KEYS = (
    "domain",
    "topics_domain",
    "well_known_nodes",
    "max_payload_bytes",
    "personal_access_model",
    "personal_default_role",
    "topic_access_model",
    "topic_default_role",
    "anonymous_domains",
)
STORAGE_KEYS = ("url",)
XMPP_KEYS = (
    "component_jid",
    "secret",
    "host",
    "port",
    "multicast",
    "max_stanza_bytes",
    "reconnect_queue_bytes",
    "c2s_host",
    "c2s_port",
    "admin_jid",
    "admin_password",
)
HTTP_KEYS = (
    "listen",
    "metrics_token",
    "access_log",
    "long_poll_seconds",
    "ws_ping_seconds",
    "ws_send_queue",
    "replay_events",
)
AUTH_KEYS = (
    "methods",
    "secret",
    "remote_url",
    "remote_timeout",
    "cache_seconds",
    "token_key",
    "token_lifetime",
    "session_lifetime",
    "max_account_failures",
    "max_address_failures",
    "failure_window",
)
MAIL_KEYS = (
    "host",
    "port",
    "from",
    "starttls",
    "user",
    "password",
    "reset_url",
    "reset_lifetime",
)
FEDERATION_KEYS = (
    "nameservers",
    "discovery_ttl",
    "failure_ttl",
    "dns_timeout",
    "request_timeout",
    "retry_max",
    "backfill",
)
LOG_KEYS = ("level", "format")
SECTIONS: dict[str, tuple[str, ...]] = {
    "server": SERVER_KEYS,
    "storage": STORAGE_KEYS,
    "xmpp": XMPP_KEYS,
    "http": HTTP_KEYS,
    "auth": AUTH_KEYS,
    "mail": MAIL_KEYS,
    "federation": FEDERATION_KEYS,
    "log": LOG_KEYS,
}


# --- loading ---------------------------------------------------------------------------


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides `key` of `section`."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


def load_config(path: Path | None, environ: Mapping[str, str]) -> Config:
    """Read the configuration from a TOML file and the environment.

    Args:
        path: the TOML file, or None for defaults and environment only.
        environ: the environment; `BUDDYCLOUD_<SECTION>_<KEY>` variables override the
            file. Variables naming no known section (`BUDDYCLOUD_TEST_POSTGRES`) are ignored.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: the file cannot be read or parsed, or a section, key or value is
            not acceptable. The message names the file or variable, section and key.
    """
    file_label = str(path) if path is not None else "configuration"
    document = _read_toml(path) if path is not None else {}
    raw: dict[str, dict[str, _Raw]] = {name: {} for name in SECTIONS}
    for name, table in document.items():
        if name not in SECTIONS:
            known = ", ".join(f"[{known}]" for known in SECTIONS)
            what = "section" if isinstance(table, dict) else "top-level key"
            raise ConfigError(f"{file_label}: unknown {what} {name!r} (known sections: {known})")
        if not isinstance(table, dict):
            raise ConfigError(f"{file_label}: {name!r} must be a section, written [{name}]")
        for key, value in table.items():
            raw[name][key] = _Raw(value, file_label, from_env=False)
    for variable, value in sorted(environ.items()):
        located = _locate_env(variable)
        if located is not None:
            name, key = located
            raw[name][key] = _Raw(value, f"environment variable {variable}", from_env=True)
    sections = {name: _Section(name, raw[name], file_label) for name in SECTIONS}
    methods_origin = sections["auth"].origin_of("methods")
    config = Config(
        server=_build_server(sections["server"]),
        storage=_build_storage(sections["storage"]),
        xmpp=_build_xmpp(sections["xmpp"]),
        http=_build_http(sections["http"]),
        auth=_build_auth(sections["auth"]),
        mail=_build_mail(sections["mail"]),
        federation=_build_federation(sections["federation"]),
        log=_build_log(sections["log"]),
    )
    if "xmpp" in config.auth.methods and config.xmpp is None:
        raise ConfigError(
            f'{methods_origin}: [auth] methods: "xmpp" signs users in at the XMPP server, '
            "which needs the [xmpp] section"
        )
    return config


def _locate_env(variable: str) -> tuple[str, str] | None:
    if not variable.startswith(ENV_PREFIX):
        return None
    rest = variable[len(ENV_PREFIX) :]
    for name in SECTIONS:
        prefix = f"{name.upper()}_"
        if rest.startswith(prefix) and len(rest) > len(prefix):
            return name, rest[len(prefix) :].lower()
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            return tomllib.load(stream)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
