"""Mutated stanzas for the end-to-end fuzz test (tests/e2e/test_fuzz.py).

Each operation family has valid seed stanzas, written as a client of the original servers
would send them (reference section 3). `generate` draws seeds for one sender and mutates
them: attributes (dropped, emptied, huge, unicode, wrong JIDs, node names and item ids),
children (dropped, duplicated, reordered, put in the wrong namespace, nested deeply, given
big text), RSM values, data form fields and dates. Everything comes from one
`random.Random` per sender, seeded from the run's seed and the sender's name, so a seed
always yields the same stanzas.

Mutations keep the XML well formed and use only characters XML allows: a stream with a
syntax error is closed by the XMPP server before the component sees anything.
"""

from __future__ import annotations

import copy
import itertools
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from e2e.harness import (
    NS_ACTIVITY,
    NS_ATOM,
    NS_BC,
    NS_DATA,
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_EVENT,
    NS_MAM,
    NS_OWNER,
    NS_PUBSUB,
    NS_REGISTER,
    NS_REVIEW,
    NS_RSM,
    NS_SEARCH,
    NS_THREAD,
    SERVICE,
    TOPICS_DOMAIN,
)

NS_MAM_TMP = "urn:xmpp:mam:tmp"
NS_VERSION = "jabber:iq:version"
NS_PING = "urn:xmpp:ping"
NS_GEOLOC = "http://jabber.org/protocol/geoloc"
AUTHORIZATION = f"{NS_PUBSUB}#subscribe_authorization"

# Big text: up to past the 64 KiB payload limit; pages of such posts are larger than the
# XMPP server takes from the component in one stanza, and must be cut to fit.
BIG_TEXT = (200, 2_000, 20_000, 60_000, 70_000)
DEPTHS = (3, 30, 63, 66, 200, 1_000)
HUGE = (300, 1_100, 3_000, 5_000)
# Prosody closes a client stream whose stanza exceeds c2s_stanza_size_limit (256 KiB by
# default): mutations that grow a stanza past this are drawn again.
MAX_PAYLOAD_BYTES = 200_000


@dataclass(frozen=True)
class Targets:
    """What the seeds name: the users of the run and the channels set up for it."""

    users: dict[str, str]  # role -> bare JID
    open_node: str
    closed_node: str
    status_node: str
    seed_ids: tuple[str, ...]
    closed_ids: tuple[str, ...]
    pending: str  # a bare JID whose follow request on closed_node awaits approval

    def personal(self, role: str) -> str:
        return f"/user/{self.users[role]}/posts"

    @property
    def scratch_nodes(self) -> list[str]:
        return [f"/user/fuzz-scratch-{n}@{TOPICS_DOMAIN}/posts" for n in range(6)]

    @property
    def nodes(self) -> list[str]:
        return [
            self.open_node,
            self.closed_node,
            self.status_node,
            *(self.personal(role) for role in self.users),
            *self.scratch_nodes,
        ]

    @property
    def item_ids(self) -> list[str]:
        return [*self.seed_ids, *self.closed_ids, *(f"fz-{n}" for n in range(30))]


@dataclass
class Stanza:
    """One stanza to send: an IQ get or set, or a message, with its payload."""

    number: int
    sender: str
    family: str
    kind: str  # "get", "set" or "message"
    element: ET.Element
    mutations: tuple[str, ...]
    payload: str  # the element serialised, as sent
    message_type: str | None = None
    to: str = SERVICE  # the service, now and then with a resource
    id_suffix: str = ""  # what ends the stanza's id

    def describe(self, seed: int) -> str:
        mutated = ", ".join(self.mutations) or "none"
        return (
            f"seed {seed}, {self.sender} #{self.number} ({self.family} {self.kind}; "
            f"mutations: {mutated}): {self.payload[:800]}"
        )


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return "", tag


def to_xml(root: ET.Element) -> str:
    """`root` serialised without recursion (ElementTree's serialiser recurses per level, so
    a thousand levels exceed Python's stack), each namespace declared where it changes."""
    out: list[str] = []
    # (element, namespace of its parent, closing tag or None if not yet opened)
    stack: list[tuple[ET.Element, str, str | None]] = [(root, "jabber:client", None)]
    while stack:
        element, inherited, closing = stack.pop()
        if closing is not None:
            out.append(closing)
            if element.tail:
                out.append(escape(element.tail))
            continue
        namespace, name = _split(element.tag)
        head = f"<{name}"
        if namespace != inherited:
            head += f" xmlns={quoteattr(namespace)}"
        for index, (key, value) in enumerate(element.attrib.items()):
            key_namespace, key_name = _split(key)
            if key_namespace == "http://www.w3.org/XML/1998/namespace":
                head += f" xml:{key_name}={quoteattr(value)}"
            elif key_namespace:
                head += f" xmlns:a{index}={quoteattr(key_namespace)}"
                head += f" a{index}:{key_name}={quoteattr(value)}"
            else:
                head += f" {key_name}={quoteattr(value)}"
        out.append(head + ">")
        if element.text:
            out.append(escape(element.text))
        stack.append((element, inherited, f"</{name}>"))
        for child in reversed(list(element)):
            stack.append((child, namespace, None))
    return "".join(out)


# --- value pools -------------------------------------------------------------------------

UNICODE = [
    "jüliet",
    "\u202eetil\u202c",  # right-to-left override
    "zero\u200bwidth",
    "\ufeffbom",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "😀🎉",
    "e\u0301\u0301\u0301",
    "\ufffd",
    "日本語のテキスト",
    "\u00a0nbsp\u00a0",
    "\ufdd0",
    "\U0010fffd",
    "ﬀ",
    "İ",
    "Ω≈ç√",
    "tab\there\nnewline",
]

JIDS = [
    "",
    "@",
    "juliet@",
    "@capulet.lit",
    "juliet@@capulet.lit",
    "juliet@capulet.lit/",
    "romeo@capulet.lit/orchard",
    "ROMEO@CAPULET.LIT",
    "nobody@elsewhere.example",
    "capulet.lit",
    SERVICE,
    f"fuzz-open@{TOPICS_DOMAIN}",
    "a" * 1024 + "@capulet.lit",
    "juliet@" + "d" * 1100,
    "jüliet@capulet.lit",
    "juliet@capulet.lit/" + "r" * 1100,
    " juliet@capulet.lit",
    "juliet@capulet..lit",
    "juliet@[::1]",
    "x@-bad-.lit",
    "\u202ejuliet@capulet.lit",
    "juliet@capulet.lit\t",
    "5e1d2c@anon.capulet.lit",
]

NODE_NAMES = [
    "",
    "/",
    "/user",
    "/user/",
    "/user//posts",
    "/user/juliet@capulet.lit",
    "/user/juliet@capulet.lit/",
    "/user/juliet@capulet.lit/posts/",
    "/user/juliet@capulet.lit/posts/extra",
    "/user/juliet@capulet.lit/nonexistent",
    "/user/juliet@capulet.lit/geo/current",
    "/user/juliet@capulet.lit/subscriptions",
    "/user/nobody@capulet.lit/posts",
    "/user/x@elsewhere.example/posts",
    "/firehose",
    "/top-followed-nodes",
    "/top-published-nodes",
    "posts",
    "/user/@capulet.lit/posts",
    "/user/juliet@@capulet.lit/posts",
    "/user/jüliet@capulet.lit/posts",
    "/user/juliet@capulet.lit/" + "n" * 1100,
    "/user/juliet@capulet.lit/p o s t s",
    "/USER/juliet@capulet.lit/posts",
    "/user/juliet@capulet.lit/posts\n",
    "/user/capulet.lit/posts",
    f"/user/fuzz-open@{TOPICS_DOMAIN}/status/../posts",
]

ITEM_IDS = [
    "",
    " ",
    "tag:",
    f"tag:{SERVICE},",
    f"tag:{SERVICE},/user/juliet@capulet.lit/posts,",
    f"tag:{SERVICE},/user/fuzz-open@{TOPICS_DOMAIN}/posts,seed-1",
    f"tag:elsewhere.example,/user/fuzz-open@{TOPICS_DOMAIN}/posts,seed-1",
    f"tag:{SERVICE},/user/fuzz-open@{TOPICS_DOMAIN}/posts,seed-1,extra",
    f"/user/fuzz-open@{TOPICS_DOMAIN}/posts,seed-1",
    "a b",
    "../../etc",
    "x" * 1100,
    "seed-1,seed-2",
    "<",
    "&amp;",
    "ïd",
    "nonexistent",
    "seed-1/",
    "seed-1;seed-2",
]

DATES = [
    "",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
    "2024-02-30T00:00:00Z",
    "2020-01-01",
    "2020-01-01T00:00:00",
    "2020-01-01T25:61:61Z",
    "1970-01-01T00:00:00.123456789Z",
    "yesterday",
    "2020-W01-1",
    "+002020-01-01T00:00:00Z",
    "2020-01-01T00:00:00+99:99",
    "2000-01-01T00:00:00Z",
    "20200101T000000Z",
    "1e10",
    "-1",
    "٢٠٢٠-٠١-٠١T00:00:00Z",
    "2020-01-01T00:00:00.Z",
    "2020-01-01T00:00:00" + "9" * 400 + "Z",
]

NUMBERS = [
    "",
    "0",
    "1",
    "-1",
    "2",
    "50",
    "1000",
    "1001",
    "999999999",
    "9999999999999999999999",
    "1e3",
    " 5",
    "5 ",
    "0x10",
    "٣",
    "²",
    "1.5",
    "NaN",
    "abc",
    "+3",
    "-0",
    "00000000000000000000000001",
]

RESOURCES = ["fuzz", "ü", "a b", "/", "x" * 300]
# No tab, newline or carriage return: Prosody writes them unescaped in the attributes of
# the stanzas it routes, the next parser reads them as spaces (XML attribute value
# normalisation), and the answer's id no longer matches the request's.
ID_SUFFIXES = ["-ü😀", "-" + "i" * 1000, "-'\"<&>", "-\u202e", "- ~ "]
BOOLEANS = ["true", "false", "1", "0", "", "yes", "TRUE", "maybe"]
ACCESS_MODELS = ["open", "authorize", "local", "whitelist", "closed", "presence", "", "OPEN"]
ROLES = [
    "owner",
    "moderator",
    "publisher",
    "member",
    "none",
    "outcast",
    "follower",
    "follower+post",
    "",
    "admin",
]
STATES = ["subscribed", "pending", "none", "unconfigured", "invited", "", "SUBSCRIBED", "blocked"]
TYPES = ["get", "set", "submit", "form", "result", "cancel", "", "text", "xhtml", "html"]
NAMESPACES = [
    NS_PUBSUB,
    NS_OWNER,
    NS_EVENT,
    NS_BC,
    NS_RSM,
    NS_DATA,
    NS_ATOM,
    NS_MAM,
    NS_MAM_TMP,
    NS_DISCO_INFO,
    "urn:example:fuzz",
    "",
]
# Children a mutation may add where they do not belong (never <remove/>: unregistering
# is drawn only for the senders whose data the run can spare).
CHILD_NAMES = [
    (NS_PUBSUB, "item"),
    (NS_PUBSUB, "publish"),
    (NS_PUBSUB, "items"),
    (NS_PUBSUB, "subscribe"),
    (NS_PUBSUB, "options"),
    (NS_PUBSUB, "configure"),
    (NS_OWNER, "affiliation"),
    (NS_OWNER, "subscription"),
    (NS_BC, "actor"),
    (NS_RSM, "set"),
    (NS_DATA, "x"),
    (NS_DATA, "field"),
    (NS_ATOM, "entry"),
    (NS_THREAD, "in-reply-to"),
    ("urn:example:fuzz", "surprise"),
    ("", "bare"),
]
FORM_VARS = [
    "FORM_TYPE",
    "pubsub#title",
    "pubsub#description",
    "pubsub#access_model",
    "buddycloud#default_affiliation",
    "buddycloud#channel_type",
    "pubsub#max_items",
    "buddycloud#advertise_node",
    "buddycloud#ephemeral",
    "pubsub#type",
    "pubsub#creator",
    "pubsub#creation_date",
    "pubsub#expire",
    "pubsub#node",
    "pubsub#subscriber_jid",
    "pubsub#allow",
    "start",
    "end",
    "with",
    "content",
    "author",
    "rpp",
    "page",
    "",
    "unknown#field",
]
FORM_TYPES = [
    f"{NS_PUBSUB}#node_config",
    f"{NS_PUBSUB}#subscribe_options",
    AUTHORIZATION,
    NS_MAM,
    NS_SEARCH,
    "",
    "urn:example:form",
]


def _pool_for(name: str, targets: Targets) -> list[str]:
    """Wrong values that suit an attribute or field named `name`."""
    local = name.rpartition("}")[2].rpartition("#")[2].lower()
    real_jids = list(targets.users.values())
    if local in ("node",):
        return NODE_NAMES + targets.nodes
    if local in ("jid", "subscriber_jid", "with", "author", "actor", "creator", "by"):
        return JIDS + real_jids
    if local in ("id", "item_id", "ref", "after", "before", "first", "last"):
        return ITEM_IDS + targets.item_ids
    if local in ("since", "start", "end", "stamp", "updated", "published", "creation_date"):
        return DATES
    if local in ("max", "max_items", "rpp", "page", "index", "count", "rating"):
        return NUMBERS
    if local in ("subscription",):
        return STATES
    if local in ("affiliation", "default_affiliation"):
        return ROLES
    if local in ("access_model",):
        return ACCESS_MODELS
    if local in ("type", "form_type"):
        return TYPES + FORM_TYPES
    if local in ("notify", "parent-only", "ephemeral", "allow", "advertise_node", "expire"):
        return BOOLEANS + ["presence"]
    return NODE_NAMES[:6] + JIDS[:6] + ITEM_IDS[:6] + DATES[:4] + NUMBERS[:6] + UNICODE[:4]


# --- seeds -------------------------------------------------------------------------------


def _x(form_type: str, fields: Sequence[tuple[str, Sequence[str]]], type_: str = "submit") -> str:
    rendered = "".join(
        f"<field var='{var}'>" + "".join(f"<value>{v}</value>" for v in values) + "</field>"
        for var, values in fields
    )
    return (
        f"<x xmlns='{NS_DATA}' type='{type_}'><field var='FORM_TYPE' type='hidden'>"
        f"<value>{form_type}</value></field>{rendered}</x>"
    )


def _rsm(rng: random.Random, targets: Targets) -> str:
    parts = []
    if rng.random() < 0.7:
        parts.append(f"<max>{rng.choice(['1', '2', '5', '20'])}</max>")
    roll = rng.random()
    if roll < 0.25:
        parts.append(f"<after>{rng.choice(targets.item_ids)}</after>")
    elif roll < 0.4:
        parts.append(f"<before>{rng.choice([*targets.item_ids, ''])}</before>")
    return f"<set xmlns='{NS_RSM}'>{''.join(parts)}</set>"


def _maybe_rsm(rng: random.Random, targets: Targets) -> str:
    return _rsm(rng, targets) if rng.random() < 0.5 else ""


def _entry(rng: random.Random, targets: Targets) -> str:
    text = rng.choice(["Wherefore art thou", "A plague on both your houses", "fuzz", "ü😀"])
    extra = ""
    roll = rng.random()
    if roll < 0.25:
        ref = rng.choice([*targets.seed_ids, "fz-1", "nonexistent"])
        extra = f"<thr:in-reply-to xmlns:thr='{NS_THREAD}' ref='{ref}'/>"
    elif roll < 0.35:
        target = rng.choice(targets.seed_ids)
        extra = (
            f"<thr:in-reply-to xmlns:thr='{NS_THREAD}' ref='{target}'/>"
            f"<activity:verb xmlns:activity='{NS_ACTIVITY}'>rated</activity:verb>"
            f"<activity:target xmlns:activity='{NS_ACTIVITY}'><id>{target}</id>"
            "</activity:target>"
            f"<review:rating xmlns:review='{NS_REVIEW}'>{rng.randint(0, 6)}</review:rating>"
        )
    elif roll < 0.45:
        extra = (
            "<title>A title</title><author><name>someone</name></author>"
            "<published>2020-01-01T00:00:00Z</published><updated>2020-01-01T00:00:00Z</updated>"
            f"<id>{rng.choice(ITEM_IDS[:8])}</id>"
        )
    return f"<entry xmlns='{NS_ATOM}'><content type='text'>{text}</content>{extra}</entry>"


def _node(rng: random.Random, targets: Targets, role: str) -> str:
    return rng.choice(
        [targets.open_node, targets.open_node, targets.closed_node, targets.personal(role)]
    )


Seed = Callable[[random.Random, Targets, str], tuple[str, str]]


def seed_publish(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    node = rng.choice([_node(rng, targets, role), targets.status_node])
    item_id = f" id='fz-{rng.randrange(30)}'" if rng.random() < 0.4 else ""
    payload = (
        f"<geoloc xmlns='{NS_GEOLOC}'><text>Verona</text></geoloc>"
        if rng.random() < 0.05
        else _entry(rng, targets)
    )
    return "set", (
        f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{node}'><item{item_id}>{payload}</item>"
        "</publish></pubsub>"
    )


def seed_publish_large(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    """A post near the payload limit: a page of them is larger than the XMPP server takes
    from the component in one stanza."""
    size = rng.choice([20_000, 40_000, 60_000])
    return "set", (
        f"<pubsub xmlns='{NS_PUBSUB}'><publish node='{_node(rng, targets, role)}'><item>"
        f"<entry xmlns='{NS_ATOM}'><content type='text'>{'y' * size}</content></entry>"
        "</item></publish></pubsub>"
    )


def seed_retract(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    notify = rng.choice(["", " notify='true'", " notify='0'"])
    item_id = rng.choice(targets.item_ids)
    return "set", (
        f"<pubsub xmlns='{NS_PUBSUB}'><retract node='{_node(rng, targets, role)}'{notify}>"
        f"<item id='{item_id}'/></retract></pubsub>"
    )


def seed_items(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    node = rng.choice([_node(rng, targets, role), targets.status_node, "/firehose"])
    attributes = ""
    if rng.random() < 0.3:
        attributes += f" max_items='{rng.choice(['1', '3', '10'])}'"
    if rng.random() < 0.2:
        attributes += " parent-only='true'"
    inner = ""
    if node != "/firehose" and rng.random() < 0.3:
        inner = "".join(f"<item id='{i}'/>" for i in rng.sample(targets.item_ids, 2))
    return "get", (
        f"<pubsub xmlns='{NS_PUBSUB}'><items node='{node}'{attributes}>{inner}</items>"
        f"{_maybe_rsm(rng, targets)}</pubsub>"
    )


def seed_subscribe(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    options = ""
    if rng.random() < 0.3:
        options = (
            "<options>"
            + _x(f"{NS_PUBSUB}#subscribe_options", [("pubsub#expire", ["presence"])])
            + "</options>"
        )
    node = rng.choice([targets.open_node, targets.closed_node, targets.status_node])
    return "set", (
        f"<pubsub xmlns='{NS_PUBSUB}'><subscribe node='{node}' jid='{targets.users[role]}'/>"
        f"{options}</pubsub>"
    )


def seed_unsubscribe(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    node = rng.choice([targets.open_node, targets.closed_node, targets.status_node])
    return "set", (
        f"<pubsub xmlns='{NS_PUBSUB}'><unsubscribe node='{node}' jid='{targets.users[role]}'/>"
        "</pubsub>"
    )


def seed_configure_get(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    return "get", (
        f"<pubsub xmlns='{NS_OWNER}'><configure node='{_node(rng, targets, role)}'/></pubsub>"
    )


def _config_fields(rng: random.Random) -> list[tuple[str, list[str]]]:
    choices: list[tuple[str, list[str]]] = [
        ("pubsub#title", ["Fuzzed title"]),
        ("pubsub#description", ["line one", "line two"]),
        ("pubsub#access_model", [rng.choice(["open", "authorize", "local"])]),
        ("buddycloud#default_affiliation", [rng.choice(["member", "publisher"])]),
        ("buddycloud#advertise_node", [rng.choice(["true", "false"])]),
        ("pubsub#max_items", [rng.choice(["max", "5", "100"])]),
        ("buddycloud#channel_type", [rng.choice(["personal", "topic"])]),
        ("pubsub#type", [NS_ATOM]),
        ("pubsub#creator", ["nobody@capulet.lit"]),
    ]
    return rng.sample(choices, rng.randint(1, 4))


def seed_configure_set(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    form = _x(f"{NS_PUBSUB}#node_config", _config_fields(rng))
    return "set", (
        f"<pubsub xmlns='{NS_OWNER}'><configure node='{_node(rng, targets, role)}'>{form}"
        "</configure></pubsub>"
    )


def seed_create(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    node = rng.choice(targets.scratch_nodes)
    configure = ""
    if rng.random() < 0.6:
        fields = _config_fields(rng)
        if rng.random() < 0.2:
            fields.append(("buddycloud#ephemeral", ["true"]))
        configure = f"<configure>{_x(f'{NS_PUBSUB}#node_config', fields)}</configure>"
    return "set", f"<pubsub xmlns='{NS_PUBSUB}'><create node='{node}'/>{configure}</pubsub>"


def seed_delete(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    node = rng.choice(targets.scratch_nodes)
    return "set", f"<pubsub xmlns='{NS_OWNER}'><delete node='{node}'/></pubsub>"


def _list_get(name: str, rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    namespace = rng.choice([NS_PUBSUB, NS_OWNER])
    node = f" node='{_node(rng, targets, role)}'" if rng.random() < 0.7 else ""
    ephemeral = f" xmlns:bc='{NS_BC}' bc:ephemeral='true'" if rng.random() < 0.1 else ""
    return "get", (
        f"<pubsub xmlns='{namespace}'><{name}{node}{ephemeral}/>{_maybe_rsm(rng, targets)}</pubsub>"
    )


def seed_affiliations_get(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    return _list_get("affiliations", rng, targets, role)


def seed_subscriptions_get(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    return _list_get("subscriptions", rng, targets, role)


def _whom(rng: random.Random, targets: Targets) -> str:
    return rng.choice([*targets.users.values(), targets.pending])


def seed_affiliations_set(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    rows = "".join(
        f"<affiliation jid='{_whom(rng, targets)}' "
        f"affiliation='{rng.choice(['member', 'publisher', 'moderator', 'outcast', 'none'])}'/>"
        for _ in range(rng.randint(1, 2))
    )
    return "set", (
        f"<pubsub xmlns='{NS_OWNER}'><affiliations node='{_node(rng, targets, role)}'>{rows}"
        "</affiliations></pubsub>"
    )


def seed_subscriptions_set(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    rows = "".join(
        f"<subscription jid='{_whom(rng, targets)}' "
        f"subscription='{rng.choice(['subscribed', 'none', 'pending', 'invited'])}'/>"
        for _ in range(rng.randint(1, 2))
    )
    return "set", (
        f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{_node(rng, targets, role)}'>{rows}"
        "</subscriptions></pubsub>"
    )


def seed_recent_items(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    parent = " parent-only='true'" if rng.random() < 0.3 else ""
    return "get", (
        f"<pubsub xmlns='{NS_PUBSUB}'><recent-items xmlns='{NS_BC}' "
        f"since='2000-01-01T00:00:00Z' max='{rng.choice(['1', '5', '50'])}'{parent}/>"
        f"{_maybe_rsm(rng, targets)}</pubsub>"
    )


def seed_user_items(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    since = " since='2000-01-01T00:00:00.000Z'" if rng.random() < 0.7 else ""
    return "get", (
        f"<pubsub xmlns='{NS_PUBSUB}'><user-items xmlns='{NS_BC}'{since}/>"
        f"{_maybe_rsm(rng, targets)}</pubsub>"
    )


def _item_request(name: str, rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    node = rng.choice([targets.open_node, targets.closed_node])
    item_id = rng.choice([*targets.seed_ids, *targets.closed_ids])
    return "get", (
        f"<pubsub xmlns='{NS_PUBSUB}'><{name} xmlns='{NS_BC}' node='{node}' item_id='{item_id}'/>"
        f"{_maybe_rsm(rng, targets)}</pubsub>"
    )


def seed_replies(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    return _item_request("replies", rng, targets, role)


def seed_thread(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    return _item_request("thread", rng, targets, role)


def seed_threads(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    return "get", (
        f"<pubsub xmlns='{NS_PUBSUB}'><threads node='{_node(rng, targets, role)}'/>"
        f"{_maybe_rsm(rng, targets)}</pubsub>"
    )


def seed_subscriptions_with_configuration(
    rng: random.Random, targets: Targets, role: str
) -> tuple[str, str]:
    filters = ""
    if rng.random() < 0.5:
        filters += (
            "<subscription-filter><allow field='pubsub#access_model' value='open'/>"
            "</subscription-filter>"
        )
    if rng.random() < 0.5:
        filters += "<configuration-filter><allow field='pubsub#title'/></configuration-filter>"
    return "get", (
        f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions-with-configuration xmlns='{NS_BC}'>"
        f"{filters}</subscriptions-with-configuration>{_maybe_rsm(rng, targets)}</pubsub>"
    )


def seed_mam(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    if rng.random() < 0.1:
        return "get", f"<query xmlns='{NS_MAM}'/>"
    fields: list[tuple[str, list[str]]] = [("start", ["2000-01-01T00:00:00Z"])]
    if rng.random() < 0.3:
        fields.append(("end", ["2100-01-01T00:00:00Z"]))
    if rng.random() < 0.2:
        fields.append(("with", [rng.choice(list(targets.users.values()))]))
    node = f" node='{_node(rng, targets, role)}'" if rng.random() < 0.8 else ""
    return "set", (
        f"<query xmlns='{NS_MAM}' queryid='fz{rng.randrange(1000)}'{node}>"
        f"{_x(NS_MAM, fields)}{_maybe_rsm(rng, targets)}</query>"
    )


def seed_mam_tmp(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    end = "<end>2100-01-01T00:00:00Z</end>" if rng.random() < 0.5 else ""
    return "get", (
        f"<query xmlns='{NS_MAM_TMP}'><start>2000-01-01T00:00:00Z</start>{end}"
        f"{_maybe_rsm(rng, targets)}</query>"
    )


def seed_search(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    if rng.random() < 0.2:
        return "get", f"<query xmlns='{NS_SEARCH}'/>"
    fields: list[tuple[str, list[str]]] = [("content", [rng.choice(["plague", "fuzz", "ü"])])]
    if rng.random() < 0.3:
        fields.append(("author", [rng.choice(list(targets.users.values()))]))
    if rng.random() < 0.3:
        fields.append(("rpp", [rng.choice(["1", "10"])]))
        fields.append(("page", [rng.choice(["1", "2"])]))
    return "set", f"<query xmlns='{NS_SEARCH}'>{_x(NS_SEARCH, fields)}</query>"


def seed_disco(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    namespace = rng.choice([NS_DISCO_INFO, NS_DISCO_ITEMS])
    node_choice = rng.choice([None, *targets.nodes[:4], "/top-followed-nodes"])
    node = f" node='{node_choice}'" if node_choice else ""
    rsm = _maybe_rsm(rng, targets) if namespace == NS_DISCO_ITEMS else ""
    return "get", f"<query xmlns='{namespace}'{node}>{rsm}</query>"


def seed_register(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.3:
        return "get", f"<query xmlns='{NS_REGISTER}'/>"
    if roll < 0.4 and role in UNREGISTERING:
        return "set", f"<query xmlns='{NS_REGISTER}'><remove/></query>"
    return "set", f"<query xmlns='{NS_REGISTER}'/>"


def seed_version(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    if rng.random() < 0.5:
        return "get", f"<ping xmlns='{NS_PING}'/>"
    return "get", f"<query xmlns='{NS_VERSION}'/>"


def seed_authorization(rng: random.Random, targets: Targets, role: str) -> tuple[str, str]:
    fields = [
        ("pubsub#node", [targets.closed_node]),
        ("pubsub#subscriber_jid", [targets.pending]),
        ("pubsub#allow", [rng.choice(["true", "false"])]),
    ]
    return "message", _x(AUTHORIZATION, fields)


# The senders whose unregistering the run can spare: it deletes their channels and
# retracts their posts, but they own none of the channels the others work on.
UNREGISTERING = frozenset({"stranger", "banned", "guest"})

FAMILIES: dict[str, Seed] = {
    "publish": seed_publish,
    "publish-large": seed_publish_large,
    "retract": seed_retract,
    "items": seed_items,
    "subscribe": seed_subscribe,
    "unsubscribe": seed_unsubscribe,
    "configure-get": seed_configure_get,
    "configure-set": seed_configure_set,
    "create": seed_create,
    "delete": seed_delete,
    "affiliations-get": seed_affiliations_get,
    "subscriptions-get": seed_subscriptions_get,
    "affiliations-set": seed_affiliations_set,
    "subscriptions-set": seed_subscriptions_set,
    "recent-items": seed_recent_items,
    "user-items": seed_user_items,
    "replies": seed_replies,
    "thread": seed_thread,
    "threads": seed_threads,
    "subscriptions-with-configuration": seed_subscriptions_with_configuration,
    "mam": seed_mam,
    "mam-tmp": seed_mam_tmp,
    "search": seed_search,
    "disco": seed_disco,
    "register": seed_register,
    "version": seed_version,
    "authorization": seed_authorization,
}
# Publishing and reading are what clients do most; they get more stanzas.
WEIGHTS = {"publish": 4, "items": 3, "retract": 2, "publish-large": 2}


# --- mutations ---------------------------------------------------------------------------


def _elements(root: ET.Element) -> list[ET.Element]:
    return list(root.iter())


def _parents(root: ET.Element) -> list[ET.Element]:
    return [element for element in root.iter() if len(element)]


def _with_attributes(root: ET.Element) -> list[ET.Element]:
    return [element for element in root.iter() if element.attrib]


class Mutator:
    """Mutations of one seed element, drawn from `rng`."""

    def __init__(self, rng: random.Random, targets: Targets) -> None:
        self.rng = rng
        self.targets = targets
        self.mutations: dict[str, Callable[[ET.Element], bool]] = {
            "attribute-dropped": self.drop_attribute,
            "attribute-emptied": self.empty_attribute,
            "attribute-huge": self.huge_attribute,
            "attribute-unicode": self.unicode_attribute,
            "attribute-wrong": self.wrong_attribute,
            "attribute-added": self.add_attribute,
            "child-dropped": self.drop_child,
            "child-duplicated": self.duplicate_child,
            "children-reordered": self.reorder_children,
            "child-wrong-namespace": self.wrong_namespace,
            "child-added": self.add_child,
            "deep-nesting": self.nest_deeply,
            "big-text": self.big_text_child,
            "text-wrong": self.wrong_text,
            "rsm": self.mutate_rsm,
            "form": self.mutate_form,
            "date": self.mutate_date,
        }

    def mutate(self, root: ET.Element, count: int) -> list[str]:
        applied: list[str] = []
        names = list(self.mutations)
        attempts = 0
        while len(applied) < count and attempts < count * 6:
            attempts += 1
            name = self.rng.choice(names)
            if self.mutations[name](root):
                applied.append(name)
        return applied

    def _pick(self, elements: Sequence[ET.Element]) -> ET.Element | None:
        return self.rng.choice(elements) if elements else None

    def _attribute(self, root: ET.Element) -> tuple[ET.Element, str] | None:
        element = self._pick(_with_attributes(root))
        if element is None:
            return None
        return element, self.rng.choice(sorted(element.attrib))

    # attributes

    def drop_attribute(self, root: ET.Element) -> bool:
        found = self._attribute(root)
        if found is None:
            return False
        del found[0].attrib[found[1]]
        return True

    def empty_attribute(self, root: ET.Element) -> bool:
        found = self._attribute(root)
        if found is None:
            return False
        found[0].set(found[1], "")
        return True

    def huge_attribute(self, root: ET.Element) -> bool:
        found = self._attribute(root)
        if found is None:
            return False
        element, name = found
        size = self.rng.choice(HUGE)
        filler = self.rng.choice(["x", "é", "/", "@", "😀"])
        element.set(name, (element.get(name, "") + filler * size)[:size])
        return True

    def unicode_attribute(self, root: ET.Element) -> bool:
        found = self._attribute(root)
        if found is None:
            return False
        element, name = found
        value = element.get(name, "")
        spot = self.rng.randint(0, len(value))
        element.set(name, value[:spot] + self.rng.choice(UNICODE) + value[spot:])
        return True

    def wrong_attribute(self, root: ET.Element) -> bool:
        found = self._attribute(root)
        if found is None:
            return False
        element, name = found
        element.set(name, self.rng.choice(_pool_for(name, self.targets)))
        return True

    def add_attribute(self, root: ET.Element) -> bool:
        element = self.rng.choice(_elements(root))
        name = self.rng.choice(
            [
                "node",
                "jid",
                "id",
                "max_items",
                "parent-only",
                "notify",
                "since",
                "max",
                "type",
                "subscription",
                "affiliation",
                "item_id",
                "queryid",
                f"{{{NS_BC}}}ephemeral",
                "xml:lang",
            ]
        )
        if name == "xml:lang":
            name = "{http://www.w3.org/XML/1998/namespace}lang"
        element.set(name, self.rng.choice(_pool_for(name, self.targets)))
        return True

    # children

    def drop_child(self, root: ET.Element) -> bool:
        parent = self._pick(_parents(root))
        if parent is None:
            return False
        parent.remove(self.rng.choice(list(parent)))
        return True

    def duplicate_child(self, root: ET.Element) -> bool:
        parent = self._pick(_parents(root))
        if parent is None:
            return False
        child = self.rng.choice(list(parent))
        times = self.rng.choice([1, 1, 2, 150])
        if sum(1 for _ in child.iter()) > 4:
            times = min(times, 2)  # many copies of a small element, few of a big one
        for _ in range(times):
            parent.append(copy.deepcopy(child))
        return True

    def reorder_children(self, root: ET.Element) -> bool:
        parent = self._pick([p for p in _parents(root) if len(p) > 1])
        if parent is None:
            return False
        children = list(parent)
        self.rng.shuffle(children)
        if children == list(parent):
            children.reverse()
        for child in list(parent):
            parent.remove(child)
        parent.extend(children)
        return True

    def wrong_namespace(self, root: ET.Element) -> bool:
        element = self.rng.choice(_elements(root))
        local = element.tag.rpartition("}")[2]
        namespace = self.rng.choice(NAMESPACES)
        element.tag = f"{{{namespace}}}{local}" if namespace else local
        return True

    def add_child(self, root: ET.Element) -> bool:
        parent = self.rng.choice(_elements(root))
        namespace, name = self.rng.choice(CHILD_NAMES)
        child = ET.SubElement(parent, f"{{{namespace}}}{name}" if namespace else name)
        if self.rng.random() < 0.5:
            attribute = self.rng.choice(["node", "jid", "id", "var"])
            child.set(attribute, self.rng.choice(_pool_for(attribute, self.targets)))
        return True

    def nest_deeply(self, root: ET.Element) -> bool:
        parent = self.rng.choice(_elements(root))
        depth = self.rng.choice(DEPTHS)
        for _ in range(depth):
            parent = ET.SubElement(parent, self.rng.choice(["a", f"{{{NS_ATOM}}}entry"]))
        parent.text = "bottom"
        return True

    def big_text_child(self, root: ET.Element) -> bool:
        element = self.rng.choice(_elements(root))
        size = self.rng.choice(BIG_TEXT)
        element.text = self.rng.choice(["y", "ü", "<&>", "😀"]) * (size // 3 + 1)
        element.text = element.text[:size]
        return True

    def wrong_text(self, root: ET.Element) -> bool:
        element = self._pick([e for e in root.iter() if e.text and e.text.strip()])
        if element is None:
            return False
        name = element.tag.rpartition("}")[2]
        pool = (
            UNICODE + NUMBERS + DATES
            if name in ("value", "content", "text")
            else _pool_for(name, self.targets) + UNICODE
        )
        element.text = self.rng.choice(pool)
        return True

    # RSM, forms, dates

    def mutate_rsm(self, root: ET.Element) -> bool:
        rsm = root.find(f"{{{NS_RSM}}}set")
        if rsm is None:
            rsm = ET.SubElement(root, f"{{{NS_RSM}}}set")
        name = self.rng.choice(["max", "after", "before", "index", "first", "last", "count"])
        element = rsm.find(f"{{{NS_RSM}}}{name}")
        if element is None:
            element = ET.SubElement(rsm, f"{{{NS_RSM}}}{name}")
        element.text = self.rng.choice(_pool_for(name, self.targets) + UNICODE[:3])
        if self.rng.random() < 0.2:
            ET.SubElement(rsm, f"{{{NS_RSM}}}{self.rng.choice(['max', 'after', 'before'])}")
        return True

    def mutate_form(self, root: ET.Element) -> bool:
        form = root.find(f".//{{{NS_DATA}}}x")
        if root.tag == f"{{{NS_DATA}}}x":
            form = root
        if form is None:
            return False
        fields = form.findall(f"{{{NS_DATA}}}field")
        roll = self.rng.random()
        if roll < 0.15:
            form.set("type", self.rng.choice(TYPES))
        elif roll < 0.3 and fields:
            form_type = next((f for f in fields if f.get("var") == "FORM_TYPE"), None)
            if form_type is None:
                return False
            if self.rng.random() < 0.5:
                form.remove(form_type)
            else:
                for value in form_type:
                    value.text = self.rng.choice(FORM_TYPES)
        elif roll < 0.5:
            var = self.rng.choice(FORM_VARS)
            field = ET.SubElement(form, f"{{{NS_DATA}}}field", {"var": var})
            for _ in range(self.rng.choice([0, 1, 1, 2])):
                ET.SubElement(field, f"{{{NS_DATA}}}value").text = self.rng.choice(
                    _pool_for(var, self.targets)
                )
        elif fields:
            field = self.rng.choice(fields)
            roll = self.rng.random()
            if roll < 0.3:
                field.set("var", self.rng.choice(FORM_VARS))
            elif roll < 0.6:
                for value in list(field):
                    field.remove(value)
                for _ in range(self.rng.choice([0, 2, 3])):
                    ET.SubElement(field, f"{{{NS_DATA}}}value").text = self.rng.choice(
                        _pool_for(field.get("var", ""), self.targets)
                    )
            else:
                form.append(copy.deepcopy(field))
        else:
            return False
        return True

    def mutate_date(self, root: ET.Element) -> bool:
        dated = [
            (element, name)
            for element in root.iter()
            for name in element.attrib
            if name in ("since", "stamp")
        ]
        texts = [
            element
            for element in root.iter()
            if element.tag.rpartition("}")[2] in ("start", "end", "published", "updated")
        ]
        values = [
            value
            for field in root.iter(f"{{{NS_DATA}}}field")
            if field.get("var") in ("start", "end")
            for value in field
        ]
        choices: list[Callable[[], None]] = []
        for element, name in dated:
            choices.append(lambda e=element, n=name: e.set(n, self.rng.choice(DATES)))
        for element in texts + values:
            choices.append(lambda e=element: setattr(e, "text", self.rng.choice(DATES)))
        if not choices:
            return False
        self.rng.choice(choices)()
        return True


def generate(seed: int, sender: str, targets: Targets) -> Iterator[Stanza]:
    """Stanzas for `sender`, without end: the same ones, in the same order, for the same
    seed and targets."""
    rng = random.Random(f"{seed}/{sender}")
    mutator = Mutator(rng, targets)
    families = list(FAMILIES)
    weights = [WEIGHTS.get(family, 1) for family in families]
    for number in itertools.count():
        family = rng.choices(families, weights)[0]
        kind, xml = FAMILIES[family](rng, targets, sender)
        # A few stanzas go unchanged: valid requests keep the channels changing.
        how_many = 0 if rng.random() < 0.15 else rng.choices((1, 2, 3), (6, 3, 1))[0]
        while True:
            element = ET.fromstring(xml)
            mutations = mutator.mutate(element, how_many)
            payload = to_xml(element)
            if len(payload.encode()) <= MAX_PAYLOAD_BYTES:
                break
        if kind in ("get", "set") and rng.random() < 0.04:
            kind = "set" if kind == "get" else "get"
            mutations.append("iq-type-swapped")
        to = SERVICE
        if rng.random() < 0.03:
            to = f"{SERVICE}/{rng.choice(RESOURCES)}"
            mutations.append("to-resource")
        id_suffix = ""
        if rng.random() < 0.03:
            id_suffix = rng.choice(ID_SUFFIXES)
            mutations.append("id-odd")
        message_type = None
        if kind == "message" and rng.random() < 0.2:
            message_type = rng.choice(["normal", "chat", "headline", "error", "groupchat"])
            mutations.append(f"message-type-{message_type}")
        yield Stanza(
            number,
            sender,
            family,
            kind,
            element,
            tuple(mutations),
            payload,
            message_type,
            to,
            id_suffix,
        )
