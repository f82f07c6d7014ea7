"""XEP-0004 data forms, and the node configuration forms of ProtoXEP table 1."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from xml.etree.ElementTree import Element, SubElement

from buddycloud.domain.errors import ChannelError, InvalidConfiguration, InvalidDate, InvalidJid
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    NS_ATOM,
    AccessModel,
    Channel,
    ChannelConfig,
    ChannelType,
    Node,
    NodeId,
    Role,
)
from buddycloud.domain.times import format_datetime, parse_datetime
from buddycloud.services.config import ConfigUpdate
from buddycloud.xmpp.errors import MalformedStanza
from buddycloud.xmpp.namespaces import NS_DATA_FORMS, NS_PUBSUB_NODE_CONFIG, qname

FORM_TYPES = frozenset({"form", "submit", "cancel", "result"})
MAX_FIELDS = 200
MAX_VALUES = 100


@dataclass(frozen=True, slots=True)
class FormField:
    var: str
    values: tuple[str, ...] = ()
    type: str | None = None
    label: str | None = None

    @property
    def value(self) -> str | None:
        return self.values[0] if self.values else None


@dataclass(frozen=True, slots=True)
class DataForm:
    """A data form. `form_type` is the hidden FORM_TYPE field's value, kept apart."""

    type: str
    form_type: str | None = None
    fields: tuple[FormField, ...] = ()
    title: str | None = None
    instructions: str | None = None
    reported: tuple[FormField, ...] = ()
    items: tuple[tuple[FormField, ...], ...] = field(default=())

    def get(self, var: str) -> str | None:
        """The first value of field `var`, None when absent or empty."""
        for form_field in self.fields:
            if form_field.var == var:
                return form_field.value
        return None

    def has(self, var: str) -> bool:
        return any(form_field.var == var for form_field in self.fields)


def parse_form(x: Element) -> DataForm:
    """Parse `<x xmlns='jabber:x:data'>`.

    Raises:
        MalformedStanza: unknown form type, a field without var, or too many fields.
    """
    if x.tag != qname(NS_DATA_FORMS, "x"):
        raise MalformedStanza("expected a jabber:x:data form")
    type_ = x.get("type", "")
    if type_ not in FORM_TYPES:
        raise MalformedStanza(f"unknown data form type {type_[:20]!r}")
    fields = _parse_fields(x)
    form_type = None
    kept: list[FormField] = []
    for form_field in fields:
        if form_field.var == "FORM_TYPE":
            form_type = form_field.value
        else:
            kept.append(form_field)
    title_el = x.find(qname(NS_DATA_FORMS, "title"))
    instructions_el = x.find(qname(NS_DATA_FORMS, "instructions"))
    return DataForm(
        type=type_,
        form_type=form_type,
        fields=tuple(kept),
        title=title_el.text if title_el is not None else None,
        instructions=instructions_el.text if instructions_el is not None else None,
    )


def _parse_fields(parent: Element) -> list[FormField]:
    elements = parent.findall(qname(NS_DATA_FORMS, "field"))
    if len(elements) > MAX_FIELDS:
        raise MalformedStanza(f"a form may hold at most {MAX_FIELDS} fields")
    fields = []
    for element in elements:
        var = element.get("var")
        if not var:
            raise MalformedStanza("a form field needs a var attribute")
        values = [value.text or "" for value in element.findall(qname(NS_DATA_FORMS, "value"))]
        if len(values) > MAX_VALUES:
            raise MalformedStanza(f"a form field may hold at most {MAX_VALUES} values")
        fields.append(FormField(var, tuple(values), element.get("type"), element.get("label")))
    return fields


def find_form(parent: Element, form_type: str | None = None) -> DataForm | None:
    """The first data form child of `parent` (with that FORM_TYPE, when given)."""
    for x in parent.findall(qname(NS_DATA_FORMS, "x")):
        form = parse_form(x)
        if form_type is None or form.form_type == form_type:
            return form
    return None


def render_form(form: DataForm) -> Element:
    """Render a data form, FORM_TYPE first (XEP-0068)."""
    x = Element(qname(NS_DATA_FORMS, "x"), {"type": form.type})
    if form.title is not None:
        SubElement(x, qname(NS_DATA_FORMS, "title")).text = form.title
    if form.instructions is not None:
        SubElement(x, qname(NS_DATA_FORMS, "instructions")).text = form.instructions
    if form.form_type is not None:
        _render_field(x, FormField("FORM_TYPE", (form.form_type,), "hidden"))
    for form_field in form.fields:
        _render_field(x, form_field)
    if form.reported:
        reported = SubElement(x, qname(NS_DATA_FORMS, "reported"))
        for form_field in form.reported:
            _render_field(reported, form_field)
    for row in form.items:
        item = SubElement(x, qname(NS_DATA_FORMS, "item"))
        for form_field in row:
            _render_field(item, form_field)
    return x


def _render_field(parent: Element, form_field: FormField) -> Element:
    element = SubElement(parent, qname(NS_DATA_FORMS, "field"), {"var": form_field.var})
    if form_field.type is not None:
        element.set("type", form_field.type)
    if form_field.label is not None:
        element.set("label", form_field.label)
    for value in form_field.values:
        SubElement(element, qname(NS_DATA_FORMS, "value")).text = value
    return element


def parse_bool(raw: str | None, var: str) -> bool:
    """XEP-0004 §3.3 boolean: 1/true or 0/false.

    Raises:
        InvalidConfiguration: any other value.
    """
    if raw in ("1", "true"):
        return True
    if raw in ("0", "false"):
        return False
    raise InvalidConfiguration(var, f"{(raw or '')[:20]!r} is not a boolean")


# --- node configuration (ProtoXEP table 1) ----------------------------------------------

TITLE = "pubsub#title"
DESCRIPTION = "pubsub#description"
ACCESS_MODEL = "pubsub#access_model"
CREATOR = "pubsub#creator"
DEFAULT_AFFILIATION = "buddycloud#default_affiliation"
CHANNEL_TYPE = "buddycloud#channel_type"
CREATION_DATE = "pubsub#creation_date"
UPDATED_DATE = "buddycloud#updated_date"
PAYLOAD_TYPE = "pubsub#type"
MAX_ITEMS = "pubsub#max_items"
EPHEMERAL = "buddycloud#ephemeral"
ADVERTISE = "buddycloud#advertise_node"
NUM_SUBSCRIBERS = "pubsub#num_subscribers"

# Set by the server; submitted values are ignored (table 1: "Not user changeable"), so that
# a client may send back the whole form it received.
READ_ONLY_FIELDS = frozenset({CREATOR, CREATION_DATE, UPDATED_DATE, NUM_SUBSCRIBERS})

# Wire-neutral names the engine's subscriptions_with_configuration filters use, by field.
FILTER_KEYS: dict[str, str] = {
    TITLE: "title",
    DESCRIPTION: "description",
    ACCESS_MODEL: "access_model",
    DEFAULT_AFFILIATION: "default_role",
    CHANNEL_TYPE: "channel_type",
    CREATOR: "creator",
    # ProtoXEP example 19 uses the bare names.
    "title": "title",
    "description": "description",
    "access_model": "access_model",
    "default_affiliation": "default_role",
    "channel_type": "channel_type",
    "creator": "creator",
}

MAX_TITLE = 1024
MAX_DESCRIPTION = 4096
MAX_PAYLOAD_TYPE = 256

T = TypeVar("T")


def node_config_fields(channel: Channel, node: Node | None) -> tuple[FormField, ...]:
    """The table-1 fields of a channel (and node-level fields when `node` is given)."""
    config = channel.config
    fields = [
        FormField(TITLE, (config.title,), "text-single", "Channel title"),
        FormField(DESCRIPTION, (config.description,), "text-multi", "Channel description"),
        FormField(
            ACCESS_MODEL,
            (config.access_model.value,),
            "list-single",
            "Who may read the channel",
        ),
        FormField(CREATOR, (str(config.creator),), "jid-single", "Channel creator"),
        FormField(
            DEFAULT_AFFILIATION,
            (config.default_role.value,),
            "list-single",
            "Role of new followers",
        ),
        FormField(CHANNEL_TYPE, (config.channel_type.value,), "list-single", "Channel type"),
        FormField(CREATION_DATE, (format_datetime(config.created),), "text-single"),
        FormField(UPDATED_DATE, (format_datetime(config.updated),), "text-single"),
        FormField(EPHEMERAL, ("true" if config.ephemeral else "false",), "boolean"),
        FormField(
            ADVERTISE,
            ("true" if config.advertised else "false",),
            "boolean",
            "Listed in discovery",
        ),
    ]
    if node is not None:
        fields.append(FormField(PAYLOAD_TYPE, (node.payload_type,), "text-single"))
        max_items = "max" if node.max_items in (None, 0) else str(node.max_items)
        fields.append(FormField(MAX_ITEMS, (max_items,), "text-single"))
    return tuple(fields)


def render_node_config(
    channel: Channel,
    node: Node | None,
    *,
    form_type: str = NS_PUBSUB_NODE_CONFIG,
    type_: str = "result",
) -> Element:
    """The node configuration form (XEP-0060 §8.2), or the meta-data form (§5.4)."""
    return render_form(DataForm(type_, form_type, node_config_fields(channel, node)))


def filter_fields(
    fields: Iterable[FormField], allowed: Sequence[str] | None
) -> tuple[FormField, ...]:
    """Keep only `allowed` fields (full var or its part after '#'); None keeps everything."""
    if allowed is None:
        return tuple(fields)
    wanted = set(allowed)
    return tuple(f for f in fields if f.var in wanted or f.var.partition("#")[2] in wanted)


def parse_config_update(form: DataForm) -> ConfigUpdate:
    """Turn a submitted node_config form into a ConfigUpdate (absent fields stay unchanged).

    Read-only fields and fields this server does not know are ignored (XEP-0060 §8.2.4 lets
    a client submit the whole form back).

    Raises:
        MalformedStanza: the form is not a submit/cancel node_config form.
        InvalidConfiguration: a field holds a value outside its vocabulary or limits.
    """
    if form.type == "cancel":
        return ConfigUpdate()
    if form.type != "submit":
        raise MalformedStanza(
            "a configuration form must be of type submit", condition="invalid-options"
        )
    if form.form_type not in (None, NS_PUBSUB_NODE_CONFIG):
        raise MalformedStanza(
            f"unexpected FORM_TYPE {form.form_type[:100]!r}", condition="invalid-options"
        )
    title = _bounded(form, TITLE, MAX_TITLE)
    description = _bounded(form, DESCRIPTION, MAX_DESCRIPTION)
    payload_type = _bounded(form, PAYLOAD_TYPE, MAX_PAYLOAD_TYPE)
    access = form.get(ACCESS_MODEL)
    role = form.get(DEFAULT_AFFILIATION)
    channel_type = form.get(CHANNEL_TYPE)
    max_items = form.get(MAX_ITEMS)
    ephemeral = form.get(EPHEMERAL)
    advertise = form.get(ADVERTISE)
    return ConfigUpdate(
        title=title,
        description=description,
        access_model=AccessModel.parse(access) if access else None,
        default_role=Role.parse(role) if role else None,
        payload_type=payload_type or None,
        max_items=_parse_max_items(max_items) if max_items else None,
        ephemeral=parse_bool(ephemeral, EPHEMERAL) if ephemeral else None,
        channel_type=_parse_channel_type(channel_type) if channel_type else None,
        advertised=parse_bool(advertise, ADVERTISE) if advertise else None,
    )


def _bounded(form: DataForm, var: str, limit: int) -> str | None:
    if not form.has(var):
        return None
    # A text-multi field's lines come as several values (XEP-0004 §3.3).
    values = next(f.values for f in form.fields if f.var == var)
    value = "\n".join(values)
    if len(value) > limit:
        raise InvalidConfiguration(var, f"longer than {limit} characters")
    return value


def _parse_max_items(raw: str) -> int:
    if raw == "max":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise InvalidConfiguration(MAX_ITEMS, f"{raw[:20]!r} is not a non-negative integer")
    return int(raw)


def _parse_channel_type(raw: str) -> ChannelType:
    try:
        return ChannelType(raw)
    except ValueError:
        raise InvalidConfiguration(CHANNEL_TYPE, f"unknown channel type {raw[:40]!r}") from None


# --- the other side: what a client (or this server acting for one) sends and reads --------


def render_config_update(update: ConfigUpdate) -> Element:
    """A submitted node_config form holding the fields `update` changes (the inverse of
    `parse_config_update`): what this server sends when it configures another domain's
    channel for its owner (federation)."""
    fields: list[FormField] = []

    def add(var: str, value: str | None) -> None:
        if value is not None:
            fields.append(FormField(var, (value,)))

    def flag(value: bool | None) -> str | None:
        return None if value is None else ("true" if value else "false")

    add(TITLE, update.title)
    add(DESCRIPTION, update.description)
    add(ACCESS_MODEL, update.access_model.value if update.access_model else None)
    add(DEFAULT_AFFILIATION, update.default_role.value if update.default_role else None)
    add(PAYLOAD_TYPE, update.payload_type)
    if update.max_items is not None:
        add(MAX_ITEMS, "max" if update.max_items == 0 else str(update.max_items))
    add(EPHEMERAL, flag(update.ephemeral))
    add(CHANNEL_TYPE, update.channel_type.value if update.channel_type else None)
    add(ADVERTISE, flag(update.advertised))
    return render_form(DataForm("submit", NS_PUBSUB_NODE_CONFIG, tuple(fields)))


def parse_node_config(
    form: DataForm, node: NodeId, *, now: datetime, lenient: bool = False
) -> tuple[Channel, Node]:
    """A channel and its node as a node configuration or meta-data form shows them (the
    inverse of `node_config_fields`): what another domain's channel server answers.
    Dates it leaves out are `now`; the creator it leaves out is the channel itself.

    `lenient` (what is cached of a followed channel): a field outside its vocabulary or
    limits takes the value a new channel would have, but an access model outside it is
    `authorize` (never more open than the channel's server meant), a text too long is cut,
    and a default role no follower can get (owner, outcast) is member.

    Raises:
        InvalidConfiguration: a field holds a value outside its vocabulary or limits
            (never when `lenient`).
    """

    def read(var: str, parse: Callable[[str], T], default: T, unknown: T | None = None) -> T:
        raw = form.get(var)
        if not raw:
            return default
        try:
            return parse(raw)
        except ChannelError:
            if not lenient:
                raise
            return default if unknown is None else unknown

    def text(var: str, limit: int) -> str | None:
        if lenient and form.has(var):
            return "\n".join(next(f.values for f in form.fields if f.var == var))[:limit]
        return _bounded(form, var, limit)

    def default_role(raw: str) -> Role:
        role = Role.parse(raw)
        if lenient and role in (Role.OWNER, Role.OUTCAST):
            return Role.MEMBER
        return role

    created = read(CREATION_DATE, lambda raw: _parse_date(raw, CREATION_DATE), None) or now
    config = ChannelConfig(
        title=text(TITLE, MAX_TITLE) or "",
        description=text(DESCRIPTION, MAX_DESCRIPTION) or "",
        access_model=read(
            ACCESS_MODEL, AccessModel.parse, AccessModel.OPEN, unknown=AccessModel.AUTHORIZE
        ),
        default_role=read(DEFAULT_AFFILIATION, default_role, Role.MEMBER),
        creator=read(CREATOR, lambda raw: _parse_jid(raw, CREATOR), None) or node.channel,
        channel_type=read(CHANNEL_TYPE, _parse_channel_type, ChannelType.PERSONAL),
        created=created,
        updated=read(UPDATED_DATE, lambda raw: _parse_date(raw, UPDATED_DATE), None) or created,
        ephemeral=read(EPHEMERAL, lambda raw: parse_bool(raw, EPHEMERAL), False),
        advertised=read(ADVERTISE, lambda raw: parse_bool(raw, ADVERTISE), True),
    )
    payload_type = text(PAYLOAD_TYPE, MAX_PAYLOAD_TYPE) or NS_ATOM
    limit = read(MAX_ITEMS, _parse_max_items, 0)
    return Channel(node.channel, config), Node(node, payload_type, limit or None, created)


def parse_num_subscribers(form: DataForm) -> int:
    """`pubsub#num_subscribers` of a meta-data form (XEP-0060 §5.4).

    Raises:
        InvalidConfiguration: absent, or not a non-negative integer.
    """
    raw = form.get(NUM_SUBSCRIBERS) or ""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise InvalidConfiguration(NUM_SUBSCRIBERS, f"{raw[:20]!r} is not a non-negative integer")
    return int(raw)


def _parse_date(raw: str | None, var: str) -> datetime | None:
    if not raw:
        return None
    try:
        return parse_datetime(raw)
    except InvalidDate:
        raise InvalidConfiguration(var, f"{raw[:40]!r} is not a date") from None


def _parse_jid(raw: str | None, var: str) -> Jid | None:
    if not raw:
        return None
    try:
        return Jid.parse(raw).bare
    except InvalidJid:
        raise InvalidConfiguration(var, f"{raw[:40]!r} is not a JID") from None
