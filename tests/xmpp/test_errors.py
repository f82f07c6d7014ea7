"""The stanza error table: docs/errors.md and STANZA_ERRORS say the same thing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from xmpp.support import NS, Client, Harness, condition_of

import buddycloud.domain.errors as domain_errors
import buddycloud.domain.ids as domain_ids
import buddycloud.xmpp.errors as xmpp_errors
from buddycloud.domain.errors import (
    ChannelError,
    InvalidPayload,
    NodeNotFound,
    OwnAffiliation,
    RatingError,
    RecentItemsError,
    Unsupported,
)
from buddycloud.xmpp.errors import (
    INTERNAL_ERROR,
    NS_BUDDYCLOUD_ERRORS,
    NS_PUBSUB_ERRORS,
    STANZA_ERRORS,
    error_element,
    lookup_class,
)
from buddycloud.xmpp.xml import serialize

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


def _doc_rows() -> dict[str, tuple[str, str, str | None]]:
    """Error name -> (condition, type, app condition) from every table of docs/errors.md."""
    rows: dict[str, tuple[str, str, str | None]] = {}
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not (cells[0].startswith("`") or cells[0] == "*anything else*"):
            continue
        xmpp = cells[2]
        parts = [part.strip() for part in xmpp.split(" / ")]
        condition = parts[0].strip("`")
        type_ = parts[1].split()[0].rstrip(",")
        app = None
        if len(parts) > 2 and parts[2].startswith("`"):
            app = parts[2].split("`")[1]
        rows[cells[0].strip("`")] = (condition, type_, app)
    return rows


def _error_class(name: str) -> type[BaseException]:
    for module in (domain_errors, domain_ids, xmpp_errors):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            return cls
    raise AssertionError(f"docs/errors.md names {name}, which no module defines")


def test_every_row_of_the_doc_matches_the_code() -> None:
    rows = _doc_rows()
    assert len(rows) >= len(STANZA_ERRORS)
    for name, documented in rows.items():
        if name == "*anything else*":
            spec = INTERNAL_ERROR
        else:
            found = lookup_class(_error_class(name))
            assert found is not None, name
            spec = found
        assert (spec.condition, spec.type, spec.app_condition) == documented, name


def test_every_mapped_error_is_documented() -> None:
    rows = _doc_rows()
    assert {cls.__name__ for cls in STANZA_ERRORS} <= set(rows)


def _parts(exc: BaseException) -> tuple[str, str, list[tuple[str, str]], str | None]:
    element = error_element(exc)
    children = [(child.tag[1:].partition("}")[0], child.tag.partition("}")[2]) for child in element]
    conditions = [name for ns, name in children if ns == STANZAS and name != "text"]
    text = element.findtext(f"{{{STANZAS}}}text")
    apps = [(ns, name) for ns, name in children if ns != STANZAS]
    return conditions[0], element.get("type", ""), apps, text


def test_a_subclass_without_a_row_gets_its_parents_row() -> None:
    class ChannelGone(NodeNotFound):
        pass

    condition, type_, apps, text = _parts(ChannelGone("/user/a@b/posts"))
    assert (condition, type_, apps) == ("item-not-found", "cancel", [])
    assert text == "node /user/a@b/posts does not exist"


def test_dynamic_conditions_pick_their_namespace() -> None:
    """XEP-0060 conditions in pubsub#errors, Buddycloud's own in buddycloud.org/v1/errors."""
    assert _parts(RecentItemsError("max-required", "m"))[2] == [
        (NS_BUDDYCLOUD_ERRORS, "max-required")
    ]
    assert _parts(RatingError("rating-out-of-range", "r"))[2] == [
        (NS_BUDDYCLOUD_ERRORS, "rating-out-of-range")
    ]
    assert _parts(InvalidPayload("x"))[2] == [(NS_PUBSUB_ERRORS, "invalid-payload")]
    assert _parts(InvalidPayload("x", condition="content-element-required"))[2] == [
        (NS_BUDDYCLOUD_ERRORS, "content-element-required")
    ]
    assert _parts(OwnAffiliation())[:3] == (
        "not-allowed",
        "cancel",
        [(NS_BUDDYCLOUD_ERRORS, "can-not-modify-own-affiliation")],
    )


def test_unsupported_names_the_feature() -> None:
    element = error_element(Unsupported("purge-nodes"))
    app = element.find(f"{{{NS_PUBSUB_ERRORS}}}unsupported")
    assert app is not None and app.get("feature") == "purge-nodes"


def test_unknown_exceptions_are_internal_errors_without_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR):
        condition, type_, apps, text = _parts(RuntimeError("password=hunter2 at db.internal"))
    assert (condition, type_, apps, text) == ("internal-server-error", "cancel", [], None)
    assert any(record.exc_info for record in caplog.records)


def test_the_base_error_is_mapped() -> None:
    assert lookup_class(ChannelError) is not None


# --- the XEP-0060 error cases, on the wire ----------------------------------------------

XEP_SECTION = "## XEP-0060 error cases"
Answer = tuple[str, ...]


def _xep_rows() -> dict[str, Answer | None]:
    """Case -> this server's answer (None for "n/a"), from the XEP-0060 table of the doc.

    An answer is ("result",) or ("result", attribute, value), or an error's
    (condition, type, app condition or "", feature or "").
    """
    rows: dict[str, Answer | None] = {}
    text = DOC.read_text()
    assert XEP_SECTION in text
    for line in text.split(XEP_SECTION, 1)[1].splitlines():
        if not line.startswith("| §"):
            continue
        case, _xep, ours, _why = (cell.strip() for cell in line.strip().strip("|").split("|"))
        assert case not in rows, f"two rows for {case}"
        if ours == "n/a":
            rows[case] = None
        elif ours.startswith("result"):
            shown = ours.removeprefix("result").strip().strip("`")
            if shown:
                attribute, _, value = shown.partition("=")
                rows[case] = ("result", attribute, value.strip("'"))
            else:
                rows[case] = ("result",)
        else:
            parts = [part.strip() for part in ours.split(" / ")]
            app = feature = ""
            if len(parts) > 2:
                quoted = parts[2].split("`")
                app = quoted[1]
                if "feature=" in parts[2]:
                    feature = quoted[3]
            rows[case] = (parts[0].strip("`"), parts[1].split()[0], app, feature)
    return rows


XEP_ROWS = _xep_rows()

J = "/user/juliet@capulet.lit/posts"  # open; Romeo follows, item a1 by Juliet
R = "/user/romeo@capulet.lit/posts"  # authorize; the Nurse waits, Tybalt is banned, item r1
NOBODY = "/user/nobody@capulet.lit/posts"
TOPIC = "/user/garden@topics.capulet.lit/posts"
GUEST = "guest@anon.capulet.lit/x"
REMOTE = "benvolio@montague.lit/home"
PS = f"<pubsub xmlns='{NS['pubsub']}'>"
OWN = f"<pubsub xmlns='{NS['owner']}'>"
ENTRY = f"<entry xmlns='{NS['atom']}'><content>hello</content></entry>"
CONFIG_FORM = (
    f"<x xmlns='{NS['x']}' type='submit'><field var='FORM_TYPE' type='hidden'>"
    "<value>http://jabber.org/protocol/pubsub#node_config</value></field>{fields}</x>"
)


def _form(fields: str = "") -> str:
    return CONFIG_FORM.format(fields=fields)


BOGUS_ACCESS = _form("<field var='pubsub#access_model'><value>bogus</value></field>")

# Case -> (who asks, IQ type, payload). Users: juliet, romeo, nurse, tybalt, mercutio, or
# the full JIDs GUEST and REMOTE.
XEP_CASES: dict[str, tuple[str, str, str]] = {
    "§6.1.3.1 subscribe: JIDs do not match": (
        "romeo",
        "set",
        f"{PS}<subscribe node='{J}' jid='tybalt@capulet.lit'/></pubsub>",
    ),
    "§6.1.3.4 subscribe: not on whitelist": (
        "mercutio",
        "set",
        f"{PS}<subscribe node='{R}' jid='mercutio@capulet.lit'/></pubsub>",
    ),
    "§6.1.3.6 subscribe: anonymous subscriptions not allowed": (
        GUEST,
        "set",
        f"{PS}<subscribe node='{J}' jid='guest@anon.capulet.lit'/></pubsub>",
    ),
    "§6.1.3.7 subscribe: subscription pending": (
        "nurse",
        "set",
        f"{PS}<subscribe node='{R}' jid='nurse@capulet.lit'/></pubsub>",
    ),
    "§6.1.3.8 subscribe: blocked": (
        "tybalt",
        "set",
        f"{PS}<subscribe node='{R}' jid='tybalt@capulet.lit'/></pubsub>",
    ),
    "§6.1.3.11 subscribe: node does not exist": (
        "nurse",
        "set",
        f"{PS}<subscribe node='{NOBODY}' jid='nurse@capulet.lit'/></pubsub>",
    ),
    "§6.1 subscribe: no node": (
        "nurse",
        "set",
        f"{PS}<subscribe jid='nurse@capulet.lit'/></pubsub>",
    ),
    "§6.1 subscribe: no jid": ("nurse", "set", f"{PS}<subscribe node='{J}'/></pubsub>"),
    "§6.2.3.2 unsubscribe: no such subscriber": (
        "nurse",
        "set",
        f"{PS}<unsubscribe node='{J}' jid='nurse@capulet.lit'/></pubsub>",
    ),
    "§6.2.3.3 unsubscribe: insufficient privileges": (
        "nurse",
        "set",
        f"{PS}<unsubscribe node='{J}' jid='romeo@capulet.lit'/></pubsub>",
    ),
    "§6.2.3.4 unsubscribe: node does not exist": (
        "nurse",
        "set",
        f"{PS}<unsubscribe node='{NOBODY}'/></pubsub>",
    ),
    "§6.2 unsubscribe: no node": ("romeo", "set", f"{PS}<unsubscribe/></pubsub>"),
    "§6.3 subscription options not supported": (
        "romeo",
        "get",
        f"{PS}<options node='{J}' jid='romeo@capulet.lit'/></pubsub>",
    ),
    "§6.5.9 items: closed node, not following": (
        "mercutio",
        "get",
        f"{PS}<items node='{R}'/></pubsub>",
    ),
    "§6.5.9 items: subscription pending": ("nurse", "get", f"{PS}<items node='{R}'/></pubsub>"),
    "§6.5.9 items: blocked": ("tybalt", "get", f"{PS}<items node='{R}'/></pubsub>"),
    "§6.5.9 items: node does not exist": ("romeo", "get", f"{PS}<items node='{NOBODY}'/></pubsub>"),
    "§6.5 items: an item id that does not exist": (
        "romeo",
        "get",
        f"{PS}<items node='{J}'><item id='nothing'/></items></pubsub>",
    ),
    "§6.5 items: no node": ("romeo", "get", f"{PS}<items/></pubsub>"),
    "§7.1.3.1 publish: insufficient privileges": (
        "nurse",
        "set",
        f"{PS}<publish node='{J}'><item>{ENTRY}</item></publish></pubsub>",
    ),
    "§7.1.3.3 publish: node does not exist": (
        "juliet",
        "set",
        f"{PS}<publish node='{NOBODY}'><item>{ENTRY}</item></publish></pubsub>",
    ),
    "§7.1.3.4 publish: payload too big": (
        "juliet",
        "set",
        f"{PS}<publish node='{J}'><item><entry xmlns='{NS['atom']}'><content>{'x' * 5000}"
        "</content></entry></item></publish></pubsub>",
    ),
    "§7.1.3.5 publish: bad payload": (
        "juliet",
        "set",
        f"{PS}<publish node='{J}'><item>{ENTRY}{ENTRY}</item></publish></pubsub>",
    ),
    "§7.1.3.6 publish: no item": ("juliet", "set", f"{PS}<publish node='{J}'/></pubsub>"),
    "§7.1.3.6 publish: no payload": (
        "juliet",
        "set",
        f"{PS}<publish node='{J}'><item/></publish></pubsub>",
    ),
    "§7.1 publish: no node": (
        "juliet",
        "set",
        f"{PS}<publish><item>{ENTRY}</item></publish></pubsub>",
    ),
    "§7.2.3.1 retract: insufficient privileges": (
        "romeo",
        "set",
        f"{PS}<retract node='{J}'><item id='a1'/></retract></pubsub>",
    ),
    "§7.2.3.2 retract: node does not exist": (
        "juliet",
        "set",
        f"{PS}<retract node='{NOBODY}'><item id='a1'/></retract></pubsub>",
    ),
    "§7.2.3.3 retract: NodeID required": (
        "juliet",
        "set",
        f"{PS}<retract><item id='a1'/></retract></pubsub>",
    ),
    "§7.2.3.4 retract: item or ItemID required": (
        "juliet",
        "set",
        f"{PS}<retract node='{J}'><item/></retract></pubsub>",
    ),
    "§7.2 retract: an item that does not exist": (
        "juliet",
        "set",
        f"{PS}<retract node='{J}'><item id='nothing'/></retract></pubsub>",
    ),
    "§8.1.2 create: instant nodes not supported": ("juliet", "set", f"{PS}<create/></pubsub>"),
    "§8.1.3 create: insufficient privileges": (
        "romeo",
        "set",
        f"{PS}<create node='/user/juliet@capulet.lit/extra'/></pubsub>",
    ),
    "§8.1.3 create: registration required": (
        REMOTE,
        "set",
        f"{PS}<create node='{TOPIC}'/></pubsub>",
    ),
    "§8.1.3 create: node already exists": ("juliet", "set", f"{PS}<create node='{J}'/></pubsub>"),
    "§8.1.3 create: unacceptable configuration": (
        "juliet",
        "set",
        f"{PS}<create node='{TOPIC}'/><configure>{BOGUS_ACCESS}</configure></pubsub>",
    ),
    "§8.2.3.2 configure: insufficient privileges (ask for the form)": (
        "nurse",
        "get",
        f"{OWN}<configure node='{J}'/></pubsub>",
    ),
    "§8.2.3.2 configure: insufficient privileges (submit a form)": (
        "romeo",
        "set",
        f"{OWN}<configure node='{J}'>{_form()}</configure></pubsub>",
    ),
    "§8.2.3.3 configure: NodeID required": ("juliet", "get", f"{OWN}<configure/></pubsub>"),
    "§8.2.3.5 configure: node does not exist": (
        "juliet",
        "set",
        f"{OWN}<configure node='{NOBODY}'>{_form()}</configure></pubsub>",
    ),
    "§8.2.5 configure: a value the server does not accept": (
        "juliet",
        "set",
        f"{OWN}<configure node='{J}'>{BOGUS_ACCESS}</configure></pubsub>",
    ),
    "§8.3 default configuration not supported": ("juliet", "get", f"{OWN}<default/></pubsub>"),
    "§8.4.3.1 delete: insufficient privileges": (
        "romeo",
        "set",
        f"{OWN}<delete node='{J}'/></pubsub>",
    ),
    "§8.4.3.2 delete: node does not exist": (
        "juliet",
        "set",
        f"{OWN}<delete node='{NOBODY}'/></pubsub>",
    ),
    "§8.4 delete: no node": ("juliet", "set", f"{OWN}<delete/></pubsub>"),
    "§8.5 purge not supported": ("juliet", "set", f"{OWN}<purge node='{J}'/></pubsub>"),
    "§8.8.1 subscribers: not an owner": (
        "nurse",
        "get",
        f"{OWN}<subscriptions node='{J}'/></pubsub>",
    ),
    "§8.8.1 subscribers: node does not exist": (
        "juliet",
        "get",
        f"{OWN}<subscriptions node='{NOBODY}'/></pubsub>",
    ),
    "§8.8.1 subscribers: no node": ("juliet", "get", f"{OWN}<subscriptions/></pubsub>"),
    "§8.8.2 change subscriptions: not an owner": (
        "romeo",
        "set",
        f"{OWN}<subscriptions node='{J}'><subscription jid='juliet@capulet.lit' "
        "subscription='none'/></subscriptions></pubsub>",
    ),
    "§8.8.2 change subscriptions: an unknown state": (
        "juliet",
        "set",
        f"{OWN}<subscriptions node='{J}'><subscription jid='romeo@capulet.lit' "
        "subscription='bogus'/></subscriptions></pubsub>",
    ),
    "§8.8.2.4 change subscriptions: several, one refused": (
        "juliet",
        "set",
        f"{OWN}<subscriptions node='{J}'>"
        "<subscription jid='romeo@capulet.lit' subscription='none'/>"
        "<subscription jid='juliet@capulet.lit' subscription='none'/></subscriptions></pubsub>",
    ),
    "§8.9.1 affiliations: not an owner": (
        "nurse",
        "get",
        f"{OWN}<affiliations node='{J}'/></pubsub>",
    ),
    "§8.9.1 affiliations: node does not exist": (
        "juliet",
        "get",
        f"{OWN}<affiliations node='{NOBODY}'/></pubsub>",
    ),
    "§8.9.2 change affiliations: not an owner": (
        "romeo",
        "set",
        f"{OWN}<affiliations node='{J}'><affiliation jid='juliet@capulet.lit' "
        "affiliation='member'/></affiliations></pubsub>",
    ),
    "§8.9.2 change affiliations: an unknown affiliation": (
        "juliet",
        "set",
        f"{OWN}<affiliations node='{J}'><affiliation jid='romeo@capulet.lit' "
        "affiliation='king'/></affiliations></pubsub>",
    ),
}


async def _xep_world(harness: Harness) -> dict[str, Client]:
    """Juliet's open channel followed by Romeo; Romeo's closed one, where the Nurse waits
    for approval and Tybalt is banned."""
    users = {
        name: harness.client(f"{name}@capulet.lit/x")
        for name in ("juliet", "romeo", "nurse", "tybalt", "mercutio")
    }
    users[GUEST] = harness.client(GUEST)
    users[REMOTE] = harness.client(REMOTE)
    for name in ("juliet", "romeo", "nurse", "tybalt"):
        await users[name].ok("set", f"<query xmlns='{NS['register']}'/>")
    juliet, romeo = users["juliet"], users["romeo"]
    await juliet.ok(
        "set", f"{PS}<publish node='{J}'><item id='a1'>{ENTRY}</item></publish></pubsub>"
    )
    await romeo.ok("set", f"{PS}<subscribe node='{J}' jid='romeo@capulet.lit'/></pubsub>")
    await romeo.ok(
        "set", f"{PS}<publish node='{R}'><item id='r1'>{ENTRY}</item></publish></pubsub>"
    )
    closed = _form("<field var='pubsub#access_model'><value>authorize</value></field>")
    await romeo.ok("set", f"{OWN}<configure node='{R}'>{closed}</configure></pubsub>")
    await users["nurse"].ok("set", f"{PS}<subscribe node='{R}' jid='nurse@capulet.lit'/></pubsub>")
    await romeo.ok(
        "set",
        f"{OWN}<affiliations node='{R}'><affiliation jid='tybalt@capulet.lit' "
        "affiliation='outcast'/></affiliations></pubsub>",
    )
    await users[GUEST].presence()
    return users


def test_every_answered_case_of_the_xep_table_has_a_request() -> None:
    answered = {case for case, answer in XEP_ROWS.items() if answer is not None}
    assert answered == set(XEP_CASES)


@pytest.mark.parametrize("case", list(XEP_CASES))
async def test_the_wire_answers_each_xep_case_as_the_table_says(
    harness: Harness, case: str
) -> None:
    users = await _xep_world(harness)
    who, type_, payload = XEP_CASES[case]
    reply = await users[who].iq(type_, payload)
    expected = XEP_ROWS[case]
    assert expected is not None
    if expected[0] == "result":
        assert reply.get("type") == "result", serialize(reply)
        if len(expected) == 3:
            _, attribute, value = expected
            assert any(e.get(attribute) == value for e in reply.iter()), serialize(reply)
        return
    assert reply.get("type") == "error", serialize(reply)
    condition, type_, app, feature = expected
    assert condition_of(reply) == (condition, type_, app or None), serialize(reply)
    text = reply.findtext(f"error/{{{STANZAS}}}text")
    assert text, "every error explains itself"
    if feature:
        error = reply.find("error")
        assert error is not None
        apps = [child for child in error if child.tag.startswith(f"{{{NS_PUBSUB_ERRORS}}}")]
        assert [a.get("feature") for a in apps] == [feature]


async def test_several_subscription_changes_one_refused_change_nothing(harness: Harness) -> None:
    """§8.8.2.4 as docs/errors.md says: every row is checked before any is written."""
    users = await _xep_world(harness)
    await users["juliet"].error(
        "set", XEP_CASES["§8.8.2.4 change subscriptions: several, one refused"][2]
    )
    followers = await users["juliet"].ok("get", f"{OWN}<subscriptions node='{J}'/></pubsub>")
    states = {
        s.get("jid"): s.get("subscription")
        for s in followers.iter(f"{{{NS['owner']}}}subscription")
    }
    assert states["romeo@capulet.lit"] == "subscribed"


async def test_disco_info_lists_no_feature_the_server_refuses(harness: Harness) -> None:
    info = await harness.client("juliet@capulet.lit/x").ok("get", f"<query xmlns='{NS['disco']}'/>")
    features = {f.get("var") for f in info.iter(f"{{{NS['disco']}}}feature")}
    for refused in ("retrieve-default", "purge-nodes", "subscription-options"):
        assert f"{NS['pubsub']}#{refused}" not in features
