"""Parsing and rendering, checked against the ProtoXEP and XEP examples in tests/fixtures/xml."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buddycloud.domain.entries import EntryDraft
from buddycloud.domain.errors import (
    InvalidConfiguration,
    InvalidNodeId,
    InvalidPaging,
    InvalidPayload,
    ItemRequired,
    PayloadTooLarge,
)
from buddycloud.domain.jid import Jid
from buddycloud.domain.model import (
    AccessModel,
    Entry,
    Item,
    NodeId,
    Page,
    PageRequest,
    RawPayload,
    Role,
)
from buddycloud.wire.atom import entry_text, parse_entry, render_entry, render_tombstone
from buddycloud.xmpp.errors import MalformedStanza, NodeIdRequired
from buddycloud.xmpp.forms import DataForm, FormField, parse_form, render_form
from buddycloud.xmpp.namespaces import NS_PUBSUB, qname
from buddycloud.xmpp.rsm import parse_rsm, render_page_request, render_rsm
from buddycloud.xmpp.stanzas import (
    parse_create,
    parse_mam_query,
    parse_publish,
    parse_recent_items,
    parse_retract,
    parse_subscriptions_with_configuration,
)
from buddycloud.xmpp.xml import parse_xml, prewritten, serialize, wrapper_size

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "xml"
SERVICE = "channels.capulet.lit"
ROMEO_POSTS = NodeId.parse("/user/romeo@capulet.lit/posts")


def fixture(name: str) -> Element:
    return parse_xml((FIXTURES / name).read_text())


def payload_of(iq: Element) -> Element:
    return next(iter(iq))


def shape(element: Element) -> list[str]:
    """Every element's tag in document order: the structure without the values."""
    return [e.tag for e in element.iter()]


def test_example_12_publish_parses_into_a_draft() -> None:
    request = parse_publish(payload_of(fixture("protoxep-12-publish.xml")))
    assert request.node == ROMEO_POSTS
    assert request.item_id is None
    assert isinstance(request.payload, EntryDraft)
    assert request.payload.content == "O Romeo, Romeo! wherefore art thou Romeo?"
    assert request.payload.content_type == "text"
    assert request.payload.byte_size > len(request.payload.content)


def test_example_15_reference_keeps_thread_target_rating_and_extensions() -> None:
    draft = parse_entry(fixture("protoxep-15-reference.xml"), byte_size=1)
    ref = "tag:channels.capulet.lit,/user/romeo@capulet.lit/posts,fc362eb42085f017ed9ccd9c4004b095"
    assert draft.in_reply_to == ref
    assert draft.target == ref
    assert draft.rating == "5.0"
    assert draft.verb == "rated"
    assert draft.object_type == "comment"
    # Client-set id, dates and author are dropped; unknown children kept verbatim.
    (extension,) = draft.extensions
    assert parse_xml(extension).findtext("{http://jabber.org/protocol/geoloc}locality") == "Verona"


def entry(**changes: object) -> Entry:
    values: dict[str, object] = {
        "id": "fc362eb42085f017ed9ccd9c4004b095",
        "title": "Post title",
        "content": "O Romeo, Romeo! wherefore art thou Romeo?",
        "content_type": "text",
        "author": Jid.parse("juliet@montague.lit"),
        "published": datetime(2014, 1, 1, tzinfo=UTC),
        "updated": datetime(2014, 1, 1, tzinfo=UTC),
        "verb": "post",
        "object_type": "post",
    }
    values.update(changes)
    return Entry(**values)  # type: ignore[arg-type]


def test_rendered_entries_have_the_shape_of_example_13() -> None:
    rendered = render_entry(entry(), service=SERVICE, node=ROMEO_POSTS)
    expected = fixture("protoxep-13-entry.xml")
    # Example 13 plus the acct: URI of the author (reference section 2.5).
    uri = "{http://www.w3.org/2005/Atom}uri"
    assert [t for t in shape(rendered) if t != uri] == shape(expected)
    assert rendered.findtext("{http://www.w3.org/2005/Atom}published") == "2014-01-01T00:00:00.000Z"
    assert rendered.findtext(f"{{http://www.w3.org/2005/Atom}}author/{uri}") == (
        "acct:juliet@montague.lit"
    )


_ENTRY_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), whitelist_characters="\t\n&<>\"'"),
    max_size=40,
)


@given(
    title=_ENTRY_TEXT,
    content=_ENTRY_TEXT,
    content_type=st.sampled_from(["text", "html", "xhtml", 'a"b&c']),
    verb=_ENTRY_TEXT,
    object_type=_ENTRY_TEXT,
    in_reply_to=st.none() | _ENTRY_TEXT,
    target=st.none() | _ENTRY_TEXT,
    rating=st.none() | st.integers(1, 5),
    extensions=st.sampled_from([(), ("<geoloc xmlns='http://jabber.org/protocol/geoloc'/>",)]),
    millisecond=st.integers(0, 999),
)
def test_entries_written_as_text_match_the_element_renderer(
    title: str,
    content: str,
    content_type: str,
    verb: str,
    object_type: str,
    in_reply_to: str | None,
    target: str | None,
    rating: int | None,
    extensions: tuple[str, ...],
    millisecond: int,
) -> None:
    """Notifications write entries straight to text; clients must see the same XML as in
    every other reply, which renders elements."""
    when = datetime(2014, 1, 1, 12, 30, 5, millisecond * 1000, tzinfo=UTC)
    rendered = entry(
        title=title,
        content=content,
        content_type=content_type,
        verb=verb,
        object_type=object_type,
        in_reply_to=in_reply_to,
        target=target,
        rating=rating,
        extensions=extensions,
        updated=when,
    )
    text = entry_text(rendered, service=SERVICE, node=ROMEO_POSTS)
    assert text == serialize(render_entry(rendered, service=SERVICE, node=ROMEO_POSTS))
    parse_xml(text)  # well-formed, whatever the text held


def test_a_rendered_rating_parses_back_to_the_same_draft() -> None:
    rated = entry(
        verb="rated",
        object_type="comment",
        in_reply_to="fc36",
        target="fc36",
        rating=5,
        content="rating:5.0",
        extensions=("<geoloc xmlns='http://jabber.org/protocol/geoloc'/>",),
    )
    rendered = render_entry(rated, service=SERVICE, node=ROMEO_POSTS)
    draft = parse_entry(rendered, byte_size=0)
    assert draft.in_reply_to == f"tag:{SERVICE},{ROMEO_POSTS},fc36"
    assert draft.target == f"tag:{SERVICE},{ROMEO_POSTS},fc36"
    assert (draft.rating, draft.verb, draft.object_type) == ("5.0", "rated", "comment")
    assert len(draft.extensions) == 1


def test_xhtml_content_survives_a_round_trip() -> None:
    xhtml = "<div xmlns='http://www.w3.org/1999/xhtml'><p>O <b>Romeo</b></p></div>"
    source = parse_xml(
        f"<entry xmlns='http://www.w3.org/2005/Atom'>"
        f"<content type='xhtml'>{xhtml}</content></entry>"
    )
    draft = parse_entry(source, byte_size=0)
    assert draft.content_type == "xhtml"
    assert draft.content is not None
    rendered = render_entry(
        entry(content=draft.content, content_type="xhtml"), service=SERVICE, node=ROMEO_POSTS
    )
    bold = rendered.find(
        "{http://www.w3.org/2005/Atom}content/{http://www.w3.org/1999/xhtml}div/"
        "{http://www.w3.org/1999/xhtml}p/{http://www.w3.org/1999/xhtml}b"
    )
    assert bold is not None and bold.text == "Romeo"


def test_tombstones_have_the_shape_of_example_11() -> None:
    when = datetime(2012, 7, 1, 15, 8, 32, 950000, tzinfo=UTC)
    item = Item(
        node=NodeId.parse("/user/juliet@capulet.lit/posts"),
        id="1291048772456",
        author=Jid.parse("juliet@capulet.lit"),
        published=datetime(2012, 7, 1, 15, 8, 30, 922000, tzinfo=UTC),
        updated=when,
        payload=entry(id="1291048772456", object_type="comment", content="", title=""),
        deleted=True,
    )
    rendered = render_tombstone(item, service="buddycloud.capulet.lit")
    expected = fixture("protoxep-11-tombstone.xml")
    assert shape(rendered) == shape(expected)
    assert rendered.attrib == expected.attrib
    assert rendered.findtext("{http://www.w3.org/2005/Atom}published") == (
        "2012-07-01T15:08:30.922Z"
    )


def test_example_7_recent_items_keeps_since_and_max_raw() -> None:
    request = parse_recent_items(payload_of(fixture("protoxep-07-recent-items.xml")))
    assert (request.since, request.max_per_node, request.parent_only) == (
        "2014-04-18T10:46.100Z",
        "50",
        True,
    )


def test_example_9_retract() -> None:
    request = parse_retract(payload_of(fixture("protoxep-09-retract.xml")))
    assert (str(request.node), request.item_id, request.notify) == (
        "/user/juliet@capulet.lit/posts",
        "1291048772456",
        True,
    )


def test_example_19_filters_use_wire_neutral_keys() -> None:
    request = parse_subscriptions_with_configuration(
        payload_of(fixture("protoxep-19-subscriptions-with-configuration.xml"))
    )
    assert request.filters == {"title": "Romeo"}
    assert request.allowed_fields == ("description",)


def test_create_with_a_configure_form() -> None:
    request = parse_create(payload_of(fixture("xep-0060-create-configure.xml")))
    assert str(request.node) == "/user/princely_musings@topics.denmark.lit/posts"
    update = request.update
    assert update is not None
    assert update.title == "Princely Musings (Atom)"
    assert update.description == "Thoughts\nand more"
    assert update.access_model is AccessModel.AUTHORIZE
    assert update.default_role is Role.PUBLISHER
    assert update.max_items == 10


def test_a_mam_query_on_a_node() -> None:
    query = parse_mam_query(payload_of(fixture("xep-0313-node-query.xml")))
    assert query.query_id == "f27"
    assert query.node == ROMEO_POSTS
    assert query.start == datetime(2010, 6, 7, tzinfo=UTC)
    assert query.end == datetime(2010, 7, 7, 13, 23, 54, tzinfo=UTC)
    assert query.with_ == Jid.parse("romeo@capulet.lit")
    assert query.page == PageRequest(max=10, after="09af3-cc343-b409f")


def pubsub(inner: str) -> Element:
    return parse_xml(f"<pubsub xmlns='http://jabber.org/protocol/pubsub'>{inner}</pubsub>")


@pytest.mark.parametrize(
    ("inner", "error"),
    [
        ("<publish/>", NodeIdRequired),
        ("<publish node='/user/a@b.c/posts'/>", ItemRequired),
        ("<publish node='/user/a@b.c/posts'><item/></publish>", InvalidPayload),
        ("<publish node='/user/a@b.c/posts'><item><a/><b/></item></publish>", InvalidPayload),
        (
            "<publish node='/user/a@b.c/posts'><item><x/></item><item><x/></item></publish>",
            InvalidPayload,
        ),
        ("<publish node='posts'><item><x/></item></publish>", InvalidNodeId),
        ("<publish node='/user/a@b.c/'><item><x/></item></publish>", InvalidNodeId),
        (
            "<publish node='/user/a@b.c/posts'><item id='a b'><x/></item></publish>",
            InvalidPayload.__base__,
        ),
    ],
)
def test_bad_publish_requests_raise_named_errors(inner: str, error: type[Exception]) -> None:
    with pytest.raises(error):  # type: ignore[arg-type]
        parse_publish(pubsub(inner))


def test_a_payload_over_the_limit_is_refused() -> None:
    body = "x" * 200
    request = pubsub(
        f"<publish node='/user/a@b.c/posts'><item><x xmlns='urn:x'>{body}</x></item></publish>"
    )
    with pytest.raises(PayloadTooLarge):
        parse_publish(request, max_payload_bytes=100)
    assert isinstance(parse_publish(request, max_payload_bytes=1000).payload, RawPayload)


def test_two_atom_contents_are_refused() -> None:
    with pytest.raises(InvalidPayload):
        parse_entry(
            parse_xml(
                "<entry xmlns='http://www.w3.org/2005/Atom'><content>a</content>"
                "<content>b</content></entry>"
            ),
            byte_size=0,
        )


def test_rsm_round_trip_and_errors() -> None:
    request = PageRequest(max=5, after="abc")
    holder = Element("holder")
    holder.append(render_page_request(request))
    assert parse_rsm(holder) == request
    last_page = Element("holder")
    last_page.append(render_page_request(PageRequest(max=3, last_page=True)))
    assert parse_rsm(last_page).last_page
    rendered = render_rsm(Page(["a", "b"], 7, "a", "b"))
    assert [(e.tag.split("}")[1], e.text) for e in rendered] == [
        ("first", "a"),
        ("last", "b"),
        ("count", "7"),
    ]
    bad = parse_xml("<q><set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set></q>")
    with pytest.raises(InvalidPaging):
        parse_rsm(bad)


def test_data_forms_round_trip() -> None:
    form = DataForm(
        "submit",
        "urn:test",
        (FormField("a", ("1", "2"), "text-multi"), FormField("b", (), None)),
        title="T",
    )
    assert parse_form(render_form(form)) == form
    with pytest.raises(MalformedStanza):
        parse_form(parse_xml("<x xmlns='jabber:x:data' type='weird'/>"))


def test_configuration_values_outside_their_vocabulary_are_refused() -> None:
    from buddycloud.xmpp.forms import parse_config_update

    for var, value in [
        ("pubsub#access_model", "presence"),
        ("buddycloud#default_affiliation", "king"),
        ("pubsub#max_items", "many"),
        ("buddycloud#ephemeral", "maybe"),
        ("buddycloud#channel_type", "group"),
    ]:
        with pytest.raises(InvalidConfiguration):
            parse_config_update(DataForm("submit", None, (FormField(var, (value,)),)))


def test_serialised_stanzas_declare_default_namespaces() -> None:
    element = parse_xml("<a xmlns='urn:a'><b xmlns='urn:b'><c/></b></a>")
    assert serialize(element) == '<a xmlns="urn:a"><b xmlns="urn:b"><c/></b></a>'


def test_a_prewritten_element_is_copied_and_wrappers_are_measured() -> None:
    items = Element(qname(NS_PUBSUB, "items"), {"node": "/user/jüliet@capulet.lit/posts"})
    item = Element(qname(NS_PUBSUB, "item"), {"id": "1"})
    SubElement(item, "{http://www.w3.org/2005/Atom}entry").text = "é & <b>"
    text = serialize(item, parent_namespace=NS_PUBSUB)
    items.append(prewritten(item, text, NS_PUBSUB))
    whole = serialize(items)
    assert (
        whole == serialize(Element(items.tag, items.attrib)).replace("/>", ">") + text + "</items>"
    )
    assert len(whole.encode()) == wrapper_size(items) + len(text.encode())
    # The copy is a whole element: code that walks the tree sees the same children.
    assert items[0].find("{http://www.w3.org/2005/Atom}entry").text == "é & <b>"  # type: ignore[union-attr]
    # Written for another parent namespace, the text is not reused.
    outer = Element("{urn:other}x")
    outer.append(prewritten(item, "<wrong/>", NS_PUBSUB))
    assert "<wrong/>" not in serialize(outer)
