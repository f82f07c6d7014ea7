"""ProtoXEP tables 5 and 6 through the wire, as docs/permissions.md writes them down.

One topic channel per access model, owned by Juliet, with one follower in every role:
Romeo moderator, Benvolio publisher (follower+post), Tybalt member (follower), Mercutio
not following (none), Paris banned (outcast). Every user tries every row of the tables
and of the rules beyond them; what they get is compared with the tables read from
docs/permissions.md, and every refusal with the error its "Which error a refusal raises"
names and docs/errors.md renders, so the docs, these tests and the wire cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from e2e.conftest import Connect
from e2e.harness import (
    NS_BC,
    NS_DISCO_INFO,
    NS_OWNER,
    NS_PUBSUB,
    TOPICS_DOMAIN,
    Client,
    Reply,
    configure_set,
    create,
    entry,
    items_request,
    local_id,
    posts,
    publish,
    published_id,
    retract,
    set_affiliation,
    set_subscription,
    subscribe,
    unsubscribe,
)

DOCS = Path(__file__).resolve().parents[2] / "docs"
# The columns of tables 5 and 6 in docs/permissions.md, as roles.
COLUMNS = {
    "Owner": "owner",
    "Moderator": "moderator",
    "Follower+post": "publisher",
    "Follower": "member",
    "Not following": "none",
    "Banned": "outcast",
}
ROLES = tuple(COLUMNS.values())
# The "Who" column of "Rules beyond the tables".
WHO = {"owner": "owner", "moderator": "moderator", "follower+post": "publisher"}
WHO_FOLLOWER = "follower"


def _section(document: str, heading: str) -> str:
    text = document.split(f"\n## {heading}", 1)[1]
    return text.split("\n## ", 1)[0]


def _rows(section: str) -> list[list[str]]:
    """The cells of a markdown table's body rows."""
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def _yes(cell: str) -> bool:
    """A cell of table 5 or 6, for a user of this server's domain: footnote 1 says that a
    `local` channel reads as an open one to them."""
    text = cell.replace("*", "").strip()
    if "¹" in text:
        return True
    return text.rstrip("¹²³ ").strip() == "yes"


def documented_tables() -> dict[tuple[str, str], dict[str, bool]]:
    """(what, access model or 'all') -> role -> allowed, from docs/permissions.md."""
    document = (DOCS / "permissions.md").read_text()
    table: dict[tuple[str, str], dict[str, bool]] = {}
    what = ""
    for cells in _rows(_section(document, "Reads (ProtoXEP table 5)")):
        what = cells[0] or what
        model = cells[1].strip("`")
        table[(what, model)] = dict(zip(ROLES, map(_yes, cells[2:]), strict=True))
    for cells in _rows(_section(document, "Writes (ProtoXEP table 6)")):
        if len(cells) < 2 + len(ROLES) - 1 or cells[0] == "change channel name":
            continue  # the name is the channel's JID: no request changes it
        table[(cells[0], "all")] = dict(zip(ROLES, map(_yes, cells[1:]), strict=True))
    for cells in _rows(_section(document, "Rules beyond the tables")):
        words = {word.strip(" ,") for word in cells[1].split()}
        allowed = {WHO[word] for word in words if word in WHO}
        if WHO_FOLLOWER in words:
            allowed.add("member")
        table[(cells[0], "all")] = {role: role in allowed for role in ROLES}
    return table


def documented_errors() -> dict[str, tuple[str, str | None]]:
    """Error name -> (condition, application condition), from docs/errors.md."""
    found = {}
    for line in (DOCS / "errors.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        parts = [part.strip() for part in cells[2].split(" / ")]
        app = parts[2].split("`")[1] if len(parts) > 2 and parts[2].startswith("`") else None
        found[cells[0].strip("`")] = (parts[0].strip("`"), app)
    return found


def refusal_errors() -> dict[str, str]:
    """Situation -> error name, from "Which error a refusal raises" in docs/permissions.md."""
    document = (DOCS / "permissions.md").read_text()
    return {
        cells[0]: cells[1].strip("`")
        for cells in _rows(_section(document, "Which error a refusal raises"))
    }


def test_the_refusal_table_renders_each_error_as_the_error_table_does() -> None:
    """docs/permissions.md's "Which error a refusal raises" and docs/errors.md agree."""
    document = (DOCS / "permissions.md").read_text()
    errors = documented_errors()
    for situation, error, xmpp, *_ in _rows(_section(document, "Which error a refusal raises")):
        words = [part.strip(" `") for part in xmpp.split("+")]
        assert (words[0], words[1] if len(words) > 1 else None) == errors[error.strip("`")], (
            situation
        )


def node_of(posts_node: str, name: str) -> str:
    return posts_node.rpartition("/")[0] + f"/{name}"


@dataclass
class Matrix:
    """One topic channel of Juliet's with a user in every role of the tables, and what
    each of them got when they tried each row."""

    node: str
    users: dict[str, Client]  # role -> client
    pending: list[Client]  # two users whose follow requests await approval
    observed: dict[tuple[str, str], dict[str, bool]] = field(default_factory=dict)
    refusals: list[tuple[str, str, str, Reply]] = field(default_factory=list)  # what, role, error

    def saw(self, what: str, role: str, allowed: bool) -> None:
        self.observed.setdefault((what, "all"), {})[role] = allowed

    def tried(self, what: str, role: str, reply: Reply, *, refusal: str | None = None) -> None:
        """A request's outcome; a refusal is kept with the error the docs name for it."""
        self.saw(what, role, reply.ok)
        if not reply.ok:
            self.refusals.append((what, role, refusal or error_for(role), reply))


def error_for(role: str, *, reading: bool = False) -> str:
    """The situation of "Which error a refusal raises" that a refused role is in."""
    situations = refusal_errors()
    if role == "outcast":
        return situations["the requester is banned"]
    if reading and role == "none":
        return situations["a read of posts or followers, not following"]
    return situations["any other role too low"]


async def build(
    access_model: str, unique: str, users: dict[str, Client], pending: list[Client]
) -> Matrix:
    """The channel, with a post of each user's own (written while they could post) and a
    post of someone else's for each to retract; then every user gets their role."""
    juliet = users["owner"]
    node = posts(f"matrix-{access_model}-{unique}@{TOPICS_DOMAIN}")
    # Authorize first, so that requests can wait for approval whatever the final model.
    await juliet.ok("set", create(node, {"pubsub#access_model": "authorize"}))
    await juliet.ok("set", create(node_of(node, "extra")))
    for role, user in users.items():
        if role == "owner":
            continue
        await user.ok("set", subscribe(node, user.bare))
        await juliet.ok("set", set_subscription(node, user.bare, "subscribed"))
        await juliet.ok("set", set_affiliation(node, user.bare, "publisher"))
    for user in pending:
        await user.ok("set", subscribe(node, user.bare))
    for role, user in users.items():
        await user.ok("set", publish(node, entry(f"mine {role}"), f"own-{role}"))
        author = users["publisher"] if role == "owner" else juliet
        await author.ok("set", publish(node, entry(f"for {role}"), f"any-{role}"))
    for role in ("moderator", "member", "outcast"):
        await juliet.ok("set", set_affiliation(node, users[role].bare, role))
    await users["none"].ok("set", unsubscribe(node, users["none"].bare))
    if access_model != "authorize":
        await juliet.ok("set", configure_set(node, {"pubsub#access_model": access_model}))
    return Matrix(node, users, pending)


def configure(node: str, var: str, value: str) -> str:
    return configure_set(node, {var: value})


async def try_reads(matrix: Matrix, access_model: str) -> None:
    node, outcast, waiting = matrix.node, matrix.users["outcast"].bare, matrix.pending[0].bare
    for role, user in matrix.users.items():
        info = await user.iq("get", f"<query xmlns='{NS_DISCO_INFO}' node='{node}'/>")
        matrix.tried("channel name, title, description", role, info)
        roles = await user.iq(
            "get", f"<pubsub xmlns='{NS_OWNER}'><affiliations node='{node}'/></pubsub>"
        )
        matrix.saw("banned user list", role, roles.ok and outcast in roles.text)
        members = await user.iq(
            "get", f"<pubsub xmlns='{NS_OWNER}'><subscriptions node='{node}'/></pubsub>"
        )
        matrix.saw("pending subscription list", role, members.ok and waiting in members.text)
        for what, request in (
            ("channel posts", items_request(node)),
            (
                "followers, moderators and owner",
                f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>",
            ),
        ):
            reply = await user.iq("get", request)
            matrix.observed.setdefault((what, access_model), {})[role] = reply.ok
            if not reply.ok:
                matrix.refusals.append((what, role, error_for(role, reading=True), reply))
    # Someone whose follow request awaits approval reads as the table says for none, and is
    # told why when refused.
    reply = await matrix.pending[0].iq("get", items_request(node))
    if access_model == "authorize":
        situation = "a read of posts or followers, not following, follow request pending"
        matrix.refusals.append(("channel posts", "pending", refusal_errors()[situation], reply))
        assert not reply.ok, reply
    else:
        assert reply.ok, reply


async def try_writes(matrix: Matrix) -> None:
    node, users = matrix.node, matrix.users
    # Staff last, where a success would change what the others try.
    order = ("none", "outcast", "member", "publisher", "moderator", "owner")
    approvals = iter([matrix.pending[0], matrix.pending[1]])
    for role in order:
        user = users[role]
        for what, var in (
            ("change channel title", "pubsub#title"),
            ("change channel description", "pubsub#description"),
        ):
            reply = await user.iq("set", configure(node, var, f"{what} by {role}"))
            matrix.tried(what, role, reply)
        reply = await user.iq(
            "set", set_affiliation(node, f"villain-{role}@capulet.lit", "outcast")
        )
        matrix.tried("change the banned user list", role, reply)
        target = matrix.pending[0] if role not in ("moderator", "owner") else next(approvals)
        reply = await user.iq("set", set_subscription(node, target.bare, "subscribed"))
        matrix.tried("approve pending subscriptions", role, reply)
        reply = await user.iq("set", publish(node, entry(f"new {role}")))
        matrix.tried("create posts", role, reply)
        reply = await user.iq("set", retract(node, f"any-{role}"))
        matrix.tried("delete any post", role, reply)
        reply = await user.iq("set", retract(node, f"own-{role}"))
        matrix.tried("delete own posts", role, reply)
        # Beyond the tables.
        reply = await user.iq("set", configure(node, "buddycloud#default_affiliation", "member"))
        matrix.tried("change the default role of new followers", role, reply)
        reply = await user.iq("set", configure(node, "buddycloud#advertise_node", "false"))
        matrix.tried(
            "change the access model, whether the channel is advertised, and other settings",
            role,
            reply,
        )
        reply = await user.iq(
            "set", set_subscription(node, f"invitee-{role}@capulet.lit", "invited")
        )
        matrix.tried("invite someone to follow", role, reply)
        reply = await user.iq("set", create(node_of(node, "added")))
        matrix.tried("add a node to the channel", role, reply)
        extra = node_of(node, "extra")
        reply = await user.iq(
            "set", f"<pubsub xmlns='{NS_OWNER}'><delete node='{extra}'/></pubsub>"
        )
        matrix.tried("delete the channel or one of its nodes", role, reply)
    # Roles last of all: they change who is who. Nobody changes their own role
    # (can-not-modify-own-affiliation), so the member tries on the banned user.
    for role in order:
        whom = users["outcast"] if role == "member" else users["member"]
        reply = await users[role].iq("set", set_affiliation(node, whom.bare, "publisher"))
        matrix.tried("change followers' roles", role, reply)


@pytest.mark.parametrize("access_model", ["open", "authorize", "local"])
async def test_the_documented_tables_hold_on_the_wire(
    access_model: str,
    connect: Connect,
    juliet: Client,
    romeo: Client,
    benvolio: Client,
    tybalt: Client,
    mercutio: Client,
    paris: Client,
    unique: str,
) -> None:
    """docs/permissions.md, tables 5 and 6 and the rules beyond them, cell by cell through
    the XMPP server: Juliet owns the channel, Romeo moderates, Benvolio may post, Tybalt
    follows, Mercutio does not, Paris is banned; Laurence and the probe user ask to follow.
    Each refusal is the error "Which error a refusal raises" names, as docs/errors.md
    renders it. The whole observed table is compared at once."""
    users = {
        "owner": juliet,
        "moderator": romeo,
        "publisher": benvolio,
        "member": tybalt,
        "none": mercutio,
        "outcast": paris,
    }
    pending = [await connect(name, resource=f"matrix-{unique}") for name in ("laurence", "probe")]
    matrix = await build(access_model, unique, users, pending)
    await try_reads(matrix, access_model)
    await try_writes(matrix)
    # The channel goes, and with it every row it added to its followers' own lists, which
    # other tests read a page of.
    await juliet.ok("set", f"<pubsub xmlns='{NS_OWNER}'><delete node='{matrix.node}'/></pubsub>")

    documented = {
        key: cells for key, cells in documented_tables().items() if key[1] in ("all", access_model)
    }
    assert set(matrix.observed) == set(documented), "rows without a check, or checks without a row"
    wrong = {
        key: {role: (documented[key][role], seen) for role, seen in cells.items()
              if documented[key][role] != seen}
        for key, cells in matrix.observed.items()
    }  # fmt: skip
    assert {key: cells for key, cells in wrong.items() if cells} == {}, (
        "(documented, on the wire) where they differ"
    )
    errors = documented_errors()
    mismatched = []
    for what, role, error, reply in matrix.refusals:
        condition, app = errors[error]
        if reply.condition != condition or (app is not None and app not in reply.app_conditions):
            mismatched.append((what, role, error, errors[error], reply.text[:400]))
        elif app is None and {"closed-node", "pending-subscription"} & reply.app_conditions:
            mismatched.append((what, role, error, errors[error], reply.text[:400]))
    assert mismatched == []


async def test_a_banned_user_cannot_follow_again(
    juliet: Client, paris: Client, unique: str
) -> None:
    node = posts(f"banned-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))
    reply = await paris.iq("set", subscribe(node, paris.bare))
    assert reply.condition == "forbidden", reply


async def test_the_banned_list_is_shown_to_moderators_only(
    juliet: Client, romeo: Client, paris: Client, tybalt: Client, unique: str
) -> None:
    """Table 5: the banned user list is visible to producer and moderators only."""
    node = posts(f"banlist-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node))
    for follower in (romeo, tybalt):
        await follower.ok("set", subscribe(node, follower.bare))
    await juliet.ok("set", set_affiliation(node, romeo.bare, "moderator"))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))

    request = f"<pubsub xmlns='{NS_OWNER}'><affiliations node='{node}'/></pubsub>"
    as_moderator = await romeo.ok("get", request)
    assert paris.bare in as_moderator.text
    as_follower = await tybalt.iq("get", request)
    assert paris.bare not in as_follower.text


async def test_a_banned_user_reads_nothing_of_an_open_channel(
    juliet: Client, paris: Client, tybalt: Client, unique: str
) -> None:
    """Paris followed an open channel and read it; once banned, every read of its posts,
    replies and followers answers `forbidden`, and the firehose leaves the channel out."""
    node = posts(f"open-ban-{unique}@{TOPICS_DOMAIN}")
    await juliet.ok("set", create(node, {"pubsub#access_model": "open"}))
    post = published_id(await juliet.ok("set", publish(node, entry(f"balcony {unique}"))))
    await juliet.ok("set", publish(node, entry(f"reply {unique}", in_reply_to=post)))
    await paris.ok("set", subscribe(node, paris.bare))
    await paris.ok("get", items_request(node))
    await juliet.ok("set", set_affiliation(node, paris.bare, "outcast"))

    reads = {
        "items": items_request(node),
        "one item": items_request(node, item_id=local_id(post)),
        "replies": f"<pubsub xmlns='{NS_PUBSUB}'><replies xmlns='{NS_BC}' node='{node}' "
        f"item_id='{local_id(post)}'/></pubsub>",
        "followers": f"<pubsub xmlns='{NS_PUBSUB}'><subscriptions node='{node}'/></pubsub>",
    }
    answers = {}
    for name, request in reads.items():
        await tybalt.ok("get", request)  # the channel is open to everyone else
        reply = await paris.iq("get", request)
        answers[name] = (reply.type, reply.condition)
    assert answers == dict.fromkeys(reads, ("error", "forbidden"))

    firehose = f"<pubsub xmlns='{NS_PUBSUB}'><items node='/firehose'/></pubsub>"
    shown = await tybalt.ok("get", firehose)
    assert unique in shown.text
    hidden = await paris.ok("get", firehose)
    assert unique not in hidden.text
